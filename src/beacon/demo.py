"""Demo data for the statistics dashboard: synthetic, seeded, clearly labelled.

:func:`seed_demo` fills an empty store, on first run only, with a few weeks of
made-up traffic for the site ``demo.example`` and e-mail campaigns named
``demo-...``, plus consent receipts, and (re)creates a ``demo`` account with
a fresh random password that the caller prints at start-up. The dashboard
shows a "demo data" banner when created with ``demo=True``.

:func:`synthetic_events` is the generator behind it, also used by the
benchmarks to write millions of events: it yields TabSeparated blocks in the
raw ``events`` column order, ready for one raw insert each.
"""

from __future__ import annotations

import bisect
import random
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from beacon.auth import AccountStore
from beacon.events import EVENT_COLUMNS
from beacon.migrations import migrate
from beacon.receipts.rows import RECEIPT_COLUMNS, RECEIPTS_TABLE, receipt_tsv
from beacon.store import Store
from mypharm_consent.receipts import ConsentReceipt

__all__ = ["DEMO_ACCOUNT", "DEMO_SITE", "DemoAccount", "seed_demo", "synthetic_events"]

#: The site name every demo event carries.
DEMO_SITE = "demo.example"
#: The demo account's name.
DEMO_ACCOUNT = "demo"

_PAGES = (
    ["/", "/produits", "/conseils", "/pharmacie-de-garde", "/contact", "/panier"]
    + [f"/produits/{name}" for name in ("vitamine-c", "creme-solaire", "brosse-a-dents")]
    + [f"/conseils/article-{number}" for number in range(1, 120)]
)
_REFERRERS = [
    "",
    "www.google.com",
    "www.bing.com",
    "duckduckgo.com",
    "www.qwant.com",
    "www.facebook.com",
    "t.co",
    "www.doctissimo.fr",
    "news.ycombinator.com",
] + [f"blog{number}.example" for number in range(12)]
_UTM = [
    ("", "", ""),
    ("newsletter", "email", "demo-2026-10-newsletter"),
    ("newsletter", "email", "demo-2026-11-newsletter"),
    ("facebook", "social", "automne"),
    ("google", "cpc", "vitamines"),
    ("partenaire", "referral", "labo-demo"),
]
_DEVICES = [
    ("desktop", "Firefox", "Linux"),
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Edge", "Windows"),
    ("desktop", "Safari", "Mac OS X"),
    ("mobile", "Mobile Safari", "iOS"),
    ("mobile", "Chrome Mobile", "Android"),
    ("mobile", "Samsung Internet", "Android"),
    ("tablet", "Mobile Safari", "iOS"),
    ("tablet", "Chrome", "Android"),
]
_DEVICE_WEIGHTS = [10, 20, 6, 8, 25, 20, 5, 3, 3]
_BOTS = ["Googlebot", "bingbot", "AhrefsBot", "Applebot", "YandexBot"]
_PROXIES = [("unknown", "GoogleImageProxy", ""), ("unknown", "Apple Mail Privacy Protection", "")]
_ADS = ["vitamins-banner", "solaire-sidebar", "labo-demo-footer"]
_LINKS = [
    "https://demo.example/produits/vitamine-c",
    "https://demo.example/conseils/article-1",
    "https://demo.example/produits/creme-solaire",
    "https://demo.example/pharmacie-de-garde",
    "https://demo.example/contact",
    "https://demo.example/conseils/article-7",
]


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """The demo account to print at start-up."""

    name: str
    password: str


def synthetic_events(
    count: int,
    *,
    seed: int = 1,
    end: datetime | None = None,
    days: int = 90,
    site: str = DEMO_SITE,
    campaigns: int = 12,
    visitors_per_day: int = 40_000,
    block_size: int = 100_000,
) -> Iterator[bytes]:
    """``count`` made-up events over the ``days`` days ending at ``end``, as TSV blocks.

    About 78% page views (5% of them from bots), 2% ad clicks and 20% e-mail
    opens, clicks and unsubscribes spread over ``campaigns`` campaigns, each
    campaign's events mostly in its first two days. Visitors are drawn each day
    from ``visitors_per_day`` people, some much more active than others. The
    same ``seed`` gives the same events.
    """
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    end_second = int(end.timestamp())
    start_second = end_second - days * 86400
    span = end_second - start_second
    pick_page = _picker(rng, _PAGES, [1 / (rank + 1) for rank in range(len(_PAGES))])
    pick_referrer = _picker(rng, _REFERRERS, [40, 30, 6, 5, 3, 4, 2, 2, 1] + [0.5] * 12)
    pick_utm = _picker(rng, ["\t".join(utm) for utm in _UTM], [70, 10, 8, 5, 4, 3])
    pick_device = _picker(rng, ["\t".join(d[1:] + d[:1]) for d in _DEVICES], _DEVICE_WEIGHTS)
    pick_link = _picker(rng, _LINKS, [30, 20, 15, 5, 2, 1])
    proxies = ["\t".join(d[1:] + d[:1]) for d in _PROXIES]
    sends = [
        (f"demo-campaign-{number + 1:02d}", start_second + int(span * (number + 0.5) / campaigns))
        for number in range(campaigns)
    ]
    day_prefix: dict[int, str] = {}
    lines: list[str] = []
    random_value = rng.random

    def stamp(second: int) -> str:
        day, rest = divmod(second, 86400)
        prefix = day_prefix.get(day)
        if prefix is None:
            prefix = day_prefix[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        hour, rest = divmod(rest, 3600)
        return f"{prefix} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}.000"

    for _ in range(count):
        draw = random_value()
        if draw < 0.80:
            second = start_second + int(random_value() * span)
            when = stamp(second)
            if draw < 0.04:
                bot = _BOTS[int(random_value() * len(_BOTS))]
                lines.append(
                    f"{when}\t{site}\tpageview\t{pick_page()}\t\t\t\t\t\t\t"
                    f"{rng.getrandbits(63)}\t{bot}\tOther\tbot\t1\t\t\t0\t0\t\n"
                )
                continue
            visitor = (
                (second // 86400) * 1_000_003 + int(random_value() ** 2 * visitors_per_day) + 1
            )
            if draw < 0.78:
                lines.append(
                    f"{when}\t{site}\tpageview\t{pick_page()}\t{pick_referrer()}\t{pick_utm()}"
                    f"\t\t\t{visitor}\t{pick_device()}\t0\t\t\t0\t0\t\n"
                )
            else:
                ad = _ADS[int(random_value() * len(_ADS))]
                lines.append(
                    f"{when}\t{site}\tad_click\t{pick_page()}\t\t\t\t\t\t\t{visitor}\t"
                    f"{pick_device()}\t0\t\thttps://labo.example/{ad}\t0\t0\t{ad}\n"
                )
        else:
            campaign, sent = sends[int(random_value() * len(sends))]
            second = min(sent + int(rng.expovariate(1 / 9000)), end_second - 1)
            recipient = int(random_value() * 40_000) + 1
            kind_draw = random_value()
            kind = "open" if kind_draw < 0.6 else "click" if kind_draw < 0.97 else "unsubscribe"
            machine = kind != "unsubscribe" and random_value() < (0.25 if kind == "open" else 0.1)
            device = proxies[int(random_value() * 2)] if machine else pick_device()
            link = pick_link() if kind == "click" else ""
            lines.append(
                f"{stamp(second)}\t{site}\t{kind}\t\t\t\t\t\t\t\t0\t{device}\t0\t"
                f"{campaign}\t{link}\t{recipient}\t{int(machine)}\t\n"
            )
        if len(lines) >= block_size:
            yield "".join(lines).encode("utf-8")
            lines = []
    if lines:
        yield "".join(lines).encode("utf-8")


def _picker(
    rng: random.Random, values: Sequence[str], weights: Sequence[float]
) -> Callable[[], str]:
    """A fast weighted choice: bisect into precomputed cumulative weights."""
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    random_value = rng.random

    def pick() -> str:
        return values[bisect.bisect(cumulative, random_value() * total)]

    return pick


def _demo_receipts(rng: random.Random, end: datetime, count: int) -> bytes:
    receipts = []
    optional = ("preferences", "analytics", "marketing")
    for number in range(count):
        moment = end - timedelta(seconds=rng.random() * 28 * 86400)
        draw = rng.random()
        granted: tuple[str, ...]
        if draw < 0.45:
            action, granted = "accept_all", optional
        elif draw < 0.8:
            action, granted = "reject_all", ()
        else:
            action = "save"
            granted = tuple(category for category in optional if rng.random() < 0.5)
        receipts.append(
            ConsentReceipt(
                consent_id=f"demo-{number:06d}",
                time=moment,
                action=action,
                granted=("necessary", *granted),
                refused=tuple(category for category in optional if category not in granted),
                policy_revision=2 if moment < end - timedelta(days=10) else 3,
                banner_hash="demo",
                language=rng.choice(("fr", "fr", "fr", "en")),
                source="banner",
                device_class=rng.choice(("desktop", "mobile")),
            )
        )
    return b"".join(receipt_tsv(receipt) for receipt in receipts)


def seed_demo(store: Store, *, events: int = 40_000, now: datetime | None = None) -> DemoAccount:
    """Fill ``store`` with demo data on first run and return a fresh demo login.

    The data is written only when the store holds no ``demo.example`` event
    yet, so restarting the demo keeps what was there. The ``demo`` account
    (an admin, to show account management) gets a new random password each
    time: print it for the person starting the demo.
    """
    migrate(store)
    end = (now or datetime.now(UTC)).astimezone(UTC)
    seeded = store.query_rows(
        "SELECT count() FROM site_daily WHERE site = {site:String}", {"site": DEMO_SITE}
    )[0][0]
    if not seeded:
        blocks = synthetic_events(
            events, seed=2026, end=end, days=45, campaigns=4, visitors_per_day=300
        )
        for block in blocks:
            store.raw_insert("events", EVENT_COLUMNS, block)
        store.raw_insert(
            RECEIPTS_TABLE, RECEIPT_COLUMNS, _demo_receipts(random.Random(7), end, 400)
        )
    accounts = AccountStore(store)
    password = secrets.token_urlsafe(12)
    if accounts.get(DEMO_ACCOUNT) is None:
        accounts.add(DEMO_ACCOUNT, password, role="admin")
    else:
        accounts.set_password(DEMO_ACCOUNT, password)
    return DemoAccount(DEMO_ACCOUNT, password)
