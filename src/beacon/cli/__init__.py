"""The ``beacon`` command line: one sub-command module per area.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which
adds its sub-commands with ``set_defaults(func=handler)``; a handler takes
the parsed arguments and returns the exit status. To add an area, write its
module and add one line to the list.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: The modules contributing sub-commands, in the order of ``beacon --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "beacon.cli.db",
    "beacon.cli.email",
    "beacon.cli.consent",
    "beacon.cli.stats",
    "beacon.cli.users",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every module's sub-commands registered."""
    parser = argparse.ArgumentParser(
        prog="beacon", description="Anonymous first-party beacon and statistics in ClickHouse."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``beacon`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))
