"""What surrounds the documents' fragments when they run, and what is checked after.

A block preceded by ``<!-- test: NAME -->`` runs through ``HARNESSES[NAME]``:
the harness puts into the document's namespace what the fragment takes for
granted (a Flask ``app`` to wrap, a ``request`` of a visitor, a newsletter),
executes the block, then drives the real result (the site through its
middleware, the beacon through its endpoints, the embedded ClickHouse) and
asserts what the surrounding prose promises. Blocks without a mark run as
plain continuations of the page and carry their own asserts.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tests.docs.blocks import CodeBlock, code_blocks

__all__ = ["HARNESSES", "Harness", "execute"]

Namespace = dict[str, Any]
BANNER = 'id="mypharm-consent-banner"'
BASE = "https://testserver"
NEWSLETTER = (
    "<!doctype html><html><body><h1>Décembre à la pharmacie</h1>"
    '<p><a href="https://mypharm.fr/promo/noel-2026?utm_source=newsletter">Nos offres</a></p>'
    '<p><a data-unsubscribe href="#">Se désinscrire</a></p>'
    "</body></html>"
)


@dataclass(frozen=True)
class Harness:
    """How a marked block runs: ``run(block, namespace)``, in its own interpreter or not."""

    run: Callable[[CodeBlock, Namespace], None]
    own_process: bool = False


def execute(block: CodeBlock, namespace: Namespace) -> None:
    """Execute ``block`` in ``namespace``; tracebacks point at the document's own lines."""
    code = compile("\n" * block.line + block.code, str(block.document), "exec")
    exec(code, namespace)  # noqa: S102 - running the documents is the point


def decide(client: httpx.Client, action: str, *categories: str) -> httpx.Response:
    """Post a choice the way the banner's form does, with the token of a real page."""
    page = client.get("/_consent/preferences").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token, "the preferences page carries no form token"
    fields = [("csrf", token.group(1)), ("action", action), ("next", "/")]
    fields += [("category", name) for name in categories]
    return client.post(
        "/_consent/decide",
        content=str(httpx.QueryParams(fields)).encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": str(client.base_url).rstrip("/"),
            "sec-fetch-site": "same-origin",
        },
        follow_redirects=False,
    )


async def _next_message(queue: asyncio.Queue[Any], task: asyncio.Task[Any]) -> Any:
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if not getter.done():
        getter.cancel()
        raise AssertionError(f"the app's lifespan ended early: {task.exception()!r}")
    return getter.result()


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """Run the ASGI lifespan of ``app`` around the block, as a server does."""
    to_app: asyncio.Queue[Any] = asyncio.Queue()
    from_app: asyncio.Queue[Any] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await _next_message(from_app, task)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await _next_message(from_app, task)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
        await task


class _PortalTransport(httpx.BaseTransport):
    """Sends a synchronous client's requests to an ASGI app on the portal's event loop."""

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        self.transport = httpx.ASGITransport(app=app)
        self.portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )

        return self.portal.call(send)


@contextmanager
def asgi_client(app: Any) -> Iterator[httpx.Client]:
    """A client of the ASGI ``app``, on one event loop, its lifespan run around the requests."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_lifespan(app)),
        httpx.Client(transport=_PortalTransport(app, portal), base_url=BASE) as client,
    ):
        yield client


def wsgi_client(app: Any) -> httpx.Client:
    """A client of the WSGI ``app``."""
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE)


def check_consent_site(client: httpx.Client, view_text: Callable[[bool], str]) -> None:
    """The banner until a choice; after accepting, no banner and the view sees the grant."""
    first = client.get("/")
    assert first.status_code == 200, first.status_code
    assert BANNER in first.text, "the banner is missing before any choice"
    assert view_text(False) in first.text, "the view did not see 'not granted' at first"
    assert decide(client, "accept_all").status_code == 303
    after = client.get("/")
    assert BANNER not in after.text, "the banner is still shown after a choice"
    assert "mypharm-consent-reopen" in after.text, "no way back to the preferences"
    assert view_text(True) in after.text, "the view did not see the grant"


def next_block(block: CodeBlock, lang: str) -> CodeBlock:
    """The first ``lang`` block after ``block`` in its document."""
    following = [b for b in code_blocks(block.document) if b.line > block.line and b.lang == lang]
    assert following, f"{block.name}: no {lang} block follows"
    return following[0]


# -- harnesses -----------------------------------------------------------


def continuation(block: CodeBlock, namespace: Namespace) -> None:
    """A block that goes on with the page's program; its own asserts are the check."""
    execute(block, namespace)


def asgi_site(block: CodeBlock, namespace: Namespace) -> None:
    """The block builds ``app``, whose ``/`` view writes what ``allows("analytics")`` says."""
    execute(block, namespace)
    with asgi_client(namespace["app"]) as client:
        check_consent_site(client, lambda granted: f"Mesure d'audience : {granted}")


def flask_wrap(block: CodeBlock, namespace: Namespace) -> None:
    """The block wraps a Flask ``app`` with the page's ``consent`` configuration.

    The Flask app is the harness's own: it is not left in the page's namespace.
    """
    from flask import Flask, request

    from mypharm_consent.wsgi import ConsentWSGIMiddleware

    app = Flask("docs_site")

    @app.get("/")
    def home() -> str:
        granted = request.environ["mypharm_consent"].allows("analytics")
        return f"<html><body><p>Mesure d'audience : {granted}</p></body></html>"

    execute(block, {**namespace, "app": app})
    assert isinstance(app.wsgi_app, ConsentWSGIMiddleware)
    with wsgi_client(app) as client:
        check_consent_site(client, lambda granted: f"Mesure d'audience : {granted}")


def beacon_site(block: CodeBlock, namespace: Namespace) -> None:
    """The block adds the beacon and the dashboard to ``app`` and instruments ``newsletter``."""
    namespace["newsletter"] = NEWSLETTER
    execute(block, namespace)
    html = namespace["html"]
    assert "https://mypharm.fr/b/c/" in html
    assert "https://mypharm.fr/b/o/" in html
    assert "alice" not in html, "the recipient's address leaked into the message"
    with asgi_client(namespace["app"]) as client:
        pixel = client.get("/b/p.gif", params={"u": "/"})
        assert pixel.status_code == 200
        assert pixel.headers["content-type"] == "image/gif"
        click = re.search(r'href="https://mypharm\.fr(/b/c/[^"]+)"', html)
        assert click, "no tracked link in the instrumented newsletter"
        landing = client.get(click.group(1), follow_redirects=False)
        assert landing.status_code == 302
        assert landing.headers["location"].startswith("https://mypharm.fr/promo/noel-2026")
        assert client.get("/stats/api/site").status_code == 401, "statistics without a login"
    assert namespace["tracker"].counters()["recorded"] >= 1


def visitor_request(block: CodeBlock, namespace: Namespace) -> None:
    """The block is a view's body; ``request`` is a real request of a visitor who granted
    analytics only. Like a view's locals, its names stay out of the page's namespace."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from mypharm_consent import ConsentState

    seen: list[Request] = []

    async def page(request: Request) -> HTMLResponse:
        seen.append(request)
        return HTMLResponse("<html><body><p>Pharmacie</p></body></html>")

    app = _consent_app([Route("/", page)])
    with asgi_client(app) as client:
        assert decide(client, "save", "analytics").status_code == 303
        client.get("/")
    request = seen[-1]
    view: Namespace = {**namespace, "request": request}
    execute(block, view)
    consent = view["consent"]
    assert isinstance(consent, ConsentState)
    assert consent is request.state.consent
    assert consent.decided
    assert consent.allows("analytics")
    assert not consent.allows("marketing")
    assert sorted(consent.granted) == ["analytics", "necessary"]


def site_with_beacon(block: CodeBlock, namespace: Namespace) -> None:
    """The block mounts the beacon in the page's site: pages, pixel and script answer."""
    execute(block, namespace)
    with asgi_client(namespace["app"]) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert BANNER in page.text
        pixel = client.get("/b/p.gif", params={"u": "/"})
        assert pixel.status_code == 200
        assert pixel.headers["content-type"] == "image/gif"
        assert client.get("/b/beacon.js").status_code == 200
    assert namespace["tracker"].counters()["recorded"] >= 1


def standalone_beacon(block: CodeBlock, namespace: Namespace) -> None:
    """The block builds ``tracker``: its app answers the pixel and its health counters."""
    execute(block, namespace)
    tracker = namespace["tracker"]
    with asgi_client(namespace.get("app", tracker.app)) as client:
        pixel = client.get("/p.gif", params={"u": "/produits"})
        assert pixel.status_code == 200
        assert pixel.content.startswith(b"GIF89a")
        health = client.get("/health").json()
        assert health["recorded"] >= 1
        assert health["spool_dropped"] == 0


def mounted_beacon(block: CodeBlock, namespace: Namespace) -> None:
    """The block mounts ``tracker`` at ``/b`` of ``app``; a page view reaches ClickHouse."""
    execute(block, namespace)
    tracker = namespace["tracker"]
    path = f"/documented-{block.line}"
    with asgi_client(namespace["app"]) as client:
        pixel = client.get("/b/p.gif", params={"u": path})
        assert pixel.status_code == 200
        assert pixel.content.startswith(b"GIF89a")
    rows = tracker.store.query_rows(
        "SELECT count() FROM events WHERE path = {p:String}", parameters={"p": path}
    )
    assert rows[0][0] == 1, "the page view did not reach ClickHouse by shutdown"


def email_setup(block: CodeBlock, namespace: Namespace) -> None:
    """The block mounts an e-mail-capable beacon at ``/b``: its open pixel answers."""
    from beacon.email import EmailTracker

    execute(block, namespace)
    email = namespace["tracker"].email
    assert isinstance(email, EmailTracker)
    message = email.instrument(NEWSLETTER, campaign="2026-12-newsletter", recipient="a@b.fr")
    pixel = re.search(r'src="https://mypharm\.fr(/b/o/[^"]+\.gif)"', message)
    assert pixel, "no open pixel in the instrumented message"
    with asgi_client(namespace["app"]) as client:
        opened = client.get(pixel.group(1))
        assert opened.status_code == 200
        assert opened.content.startswith(b"GIF89a")


def newsletter(block: CodeBlock, namespace: Namespace) -> None:
    """The block instruments ``html``, a newsletter; its links work through the beacon."""
    namespace["html"] = NEWSLETTER
    execute(block, namespace)
    html, headers = namespace["html"], namespace["headers"]
    assert "alice" not in html
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mypharm.fr/b/u/")
    click = re.search(r'href="https://mypharm\.fr/b(/c/[^"]+)"', html)
    assert click, "no tracked link"
    with asgi_client(namespace["tracker"].app) as client:
        landing = client.get(click.group(1), follow_redirects=False)
        assert landing.status_code == 302
        assert (
            landing.headers["location"]
            == "https://mypharm.fr/promo/noel-2026?utm_source=newsletter"
        )


def unsubscribes(block: CodeBlock, namespace: Namespace) -> None:
    """The block queries and records opt-outs in the real store, through the spool.

    Before it, Carol and Dave opted out; the beacon's lifespan around each
    step applies the migrations and flushes the spool at its end.
    """
    tracker = namespace["tracker"]
    email = tracker.email
    namespace["addresses"] = ["alice@example.org", "bob@example.org", "carol@example.org"]
    with asgi_client(tracker.app):
        email.unsubscribe("carol@example.org", campaign="2026-11-newsletter")
        email.unsubscribe("dave@example.org", campaign="2026-11-newsletter")
    with asgi_client(tracker.app):
        execute(block, namespace)
    found = email.unsubscribed_among([*namespace["addresses"], "dave@example.org"])
    assert found == {"bob@example.org", "carol@example.org"}, found
    assert not email.is_unsubscribed("dave@example.org"), "the later re-subscription must win"
    from_campaign = {entry.recipient for entry in email.unsubscribed(campaign="2026-12-newsletter")}
    assert from_campaign == {email.ref("bob@example.org")}, from_campaign


def gated_by_host(block: CodeBlock, namespace: Namespace) -> None:
    """The block declares ``marketing``; the next HTML example is what gating really does."""
    from mypharm_consent import ConsentConfig, ConsentState
    from mypharm_consent.gating import gate_html

    execute(block, namespace)
    config = ConsentConfig(
        secret_keys=["docs-secret-key-0123456789"], categories=[namespace["marketing"]]
    )
    example = next_block(block, "html").code
    written, expected = (part.strip() for part in example.split("<!-- becomes -->"))
    assert gate_html(written, ConsentState.undecided(), config) == expected


def _consent_config() -> Any:
    """A site declaring ``analytics`` and ``marketing``, as the harnesses' own sites do."""
    from mypharm_consent import Category, ConsentConfig

    categories = [
        Category(name, label={"fr": name, "en": name}, description={"fr": name, "en": name})
        for name in ("analytics", "marketing")
    ]
    return ConsentConfig(secret_keys=["docs-secret-key-0123456789"], categories=categories)


def _consent_app(routes: list[Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from mypharm_consent import ConsentMiddleware

    return Starlette(
        routes=routes, middleware=[Middleware(ConsentMiddleware, config=_consent_config())]
    )


def check_jinja_example(client: httpx.Client) -> None:
    """The page's Jinja example shows nothing optional until granted, then both lines."""
    before = client.get("/").text
    assert "ads.example/tag.js" not in before
    assert "Mesure d'audience active" not in before
    assert decide(client, "save", "marketing", "analytics").status_code == 303
    after = client.get("/").text
    assert "ads.example/tag.js" in after
    assert "Mesure d'audience active" in after


def jinja_starlette(block: CodeBlock, namespace: Namespace) -> None:
    """The block sets up ``templates``; the page's Jinja example follows the visitor's choice."""
    from starlette.requests import Request
    from starlette.routing import Route

    Path("templates").mkdir(exist_ok=True)
    Path("templates/page.html").write_text(next_block(block, "jinja").code, encoding="utf-8")
    execute(block, namespace)
    templates = namespace["templates"]

    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page.html")

    with asgi_client(_consent_app([Route("/", page)])) as client:
        check_jinja_example(client)


def jinja_flask(block: CodeBlock, namespace: Namespace) -> None:
    """The block installs the consent into a Flask ``app``'s templates."""
    from flask import Flask, render_template_string

    from mypharm_consent.wsgi import ConsentWSGIMiddleware

    app = Flask("docs_jinja")
    source = next_block(block, "jinja").code

    @app.get("/")
    def page() -> str:
        return "<html><body>" + render_template_string(source) + "</body></html>"

    execute(block, {**namespace, "app": app})
    config = _consent_config()
    app.wsgi_app = ConsentWSGIMiddleware(app.wsgi_app, config=config)  # type: ignore[method-assign]
    with wsgi_client(app) as client:
        check_jinja_example(client)


def receipts_site(block: CodeBlock, namespace: Namespace) -> None:
    """The block builds a site that keeps receipts: a decision becomes one in ClickHouse."""
    execute(block, namespace)
    with asgi_client(namespace["app"]) as client:
        first = client.get("/")
        assert BANNER in first.text
        assert decide(client, "accept_all").status_code == 303
        preferences = client.get("/_consent/preferences")
        assert "history.json" in preferences.text, "the preferences page offers no history"
    store = namespace["tracker"].store
    rows = store.query_rows("SELECT action FROM consent_receipts")
    assert [row[0] for row in rows] == ["accept_all"], rows


def receipt_retention(block: CodeBlock, namespace: Namespace) -> None:
    """The block sets the receipts' retention: the table's TTL says so."""
    execute(block, namespace)
    ddl = namespace["tracker"].store.query_rows("SHOW CREATE TABLE consent_receipts")[0][0]
    assert "toIntervalMonth(72)" in ddl or "INTERVAL 72 MONTH" in ddl, ddl


def dashboard(block: CodeBlock, namespace: Namespace) -> None:
    """The block mounts the dashboard at ``/stats``: it asks for a login first."""
    execute(block, namespace)
    with asgi_client(namespace["app"]) as client:
        api = client.get("/stats/api/site")
        assert api.status_code == 401
        assert api.json() == {"error": "authentication required"}
        page = client.get("/stats/", follow_redirects=False)
        assert page.status_code in (302, 303)
        assert "login" in page.headers["location"]


def django_project(block: CodeBlock, namespace: Namespace) -> None:
    """The block is a project's ``wsgi.py``: the harness writes the rest of ``mysite``."""
    site = Path("mysite")
    site.mkdir()
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text(
        'SECRET_KEY = "docs-secret-key-0123456789"\n'
        'ALLOWED_HOSTS = ["testserver"]\n'
        'ROOT_URLCONF = "mysite.urls"\n'
        "INSTALLED_APPS: list[str] = []\n"
    )
    (site / "urls.py").write_text(
        "from django.http import HttpResponse\n"
        "from django.urls import path\n\n"
        "def home(request):\n"
        '    granted = request.META["mypharm_consent"].allows("marketing")\n'
        '    return HttpResponse(f"<html><body><p>marketing: {granted}</p></body></html>")\n\n'
        'urlpatterns = [path("", home)]\n'
    )
    (site / "consent.py").write_text(
        "from mypharm_consent import Category, ConsentConfig\n\n"
        "CONSENT = ConsentConfig(\n"
        '    secret_keys=["docs-secret-key-0123456789"],\n'
        '    categories=[Category("marketing", label={"fr": "M", "en": "M"},'
        ' description={"fr": "M", "en": "M"})],\n'
        ")\n"
    )
    (site / "wsgi.py").write_text("\n" * block.line + block.code)
    sys.path.insert(0, os.getcwd())
    from mysite.wsgi import application  # type: ignore[import-not-found]

    with wsgi_client(application) as client:
        check_consent_site(client, lambda granted: f"marketing: {granted}")


HARNESSES: dict[str, Harness] = {
    "continuation": Harness(continuation),
    "own-process": Harness(continuation, own_process=True),
    "asgi-site": Harness(asgi_site),
    "flask-wrap": Harness(flask_wrap),
    "beacon-site": Harness(beacon_site),
    "visitor-request": Harness(visitor_request),
    "site-with-beacon": Harness(site_with_beacon),
    "standalone-beacon": Harness(standalone_beacon),
    "mounted-beacon": Harness(mounted_beacon),
    "email-setup": Harness(email_setup),
    "newsletter": Harness(newsletter),
    "unsubscribes": Harness(unsubscribes),
    "gated-by-host": Harness(gated_by_host),
    "jinja-starlette": Harness(jinja_starlette),
    "jinja-flask": Harness(jinja_flask),
    "receipts-site": Harness(receipts_site),
    "receipt-retention": Harness(receipt_retention),
    "dashboard": Harness(dashboard),
    "django-project": Harness(django_project, own_process=True),
}
