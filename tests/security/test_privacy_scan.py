"""No personal data in any ClickHouse table or log line of the whole test run.

This module runs after every other test (``RUNS_LAST``, see
``tests/conftest.py``): by then every test has sent its IP addresses,
e-mail addresses and full User-Agents through the real parts
(the first tests below send distinctive ones everywhere, so the scan has
something to read even when this module runs alone). The scan
reads every column of every table of every database in the session's
embedded ClickHouse directory and every log record of every logger, at
DEBUG, written during the run. Two self-tests plant values in a
scratch table and a log line and prove the scan finds them: the scan can
fail. Databases a fixture dropped before the end, and processes the tests
started (their logs are their own), are out of its reach.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
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
from tests.conftest import SuiteLog
from tests.consent.conftest import FakeClock, form_token, make_config
from tests.consent.sites import asgi_site, client_for, wsgi_site

from .hostile import PERSONAL_DATA, VISITOR_EMAIL, VISITOR_IP, VISITOR_IPV6, VISITOR_USER_AGENT
from .privacy import CLIENT_LOGGERS, scan_log, scan_tables

RUNS_LAST = True

# Values shaped like personal data, unique to this run, and matched by no
# entry of PERSONAL_DATA: what the self-tests plant never fails the real scan.
_TAG = uuid.uuid4().hex[:10]
PLANTED_IP = "198.18.47.211"
PLANTED_EMAIL = f"planted.{_TAG}@scan-selftest.invalid"
PLANTED_AGENT = f"PlantedAgent/{_TAG} (X11; Linux x86_64) Selftest/1.0"
PLANTED = (PLANTED_IP, PLANTED_EMAIL, PLANTED_AGENT)

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


def test_planted_values_are_not_personal_data_markers() -> None:
    for value in PLANTED:
        assert not any(marker.lower() in value.lower() for marker in PERSONAL_DATA), value


@pytest.fixture(scope="module")
def scan_store(chdb_path: Path) -> Store:
    """A connection to the session's embedded ClickHouse directory."""
    return Store(f"chdb://{chdb_path}?database=privacy_scan")


def test_the_scan_finds_values_planted_in_a_table(scan_store: Store) -> None:
    database = f"privacy_selftest_{_TAG}"
    scan_store.command(f"CREATE DATABASE `{database}`")
    try:
        scan_store.command(
            f"CREATE TABLE `{database}`.scratch (ip IPv4, email Nullable(String), "
            "agent LowCardinality(String), seen Array(String), n UInt64, "
            "agents AggregateFunction(groupArray, String)) ENGINE = MergeTree ORDER BY n"
        )
        scan_store.command(
            f"INSERT INTO `{database}`.scratch SELECT {{ip:String}}, {{email:String}}, '', [], 1, "
            "groupArrayState('nothing here')",
            parameters={"ip": PLANTED_IP, "email": PLANTED_EMAIL.upper()},
        )
        scan_store.command(
            f"INSERT INTO `{database}`.scratch SELECT '0.0.0.0', NULL, '', [{{agent:String}}], "
            "2, groupArrayState({agent:String})",
            parameters={"agent": PLANTED_AGENT},
        )
        tables, findings = scan_tables(scan_store, PLANTED, databases=[database])
        places = {finding.place: finding.detail for finding in findings}
        prefix = f"{database}.scratch."
        assert places == {
            prefix + "ip": "1 row(s)",
            prefix + "email": "1 row(s)",
            prefix + "seen": "1 row(s)",
            prefix + "agents": "1 row(s)",
        }
        assert tables == 1
        # The same tables hold none of the markers of the real scan.
        real = scan_tables(scan_store, PERSONAL_DATA, databases=[database])[1]
        assert not [finding for finding in real if finding.place.startswith(prefix)]
    finally:
        scan_store.command(f"DROP DATABASE IF EXISTS `{database}`")


def test_the_scan_finds_values_planted_in_a_log_line(suite_log: SuiteLog) -> None:
    logger = logging.getLogger("beacon.privacy-selftest")
    logger.debug("visitor %s from %s", PLANTED_EMAIL, PLANTED_IP)
    try:
        raise ValueError(PLANTED_AGENT)
    except ValueError:
        logger.exception("failed for a visitor")
    logging.getLogger(CLIENT_LOGGERS[0]).info("GET /?email=%s", PLANTED_EMAIL)
    suite_log.flush()
    records, findings = scan_log(suite_log.path, PLANTED)
    assert records >= 3
    # Arguments are formatted in, tracebacks are read, the tests' HTTP client is not counted.
    assert len(findings) == 2
    assert PLANTED_EMAIL in findings[0].detail
    assert PLANTED_IP in findings[0].detail
    assert PLANTED_AGENT.lower() in findings[1].detail.lower()


def test_no_personal_data_in_any_table_or_log_line(scan_store: Store, suite_log: SuiteLog) -> None:
    tables, in_tables = scan_tables(scan_store, PERSONAL_DATA)
    suite_log.flush()
    records, in_log = scan_log(suite_log.path, PERSONAL_DATA)
    assert tables > 0
    assert records > 0
    found = [f"{finding.place}: {finding.detail}" for finding in in_tables + in_log]
    assert not found, "personal data found:\n" + "\n".join(found)
