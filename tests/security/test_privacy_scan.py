"""No personal data in any ClickHouse table or log line of the whole test run.

This module runs after every other test (``RUNS_LAST``, see
``tests/conftest.py``): by then every test has sent its IP addresses,
e-mail addresses and full User-Agents through the real parts
(``test_privacy_traffic.py`` sends distinctive ones everywhere). The scan
reads every column of every table of every database in the session's
embedded ClickHouse directory and every log record of every logger, at
DEBUG, written during the run. The first two tests plant values in a
scratch table and a log line and prove the scan finds them: the scan can
fail. Databases a fixture dropped before the end, and processes the tests
started (their logs are their own), are out of its reach.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from beacon.store import Store
from tests.conftest import SuiteLog

from .hostile import PERSONAL_DATA
from .privacy import CLIENT_LOGGERS, scan_log, scan_tables

RUNS_LAST = True

# Values shaped like personal data, unique to this run, and matched by no
# entry of PERSONAL_DATA: what the self-tests plant never fails the real scan.
_TAG = uuid.uuid4().hex[:10]
PLANTED_IP = "198.18.47.211"
PLANTED_EMAIL = f"planted.{_TAG}@scan-selftest.invalid"
PLANTED_AGENT = f"PlantedAgent/{_TAG} (X11; Linux x86_64) Selftest/1.0"
PLANTED = (PLANTED_IP, PLANTED_EMAIL, PLANTED_AGENT)


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


def test_no_personal_data_in_any_table_or_log_line(
    request: pytest.FixtureRequest, scan_store: Store, suite_log: SuiteLog
) -> None:
    if all(item.module is request.module for item in request.session.items):
        pytest.skip("only the scan itself ran: there is nothing to scan")
    tables, in_tables = scan_tables(scan_store, PERSONAL_DATA)
    suite_log.flush()
    records, in_log = scan_log(suite_log.path, PERSONAL_DATA)
    assert tables > 0
    assert records > 0
    found = [f"{finding.place}: {finding.detail}" for finding in in_tables + in_log]
    assert not found, "personal data found:\n" + "\n".join(found)
