"""``beacon stats`` and ``beacon users`` print the exact numbers and manage accounts."""

from __future__ import annotations

import csv
import io
import json

import pytest

from beacon.auth import AccountStore
from beacon.cli import main

from .stats_dataset import CAMPAIGN, LINK_A

RANGE = ["--from", "2026-11-01", "--to", "2026-11-03"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_campaigns_table_is_aligned(capsys, stats_url, stats_store):
    status, out, _ = run(capsys, "stats", "campaigns", "--url", stats_url)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "campaigns"
    header, rule, row = lines[1], lines[2], lines[3]
    assert header.startswith("Campaign                 First event  Reached  Opens")
    assert set(rule) <= {"-", " "}
    assert len(header) == len(rule) == len(row)
    assert row.split() == [
        CAMPAIGN, "2026-11-02", "08:00", "9", "10", "8", "7", "3", "11", "8", "9", "2",
        "77.8%", "87.5%", "1",
    ]  # fmt: skip


def test_campaign_json(capsys, stats_url, stats_store):
    status, out, _ = run(
        capsys, "stats", "campaign", CAMPAIGN, "--url", stats_url, "--format", "json"
    )
    assert status == 0
    detail = json.loads(out)
    assert detail["summary"]["clicks"]["unique_human"] == 7
    assert detail["links"][0] == {
        "link": LINK_A, "clicks": 9, "unique": 8, "human": 8, "scanner": 1, "unique_human": 7
    }  # fmt: skip


def test_campaign_csv_sections(capsys, stats_url, stats_store):
    status, out, _ = run(
        capsys, "stats", "campaign", CAMPAIGN, "--url", stats_url, "--format", "csv"
    )
    assert status == 0
    sections = {
        block.split("\r\n", 1)[0][2:]: block.split("\r\n", 1)[1] for block in out.split("\r\n\r\n")
    }
    assert list(sections) == ["summary", "links", "device", "browser", "os", "timeline"]
    device = list(csv.DictReader(io.StringIO(sections["device"])))
    assert device == [
        {"value": "mobile", "events": "13", "recipients": "5"},
        {"value": "other", "events": "3", "recipients": "2"},
    ]


def test_site_table_and_k(capsys, stats_url, stats_store):
    status, out, _ = run(capsys, "stats", "site", "--url", stats_url, *RANGE)
    assert status == 0
    totals = out.split("totals\n", 1)[1].splitlines()
    assert totals[2].split() == ["10", "9", "4", "7"]
    referrer = out.split("referrer\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split() for line in referrer[2:]] == [
        ["www.google.com", "6", "5"],
        ["other", "4", "4"],
    ]
    status, out, _ = run(capsys, "stats", "site", "--url", stats_url, *RANGE, "--k", "1")
    referrer = out.split("referrer\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in referrer[2:]] == [
        "www.google.com",
        "duckduckgo.com",
        "(none)",
    ]


def test_consent_csv(capsys, stats_url, stats_store):
    status, out, _ = run(capsys, "stats", "consent", "--url", stats_url, *RANGE, "--format", "csv")
    assert status == 0
    assert out.startswith("# by_day\r\ngroup,category,decisions,granted,refused,customized,")
    assert "2026-11-01,analytics,5,3,2,2,0.6000,0.4000" in out
    assert "other,marketing,2,1,1,0,0.5000,0.5000" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats", "campaign", "no-such-campaign"], "no event is recorded"),
        (["stats", "site", "--from", "2026-02-30"], "expected a date"),
        (["stats", "site", "--k", "0"], "--k must be at least 1"),
    ],
    ids=["unknown-campaign", "bad-date", "bad-k"],
)
def test_bad_input_exits_1(capsys, stats_url, stats_store, argv, message):
    status, out, err = run(capsys, *argv, "--url", stats_url)
    assert status == 1
    assert out == ""
    assert message in err


def test_unusable_store_exits_2(capsys):
    status, _, err = run(capsys, "stats", "campaigns", "--url", "ftp://nowhere")
    assert status == 2
    assert "scheme" in err


def test_users_add_token_list_remove(capsys, monkeypatch, clickhouse_url):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    status, out, _ = run(
        capsys,
        "users",
        "add",
        "dana",
        "--role",
        "admin",
        "--password-stdin",
        "--url",
        clickhouse_url,
    )
    assert (status, out) == (0, "account dana created (admin)\n")
    status, token, err = run(capsys, "users", "token", "dana", "--url", clickhouse_url)
    assert status == 0
    assert token.startswith("bst_")
    assert "shown only once" in err
    from beacon.store import Store

    accounts = AccountStore(Store(clickhouse_url))
    assert accounts.verify_token(token.strip()).name == "dana"
    assert accounts.authenticate("dana", "a long enough password") is not None
    stored = Store(clickhouse_url).query_rows(
        "SELECT token_hash, password_hash FROM dashboard_tokens, dashboard_users"
    )
    assert token.strip() not in str(stored)
    assert "a long enough password" not in str(stored)
    status, out, _ = run(capsys, "users", "list", "--url", clickhouse_url)
    assert out.splitlines()[1].split()[:2] == ["dana", "admin"]
    assert run(capsys, "users", "remove", "dana", "--url", clickhouse_url)[0] == 0
    assert accounts.get("dana") is None
    assert accounts.verify_token(token.strip()) is None


def test_users_refusals(capsys, monkeypatch, clickhouse_url):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    status, _, err = run(
        capsys, "users", "add", "erin", "--password-stdin", "--url", clickhouse_url
    )
    assert status == 1
    assert "at least 8" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    status, _, err = run(capsys, "users", "add", "erin", "--url", clickhouse_url)
    assert status == 1
    assert "--password-stdin" in err
    status, _, err = run(capsys, "users", "token", "nobody", "--url", clickhouse_url)
    assert status == 1
    assert "no account" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_password_is_asked_twice_on_a_terminal(capsys, monkeypatch, clickhouse_url):
    answers = iter(["first password", "second password"])
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: next(answers))
    status, _, err = run(capsys, "users", "add", "frank", "--url", clickhouse_url)
    assert status == 1
    assert "differ" in err
    answers = iter(["same password", "same password"])
    assert run(capsys, "users", "add", "frank", "--url", clickhouse_url)[0] == 0
