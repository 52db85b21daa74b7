"""The OpenAPI 3.1 description of the statistics API.

Row schemas are derived from the same :class:`~beacon.stats.table.Table`
definitions that produce the JSON and CSV, so the document cannot drift from
what the endpoints answer.
"""

from __future__ import annotations

from typing import Any

import beacon
from beacon.stats.queries import SITE_DIMENSIONS
from beacon.stats.reports import (
    breakdown_table,
    campaigns_table,
    consent_table,
    daily_table,
    links_table,
    site_totals_table,
    timeline_table,
)
from beacon.stats.results import SiteTotals
from beacon.stats.table import ColumnKind, Table

__all__ = ["openapi_document"]

_TYPES: dict[ColumnKind, dict[str, Any]] = {
    "text": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _row_schema(table: Table) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {column.key: dict(_TYPES[column.kind]) for column in table.columns},
        "required": [column.key for column in table.columns],
    }


def _rows_schema(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}
        },
        "required": ["rows"],
    }


_FROM: dict[str, Any] = {
    "name": "from",
    "in": "query",
    "description": "First day, inclusive (UTC), YYYY-MM-DD. Default: 29 days before `to`.",
    "schema": {"type": "string", "format": "date"},
}
_TO: dict[str, Any] = {
    "name": "to",
    "in": "query",
    "description": "Last day, inclusive (UTC), YYYY-MM-DD. Default: today.",
    "schema": {"type": "string", "format": "date"},
}
_SITE: dict[str, Any] = {
    "name": "site",
    "in": "query",
    "description": "Only this site (default: every site).",
    "schema": {"type": "string", "maxLength": 200},
}
_FORMAT: dict[str, Any] = {
    "name": "format",
    "in": "query",
    "description": "`json` (default) or `csv`.",
    "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
}
_CAMPAIGN: dict[str, Any] = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The campaign name given when the e-mail was instrumented.",
    "schema": {"type": "string"},
}


def _errors(*codes: int) -> dict[str, Any]:
    descriptions = {
        400: "A filter is malformed (`field` names it).",
        401: "No valid session cookie or bearer token.",
        404: "No event is recorded for this campaign.",
        503: "The statistics store is unavailable.",
    }
    return {
        str(code): {
            "description": descriptions[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in (401, *codes)
    }


def _operation(
    summary: str,
    schema: dict[str, Any],
    parameters: list[dict[str, Any]],
    *,
    csv: bool = True,
    errors: tuple[int, ...] = (400, 503),
) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {
        "get": {
            "summary": summary,
            "parameters": [*parameters, *([_FORMAT] if csv else [])],
            "responses": {"200": {"description": "OK", "content": content}, **_errors(*errors)},
        }
    }


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document, with ``server_url`` where the dashboard is mounted."""
    tables = {
        "CampaignRow": campaigns_table([]),
        "TimelineRow": timeline_table([]),
        "LinkRow": links_table([]),
        "CampaignBreakdownRow": breakdown_table("device", [], value_label="", uniques="recipients"),
        "SiteTotalsRow": site_totals_table(SiteTotals(0, 0, 0, 0)),
        "DailyRow": daily_table([]),
        "SiteBreakdownRow": breakdown_table("page", [], value_label=""),
        "BotRow": breakdown_table("bot", [], value_label="", uniques=None),
        "ConsentRateRow": consent_table("by_day", [], group_label=""),
        "ActionRow": breakdown_table("actions", [], value_label="", uniques=None),
    }
    schemas: dict[str, Any] = {name: _row_schema(table) for name, table in tables.items()}
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
        "required": ["error"],
    }
    document = {"type": "object", "description": "See docs/stats.md for every field."}
    k_note = " Values seen by fewer than k distinct people are merged into `other`."
    campaign = [_CAMPAIGN, _SITE]
    ranged = [_FROM, _TO, _SITE]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Beacon statistics API",
            "version": beacon.__version__,
            "description": (
                "Opens, clicks and unsubscribes of e-mail campaigns, site audience and "
                "consent opt-in rates. Authenticate with the dashboard's session cookie or "
                "`Authorization: Bearer <token>` (`beacon users token NAME`). Every table "
                "is also available as CSV with `?format=csv`." + k_note
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/sites": _operation(
                "Sites with data",
                {"type": "object", "properties": {"sites": {"type": "array"}}},
                [],
                csv=False,
                errors=(503,),
            ),
            "/api/campaigns": _operation(
                "Every campaign's summary (whole life unless from/to given)",
                _rows_schema("CampaignRow"),
                ranged,
            ),
            "/api/campaigns/{name}": _operation(
                "One campaign: summary, timeline, links, device/browser/OS (CSV: the summary)",
                document,
                campaign,
                errors=(400, 404, 503),
            ),
            "/api/campaign-timeline/{name}": _operation(
                "Opens and clicks hourly for the first 48 h (to the end of that UTC day), "
                "then daily",
                _rows_schema("TimelineRow"),
                campaign,
                errors=(400, 404, 503),
            ),
            "/api/campaign-links/{name}": _operation(
                "Clicks per link." + k_note,
                _rows_schema("LinkRow"),
                campaign,
                errors=(400, 404, 503),
            ),
            "/api/campaign-breakdown/{dimension}/{name}": _operation(
                "Human opens and clicks per device, browser or OS." + k_note,
                _rows_schema("CampaignBreakdownRow"),
                [
                    {
                        "name": "dimension",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["device", "browser", "os"]},
                    },
                    *campaign,
                ],
                errors=(400, 404, 503),
            ),
            "/api/site": _operation(
                "Site overview: totals, days, top 10 of each breakdown (CSV: the totals)",
                document,
                ranged,
            ),
            "/api/site/daily": _operation(
                "Page views, unique visitors, bot page views and ad clicks per day",
                _rows_schema("DailyRow"),
                ranged,
            ),
            "/api/site/breakdown/{dimension}": _operation(
                "Page views (ad clicks for `ad`) and visitors per value; `bot` lists crawlers."
                + k_note,
                {"oneOf": [_rows_schema("SiteBreakdownRow"), _rows_schema("BotRow")]},
                [
                    {
                        "name": "dimension",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(SITE_DIMENSIONS)},
                    },
                    *ranged,
                ],
            ),
            "/api/consent": _operation(
                "Opt-in rates per category per day and per policy revision (CSV: per day)",
                document,
                [_FROM, _TO],
            ),
            "/api/consent/by-day": _operation(
                "Opt-in rates per day and category", _rows_schema("ConsentRateRow"), [_FROM, _TO]
            ),
            "/api/consent/by-revision": _operation(
                "Opt-in rates per policy revision and category." + k_note,
                _rows_schema("ConsentRateRow"),
                [_FROM, _TO],
            ),
            "/api/consent/actions": _operation(
                "Decisions per action", _rows_schema("ActionRow"), [_FROM, _TO]
            ),
            "/api/openapi.json": _operation(
                "This document", {"type": "object"}, [], csv=False, errors=()
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "beacon_stats_session"},
            },
        },
    }
