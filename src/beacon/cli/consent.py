"""``beacon consent``: the privacy officer's tools for proof of consent.

::

    beacon consent show CONSENT_ID        the receipts of a consent id, and its erasure
    beacon consent export CONSENT_ID      the same as a JSON document (stdout or --output)
    beacon consent erase CONSENT_ID       erase after the 24-hour grace period
    beacon consent erase --now CONSENT_ID erase at once (asks to confirm; --yes skips)
    beacon consent cancel CONSENT_ID      cancel an erasure during its grace period
    beacon consent purge-due              carry out every erasure whose grace period is over
    beacon consent retention MONTHS       keep receipts MONTHS months, then drop them (TTL)

Every command takes ``--url`` (default: ``BEACON_CLICKHOUSE_URL``, else the
embedded engine under ``.data/``). Exit status: 0 done, 1 refused (unknown
id, erasure already requested, deadline passed, not confirmed), 2 the store
cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from beacon.exceptions import StoreError
from beacon.receipts.store import ReceiptStore, ReceiptStoreUnavailable
from beacon.store import open_store
from mypharm_consent.receipts import (
    ConsentReceipt,
    ErasureStatus,
    ReceiptError,
    UnknownConsentId,
    iso_utc,
)

__all__ = ["register"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_STORE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``consent`` and its sub-commands to the ``beacon`` command line."""
    parser = subparsers.add_parser(
        "consent",
        help="show, export and erase consent receipts",
        description="Proof of consent: show, export and erase the receipts of a consent id.",
    )
    commands = parser.add_subparsers(dest="consent_command", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
        sub.set_defaults(func=lambda args: _run(handler, args))
        return sub

    show = command("show", _show, "print the receipts of a consent id and its erasure state")
    show.add_argument("consent_id", metavar="CONSENT_ID")

    export = command("export", _export, "write the consent history of a consent id as JSON")
    export.add_argument("consent_id", metavar="CONSENT_ID")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")

    erase = command("erase", _erase, "erase every receipt of a consent id (after the grace period)")
    erase.add_argument("consent_id", metavar="CONSENT_ID")
    erase.add_argument(
        "--now", action="store_true", help="erase at once, skipping the grace period"
    )
    erase.add_argument("--yes", action="store_true", help="do not ask to confirm --now")

    cancel = command("cancel", _cancel, "cancel an erasure during its grace period")
    cancel.add_argument("consent_id", metavar="CONSENT_ID")

    command("purge-due", _purge_due, "carry out every erasure whose grace period is over")

    retention = command("retention", _retention, "keep receipts this many months (default 60)")
    retention.add_argument("months", metavar="MONTHS", type=int)


def _run(handler: Callable[..., int], args: argparse.Namespace) -> int:
    try:
        store = open_store(args.url)
    except StoreError as exc:
        print(f"beacon consent: {exc}", file=sys.stderr)
        return EXIT_STORE
    receipts = ReceiptStore(store)
    try:
        return handler(receipts, args, sys.stdin, sys.stdout)
    except ReceiptError as exc:
        print(f"beacon consent: {exc}", file=sys.stderr)
        return EXIT_STORE if isinstance(exc, ReceiptStoreUnavailable) else EXIT_REFUSED
    finally:
        store.close()


def _status_line(status: ErasureStatus) -> str:
    if status.state == "none":
        return "erasure: none requested"
    if status.state == "done" and status.done_at:
        return f"erasure: done on {iso_utc(status.done_at)}"
    due = iso_utc(status.due_at) if status.due_at else "?"
    if status.state == "cancelled":
        return f"erasure: cancelled (was due on {due})"
    return f"erasure: requested, due on {due}"


def _receipt_line(receipt: ConsentReceipt) -> str:
    granted = ",".join(receipt.granted) or "-"
    refused = ",".join(receipt.refused) or "-"
    return (
        f"{iso_utc(receipt.time)}  {receipt.action:<17} rev {receipt.policy_revision:<4}"
        f" {receipt.language}  {receipt.source:<11} {receipt.device_class:<8}"
        f" banner {receipt.banner_hash}  granted {granted}  refused {refused}"
    )


def _show(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    receipts = store.history(args.consent_id)
    status = store.erasure_status(args.consent_id)
    if not receipts and status.state == "none":
        raise UnknownConsentId(
            "no receipt is stored under this consent id", consent_id=args.consent_id
        )
    print(f"consent id {args.consent_id}: {len(receipts)} receipt(s)", file=out)
    for receipt in receipts:
        print("  " + _receipt_line(receipt), file=out)
    print(_status_line(status), file=out)
    return EXIT_OK


def _export(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    body = store.export(args.consent_id)
    if args.output is None:
        out.write(body.decode("utf-8"))
        return EXIT_OK
    args.output.write_bytes(body)
    print(f"wrote the consent history of {args.consent_id} to {args.output}", file=sys.stderr)
    return EXIT_OK


def _erase(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    if not args.now:
        status = store.request_erasure(args.consent_id)
        due = iso_utc(status.due_at) if status.due_at else "?"
        print(
            f"erasure of {args.consent_id} scheduled: due on {due};"
            " cancel before then with `beacon consent cancel`, carried out by"
            " `beacon consent purge-due`",
            file=out,
        )
        return EXIT_OK
    count = len(store.history(args.consent_id))
    if not args.yes:
        if not stdin.isatty():
            print(
                "beacon consent: --now erases at once and cannot be undone; confirm on a"
                " terminal or pass --yes",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        print(
            f"Erase {count} receipt(s) of {args.consent_id} now? This cannot be undone."
            " Type the consent id to confirm: ",
            end="",
            file=out,
            flush=True,
        )
        if stdin.readline().strip() != args.consent_id:
            print("not confirmed: nothing was erased", file=out)
            return EXIT_REFUSED
    status = store.erase_now(args.consent_id)
    done = iso_utc(status.done_at) if status.done_at else "?"
    print(f"erased {count} receipt(s) of {args.consent_id} on {done}", file=out)
    return EXIT_OK


def _cancel(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    store.cancel_erasure(args.consent_id)
    print(f"erasure of {args.consent_id} cancelled: its receipts are kept", file=out)
    return EXIT_OK


def _purge_due(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    report = store.purge_due()
    print(
        f"{report.erased} erasure(s) carried out;"
        f" late receipts deleted for {report.late_receipts} erased id(s)",
        file=out,
    )
    return EXIT_OK


def _retention(store: ReceiptStore, args: argparse.Namespace, stdin: IO[str], out: IO[str]) -> int:
    try:
        store.set_retention(args.months)
    except ValueError as exc:
        print(f"beacon consent: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"receipts are now kept {args.months} months, then dropped", file=out)
    return EXIT_OK
