"""``{% if consent.allows("marketing") %}`` in a site's own Jinja2 templates."""

from __future__ import annotations

import contextvars
from typing import Any

import flask
import jinja2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from mypharm_consent import ConsentMiddleware, ConsentState
from mypharm_consent.jinja import ConsentProxy, consent_context, environ_context, install
from mypharm_consent.wsgi import ConsentWSGIMiddleware

from .conftest import decide
from .gating_pages import ANALYTICS, EVERYTHING, gating_config
from .sites import client_for

TEMPLATE = (
    "{% if consent.allows('marketing') %}<script src='/ads.js'></script>{% endif %}"
    "{% if 'analytics' is allowed %}stats{% endif %}|{{ consent.decided }}"
)


def render_with(state: object) -> str:
    env = install(jinja2.Environment(autoescape=True))
    return env.from_string(TEMPLATE).render(consent=state)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(ConsentState.undecided(), "|False", id="undecided"),
        pytest.param(ANALYTICS, "stats|True", id="analytics"),
        pytest.param(EVERYTHING, "<script src='/ads.js'></script>stats|True", id="everything"),
    ],
)
def test_templates_ask_the_state(state: ConsentState, expected: str) -> None:
    assert render_with(state) == expected


def test_the_allowed_test_without_any_consent_allows_only_necessary() -> None:
    env = install(jinja2.Environment(autoescape=True))
    template = env.from_string("{{ 'necessary' is allowed }} {{ 'marketing' is allowed }}")
    assert template.render() == "True False"


def test_proxy_global_follows_the_current_request() -> None:
    current: contextvars.ContextVar[ConsentState] = contextvars.ContextVar("consent")
    env = install(jinja2.Environment(autoescape=True), current.get)
    template = env.from_string(TEMPLATE)
    assert template.render() == "|False"
    current.set(EVERYTHING)
    assert template.render() == "<script src='/ads.js'></script>stats|True"
    assert isinstance(env.globals["consent"], ConsentProxy)


def test_proxy_degrades_to_undecided_when_the_getter_fails() -> None:
    def broken() -> ConsentState:
        raise RuntimeError("working outside of request context")

    proxy = ConsentProxy(broken)
    assert proxy.allows("necessary")
    assert not proxy.allows("marketing")
    assert proxy.granted == frozenset({"necessary"})
    assert not proxy.decided
    assert not proxy.gpc
    assert not ConsentProxy(lambda: None).allows("marketing")


def test_starlette_context_processor_reads_request_state() -> None:
    templates = Jinja2Templates(
        env=install(
            jinja2.Environment(loader=jinja2.DictLoader({"page.html": TEMPLATE}), autoescape=True)
        ),
        context_processors=[consent_context],
    )

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html", media_type="text/plain")

    bare = Starlette(routes=[Route("/", page)])
    with client_for("asgi", bare) as client:
        assert client.get("/").text == "|False"
    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(ConsentMiddleware, config=gating_config(cookie_secure=False))
    with client_for("asgi", app) as client:
        assert client.get("/").text == "|False"
        assert decide(client, "save", categories=("analytics",)).status_code == 303
        assert client.get("/").text == "stats|True"
        assert decide(client, "accept_all").status_code == 303
        assert client.get("/").text == "<script src='/ads.js'></script>stats|True"


def test_flask_context_processor_reads_the_environ() -> None:
    app = flask.Flask(__name__)
    install(app.jinja_env)
    app.context_processor(lambda: environ_context(flask.request.environ))

    @app.route("/")
    def index() -> Any:
        return flask.render_template_string(TEMPLATE)

    wrapped = ConsentWSGIMiddleware(app.wsgi_app, config=gating_config(cookie_secure=False))
    with client_for("wsgi", wrapped) as client:
        assert client.get("/").text == "|False"
        assert decide(client, "accept_all").status_code == 303
        assert client.get("/").text == "<script src='/ads.js'></script>stats|True"
    assert environ_context({"mypharm_consent": EVERYTHING}) == {"consent": EVERYTHING}
    assert environ_context({"mypharm_consent": "forged"}) == {"consent": ConsentState.undecided()}
