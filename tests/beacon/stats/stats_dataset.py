"""A hand-built event set with known numbers, in a real embedded ClickHouse database.

The numbers every statistics test expects follow from the events below; the
comments give the arithmetic.

Campaign ``2026-11-newsletter`` on ``mypharm.fr``, first event 2026-11-02 08:00 UTC,
recipients r1..r9 (references 101..109):

* human opens: r1..r5 at 08:xx, r6 at 09:30, r1 again at 10:15 (7 opens, 6 openers);
* machine opens (image proxies): r7, r8 at 08:05, r1 at 09:00 (3 opens, 3 openers);
* human clicks on link A: r1 08:20, r2 08:25, r3 09:40, r4 09:41, r5 09:50,
  r1 again 10:20, r9 11:00 (never opened), r6 on 2026-11-05 14:00;
* human click on link B: r2 08:26; scanner clicks on A and B: r7 at 08:05;
* r8 unsubscribes at 12:00.

Site ``mypharm.fr``: on 2026-11-01 visitors v1..v6 view ``/`` (v1 also ``/produits``),
v1..v5 come from www.google.com with UTM newsletter/email/nov on desktop Firefox
Linux, v6 direct on mobile; v1..v5 click the ad ``vitamins-banner``. On 2026-11-02
v7..v9 view ``/`` from duckduckgo.com on mobile, v7 and v8 click the ad, and
Googlebot views ``/`` four times.

Consent: revision 3 on 2026-11-01 (c1, c2 accept all; c3 reject all; c4 saves
analytics only; c5 saves marketing only); revision 2 on 2026-11-02 (c6 accept
all, c7 reject all).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from beacon.events import EVENT_COLUMNS, PixelEvent
from beacon.receipts.rows import RECEIPT_COLUMNS, RECEIPTS_TABLE, receipt_tsv
from beacon.store import Store
from mypharm_consent.receipts import ConsentReceipt

SITE = "mypharm.fr"
CAMPAIGN = "2026-11-newsletter"
LINK_A = "https://mypharm.fr/promo"
LINK_B = "https://mypharm.fr/conseils"
IPHONE = {"device": "mobile", "browser": "Mobile Safari", "os": "iOS"}
WINDOWS = {"device": "desktop", "browser": "Chrome", "os": "Windows"}
PROXY = {"device": "unknown", "browser": "GoogleImageProxy", "os": ""}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of November 2026, UTC."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def _email(kind: str, moment: datetime, recipient: int, **fields: object) -> PixelEvent:
    dims = fields.pop("dims", IPHONE if recipient <= 105 else WINDOWS)
    assert isinstance(dims, dict)
    return PixelEvent(
        ts=moment, site=SITE, kind=kind, campaign=CAMPAIGN, recipient=recipient, **dims, **fields
    )  # type: ignore[arg-type]


def campaign_events() -> list[PixelEvent]:
    """The campaign's opens, clicks and unsubscribe (see the module docstring)."""
    opens = [_email("open", at(2, 8, r - 90), r) for r in range(101, 106)]
    opens += [_email("open", at(2, 9, 30), 106), _email("open", at(2, 10, 15), 101)]
    opens += [_email("open", at(2, 8, 5), r, machine=True, dims=PROXY) for r in (107, 108)] + [
        _email("open", at(2, 9, 0), 101, machine=True, dims=PROXY)
    ]
    clicks = [
        _email("click", at(2, 8, 20), 101, link=LINK_A),
        _email("click", at(2, 8, 25), 102, link=LINK_A),
        _email("click", at(2, 8, 26), 102, link=LINK_B),
        _email("click", at(2, 9, 40), 103, link=LINK_A),
        _email("click", at(2, 9, 41), 104, link=LINK_A),
        _email("click", at(2, 9, 50), 105, link=LINK_A),
        _email("click", at(2, 10, 20), 101, link=LINK_A),
        _email("click", at(2, 11, 0), 109, link=LINK_A),
        _email("click", at(5, 14, 0), 106, link=LINK_A),
        _email("click", at(2, 8, 5, 1), 107, link=LINK_A, machine=True, dims=PROXY),
        _email("click", at(2, 8, 5, 1), 107, link=LINK_B, machine=True, dims=PROXY),
    ]
    return [*opens, *clicks, _email("unsubscribe", at(2, 12, 0), 108)]


def site_events() -> list[PixelEvent]:
    """The site's page views, ad clicks and bot hits (see the module docstring)."""
    desktop = {"device": "desktop", "browser": "Firefox", "os": "Linux"}
    mobile = {"device": "mobile", "browser": "Chrome Mobile", "os": "Android"}
    newsletter = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "nov"}
    events = []
    for visitor in range(1, 6):
        events.append(
            PixelEvent(
                ts=at(1, 10, visitor),
                site=SITE,
                kind="pageview",
                path="/",
                referrer_host="www.google.com",
                visitor_hash=visitor,
                **newsletter,
                **desktop,
            )
        )
        events.append(
            PixelEvent(
                ts=at(1, 10, 30 + visitor),
                site=SITE,
                kind="ad_click",
                path="/",
                name="vitamins-banner",
                link="https://labo.example/vitamins",
                visitor_hash=visitor,
                **desktop,
            )
        )
    events.append(
        PixelEvent(
            ts=at(1, 11, 0),
            site=SITE,
            kind="pageview",
            path="/produits",
            referrer_host="www.google.com",
            visitor_hash=1,
            **newsletter,
            **desktop,
        )
    )
    events.append(
        PixelEvent(ts=at(1, 12, 0), site=SITE, kind="pageview", path="/", visitor_hash=6, **mobile)
    )
    for visitor in (7, 8, 9):
        events.append(
            PixelEvent(
                ts=at(2, 9, visitor),
                site=SITE,
                kind="pageview",
                path="/",
                referrer_host="duckduckgo.com",
                visitor_hash=visitor,
                **mobile,
            )
        )
    for visitor in (7, 8):
        events.append(
            PixelEvent(
                ts=at(2, 9, 30 + visitor),
                site=SITE,
                kind="ad_click",
                path="/",
                name="vitamins-banner",
                link="https://labo.example/vitamins",
                visitor_hash=visitor,
                **mobile,
            )
        )
    for minute in range(4):
        events.append(
            PixelEvent(
                ts=at(2, 3, minute),
                site=SITE,
                kind="pageview",
                path="/",
                visitor_hash=1000 + minute,
                device="bot",
                browser="Googlebot",
                os="Other",
                is_bot=True,
            )
        )
    return events


def consent_receipts() -> list[ConsentReceipt]:
    """Seven decisions: five on revision 3, two on revision 2."""
    everything = ("necessary", "analytics", "marketing")

    def receipt(
        consent_id: str, day: int, action: str, granted: tuple[str, ...], revision: int
    ) -> ConsentReceipt:
        refused = tuple(category for category in everything if category not in granted)
        return ConsentReceipt(
            consent_id=consent_id,
            time=at(day, 15, int(consent_id[1:])),
            action=action,
            granted=granted,
            refused=refused,
            policy_revision=revision,
            banner_hash="b" * 16,
            language="fr",
            source="banner",
            device_class="desktop",
        )

    return [
        receipt("c1", 1, "accept_all", everything, 3),
        receipt("c2", 1, "accept_all", everything, 3),
        receipt("c3", 1, "reject_all", ("necessary",), 3),
        receipt("c4", 1, "save", ("necessary", "analytics"), 3),
        receipt("c5", 1, "save", ("necessary", "marketing"), 3),
        receipt("c6", 2, "accept_all", everything, 2),
        receipt("c7", 2, "reject_all", ("necessary",), 2),
    ]


def insert_events(store: Store, events: list[PixelEvent]) -> None:
    """Insert events the way the spool flusher does: one raw TabSeparated insert."""
    store.raw_insert("events", EVENT_COLUMNS, b"".join(event.to_tsv() for event in events))


ADMIN = ("alice", "correct horse battery")
VIEWER = ("victor", "viewer password 1")
SECRET_KEYS = ["test-secret-key-newest", "test-secret-key-older"]


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: Any, name: str, password: str) -> Any:
    """Log in through the login form; returns the POST's response."""
    page = client.get("/stats/login")
    return client.post(
        "/stats/login",
        data={"username": name, "password": password, "csrf": csrf_of(page.text), "next": ""},
    )


def fill_dataset(store: Store) -> None:
    """Insert the whole hand-built set (events and consent receipts) into a migrated store."""
    insert_events(store, campaign_events() + site_events())
    store.raw_insert(
        RECEIPTS_TABLE,
        RECEIPT_COLUMNS,
        b"".join(receipt_tsv(receipt) for receipt in consent_receipts()),
    )
