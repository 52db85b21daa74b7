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


def _run(responder_class: type[Any], messages: list[dict[str, Any]]) -> list[object]:
    """What reaches the server through a fresh responder, and how each send ended."""
    sent: list[object] = []

    async def downstream(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        parts = ("GET", "/", b"/", b"", [(b"host", b"example.org")])
        responder = responder_class(ENGINE, parts, NOTHING, downstream)
        for message in messages:
            try:
                await responder.send(dict(message))
            except Exception as exc:
                sent.append(("raised", type(exc).__name__))
        sent.append(("passing", responder.passing, "held", responder.start is not None))

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
    assert sent[2] == ("passing", False, "held", True)


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
    assert stdout.split() == ["False", "_PyResponder", "True", "True", "True"]
    assert logged in stderr
