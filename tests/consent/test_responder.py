"""The compiled send wrapper (``mypharm_consent._responder``) against its definitions.

``ConsentEngine.rewrites_raw_response``, ``asgi.read_request_headers`` and
``asgi._PyResponder`` define what the middleware does with every response
and request; the extension must do the very same on any status, any header
list (names in any case, values with white space, near misses, repeated
headers), and any series of ASGI messages. Without it (or with
``MYPHARM_CONSENT_SPEEDUPS=0``) the middleware runs on the definitions,
checked in subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mypharm_consent import asgi
from mypharm_consent.engine import ConsentEngine

from .conftest import run_with_debug_log
from .gating_pages import NOTHING, TRACKER, gating_config

try:
    from mypharm_consent import _responder
except ImportError:  # built without a C compiler: only the fallback is tested
    if os.environ.get("CI"):
        raise  # CI builds it: a missing extension there is a failed build
    _responder = None  # type: ignore[assignment]

compiled_only = pytest.mark.skipif(
    _responder is None, reason="mypharm_consent._responder is not built"
)

ENGINE = ConsentEngine(gating_config(consent_mode=False))

_NAMES = st.sampled_from(
    [
        b"content-type",
        b"Content-Type",
        b"CONTENT-TYPE",
        b"content-typf",
        b"content-encoding",
        b"Content-Encoding",
        b"content-encodinG",
        b"content-length",
        b"cookie",
        b"Cookie",
        b"sec-gpc",
        b"sec-fetch-dest",
        b"sec-fetch-des",
        b"x",
    ]
)
_VALUES = st.sampled_from(
    [
        b"text/html",
        b"text/html; charset=utf-8",
        b" TEXT/HTML ;charset=latin-1",
        b"\x0btext/html\x0c",
        b"text/htmlx",
        b"text/ html",
        b"application/json",
        b"",
        b" ",
        b";",
        b"gzip",
        b"identity",
        b" Identity\t",
        b"identityx",
        b"1",
        b"a=b",
        b"image",
        b"document",
    ]
) | st.binary(max_size=12)
HEADERS = st.lists(st.tuples(_NAMES | st.binary(max_size=16), _VALUES), max_size=6)
STATUSES = st.integers(min_value=-5, max_value=700) | st.sampled_from(
    [200, 204, 205, 304, 199, 2**70, -(2**70)]
)


@compiled_only
@settings(max_examples=1000, deadline=None)
@given(STATUSES, HEADERS | HEADERS.map(tuple))
@example(200, [(b"content-type", b"text/html"), (b"content-encoding", b"gzip")])
@example(200, [(b"content-encoding", b" "), (b"Content-Type", b"Text/Html ; q")])
@example(204, [(b"content-type", b"text/html")])
@example(2**70, [(b"content-type", b"text/html")])
def test_rewrites_agrees_with_the_engine(status: int, headers: list[tuple[bytes, bytes]]) -> None:
    compiled = _responder.rewrites(status, headers)
    if abs(status) >= 2**63:
        assert compiled is None  # judged in Python
    else:
        assert compiled is ENGINE.rewrites_raw_response(status, headers)


@compiled_only
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200", [(b"content-type", b"text/html")]),
        (True, [(b"content-type", b"text/html")]),
        (200, iter([(b"content-type", b"text/html")])),
        (200, [[b"content-type", b"text/html"]]),
        (200, [(b"content-type", "text/html")]),
        (200, [(b"content-type", b"text/html", b"x")]),
    ],
    ids=["str-status", "bool-status", "iterator", "list-pair", "str-value", "triple"],
)
def test_unusual_values_are_left_to_the_engine(status: object, headers: object) -> None:
    assert _responder.rewrites(status, headers) is None


@compiled_only
@settings(max_examples=1000, deadline=None)
@given(HEADERS | HEADERS.map(tuple))
@example([(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"sec-gpc", b"1"), (b"sec-gpc", b" 1")])
@example([(b"sec-fetch-dest", b"image"), (b"sec-fetch-dest", b"document")])
def test_request_headers_agree(headers: list[tuple[bytes, bytes]]) -> None:
    expected = asgi.read_request_headers(headers)
    assert _responder.request_headers(asgi.read_request_headers, headers) == expected
    assert asgi._read_headers(headers) == expected


@compiled_only
def test_unusual_request_headers_go_to_the_definition() -> None:
    headers = [[b"cookie", b"a=1"], (b"sec-gpc", b"1")]
    assert asgi._read_headers(headers) == (b"a=1", b"1", None)  # type: ignore[arg-type]
    calls: list[object] = []

    def definition(value: object) -> tuple[None, None, None]:
        calls.append(value)
        return None, None, None

    given_headers = iter([(b"cookie", b"a=1")])
    assert _responder.request_headers(definition, given_headers) == (None, None, None)
    assert calls == [given_headers]
    with pytest.raises(TypeError):
        _responder.request_headers([])  # type: ignore[call-arg]


class _PyHTMLResponder(asgi._PyResponder):
    """The middleware's responder on the Python definition of the send wrapper."""

    __slots__ = ()
    _held = asgi._HTMLResponder._held
    _give_up = asgi._HTMLResponder._give_up


_PAGE = f'<html><body><script src="https://{TRACKER}/a.js"></script></body></html>'.encode()
MESSAGES = st.lists(
    st.one_of(
        st.builds(
            lambda status, headers: {
                "type": "http.response.start",
                "status": status,
                "headers": headers,
            },
            st.sampled_from([200, 204, 404, 500, 302]),
            st.lists(
                st.tuples(
                    st.sampled_from([b"content-type", b"content-encoding", b"x-other"]),
                    st.sampled_from([b"text/html", b"text/html; charset=utf-8", b"gzip", b"1"]),
                ),
                max_size=3,
            ),
        ),
        st.builds(
            lambda body, more: {"type": "http.response.body", "body": body, "more_body": more},
            st.sampled_from([_PAGE, _PAGE[:20], _PAGE[20:], b"", b"x" * 10]),
            st.booleans(),
        ),
        st.builds(lambda body: {"type": "http.response.body", "body": body}, st.just(_PAGE)),
        st.just({"type": "http.response.trailers", "headers": []}),
        st.just({"status": 200}),
    ),
    max_size=5,
)


_PARTS_SENT = ("GET", "/", b"/", b"", [(b"host", b"example.org")])


def _run(
    responder_class: type[Any],
    messages: list[dict[str, Any]],
    *,
    engine: ConsentEngine = ENGINE,
    parts: Any = _PARTS_SENT,
) -> list[object]:
    """What reaches the server through a fresh responder, and how each send ended."""
    sent: list[object] = []

    async def downstream(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        responder = responder_class(engine, parts, NOTHING, downstream)
        for message in messages:
            try:
                await responder.send(dict(message))
            except Exception as exc:
                sent.append(("raised", type(exc).__name__))
        sent.append(
            (
                "passing",
                responder.passing,
                "held",
                responder.start is not None,
                "size",  # bytes of body held (set once a response is held)
                responder.size if responder.start is not None else None,
            )
        )

    asyncio.run(go())
    return sent


@compiled_only
@settings(max_examples=300, deadline=None)
@given(MESSAGES)
@example(
    [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html")],
        },
        {"type": "http.response.body", "body": _PAGE},
    ]
)
@example(
    [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html")],
        },
        {"type": "http.response.body", "body": _PAGE[:20], "more_body": True},
        {"type": "http.response.body", "body": _PAGE[20:]},
    ]
)
def test_the_compiled_responder_sends_what_the_definition_sends(
    messages: list[dict[str, Any]],
) -> None:
    assert asgi._HTMLResponder.__mro__[1] is _responder.Responder
    assert _run(asgi._HTMLResponder, messages) == _run(_PyHTMLResponder, messages)


@compiled_only
def test_an_html_page_is_held_and_rewritten_through_the_compiled_responder() -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html; charset=utf-8")],
    }
    sent = _run(asgi._HTMLResponder, [start, {"type": "http.response.body", "body": _PAGE}])
    first, second = sent[0], sent[1]
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert (b"content-length", b"%d" % len(second["body"])) in first["headers"]
    assert b'type="text/plain"' in second["body"]
    assert b"mypharm-consent-banner" in second["body"]
    assert sent[2] == ("passing", False, "held", True, "size", len(_PAGE))


@compiled_only
def test_the_middleware_uses_the_extension_when_built() -> None:
    assert asgi.SPEEDUPS
    assert asgi._HTMLResponder.__mro__[1] is _responder.Responder
    done = _responder.DONE
    assert asyncio.run(_awaits(done)) is None


async def _awaits(awaitable: Any) -> object:
    return await awaitable


@compiled_only
def test_the_responder_checks_its_arguments() -> None:
    with pytest.raises(TypeError):
        _responder.Responder(ENGINE, (), NOTHING)  # type: ignore[call-arg]
    responder = _responder.Responder(engine=ENGINE, parts=(), state=NOTHING, send=print)
    assert responder.start is None
    assert not responder.passing
    with pytest.raises(AttributeError):
        _ = responder.chunks
    with pytest.raises(TypeError):
        responder.chunks = ()  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        del responder.start
    with pytest.raises(TypeError):
        _responder.rewrites(200)  # type: ignore[call-arg]


_FALLBACK = """
import sys
{prelude}
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from mypharm_consent import ConsentMiddleware, asgi
from tests.consent.gating_pages import TRACKER, gating_config
page = f'<html><body><script src="https://{{TRACKER}}/a.js"></script></body></html>'
async def html(request):
    return HTMLResponse(page)
async def api(request):
    return JSONResponse({{"consent": request.state.consent.decided}})
app = Starlette(routes=[Route("/", html), Route("/api", api)])
app.add_middleware(ConsentMiddleware, config=gating_config(consent_mode=False))
client = TestClient(app)
body = client.get("/").text
print(asgi.SPEEDUPS, asgi._HTMLResponder.__mro__[1].__name__,
      asgi.ConsentMiddleware.__mro__[1].__name__,
      'type="text/plain"' in body, "mypharm-consent-banner" in body,
      client.get("/api").json() == {{"consent": False}})
"""


@pytest.mark.parametrize(
    ("prelude", "environment", "logged"),
    [
        ("", {"MYPHARM_CONSENT_SPEEDUPS": "0"}, ""),
        (
            "sys.modules['mypharm_consent._responder'] = None",
            {},
            "mypharm_consent._responder is not built",
        ),
    ],
    ids=["disabled", "missing"],
)
def test_without_the_extension_the_middleware_runs_in_python(
    prelude: str, environment: dict[str, str], logged: str
) -> None:
    stdout, stderr = run_with_debug_log(_FALLBACK.format(prelude=prelude), environment)
    assert stdout.split() == ["False", "_PyResponder", "_PyFront", "True", "True", "True"]
    assert logged in stderr


# -- the compiled dispatch (``_responder.Front``) against ``ConsentMiddleware.__call__`` --

_DISPATCH_CONFIG = gating_config(consent_mode=False, exclude_paths=("/excluded",))
_GRANTED = ENGINE.cookie.encode("a" * 22, frozenset({"necessary", "analytics"}))
_JSON_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json")],
}
_HTML_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/html; charset=utf-8")],
}
_MISSING = object()
_REQUEST_HEADERS = st.lists(
    st.sampled_from(
        [
            (b"host", b"example.org"),
            (b"cookie", f"mypharm_consent={_GRANTED}".encode()),
            (b"cookie", b"other=1"),
            (b"cookie", b"mypharm_consent=forged"),
            (b"sec-gpc", b"1"),
            (b"sec-gpc", b" 1 "),
            (b"sec-fetch-dest", b"image"),
            (b"sec-fetch-dest", b"document"),
            (b"sec-fetch-dest", b"script"),
            (b"accept-language", b"en"),
            (b"Cookie", b"mypharm_consent=x"),
        ]
    ),
    max_size=4,
)
SCOPES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["http", "http", "websocket", "lifespan", "HTTP", b"http"]),
        "method": st.sampled_from(["GET", "GET", "get", "HEAD", "head", "POST", "Dé", 5]),
        "path": st.sampled_from(
            [
                "/page",
                "/page",
                "/_consent",
                "/_consent/preferences",
                "/_consent/static/consent.css",
                "/_consentx",
                "/excluded",
                "/excluded/below",
                "/excludedx",
                b"/page",
            ]
        ),
        "headers": _REQUEST_HEADERS
        | _REQUEST_HEADERS.map(tuple)
        | st.just([[b"cookie", b"a=b"]])
        | st.just([(b"cookie", "text")]),
        "raw_path": st.sampled_from([b"/raw", None]),
        "query_string": st.sampled_from([b"", b"q=1"]),
        "state": st.sampled_from([{}, {"other": 1}]),
    }
).map(lambda scope: {key: value for key, value in scope.items() if value is not _MISSING})


def _inner(answer: list[dict[str, Any]], seen: list[object]) -> Any:
    """An app that records what it is given and sends ``answer`` through the send it gets."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope.get("state", {}).get("consent"))
        for message in answer:
            await send(dict(message))

    return app


def _through(
    scope: dict[str, Any], answer: list[dict[str, Any]], *, compiled: bool
) -> list[object]:
    """What a middleware sends, leaves in the scope and raises for one request."""
    seen: list[object] = []
    middleware = asgi.ConsentMiddleware(_inner(answer, seen), config=_DISPATCH_CONFIG)
    sent: list[object] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        try:
            if compiled:
                await middleware(scope, receive, send)
            else:
                await asgi.ConsentMiddleware.__call__(middleware, scope, receive, send)
        except Exception as exc:
            sent.append(("raised", type(exc).__name__, str(exc)))

    asyncio.run(go())
    return [*map(_without_token, sent), ("app saw", seen), ("scope", scope.get("state"))]


def _without_token(message: object) -> object:
    """``message`` with the banner form's token (new in every page) left out."""
    if isinstance(message, dict) and isinstance(message.get("body"), bytes):
        body = re.sub(rb'name="csrf" value="[^"]*"', b'name="csrf"', message["body"])
        return {**message, "body": body}
    return message


@compiled_only
@settings(max_examples=600, deadline=None)
@given(
    SCOPES,
    st.sampled_from(["drop type", "drop method", "drop path", "drop headers", "keep"]),
    st.sampled_from(
        [
            [_JSON_START, {"type": "http.response.body", "body": b"{}"}],
            [_HTML_START, {"type": "http.response.body", "body": _PAGE}],
            [_HTML_START, {"type": "http.response.body", "body": _PAGE[:20], "more_body": True}],
        ]
    ),
)
@example(
    {"type": "http", "method": "GET", "path": "/page", "headers": [], "state": {}},
    "keep",
    [_HTML_START, {"type": "http.response.body", "body": _PAGE}],
)
def test_the_compiled_dispatch_does_what_the_definition_does(
    scope: dict[str, Any], drop: str, answer: list[dict[str, Any]]
) -> None:
    if drop != "keep":
        scope.pop(drop.split()[1])
    compiled = _through(
        {key: (dict(value) if key == "state" else value) for key, value in scope.items()},
        answer,
        compiled=True,
    )
    assert compiled == _through(dict(scope), answer, compiled=False)


@compiled_only
def test_the_compiled_dispatch_hands_the_apps_own_awaitable_on() -> None:
    seen: list[object] = []
    app = _inner([_JSON_START, {"type": "http.response.body", "body": b"{}"}], seen)
    middleware = asgi.ConsentMiddleware(app, config=_DISPATCH_CONFIG)
    scope = {"type": "http", "method": "GET", "path": "/page", "headers": []}
    sent: list[object] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    awaitable = middleware(scope, None, send)
    # No coroutine of the middleware's: the app's own, already given the consent state.
    assert awaitable.cr_code is app.__code__
    assert scope["state"]["consent"] is middleware.engine.first_visit
    asyncio.run(_awaits(awaitable))
    assert sent == ["http.response.start", "http.response.body"]
    assert seen == [middleware.engine.first_visit]
    # The package's own endpoints are answered by the definition, a coroutine of its own.
    own = middleware({"type": "http", "method": "GET", "path": "/_consent/x"}, None, send)
    assert own.cr_code is asgi.ConsentMiddleware.__call__.__code__
    own.close()


@compiled_only
def test_servers_see_an_asgi3_app_whose_calls_go_through_the_compiled_slot() -> None:
    import inspect

    import uvicorn

    middleware = asgi.ConsentMiddleware(_inner([], []), config=_DISPATCH_CONFIG)
    assert isinstance(middleware, _responder.Front)
    assert inspect.iscoroutinefunction(asgi.ConsentMiddleware.__call__)
    assert inspect.iscoroutinefunction(middleware.__call__)
    assert asyncio.iscoroutinefunction(middleware.__call__)
    config = uvicorn.Config(middleware)
    config.load()
    assert config.interface == "asgi3"
    lifespan = middleware({"type": "lifespan"}, None, None)
    assert lifespan.cr_code is not asgi.ConsentMiddleware.__call__.__code__
    lifespan.close()


@compiled_only
def test_a_subclass_is_dispatched_in_c_unless_it_defines_call() -> None:
    seen: list[object] = []
    scope = {"type": "http", "method": "GET", "path": "/page", "headers": []}

    class Plain(asgi.ConsentMiddleware):
        pass

    class Own(asgi.ConsentMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append("own")
            await super().__call__(scope, receive, send)

    app = _inner([], seen)
    plain = Plain(app, config=_DISPATCH_CONFIG)(dict(scope), None, None)
    assert plain.cr_code is app.__code__
    asyncio.run(_awaits(plain))
    own = Own(app, config=_DISPATCH_CONFIG)(dict(scope), None, None)
    assert own.cr_code is Own.__call__.__code__
    asyncio.run(_awaits(own))
    # A __call__ given later is the one called.
    calls: list[str] = []

    def later(self: Any, scope: Any, receive: Any, send: Any) -> Any:
        calls.append("later")
        return asgi.ConsentMiddleware.__call__(self, scope, receive, send)

    Plain.__call__ = later  # type: ignore[method-assign]
    asyncio.run(_awaits(Plain(app, config=_DISPATCH_CONFIG)(dict(scope), None, None)))
    assert calls == ["later"]
    # The app saw the consent state in each of the three requests, and Own's __call__ ran once.
    assert seen.count("own") == 1
    assert [type(s).__name__ for s in seen if s != "own"] == ["ConsentState"] * 3


@compiled_only
def test_a_failure_before_the_app_is_raised_where_the_definition_raises_it() -> None:
    calls: list[str] = []

    class Failing(ConsentEngine):
        def state_from(self, cookie_header: str | None, sec_gpc: str | None) -> Any:
            calls.append("state_from")
            raise ValueError("no state")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append("app")

    middleware = asgi.ConsentMiddleware(app, config=_DISPATCH_CONFIG)
    middleware.engine = Failing(_DISPATCH_CONFIG)
    headers = [(b"cookie", b"a=b"), (b"sec-gpc", b"1")]
    scope = {"type": "http", "method": "GET", "path": "/page", "headers": headers}
    # Not raised by the call: by the definition's coroutine, once awaited.
    awaitable = middleware(scope, None, None)
    assert awaitable.cr_code is asgi.ConsentMiddleware.__call__.__code__
    with pytest.raises(ValueError, match="no state"):
        asyncio.run(_awaits(awaitable))
    assert calls == ["state_from", "state_from"]


@compiled_only
def test_an_app_that_raises_when_called_is_called_once() -> None:
    calls: list[object] = []

    def app(scope: Any, receive: Any, send: Any) -> Any:
        calls.append(scope["path"])
        raise RuntimeError("not an ASGI app")

    middleware = asgi.ConsentMiddleware(app, config=_DISPATCH_CONFIG)
    with pytest.raises(RuntimeError, match="not an ASGI app"):
        middleware({"type": "http", "method": "GET", "path": "/page", "headers": []}, None, None)
    assert calls == ["/page"]


@compiled_only
def test_the_dispatchs_fields_are_the_middlewares_attributes() -> None:
    seen: list[object] = []
    first, second = _inner([], seen), _inner([], ["second"])
    middleware = asgi.ConsentMiddleware(first, config=_DISPATCH_CONFIG)
    assert middleware.app is first
    assert middleware._prefix == "/_consent"
    assert middleware._owned_prefix == "/_consent/"
    assert middleware._excludes is True
    middleware.app = second
    scope = {"type": "http", "method": "GET", "path": "/page", "headers": []}
    to_second = middleware(dict(scope), None, None)
    assert to_second.cr_code is second.__code__
    to_second.close()
    middleware._excludes = 0  # type: ignore[assignment]
    assert middleware._excludes is False
    del middleware.app
    awaitable = middleware(dict(scope), None, None)
    with pytest.raises(AttributeError):
        asyncio.run(_awaits(awaitable))
    with pytest.raises(AttributeError):
        del middleware._excludes
    # Anything but three positional arguments goes to the definition.
    middleware.app = first
    by_keyword = middleware(scope, None, send=None)
    assert by_keyword.cr_code is asgi.ConsentMiddleware.__call__.__code__
    by_keyword.close()
    with pytest.raises(TypeError):
        middleware(scope)
    with pytest.raises(TypeError, match="not callable"):
        _responder.Front()({}, None, None)
    with pytest.raises(TypeError):
        _responder.fasten_call(_responder.Front)
    with pytest.raises(TypeError):
        _responder.fasten_call(int)
    with pytest.raises(TypeError):
        _responder.configure(int, frozenset())
    with pytest.raises(TypeError):
        _responder.configure(asgi._HTMLResponder, {b"image"})


# -- a page sent whole, rewritten by the compiled responder -----------------------------------

_CAP = 1024


class _RecordingEngine(ConsentEngine):
    """An engine that records what ``rewrite_page`` is given and answers ``answer``."""

    def __init__(self, answer: object) -> None:
        super().__init__(gating_config(consent_mode=False, html_size_cap=_CAP))
        self.answer = answer
        self.calls: list[object] = []

    def rewrite_page(self, state: Any, headers: Any, body: bytes, **values: Any) -> Any:  # type: ignore[override]
        self.calls.append((state, headers, body, values))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


_PARTS = st.tuples(
    st.just("GET"),
    st.sampled_from(["/", "/p", "/é"]),
    st.sampled_from([None, b"", b"/raw", b"/r\xe9"]),
    st.sampled_from([b"", b"a=1", b"\xff"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                [b"cookie", b"accept-language", b"host", b"Cookie", b"hostx", b"x", b"cookie "]
            ),
            st.sampled_from([b"a=1", b"fr, en;q=0.5", b"example.org", b"\xe9", b"", b" x "]),
        ),
        max_size=5,
    )
    | st.just([[b"cookie", b"a=1"]])
    | st.just(({b"host": b"x"},)),
)
_ANSWERS = st.sampled_from(
    [
        None,
        ([(b"content-type", b"text/html")], b"<p>new</p>"),
        [[(b"x", b"1")], b"listed"],
        (1, 2, 3),
        RuntimeError("engine failed"),
    ]
)
_BODIES = st.sampled_from(
    [
        {"type": "http.response.body", "body": b"<p>" + b"x" * 20 + b"</p>"},
        {"type": "http.response.body", "body": b"y" * _CAP, "more_body": False},
        {"type": "http.response.body", "body": b"z" * (_CAP + 1)},
        {"type": "http.response.body", "body": b"<p>a</p>", "more_body": 0},
        {"type": "http.response.body", "body": bytearray(b"<p>b</p>")},
        {"type": "http.response.body"},
        {"type": "http.response.trailers", "headers": []},
    ]
)


def _page_run(
    responder_class: type[Any], parts: Any, answer: object, messages: list[dict[str, Any]]
) -> list[object]:
    """:func:`_run` through an engine answering ``answer``, and what the engine was given."""
    engine = _RecordingEngine(answer)
    sent = _run(responder_class, messages, engine=engine, parts=parts)
    return [*sent, ("rewrite_page given", engine.calls)]


@compiled_only
@settings(max_examples=800, deadline=None)
@given(_PARTS, _ANSWERS, st.lists(_BODIES, min_size=1, max_size=2))
@example(
    ("GET", "/p", b"/raw", b"a=1", [(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"host", b"h")]),
    ([(b"content-type", b"text/html")], b"<p>new</p>"),
    [{"type": "http.response.body", "body": b"<p>page</p>"}],
)
def test_a_whole_page_is_rewritten_as_the_definition_rewrites_it(
    parts: Any, answer: object, bodies: list[dict[str, Any]]
) -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html")],
    }
    messages = [start, *bodies]
    compiled = _page_run(asgi._HTMLResponder, parts, answer, messages)
    assert compiled == _page_run(_PyHTMLResponder, parts, answer, messages)


@compiled_only
def test_the_compiled_responder_answers_a_whole_page_with_a_page_answer() -> None:
    engine = _RecordingEngine(([(b"content-length", b"10")], b"<p>new</p>"))
    sent: list[object] = []

    async def downstream(message: dict[str, Any]) -> None:
        sent.append(message)

    parts = ("GET", "/p", b"/p%C3%A9", b"q=1", [(b"cookie", b"a=1"), (b"accept-language", b"en")])
    responder = asgi._HTMLResponder(engine, parts, NOTHING, downstream)
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html")],
    }
    assert responder(start) is _responder.DONE
    answer = responder({"type": "http.response.body", "body": b"<p>old</p>"})
    assert isinstance(answer, _responder.PageAnswer)
    assert sent == []
    asyncio.run(_awaits(answer))
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]},
        {"type": "http.response.body", "body": b"<p>new</p>", "more_body": False},
    ]
    assert engine.calls == [
        (
            NOTHING,
            start["headers"],
            b"<p>old</p>",
            {
                "target": "/p%C3%A9?q=1",
                "accept_language": "en",
                "cookie_header": "a=1",
                "host": None,
            },
        )
    ]
    with pytest.raises(TypeError, match="exactly one message"):
        responder()
    with pytest.raises(TypeError, match="exactly one message"):
        responder(start, message=start)


@compiled_only
def test_the_compiled_paths_keep_no_memory_from_one_request_to_the_next() -> None:
    import gc
    import tracemalloc

    config = gating_config(consent_mode=False)
    cookie = "mypharm_consent=" + ENGINE.cookie.encode("b" * 22, frozenset({"analytics"}))
    html_start = {"type": "http.response.start", "status": 200, "headers": _HTML_START["headers"]}

    async def whole(scope: Any, receive: Any, send: Any) -> None:
        await send(dict(html_start))
        await send({"type": "http.response.body", "body": _PAGE[:-1] + _PAGE[-1:]})

    async def in_parts(scope: Any, receive: Any, send: Any) -> None:
        await send(dict(html_start))
        await send({"type": "http.response.body", "body": _PAGE[:20], "more_body": True})
        await send({"type": "http.response.body", "body": _PAGE[20:]})

    async def json(scope: Any, receive: Any, send: Any) -> None:
        await send(dict(_JSON_START))
        await send({"type": "http.response.body", "body": b"{}"})

    requests = []
    for app in (whole, in_parts, json):
        middleware = asgi.ConsentMiddleware(app, config=config)
        for headers in (
            [(b"host", b"example.org")],
            [(b"cookie", cookie.encode()), (b"accept-language", b"en")],
            [(b"sec-gpc", b"1"), (b"sec-fetch-dest", b"image")],
        ):
            requests.append((middleware, "/p", headers))
        requests.append((middleware, "/_consent/static/consent.css", []))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def rounds(count: int) -> None:
        for _ in range(count):
            for middleware, path, headers in requests:
                scope = {
                    "type": "http",
                    "method": "GET",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"q=1",
                    "headers": headers,
                }
                await middleware(scope, receive, send)

    async def growth() -> tuple[int, int]:
        await rounds(500)  # every cache filled
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await rounds(2000)
            gc.collect()
            middle = tracemalloc.get_traced_memory()[0]
            await rounds(2000)
            gc.collect()
            return middle - before, tracemalloc.get_traced_memory()[0] - middle
        finally:
            tracemalloc.stop()

    first, second = asyncio.run(growth())
    # Each half is 2,000 requests of each of the 12 kinds: an object of 16 bytes or more kept
    # by one kind of request is 32,000 bytes or more in both. A cache refreshed once (the
    # banner's form token changes every minute) grows one half only.
    assert min(first, second) < 16_000, (first, second)


# -- a returning visitor's state, read in C from what the engine remembers ------------------

_NOW = 1_800_000_000.0


class _Clock:
    def __init__(self) -> None:
        self.now = _NOW

    def __call__(self) -> float:
        return self.now


def _value(at: float, revision: int, consent_id: str, granted: set[str]) -> str:
    config = gating_config(consent_mode=False, policy_revision=revision)
    clock = _Clock()
    clock.now = at
    return ConsentEngine(config, clock=clock).cookie.encode(consent_id, frozenset(granted))


_AGE = int(gating_config().consent_max_age.total_seconds())
_CONSENT_VALUES = st.sampled_from(
    [
        _value(_NOW, 1, "H" * 22, {"analytics"}),
        _value(_NOW - _AGE + 50, 1, "I" * 22, {"marketing"}),
        _value(_NOW + 100, 1, "J" * 22, set()),
        _value(_NOW, 2, "K" * 22, {"analytics"}),
        "forged.value.sig",
        "",
    ]
).map(lambda value: f"mypharm_consent={value}")
_OTHER_COOKIES = st.sampled_from(["_ga=GA1.2.3", "sessionid=abc", "x=" + "a" * 2100, "", " "])


@compiled_only
@settings(max_examples=400, deadline=None)
@given(
    st.lists(_CONSENT_VALUES | _OTHER_COOKIES, max_size=5),
    st.lists(st.sampled_from([0, 60, 120, 3600, _AGE]), min_size=1, max_size=3),
    st.sampled_from([None, b"1", b"0"]),
)
def test_a_returning_visitors_state_is_the_engines(
    pieces: list[str], steps: list[int], gpc: bytes | None
) -> None:
    clock = _Clock()
    config = gating_config(consent_mode=False)
    middleware = asgi.ConsentMiddleware(_inner([], []), config=config, clock=clock)
    reference = ConsentEngine(config, clock=clock)
    header = "; ".join(pieces).encode("latin-1")
    headers = [(b"cookie", header)] + ([(b"sec-gpc", gpc)] if gpc is not None else [])
    for step in [0, 0, *steps]:  # a first reading, then the remembered values as time goes by
        clock.now += step
        scope = {"type": "http", "method": "GET", "path": "/p", "headers": headers}
        awaitable = middleware(scope, None, None)
        awaitable.close()
        expected = reference.state_from(header.decode("latin-1"), gpc and gpc.decode())
        assert scope["state"]["consent"] == expected
