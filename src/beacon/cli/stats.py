"""``beacon stats``: the dashboard's numbers on the command line.

::

    beacon stats campaigns [--site S] [--from D --to D]       every campaign's summary
    beacon stats campaign NAME [--site S]                     one campaign: summary, links,
                                                              devices, timeline
    beacon stats site [--site S] [--from D --to D]            site audience and breakdowns
    beacon stats consent [--from D --to D]                    opt-in rates

Every command takes ``--format table|json|csv`` (``table``, aligned for a
terminal, by default), ``--k N`` (k-anonymity threshold, default 5) and
``--url URL`` (default: ``BEACON_CLICKHOUSE_URL`` or ``.data/``). With
several tables, CSV output separates them with a ``# name`` line. Exit
status: 0 done, 1 bad input or unknown campaign, 2 the store cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from beacon.exceptions import StoreError
from beacon.migrations import migrate
from beacon.stats import DateRange, InvalidFilter, StatsQueries, as_json, parse_campaign, parse_site
from beacon.stats.queries import DEFAULT_K
from beacon.stats.reports import (
    breakdown_table,
    campaigns_table,
    consent_table,
    daily_table,
    links_table,
    site_totals_table,
    timeline_table,
)
from beacon.stats.table import Table
from beacon.store import open_store

__all__ = ["register", "render"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_STORE = 2

_Report = tuple[Any, list[Table]]
_Builder = Callable[[StatsQueries, argparse.Namespace], _Report | None]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats`` and its sub-commands to the ``beacon`` command line."""
    parser = subparsers.add_parser(
        "stats",
        help="print campaign, site and consent statistics",
        description="Statistics from the aggregate tables, as a table, JSON or CSV.",
    )
    commands = parser.add_subparsers(dest="stats_command", metavar="COMMAND", required=True)

    def command(name: str, builder: _Builder, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
        sub.add_argument(
            "--format", choices=("table", "json", "csv"), default="table", help="output format"
        )
        sub.add_argument(
            "--k",
            type=int,
            default=DEFAULT_K,
            help="merge values seen by fewer than K people into 'other' (default: %(default)s)",
        )
        sub.set_defaults(func=lambda args: _run(builder, args, sys.stdout, sys.stderr))
        return sub

    def ranged(sub: argparse.ArgumentParser, *, site: bool = True) -> None:
        sub.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day (UTC)")
        sub.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day (UTC)")
        if site:
            sub.add_argument("--site", help="only this site")

    ranged(command("campaigns", _campaigns, "every campaign's opens, clicks and rates"))
    one = command("campaign", _campaign, "one campaign: summary, links, devices, timeline")
    one.add_argument("name", help="the campaign name")
    one.add_argument("--site", help="only this site")
    ranged(command("site", _site, "site audience: page views, visitors, breakdowns"))
    ranged(command("consent", _consent, "consent opt-in rates per category"), site=False)


def _days(args: argparse.Namespace) -> DateRange:
    return DateRange.parse(args.start, args.end)


def _campaigns(queries: StatsQueries, args: argparse.Namespace) -> _Report:
    days = _days(args) if args.start or args.end else None
    summaries = queries.campaigns(site=parse_site(args.site), days=days)
    return summaries, [campaigns_table(summaries)]


def _campaign(queries: StatsQueries, args: argparse.Namespace) -> _Report | None:
    detail = queries.campaign_detail(parse_campaign(args.name), site=parse_site(args.site))
    if detail is None:
        return None
    return detail, [
        campaigns_table([detail.summary], "summary"),
        links_table(detail.links),
        breakdown_table("device", detail.devices, value_label="Device", uniques="recipients"),
        breakdown_table("browser", detail.browsers, value_label="Browser", uniques="recipients"),
        breakdown_table("os", detail.oses, value_label="OS", uniques="recipients"),
        timeline_table(detail.timeline),
    ]


def _site(queries: StatsQueries, args: argparse.Namespace) -> _Report:
    overview = queries.site_overview(_days(args), site=parse_site(args.site))
    breakdowns = [
        ("page", "Page", overview.pages),
        ("referrer", "Referrer host", overview.referrers),
        ("utm_source", "UTM source", overview.utm_sources),
        ("utm_medium", "UTM medium", overview.utm_mediums),
        ("utm_campaign", "UTM campaign", overview.utm_campaigns),
        ("device", "Device", overview.devices),
        ("browser", "Browser", overview.browsers),
        ("os", "OS", overview.oses),
        ("ad", "Ad", overview.ads),
    ]
    return overview, [
        site_totals_table(overview.totals),
        daily_table(overview.daily),
        *(breakdown_table(name, rows, value_label=label) for name, label, rows in breakdowns),
        breakdown_table("bot", overview.bots, value_label="Bot", uniques=None),
    ]


def _consent(queries: StatsQueries, args: argparse.Namespace) -> _Report:
    report = queries.consent(_days(args))
    return report, [
        consent_table("by_day", report.by_day, group_label="Day"),
        consent_table("by_revision", report.by_revision, group_label="Revision"),
        breakdown_table("actions", report.actions, value_label="Action", uniques=None),
    ]


def render(document: Any, tables: Sequence[Table], output_format: str) -> str:
    """A report as text: aligned tables, one JSON document, or CSV sections."""
    if output_format == "json":
        return json.dumps(as_json(document), indent=2, ensure_ascii=False) + "\n"
    if output_format == "csv":
        if len(tables) == 1:
            return tables[0].to_csv()
        return "\r\n".join(f"# {table.name}\r\n{table.to_csv()}" for table in tables)
    return "\n".join(f"{table.name}\n{table.to_text()}" for table in tables)


def _run(builder: _Builder, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if args.k < 1:
        err.write("beacon stats: --k must be at least 1\n")
        return EXIT_REFUSED
    try:
        store = open_store(args.url)
    except StoreError as exc:
        err.write(f"beacon stats: {exc}\n")
        return EXIT_STORE
    try:
        migrate(store)
        report = builder(StatsQueries(store, k=args.k), args)
    except InvalidFilter as exc:
        err.write(f"beacon stats: {exc}\n")
        return EXIT_REFUSED
    except StoreError as exc:
        err.write(f"beacon stats: {exc}\n")
        return EXIT_STORE
    finally:
        store.close()
    if report is None:
        err.write(f"beacon stats: no event is recorded for the campaign {args.name!r}\n")
        return EXIT_REFUSED
    document, tables = report
    if args.stats_command == "consent" and not document.available:
        err.write("beacon stats: no consent receipts in this database\n")
    out.write(render(document, tables, args.format))
    return EXIT_OK
