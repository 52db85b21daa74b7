"""``beacon consent``: show, export, erase, cancel, purge-due, on the real engine."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from beacon.cli import main
from beacon.receipts.store import ReceiptStore
from beacon.store import Store

from .receipt_helpers import insert_receipts, make_receipt, table_contents

ALICE = "alice-consent-id-0001"
BOB = "bob-consent-id-000002"


class Terminal(io.StringIO):
    """Standard input that claims to be a terminal, with the operator's answer in it."""

    def isatty(self) -> bool:
        return True


def run(store: Store, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["consent", *args[:1], "--url", store.url, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_visitors(store: Store) -> Store:
    insert_receipts(
        store,
        make_receipt(ALICE, 0),
        make_receipt(
            ALICE, 7, action="withdraw", granted=("necessary",), refused=("analytics", "marketing")
        ),
        make_receipt(BOB, 3),
    )
    return store


def test_show(two_visitors: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(two_visitors, capsys, "show", ALICE)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"consent id {ALICE}: 2 receipt(s)"
    assert "2026-11-02T09:30:00.000Z  accept_all" in lines[1]
    assert "withdraw" in lines[2]
    assert "refused analytics,marketing" in lines[2]
    assert lines[3] == "erasure: none requested"


def test_export_to_stdout_and_file(
    two_visitors: Store, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    code, out, _ = run(two_visitors, capsys, "export", ALICE)
    assert code == 0
    document = json.loads(out)
    assert [r["action"] for r in document["receipts"]] == ["accept_all", "withdraw"]
    target = tmp_path / "alice.json"
    code, _, err = run(two_visitors, capsys, "export", ALICE, "--output", str(target))
    assert code == 0
    assert json.loads(target.read_text())["receipts"] == document["receipts"]
    assert str(target) in err


def test_erase_with_grace_then_cancel(
    two_visitors: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(two_visitors, capsys, "erase", ALICE)
    assert code == 0
    assert "scheduled: due on" in out
    code, _, err = run(two_visitors, capsys, "erase", ALICE)
    assert code == 1
    assert "already requested" in err
    code, out, _ = run(two_visitors, capsys, "show", ALICE)
    assert "erasure: requested, due on" in out
    code, out, _ = run(two_visitors, capsys, "cancel", ALICE)
    assert (code, "cancelled" in out) == (0, True)
    code, _, err = run(two_visitors, capsys, "cancel", ALICE)
    assert (code, "nothing to cancel" in err) == (1, True)
    # Nothing is due: purge-due erases nothing.
    code, out, _ = run(two_visitors, capsys, "purge-due")
    assert (code, out.startswith("0 erasure(s)")) == (0, True)
    assert len(ReceiptStore(two_visitors).history(ALICE)) == 2


def test_erase_now_asks_for_confirmation(
    two_visitors: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(two_visitors, capsys, "erase", ALICE, "--now")
    assert (code, "pass --yes" in err) == (1, True)

    monkeypatch.setattr("sys.stdin", Terminal("bob-consent-id-000002\n"))
    code, out, _ = run(two_visitors, capsys, "erase", ALICE, "--now")
    assert code == 1
    assert "Type the consent id to confirm" in out
    assert "nothing was erased" in out
    assert len(ReceiptStore(two_visitors).history(ALICE)) == 2

    monkeypatch.setattr("sys.stdin", Terminal(ALICE + "\n"))
    code, out, _ = run(two_visitors, capsys, "erase", ALICE, "--now")
    assert code == 0
    assert "erased 2 receipt(s)" in out
    assert ALICE not in "".join(table_contents(two_visitors).values())


def test_erase_now_yes_for_automation(
    two_visitors: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(two_visitors, capsys, "erase", BOB, "--now", "--yes")
    assert (code, "erased 1 receipt(s)" in out) == (0, True)
    code, out, _ = run(two_visitors, capsys, "show", BOB)
    assert code == 0
    assert "0 receipt(s)" in out
    assert "erasure: done on" in out
    code, _, err = run(two_visitors, capsys, "erase", BOB, "--now", "--yes")
    assert (code, "already erased" in err) == (1, True)
    assert len(ReceiptStore(two_visitors).history(ALICE)) == 2


@pytest.mark.parametrize("command", ["show", "export", "erase", "cancel"])
def test_unknown_or_malformed_ids(
    store: Store, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(store, capsys, command, "never-seen-consent-id")
    assert code == 1
    assert out == ""
    assert err.startswith("beacon consent: ")
    code, _, err = run(store, capsys, command, "'; DROP TABLE consent_receipts; --")
    assert (code, "not a consent id" in err) == (1, True)


def test_an_unusable_store_is_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["consent", "purge-due", "--url", "ftp://nowhere/db"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "unknown store URL scheme" in err


def test_retention(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code, out, _ = run(store, capsys, "retention", "72")
        assert (code, out) == (0, "receipts are now kept 72 months, then dropped\n")
        [(query,)] = store.query_rows(
            "SELECT create_table_query FROM system.tables"
            " WHERE database = {db:String} AND name = 'consent_receipts'",
            {"db": store.database},
        )
        assert "toIntervalMonth(72)" in query
        code, _, err = run(store, capsys, "retention", "0")
        assert (code, "1 to 1200" in err) == (1, True)
    finally:
        ReceiptStore(store).set_retention(60)
