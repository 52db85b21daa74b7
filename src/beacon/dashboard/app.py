"""The statistics dashboard: a Starlette app with HTML pages, a JSON API and a login.

Mount it where the site wants it (``/stats`` by convention)::

    from beacon.dashboard import create_dashboard
    dashboard = create_dashboard(store, secret_keys=["..."])
    app.mount("/stats", dashboard)

Every route needs a logged-in account except the login page, the language
switch and the stylesheet: :class:`_LoginRequired` wraps the whole app, so a
route added later cannot escape it. Pages redirect anonymous browsers to the
login page; ``/api/...`` answers ``401`` JSON. The API also accepts
``Authorization: Bearer <token>`` (tokens from ``beacon users token NAME``).
Statistics queries block on ClickHouse and run in worker threads.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from clickhouse_connect.driver.exceptions import DatabaseError
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beacon.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Account,
    AccountError,
    AccountStore,
    LoginThrottle,
    Session,
    SessionRevocations,
    SessionSigner,
)
from beacon.dashboard import api
from beacon.dashboard.charts import Series, bar_chart, line_chart
from beacon.dashboard.i18n import LANGUAGES, MESSAGES, Language, negotiate, translate
from beacon.exceptions import StoreError
from beacon.migrations import migrate
from beacon.stats import DateRange, InvalidFilter, StatsQueries, parse_site
from beacon.stats.queries import DEFAULT_K
from beacon.stats.reports import (
    breakdown_table,
    campaigns_table,
    consent_table,
    daily_table,
    links_table,
    timeline_table,
)
from beacon.stats.results import BreakdownRow, ConsentReport
from beacon.stats.table import Cell, Column, Table, format_cell
from beacon.store import Store

__all__ = ["LANG_COOKIE", "PUBLIC_PATHS", "Dashboard", "create_dashboard"]

#: Cookie remembering the language chosen with the switch.
LANG_COOKIE = "beacon_stats_lang"
#: Paths (relative to the mount) reachable without logging in; ``/static/`` too.
PUBLIC_PATHS = frozenset({"/login", "/lang"})
_STATIC_PREFIX = "/static/"
_MAX_FORM_BYTES = 16 * 1024
#: ``Sec-Fetch-Site`` values of a form posted from the dashboard itself (or typed in).
_SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})
_HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)
_COLUMN_LABELS = {
    "first_seen": "first_seen",
    "opens": "opens_total",
    "clicks": "clicks_total",
    "start": "start_utc",
    "granularity": "bucket",
    "unique": "clicks_unique",
    "human": "clicks_human",
    "scanner": "clicks_scanner",
    "unique_human": "unique_human_clicks",
    "granted_rate": "optin_rate",
    "refused_rate": "refusal_rate",
}
_Handler = Callable[["Dashboard", Request], Awaitable[Response]]


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] or "/" if root and path.startswith(root) else path


class _LoginRequired:
    """Pure ASGI guard: resolves the account of every request or refuses it."""

    def __init__(self, app: ASGIApp, *, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        path = _route_path(scope)
        if path in PUBLIC_PATHS or path.startswith(_STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await run_in_threadpool(self.dashboard.ensure_schema)
            account = await run_in_threadpool(self.dashboard.account_of, request)
        except (StoreError, DatabaseError):
            logger.exception("the statistics store cannot be used")
            response: Response = _unavailable(path)
        else:
            if account is not None:
                scope.setdefault("state", {})["account"] = account
                await self.app(scope, receive, send)
                return
            if path == "/api" or path.startswith("/api/"):
                response = JSONResponse(
                    {"error": "authentication required"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="beacon-stats"'},
                )
            else:
                root = str(scope.get("root_path", ""))
                target = path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(
                    f"{root}/login?{urlencode({'next': root + target})}", status_code=303
                )
        await response(scope, receive, send)


def _unavailable(path: str) -> Response:
    if path.startswith("/api"):
        return JSONResponse({"error": "the statistics store is unavailable"}, status_code=503)
    return HTMLResponse(
        "<!doctype html><title>503</title><p>The statistics store is unavailable.</p>",
        status_code=503,
    )


_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in _SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            headers.setdefault("Cache-Control", "no-store")
        await send(message)

    return wrapped


class Dashboard:
    """The statistics dashboard and its API, as one ASGI app.

    ``store`` holds the statistics and the accounts; ``secret_keys`` (newest
    first) sign session cookies and CSRF tokens; ``k`` is the k-anonymity
    threshold of every breakdown; ``secure_cookies`` adds ``Secure`` to the
    cookies (switch it off only for plain-HTTP development); ``demo`` shows a
    "demo data" banner on every page. Logging out ends the session on the
    server, for every process sharing ``store`` (:class:`SessionRevocations`).
    """

    def __init__(
        self,
        store: Store,
        *,
        secret_keys: Sequence[str],
        k: int = DEFAULT_K,
        secure_cookies: bool = True,
        session_max_age: int = 12 * 3600,
        throttle: LoginThrottle | None = None,
        demo: bool = False,
    ) -> None:
        self.store = store
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self.queries = StatsQueries(store, k=k)
        self.accounts = AccountStore(store)
        self.signer = SessionSigner(secret_keys, max_age=session_max_age)
        self.revocations = SessionRevocations(store, max_age=session_max_age)
        self.throttle = throttle or LoginThrottle()
        self.secure_cookies = secure_cookies
        self.demo = demo
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.routes: list[BaseRoute] = [*self._page_routes(), *api.routes(self)]
        self.starlette = Starlette(routes=self.routes)
        self.app = _LoginRequired(self.starlette, dashboard=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def ensure_schema(self) -> None:
        """Apply pending migrations once (the dashboard may be the first user of a store)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                migrate(self.store)
                self._schema_ready = True

    # -- who is asking -----------------------------------------------------------------

    def account_of(self, request: Request) -> Account | None:
        """The account behind a bearer token or a session cookie (blocks: use a thread)."""
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.accounts.verify_token(token.strip())
        session = self.session_of(request)
        if session is None:
            return None
        found = self.accounts.get_with_stamp(session.name)
        if found is None or not secrets.compare_digest(found[1], session.stamp):
            return None
        if self.revocations.is_revoked(session):
            return None
        return found[0]

    def session_of(self, request: Request) -> Session | None:
        """The genuine, unexpired session in the request's cookie (not yet checked for logout)."""
        return self.signer.loads(request.cookies.get(SESSION_COOKIE))

    # -- rendering -----------------------------------------------------------------------

    def language(self, request: Request) -> Language:
        """The language of this request's pages."""
        return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a page with the shared context (language, account, CSRF token)."""
        lang = self.language(request)
        root = str(request.scope.get("root_path", ""))
        context.setdefault("active", "")
        csrf_value = request.cookies.get(CSRF_COOKIE) or ""
        fresh_csrf = not csrf_value or len(csrf_value) > 64
        if fresh_csrf:
            csrf_value = self.signer.new_csrf_value()

        def t(key: str, **values: object) -> str:
            return translate(key, lang, **values)

        def column_label(column: Column) -> str:
            key = _COLUMN_LABELS.get(column.key, column.key)
            return t(key) if key in MESSAGES else column.label

        here = _route_path(request.scope)
        if request.url.query:
            here += "?" + request.url.query
        body = self.templates.get_template(template).render(
            t=t,
            lang=lang,
            colon="\u202f:" if lang == "fr" else ":",
            languages=LANGUAGES,
            root=root,
            api=root + "/api",
            here=root + here,
            account=request.scope.get("state", {}).get("account"),
            csrf=self.signer.csrf_token(csrf_value),
            demo=self.demo,
            k=self.queries.k,
            column_label=column_label,
            format_cell=lambda column, cell: _localized_cell(column, cell, lang),
            num=lambda value: _number(value, lang),
            rate=lambda value: _rate(value, lang),
            **context,
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Content-Language"] = lang
        response.headers["Vary"] = "Accept-Language, Cookie"
        if fresh_csrf:
            self._set_cookie(response, request, CSRF_COOKIE, csrf_value, samesite="strict")
        return response

    def error_page(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        """A page saying what went wrong, with the right status code."""
        title = f"{status_code}"
        return self.render(
            request, "error.html", status_code=status_code, page_title=title, message=message
        )

    def _set_cookie(
        self,
        response: Response,
        request: Request,
        name: str,
        value: str,
        *,
        samesite: str = "lax",
        max_age: int | None = None,
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=str(request.scope.get("root_path", "")) or "/",
            secure=self.secure_cookies,
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]
        )

    async def csrf_ok(self, request: Request) -> tuple[bool, dict[str, str]]:
        """Read a posted form and check its CSRF token (and ``Sec-Fetch-Site``/``Origin``).

        Raises :class:`_FormTooLarge` for a body over the size cap.
        """
        fields = await _read_form(request)
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() not in _SAME_ORIGIN_FETCHES:
            return False, fields
        origin = request.headers.get("origin")
        # "null" (a sandboxed frame, a privacy redirect) is no proof of coming from here.
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return False, fields
        valid = self.signer.csrf_valid(request.cookies.get(CSRF_COOKIE), fields.get("csrf"))
        return valid, fields

    # -- pages -----------------------------------------------------------------------------

    def _page_routes(self) -> list[BaseRoute]:
        def page(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(self, request)
                except InvalidFilter as exc:
                    return self.error_page(request, 400, exc.message + f" ({exc.field})")
                except _FormTooLarge:
                    lang = self.language(request)
                    return self.error_page(request, 413, translate("form_too_large", lang))
                except (StoreError, DatabaseError):
                    logger.exception("the statistics store cannot be used")
                    lang = self.language(request)
                    return self.error_page(request, 503, translate("store_down", lang))

            return endpoint

        return [
            Route("/", page(_overview), name="overview"),
            Route("/login", page(_login_form), methods=["GET"], name="login"),
            Route("/login", page(_login), methods=["POST"], name="login_post"),
            Route("/logout", page(_logout), methods=["POST"], name="logout"),
            Route("/lang", page(_switch_language), name="lang"),
            Route("/campaigns", page(_campaigns), name="campaigns"),
            Route("/campaigns/{name:path}/links", page(_campaign_links), name="campaign_links"),
            Route("/campaigns/{name:path}", page(_campaign), name="campaign"),
            Route("/site", page(_site), name="site"),
            Route("/consent", page(_consent), name="consent"),
            Route("/users", page(_users), methods=["GET"], name="users"),
            Route("/users", page(_add_user), methods=["POST"], name="users_add"),
            Route("/users/{name}/remove", page(_remove_user), methods=["POST"], name="users_rm"),
            Route("/users/{name}/token", page(_user_token), methods=["POST"], name="users_token"),
            Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
        ]


class _FormTooLarge(Exception):
    """A posted body over the forms' size cap (answered ``413``)."""


async def _read_form(request: Request) -> dict[str, str]:
    """The fields of a small URL-encoded form (the dashboard's forms); anything else is empty.

    A body over the cap, declared or streamed, raises :class:`_FormTooLarge`
    before more of it is read.
    """
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > _MAX_FORM_BYTES:
        raise _FormTooLarge
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise _FormTooLarge
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def _number(value: int | None, lang: Language) -> str:
    """An integer as people of ``lang`` write it: 19\u202f387 in French, 19,387 in English."""
    if value is None:
        return "–"
    return f"{value:,}".replace(",", "\u202f") if lang == "fr" else f"{value:,}"


def _rate(value: float | None, lang: Language) -> str:
    """A share in percent: 77,8\u202f% in French, 77.8% in English."""
    if value is None:
        return "–"
    return f"{value * 100:.1f}\u202f%".replace(".", ",") if lang == "fr" else f"{value * 100:.1f}%"


def _localized_cell(column: Column, cell: Cell, lang: Language) -> str:
    """A table cell for the page: numbers and rates in the page's language."""
    if column.kind == "int" and isinstance(cell, int):
        return _number(cell, lang)
    if column.kind == "rate" and isinstance(cell, int | float):
        return _rate(cell, lang)
    return format_cell(column, cell)


def _account(request: Request) -> Account:
    account = request.scope["state"]["account"]
    assert isinstance(account, Account)
    return account


def _page_filters(request: Request) -> tuple[DateRange, str | None, str]:
    """The date range and site of a page's query string, and the query to repeat them."""
    days = DateRange.parse(request.query_params.get("from"), request.query_params.get("to"))
    site = parse_site(request.query_params.get("site"))
    query = urlencode(
        {
            "from": days.start.isoformat(),
            "to": days.end.isoformat(),
            **({"site": site} if site else {}),
        }
    )
    return days, site, query


def _breakdown_chart(
    lang: Language, chart_id: str, title: str, rows: Sequence[BreakdownRow]
) -> Markup:
    return bar_chart(
        chart_id=chart_id,
        title=title,
        desc=translate("chart_table_note", lang),
        rows=[(row.value, row.events) for row in rows],
        width=420,
    )


async def _overview(dashboard: Dashboard, request: Request) -> Response:
    days = DateRange.last_days(30)
    lang = dashboard.language(request)
    totals = await run_in_threadpool(dashboard.queries.site_totals, days)
    daily = await run_in_threadpool(dashboard.queries.site_daily, days)
    campaigns = await run_in_threadpool(dashboard.queries.campaigns)
    chart = line_chart(
        chart_id="overview-daily",
        title=translate("daily", lang),
        desc=translate("chart_table_note", lang),
        labels=[point.day.strftime("%d/%m") for point in daily],
        series=[
            Series(translate("pageviews", lang), [p.pageviews for p in daily]),
            Series(translate("visitors", lang), [p.visitors for p in daily]),
        ],
    )
    return dashboard.render(
        request,
        "overview.html",
        page_title=translate("overview_title", lang),
        active="nav_overview",
        totals=totals,
        daily_chart=chart,
        campaigns=campaigns_table(campaigns[:5]),
    )


async def _login_form(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    return dashboard.render(
        request,
        "login.html",
        page_title=translate("login_title", lang),
        error=None,
        next=_safe_next(request, request.query_params.get("next")),
        username="",
    )


def _safe_next(request: Request, target: str | None) -> str:
    root = str(request.scope.get("root_path", ""))
    home = root + "/"
    if not target or not target.startswith(home) or target.startswith("//"):
        return home
    if "\\" in target or any(ord(char) < 32 for char in target):
        return home
    return target


async def _login(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    valid, fields = await dashboard.csrf_ok(request)
    username = fields.get("username", "").strip()[:64]
    password = fields.get("password", "")
    target = _safe_next(request, fields.get("next"))

    def refuse(message: str, status_code: int) -> Response:
        return dashboard.render(
            request,
            "login.html",
            status_code=status_code,
            page_title=translate("login_title", lang),
            error=message,
            next=target,
            username=username,
        )

    if not valid:
        return refuse(translate("csrf_failed", lang), 403)
    address = request.client.host if request.client else None
    wait = dashboard.throttle.retry_after(username, address)
    if wait > 0:
        response = refuse(translate("login_throttled", lang, minutes=int(wait // 60) + 1), 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    account = await run_in_threadpool(dashboard.accounts.authenticate, username, password)
    found = (
        await run_in_threadpool(dashboard.accounts.get_with_stamp, username) if account else None
    )
    if account is None or found is None:
        dashboard.throttle.failed(username, address)
        return refuse(translate("login_failed", lang), 401)
    dashboard.throttle.succeeded(username)
    # A session cookie the browser already had (planted or not) is ended, never kept.
    previous = dashboard.session_of(request)
    if previous is not None:
        await run_in_threadpool(dashboard.revocations.revoke, previous)
    response = RedirectResponse(target, status_code=303)
    dashboard._set_cookie(
        response,
        request,
        SESSION_COOKIE,
        dashboard.signer.dumps(account.name, found[1]),
        max_age=dashboard.signer.max_age,
    )
    return response


async def _logout(dashboard: Dashboard, request: Request) -> Response:
    valid, _ = await dashboard.csrf_ok(request)
    lang = dashboard.language(request)
    if not valid:
        return dashboard.error_page(request, 403, translate("csrf_failed", lang))
    session = dashboard.session_of(request)
    if session is not None:
        await run_in_threadpool(dashboard.revocations.revoke, session)
    root = str(request.scope.get("root_path", ""))
    response = RedirectResponse(f"{root}/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path=root or "/", secure=dashboard.secure_cookies, httponly=True
    )
    return response


async def _switch_language(dashboard: Dashboard, request: Request) -> Response:
    choice = request.query_params.get("to", "")
    target = _safe_next(request, request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if choice in LANGUAGES:
        dashboard._set_cookie(response, request, LANG_COOKIE, choice, max_age=365 * 86400)
    return response


async def _campaigns(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    summaries = await run_in_threadpool(dashboard.queries.campaigns)
    chart = bar_chart(
        chart_id="campaigns-opens",
        title=translate("opens_unique", lang),
        desc=translate("chart_table_note", lang),
        rows=[(s.campaign, s.opens.unique) for s in summaries[:20]],
    )
    return dashboard.render(
        request,
        "campaigns.html",
        page_title=translate("campaigns_title", lang),
        active="nav_campaigns",
        summaries=summaries,
        opens_chart=chart,
        table=campaigns_table(summaries),
    )


async def _campaign(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    name = request.path_params["name"]
    detail = await run_in_threadpool(dashboard.queries.campaign_detail, name)
    if detail is None:
        return dashboard.error_page(request, 404, translate("unknown_campaign", lang))
    labels = [
        p.start.strftime("%d/%m %Hh") if p.granularity == "hour" else p.start.strftime("%d/%m")
        for p in detail.timeline
    ]
    timeline = line_chart(
        chart_id="campaign-timeline",
        title=translate("timeline", lang),
        desc=translate("timeline_note", lang) + " " + translate("chart_table_note", lang),
        labels=labels,
        series=[
            Series(translate("opens_total", lang), [p.opens for p in detail.timeline]),
            Series(translate("clicks_total", lang), [p.clicks for p in detail.timeline]),
            Series(translate("opens_machine", lang), [p.opens_machine for p in detail.timeline]),
        ],
    )
    links_chart = bar_chart(
        chart_id="campaign-links",
        title=translate("links", lang),
        desc=translate("chart_table_note", lang),
        rows=[(row.link, row.clicks) for row in detail.links],
    )
    breakdowns = [
        (
            key,
            _breakdown_chart(lang, f"campaign-{name_}", translate(key, lang), rows),
            breakdown_table(name_, rows, value_label="Value", uniques="recipients"),
        )
        for key, name_, rows in (
            ("devices", "device", detail.devices),
            ("browsers", "browser", detail.browsers),
            ("oses", "os", detail.oses),
        )
    ]
    return dashboard.render(
        request,
        "campaign.html",
        page_title=name,
        active="nav_campaigns",
        detail=detail,
        summary_table=campaigns_table([detail.summary], name="summary"),
        timeline_chart=timeline,
        timeline_table=timeline_table(detail.timeline),
        links_chart=links_chart,
        breakdowns=breakdowns,
    )


async def _campaign_links(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    name = request.path_params["name"]
    summary = await run_in_threadpool(dashboard.queries.campaign_summary, name)
    if summary is None:
        return dashboard.error_page(request, 404, translate("unknown_campaign", lang))
    links = await run_in_threadpool(dashboard.queries.campaign_links, name)
    chart = bar_chart(
        chart_id="links-clicks",
        title=translate("links", lang),
        desc=translate("chart_table_note", lang),
        rows=[(row.link, row.clicks) for row in links],
    )
    return dashboard.render(
        request,
        "links.html",
        page_title=translate("link_table", lang),
        active="nav_campaigns",
        campaign=name,
        chart=chart,
        table=links_table(links),
    )


_SITE_SECTIONS = (
    ("pages", "page"),
    ("referrers", "referrer"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("devices", "device"),
    ("browsers", "browser"),
    ("oses", "os"),
    ("ads", "ad"),
    ("bots", "bot"),
)


async def _site(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    days, site, query = _page_filters(request)
    overview = await run_in_threadpool(dashboard.queries.site_overview, days, site=site)
    sites = await run_in_threadpool(dashboard.queries.sites)
    daily = line_chart(
        chart_id="site-daily",
        title=translate("daily", lang),
        desc=translate("uniques_note", lang) + " " + translate("chart_table_note", lang),
        labels=[p.day.strftime("%d/%m") for p in overview.daily],
        series=[
            Series(translate("pageviews", lang), [p.pageviews for p in overview.daily]),
            Series(translate("visitors", lang), [p.visitors for p in overview.daily]),
            Series(translate("bot_pageviews", lang), [p.bot_pageviews for p in overview.daily]),
            Series(translate("ad_clicks", lang), [p.ad_clicks for p in overview.daily]),
        ],
    )
    rows_of = {
        "page": overview.pages,
        "referrer": overview.referrers,
        "utm_source": overview.utm_sources,
        "utm_medium": overview.utm_mediums,
        "utm_campaign": overview.utm_campaigns,
        "device": overview.devices,
        "browser": overview.browsers,
        "os": overview.oses,
        "ad": overview.ads,
        "bot": overview.bots,
    }
    breakdowns = [
        (
            key,
            _breakdown_chart(lang, f"site-{dimension}", translate(key, lang), rows_of[dimension]),
            breakdown_table(
                dimension,
                rows_of[dimension],
                value_label="Value",
                uniques=None if dimension == "bot" else "visitors",
            ),
            dimension,
        )
        for key, dimension in _SITE_SECTIONS
    ]
    return dashboard.render(
        request,
        "site.html",
        page_title=translate("site_title", lang),
        active="nav_site",
        days=days,
        site=site,
        sites=sites,
        query=query,
        overview=overview,
        daily_chart=daily,
        daily_table=daily_table(overview.daily),
        breakdowns=breakdowns,
    )


def consent_tables(report: ConsentReport) -> tuple[Table, Table, Table]:
    """The consent report's three tables: per day, per revision, per action."""
    return (
        consent_table("by_day", report.by_day, group_label="Day"),
        consent_table("by_revision", report.by_revision, group_label="Revision"),
        breakdown_table("actions", report.actions, value_label="Action", uniques=None),
    )


async def _consent(dashboard: Dashboard, request: Request) -> Response:
    lang = dashboard.language(request)
    days, _, query = _page_filters(request)
    report = await run_in_threadpool(dashboard.queries.consent, days)
    by_day, by_revision, actions = consent_tables(report)
    categories = sorted({rate.category for rate in report.by_day})
    day_labels = sorted({rate.group for rate in report.by_day})
    rates = {(rate.group, rate.category): rate.granted_rate for rate in report.by_day}
    chart = line_chart(
        chart_id="consent-optin",
        title=translate("optin_rate", lang) + " (%)",
        desc=translate("chart_table_note", lang),
        labels=[date.fromisoformat(day).strftime("%d/%m") for day in day_labels],
        series=[
            Series(
                category,
                [round((rates.get((day, category)) or 0) * 100, 1) for day in day_labels],
            )
            for category in categories
        ],
    )
    return dashboard.render(
        request,
        "consent.html",
        page_title=translate("consent_title", lang),
        active="nav_consent",
        days=days,
        query=query,
        report=report,
        optin_chart=chart,
        by_day=by_day,
        by_revision=by_revision,
        actions=actions,
    )


async def _users_page(
    dashboard: Dashboard,
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    message: str | None = None,
    token: str | None = None,
    token_owner: str = "",
) -> Response:
    lang = dashboard.language(request)
    users = await run_in_threadpool(dashboard.accounts.list)
    return dashboard.render(
        request,
        "users.html",
        status_code=status_code,
        page_title=translate("users_title", lang),
        active="nav_users",
        users=users,
        error=error,
        message=message,
        token=token,
        token_owner=token_owner,
    )


async def _admin_form(
    dashboard: Dashboard, request: Request
) -> tuple[Response | None, dict[str, str]]:
    lang = dashboard.language(request)
    if not _account(request).is_admin:
        return dashboard.error_page(request, 403, translate("forbidden", lang)), {}
    valid, fields = await dashboard.csrf_ok(request)
    if not valid:
        return dashboard.error_page(request, 403, translate("csrf_failed", lang)), {}
    return None, fields


async def _users(dashboard: Dashboard, request: Request) -> Response:
    if not _account(request).is_admin:
        return dashboard.error_page(
            request, 403, translate("forbidden", dashboard.language(request))
        )
    return await _users_page(dashboard, request)


async def _add_user(dashboard: Dashboard, request: Request) -> Response:
    refused, fields = await _admin_form(dashboard, request)
    if refused is not None:
        return refused
    name = fields.get("name", "").strip()
    role = fields.get("role", "viewer")
    try:
        await run_in_threadpool(
            dashboard.accounts.add,
            name,
            fields.get("password", ""),
            role,  # type: ignore[arg-type]
        )
    except AccountError as exc:
        return await _users_page(dashboard, request, status_code=400, error=str(exc))
    lang = dashboard.language(request)
    return await _users_page(dashboard, request, message=translate("user_added", lang, name=name))


async def _remove_user(dashboard: Dashboard, request: Request) -> Response:
    refused, _ = await _admin_form(dashboard, request)
    if refused is not None:
        return refused
    name = request.path_params["name"]
    lang = dashboard.language(request)
    if name == _account(request).name:
        return await _users_page(
            dashboard, request, status_code=400, error=translate("cannot_remove_self", lang)
        )
    try:
        await run_in_threadpool(dashboard.accounts.remove, name)
    except AccountError as exc:
        return await _users_page(dashboard, request, status_code=404, error=str(exc))
    return await _users_page(dashboard, request, message=translate("user_removed", lang, name=name))


async def _user_token(dashboard: Dashboard, request: Request) -> Response:
    refused, _ = await _admin_form(dashboard, request)
    if refused is not None:
        return refused
    name = request.path_params["name"]
    try:
        token = await run_in_threadpool(dashboard.accounts.create_token, name, "dashboard")
    except AccountError as exc:
        return await _users_page(dashboard, request, status_code=404, error=str(exc))
    return await _users_page(dashboard, request, token=token, token_owner=name)


def create_dashboard(
    store: Store,
    *,
    secret_keys: Sequence[str],
    k: int = DEFAULT_K,
    secure_cookies: bool = True,
    demo: bool = False,
) -> Dashboard:
    """A :class:`Dashboard` over ``store`` (see its docstring for the arguments)."""
    return Dashboard(store, secret_keys=secret_keys, k=k, secure_cookies=secure_cookies, demo=demo)
