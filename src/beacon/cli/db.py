"""``beacon init-db`` and ``beacon ingest``: the schema and the ingestion process.

::

    beacon init-db [--url URL] [--cluster NAME] [--retention-months N] [--print]
    beacon ingest [--url URL] [--spool DIR ...] [--once]

``init-db`` applies the pending migrations (``--print`` only prints the DDL
of every migration for the given cluster, without a store). ``ingest``
owns the store and drains the spools of worker processes that do not (every
process directory under each ``--spool`` root, live or dead), until stopped
with SIGINT/SIGTERM, or once with ``--once``. Exit status: 0 done, 1 bad
arguments, 2 the store cannot be used, 3 ``--once`` left segments behind.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from beacon.app import DEFAULT_SPOOL_DIR
from beacon.exceptions import BeaconError, StoreError
from beacon.flusher import Flusher
from beacon.migrations import DEFAULT_RETENTION_MONTHS, Schema, discover, migrate
from beacon.store import Store, default_url

__all__ = ["register"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_STORE = 2
EXIT_LEFT_BEHIND = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init-db`` and ``ingest`` to the ``beacon`` command line."""
    init = subparsers.add_parser(
        "init-db",
        help="create or upgrade the ClickHouse schema",
        description="Apply the pending schema migrations to the store.",
    )
    init.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
    init.add_argument("--cluster", help="cluster name: ON CLUSTER, Replicated and Distributed")
    init.add_argument(
        "--retention-months",
        type=int,
        default=DEFAULT_RETENTION_MONTHS,
        help="raw events are deleted after this many months (default: %(default)s)",
    )
    init.add_argument(
        "--print", action="store_true", help="print the DDL of every migration, touch nothing"
    )
    init.set_defaults(func=_init_db)

    ingest = subparsers.add_parser(
        "ingest",
        help="drain worker spools into the store",
        description="Insert the spooled events of every worker process into the store.",
    )
    ingest.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
    ingest.add_argument(
        "--spool",
        action="append",
        metavar="DIR",
        help=f"spool root of the workers, repeatable (default: {DEFAULT_SPOOL_DIR})",
    )
    ingest.add_argument("--once", action="store_true", help="drain what is there, then exit")
    ingest.add_argument(
        "--timeout", type=float, default=60.0, help="with --once: give up after this many seconds"
    )
    ingest.set_defaults(func=_ingest)


def _init_db(args: argparse.Namespace) -> int:
    try:
        if args.print:
            store_url = args.url or default_url()
            database = Store(store_url).database
            schema = Schema(
                database=database, cluster=args.cluster, retention_months=args.retention_months
            )
            for migration in discover():
                print(f"-- {migration.version:04d} {migration.name}")
                for statement in migration.statements(schema):
                    print(statement + ";\n")
            return EXIT_OK
        store = Store(args.url)
        applied = migrate(store, cluster=args.cluster, retention_months=args.retention_months)
    except StoreError as exc:
        print(f"beacon init-db: {exc}", file=sys.stderr)
        return EXIT_STORE
    except BeaconError as exc:
        print(f"beacon init-db: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    if not applied:
        print(f"{store.location.display_url}: schema up to date")
    return EXIT_OK


def _ingest(args: argparse.Namespace) -> int:
    roots = args.spool or [str(DEFAULT_SPOOL_DIR)]
    try:
        store = Store(args.url)
        migrate(store)
    except StoreError as exc:
        print(f"beacon ingest: {exc}", file=sys.stderr)
        return EXIT_STORE
    except BeaconError as exc:
        print(f"beacon ingest: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    flusher = Flusher(store, roots, include_live=True)
    if args.once:
        done = flusher.stop(timeout=args.timeout)
        _report(flusher)
        return EXIT_OK if done else EXIT_LEFT_BEHIND
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    flusher.start()
    stopped.wait()
    done = flusher.stop(timeout=args.timeout)
    _report(flusher)
    return EXIT_OK if done else EXIT_LEFT_BEHIND


def _report(flusher: Flusher) -> None:
    stats = flusher.stats
    print(
        f"inserted {stats.flushed_rows} rows from {stats.flushed_segments} segments; "
        f"{stats.rejected_segments} rejected, {stats.flush_failures} failed attempts"
    )
