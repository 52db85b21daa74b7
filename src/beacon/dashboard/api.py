"""The JSON API of the dashboard, under ``/api``, with CSV for every table.

Table endpoints answer ``{"rows": [...]}`` (one object per row, keyed like
the CSV header) or, with ``?format=csv``, the same rows as CSV. Summary
endpoints (a campaign, the site, consent) answer a JSON document and, in CSV,
their headline table. Filters: ``from``/``to`` (ISO dates, inclusive, UTC),
``site``. The OpenAPI 3.1 description is at ``/api/openapi.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from clickhouse_connect.driver.exceptions import DatabaseError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from beacon.dashboard.openapi import openapi_document
from beacon.exceptions import StoreError
from beacon.stats import DateRange, InvalidFilter, as_json, parse_site
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
from beacon.stats.table import Table

if TYPE_CHECKING:
    from beacon.dashboard.app import Dashboard

__all__ = ["routes"]

_CAMPAIGN_DIMENSIONS = ("device", "browser", "os")
logger = logging.getLogger(__name__)
_Endpoint = Callable[["Dashboard", Request], Awaitable[Response]]


class _NotFound(Exception):
    """The campaign (or other named thing) has no data."""


def _format(request: Request) -> str:
    value = request.query_params.get("format", "json")
    if value not in ("json", "csv"):
        raise InvalidFilter("format", "json or csv")
    return value


def _table_response(request: Request, table: Table) -> Response:
    if _format(request) == "csv":
        return Response(
            table.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{table.name}.csv"'},
        )
    return JSONResponse({"rows": as_json(table.records())})


def _document_response(request: Request, document: Any, table: Table) -> Response:
    if _format(request) == "csv":
        return _table_response(request, table)
    return JSONResponse(as_json(document))


def _range(request: Request) -> DateRange:
    return DateRange.parse(request.query_params.get("from"), request.query_params.get("to"))


def _optional_range(request: Request) -> DateRange | None:
    if "from" not in request.query_params and "to" not in request.query_params:
        return None
    return _range(request)


def _site(request: Request) -> str | None:
    return parse_site(request.query_params.get("site"))


async def _sites(dashboard: Dashboard, request: Request) -> Response:
    return JSONResponse({"sites": await run_in_threadpool(dashboard.queries.sites)})


async def _campaigns(dashboard: Dashboard, request: Request) -> Response:
    summaries = await run_in_threadpool(
        lambda: dashboard.queries.campaigns(site=_site(request), days=_optional_range(request))
    )
    return _table_response(request, campaigns_table(summaries))


async def _campaign(dashboard: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    _format(request)
    detail = await run_in_threadpool(
        lambda: dashboard.queries.campaign_detail(name, site=_site(request))
    )
    if detail is None:
        raise _NotFound(name)
    return _document_response(request, detail, campaigns_table([detail.summary], "summary"))


async def _campaign_table(
    dashboard: Dashboard, request: Request, build: Callable[[str, str | None], Table]
) -> Response:
    name = request.path_params["name"]
    site = _site(request)
    _format(request)
    summary = await run_in_threadpool(lambda: dashboard.queries.campaign_summary(name, site=site))
    if summary is None:
        raise _NotFound(name)
    return _table_response(request, await run_in_threadpool(build, name, site))


async def _timeline(dashboard: Dashboard, request: Request) -> Response:
    return await _campaign_table(
        dashboard,
        request,
        lambda name, site: timeline_table(dashboard.queries.campaign_timeline(name, site=site)),
    )


async def _links(dashboard: Dashboard, request: Request) -> Response:
    return await _campaign_table(
        dashboard,
        request,
        lambda name, site: links_table(dashboard.queries.campaign_links(name, site=site)),
    )


async def _campaign_breakdown(dashboard: Dashboard, request: Request) -> Response:
    dimension = request.path_params["dimension"]
    if dimension not in _CAMPAIGN_DIMENSIONS:
        raise InvalidFilter("dimension", "one of " + ", ".join(_CAMPAIGN_DIMENSIONS))
    return await _campaign_table(
        dashboard,
        request,
        lambda name, site: breakdown_table(
            dimension,
            dashboard.queries.campaign_breakdown(name, dimension, site=site),
            value_label=dimension,
            uniques="recipients",
        ),
    )


async def _site_overview(dashboard: Dashboard, request: Request) -> Response:
    days, site = _range(request), _site(request)
    _format(request)
    overview = await run_in_threadpool(lambda: dashboard.queries.site_overview(days, site=site))
    return _document_response(request, overview, site_totals_table(overview.totals))


async def _site_daily(dashboard: Dashboard, request: Request) -> Response:
    days, site = _range(request), _site(request)
    _format(request)
    points = await run_in_threadpool(lambda: dashboard.queries.site_daily(days, site=site))
    return _table_response(request, daily_table(points))


async def _site_breakdown(dashboard: Dashboard, request: Request) -> Response:
    dimension = request.path_params["dimension"]
    if dimension not in SITE_DIMENSIONS:
        raise InvalidFilter("dimension", "one of " + ", ".join(SITE_DIMENSIONS))
    days, site = _range(request), _site(request)
    _format(request)
    rows = await run_in_threadpool(
        lambda: dashboard.queries.site_breakdown(dimension, days, site=site)
    )
    uniques = None if dimension == "bot" else "visitors"
    return _table_response(
        request, breakdown_table(dimension, rows, value_label=dimension, uniques=uniques)
    )


async def _consent(dashboard: Dashboard, request: Request) -> Response:
    days = _range(request)
    _format(request)
    report = await run_in_threadpool(dashboard.queries.consent, days)
    if _format(request) == "json":
        return JSONResponse(as_json(report))
    return _table_response(request, consent_table("by_day", report.by_day, group_label="Day"))


def _consent_table(which: str) -> _Endpoint:
    async def endpoint(dashboard: Dashboard, request: Request) -> Response:
        days = _range(request)
        _format(request)
        report = await run_in_threadpool(dashboard.queries.consent, days)
        if which == "actions":
            table = breakdown_table("actions", report.actions, value_label="Action", uniques=None)
        elif which == "by-revision":
            table = consent_table("by_revision", report.by_revision, group_label="Revision")
        else:
            table = consent_table("by_day", report.by_day, group_label="Day")
        return _table_response(request, table)

    return endpoint


async def _openapi(dashboard: Dashboard, request: Request) -> Response:
    root = str(request.scope.get("root_path", ""))
    return JSONResponse(openapi_document(server_url=root or "/"))


def routes(dashboard: Dashboard) -> list[BaseRoute]:
    """The API routes of ``dashboard``, every one answering JSON errors."""

    def api(endpoint: _Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                return await endpoint(dashboard, request)
            except InvalidFilter as exc:
                return JSONResponse({"error": exc.message, "field": exc.field}, status_code=400)
            except _NotFound:
                return JSONResponse({"error": "no event recorded for this campaign"}, 404)
            except (StoreError, DatabaseError):
                logger.exception("the statistics store cannot be used")
                return JSONResponse({"error": "the statistics store is unavailable"}, 503)

        return handle

    return [
        Route("/api/openapi.json", api(_openapi), name="api_openapi"),
        Route("/api/sites", api(_sites), name="api_sites"),
        Route("/api/campaigns", api(_campaigns), name="api_campaigns"),
        Route("/api/campaigns/{name:path}", api(_campaign), name="api_campaign"),
        Route("/api/campaign-timeline/{name:path}", api(_timeline), name="api_timeline"),
        Route("/api/campaign-links/{name:path}", api(_links), name="api_links"),
        Route(
            "/api/campaign-breakdown/{dimension}/{name:path}",
            api(_campaign_breakdown),
            name="api_campaign_breakdown",
        ),
        Route("/api/site", api(_site_overview), name="api_site"),
        Route("/api/site/daily", api(_site_daily), name="api_site_daily"),
        Route("/api/site/breakdown/{dimension}", api(_site_breakdown), name="api_site_breakdown"),
        Route("/api/consent", api(_consent), name="api_consent"),
        Route("/api/consent/by-day", api(_consent_table("by-day")), name="api_consent_day"),
        Route(
            "/api/consent/by-revision",
            api(_consent_table("by-revision")),
            name="api_consent_revision",
        ),
        Route("/api/consent/actions", api(_consent_table("actions")), name="api_consent_actions"),
    ]
