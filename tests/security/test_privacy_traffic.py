"""A visitor's personal data sent through every part, for the privacy scan to look for.

Each test sends a distinctive address, e-mail address and full User-Agent
(``hostile.VISITOR_*``) everywhere a visitor or a mail client can put them:
client address headers, ``User-Agent``, page and referrer URLs, e-mail links
and query strings, consent decisions, login names. It checks that the parts
did record something (so the scan has rows to read), and leaves the data in
place: ``test_privacy_scan.py`` then proves none of it was stored or logged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from beacon import Beacon
from beacon.dashboard import create_dashboard
from beacon.flusher import Flusher
from beacon.migrations import migrate
from beacon.receipts import ReceiptRecorder, ReceiptStore
from beacon.spool import SpoolDir
from beacon.store import Store
from tests.beacon.email.email_fixtures import BASE_URL, KEY, SITE, host_app
from tests.beacon.stats.stats_dataset import SECRET_KEYS, log_in
from tests.consent.conftest import FakeClock, form_token, make_config
from tests.consent.sites import asgi_site, client_for, wsgi_site

from .hostile import VISITOR_EMAIL, VISITOR_IP, VISITOR_IPV6, VISITOR_USER_AGENT

VISITOR = {
    "user-agent": VISITOR_USER_AGENT,
    "x-forwarded-for": f"{VISITOR_IP}, {VISITOR_IPV6}",
    "x-real-ip": VISITOR_IP,
    "forwarded": f'for="[{VISITOR_IPV6}]"',
}
MAILED = quote(VISITOR_EMAIL)


def _count(store: Store, table: str) -> int:
    return int(store.query_rows(f"SELECT count() FROM `{store.database}`.`{table}`")[0][0])


def test_beacon_traffic_carrying_personal_data(
    clickhouse_url: str, tmp_path: Path, live_server: Any
) -> None:
    tracker = Beacon(
        clickhouse_url,
        [KEY],
        SITE,
        base_url=BASE_URL,
        spool_dir=tmp_path / "spool",
        trusted_proxies=["127.0.0.1"],
    )
    server = live_server(host_app(tracker))
    page = f"https://mypharm.fr/compte?email={MAILED}&ip={VISITOR_IP}"
    referrer = f"https://webmail.example/read?to={MAILED}"
    with httpx.Client(base_url=server.url, headers=VISITOR, timeout=30) as http:
        pixel = http.get(
            "/b/p.gif",
            params={"u": page, "r": referrer, "utm_source": VISITOR_EMAIL, "n": VISITOR_IP},
            headers={"referer": page},
        )
        assert pixel.status_code == 200
        event = {"u": page, "r": referrer, "k": "custom", "n": VISITOR_EMAIL}
        assert http.post("/b/e", content=json.dumps(event)).status_code == 204
        assert http.post("/b/e", content=f'{{"u": "{VISITOR_EMAIL}'.encode()).status_code == 204

        email = tracker.email
        html = email.instrument(
            f'<a href="https://mypharm.fr/promo?email={MAILED}">promo</a><p>{VISITOR_EMAIL}</p>',
            campaign="privacy-scan",
            recipient=VISITOR_EMAIL,
        )
        opened = re.search(r'src="https://mypharm\.fr/b(/o/[^"]+)"', html)
        clicked = re.search(r'href="https://mypharm\.fr/b(/c/[^"]+)"', html)
        assert opened is not None
        assert clicked is not None
        assert http.get("/b" + opened.group(1)).status_code == 200
        assert http.get("/b" + clicked.group(1)).status_code == 302
        unsubscribe = email.unsubscribe_url("privacy-scan", VISITOR_EMAIL).removeprefix(
            "https://mypharm.fr"
        )
        assert http.post(unsubscribe, content=b"List-Unsubscribe=One-Click").status_code == 200
        assert http.get(f"/b/c/forged.{MAILED}").status_code == 400
    tracker.close()
    assert _count(tracker.store, "events") >= 5
    # Mailers tag links with the subscriber's address: it is not kept in a UTM value.
    utm = {row[0] for row in tracker.store.query_rows("SELECT DISTINCT utm_source FROM events")}
    assert "(e-mail)" in utm
    assert not [value for value in utm if "@" in value]
    assert _count(tracker.store, "email_unsubscribes") == 1
    assert email.is_unsubscribed(VISITOR_EMAIL)


def test_consent_traffic_carrying_personal_data(clickhouse_url: str, tmp_path: Path) -> None:
    store = Store(clickhouse_url)
    migrate(store)
    spool = SpoolDir(tmp_path / "receipts-spool")
    config = make_config(on_decision=ReceiptRecorder(spool), receipts=ReceiptStore(store))
    clock = FakeClock.real()
    for build in (asgi_site, wsgi_site):
        adapter = "asgi" if build is asgi_site else "wsgi"
        with client_for(adapter, build(config, clock)) as client:
            client.headers.update(VISITOR)
            page = client.get(f"/?email={MAILED}")
            assert page.status_code == 200
            token = form_token(page.text)
            decided = client.post(
                "/_consent/decide",
                data={"action": "accept_all", "csrf": token, "next": f"/?email={MAILED}"},
                headers={"sec-fetch-site": "same-origin", "referer": f"/?email={MAILED}"},
            )
            assert decided.status_code == 303
            refused = client.post(
                "/_consent/decide",
                data={"action": "reject_all", "csrf": token},
                headers={"origin": "https://evil.example"},
            )
            assert refused.status_code == 403
            assert client.get("/_consent/history.json").status_code == 200
    spool.close()
    Flusher(store, [spool.root], own=spool).drain_once()
    assert _count(store, "consent_receipts") == 2


def test_dashboard_traffic_carrying_personal_data(dashboard_store: Store, live_server: Any) -> None:
    dashboard = create_dashboard(dashboard_store, secret_keys=SECRET_KEYS, secure_cookies=False)
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    with httpx.Client(base_url=server.url, headers=VISITOR, timeout=30) as http:
        assert log_in(http, VISITOR_EMAIL, f"password of {VISITOR_EMAIL}").status_code == 401
        assert http.get(f"/stats/site?email={MAILED}").status_code == 303
        api = http.get("/stats/api/sites", headers={"authorization": f"Bearer {VISITOR_EMAIL}"})
        assert api.status_code == 401
