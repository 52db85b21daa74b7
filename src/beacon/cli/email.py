"""``beacon email``: instrument messages and read opt-outs from the command line.

::

    beacon email instrument --campaign C --recipient R < in.html > out.html
    beacon email headers --campaign C --recipient R      List-Unsubscribe headers
    beacon email ref ADDRESS...                          recipient references
    beacon email unsubscribed [--campaign C]             references that opted out
    beacon email unsubscribed --addresses list.txt       addresses of the list that opted out
    beacon email unsubscribe --campaign C ADDRESS...     record opt-outs received otherwise
    beacon email resubscribe --campaign C ADDRESS...     undo opt-outs

Settings come from options or the environment: ``--secret-keys`` /
``BEACON_SECRET_KEYS`` (comma-separated, newest first), ``--base-url`` /
``BEACON_BASE_URL`` (where the beacon is mounted, e.g.
``https://mypharm.fr/b``), ``--recipient-key`` / ``BEACON_RECIPIENT_KEY``,
``--site`` / ``BEACON_SITE`` and ``--url`` / ``BEACON_CLICKHOUSE_URL``. Exit
status: 0 done, 1 refused (bad input or settings), 2 the store cannot be used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO

from beacon.email.exceptions import InstrumentationError
from beacon.email.tracker import EmailTracker
from beacon.exceptions import StoreError
from beacon.store import Store, open_store

__all__ = ["register"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_STORE = 2

_Handler = Callable[[EmailTracker, argparse.Namespace, IO[str]], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``email`` and its sub-commands to the ``beacon`` command line."""
    parser = subparsers.add_parser(
        "email",
        help="instrument e-mail and read unsubscribes",
        description="E-mail campaign tracking: instrument messages, list opt-outs.",
    )
    commands = parser.add_subparsers(dest="email_command", metavar="COMMAND", required=True)

    def command(
        name: str, handler: _Handler, help_text: str, *, store: bool = False
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--secret-keys", help="comma-separated, newest first (BEACON_SECRET_KEYS)")
        sub.add_argument(
            "--recipient-key", help="key of recipient references (BEACON_RECIPIENT_KEY)"
        )
        if store:
            sub.add_argument("--site", help="the site the opt-outs belong to (BEACON_SITE)")
            sub.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
        else:
            sub.add_argument("--base-url", help="where the beacon is mounted (BEACON_BASE_URL)")
        sub.set_defaults(func=lambda args: _run(handler, args, store=store))
        return sub

    instrument = command(
        "instrument", _instrument, "add the open pixel and tracked links to HTML (stdin to stdout)"
    )
    headers = command("headers", _headers, "print the List-Unsubscribe headers of a message")
    for sub in (instrument, headers):
        sub.add_argument("--campaign", required=True, help="campaign name")
        sub.add_argument("--recipient", required=True, help="recipient e-mail address")

    ref = command("ref", _ref, "print the recipient reference of each address")
    ref.add_argument("addresses", nargs="+", metavar="ADDRESS", help="addresses, or - for stdin")

    unsubscribed = command(
        "unsubscribed", _unsubscribed, "list the recipients who opted out", store=True
    )
    unsubscribed.add_argument("--campaign", help="only opt-outs made from this campaign")
    unsubscribed.add_argument(
        "--addresses",
        type=argparse.FileType("r", encoding="utf-8"),
        metavar="FILE",
        help="print the addresses of FILE (one a line, - for stdin) that opted out",
    )
    unsubscribed.add_argument(
        "--long", action="store_true", help="also print the campaign and time of each opt-out"
    )

    for name, handler, text in (
        ("unsubscribe", _unsubscribe, "record opt-outs that reached you another way"),
        ("resubscribe", _resubscribe, "undo opt-outs of people who subscribed again"),
    ):
        sub = command(name, handler, text, store=True)
        sub.add_argument("--campaign", required=True, help="campaign the request relates to")
        sub.add_argument(
            "addresses", nargs="+", metavar="ADDRESS", help="addresses, or - for stdin"
        )


def _setting(value: str | None, variable: str) -> str:
    return (value or os.environ.get(variable, "")).strip()


def _tracker(args: argparse.Namespace, store: Store | None) -> EmailTracker:
    keys = [key.strip() for key in _setting(args.secret_keys, "BEACON_SECRET_KEYS").split(",")]
    if not any(keys):
        raise InstrumentationError("no secret keys: pass --secret-keys or set BEACON_SECRET_KEYS")
    base_url = getattr(args, "base_url", None)
    return EmailTracker(
        _setting(base_url, "BEACON_BASE_URL"),
        [key for key in keys if key],
        _setting(getattr(args, "site", None), "BEACON_SITE"),
        recipient_key=_setting(args.recipient_key, "BEACON_RECIPIENT_KEY") or None,
        store=store,
    )


def _run(handler: _Handler, args: argparse.Namespace, *, store: bool) -> int:
    opened: Store | None = None
    try:
        tracker = _tracker(args, None)
        if store:
            if not tracker.site:
                raise InstrumentationError("no site: pass --site or set BEACON_SITE")
            opened = open_store(args.url)
            tracker.store = opened
        return handler(tracker, args, sys.stdout)
    except InstrumentationError as exc:
        print(f"beacon email: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except StoreError as exc:
        print(f"beacon email: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if opened is not None:
            opened.close()


def _addresses(values: list[str]) -> Iterator[str]:
    for value in values:
        if value == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield value


def _instrument(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    try:
        html = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InstrumentationError(f"the HTML on stdin is not UTF-8: {exc}") from exc
    result = tracker.instrument(html, campaign=args.campaign, recipient=args.recipient)
    out.flush()
    sys.stdout.buffer.write(result.encode("utf-8"))
    sys.stdout.buffer.flush()
    return EXIT_OK


def _headers(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    for name, value in tracker.headers(args.campaign, args.recipient).items():
        print(f"{name}: {value}", file=out)
    return EXIT_OK


def _ref(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    for address in _addresses(args.addresses):
        print(tracker.ref(address), file=out)
    return EXIT_OK


def _unsubscribed(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    if args.addresses is not None:
        with args.addresses as lines:
            addresses = [line.strip() for line in lines if line.strip()]
        found = tracker.unsubscribed_among(addresses)
        for address in addresses:
            if address in found:
                print(address, file=out)
        return EXIT_OK
    for entry in tracker.unsubscribed(args.campaign):
        if args.long:
            print(f"{entry.recipient}\t{entry.campaign}\t{entry.ts.isoformat()}", file=out)
        else:
            print(entry.recipient, file=out)
    return EXIT_OK


def _unsubscribe(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    count = 0
    for address in _addresses(args.addresses):
        tracker.unsubscribe(address, args.campaign)
        count += 1
    print(f"recorded {count} opt-out(s)", file=sys.stderr)
    return EXIT_OK


def _resubscribe(tracker: EmailTracker, args: argparse.Namespace, out: IO[str]) -> int:
    count = 0
    for address in _addresses(args.addresses):
        tracker.resubscribe(address, args.campaign)
        count += 1
    print(f"recorded {count} re-subscription(s)", file=sys.stderr)
    return EXIT_OK
