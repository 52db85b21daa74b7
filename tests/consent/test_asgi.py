"""The ASGI adapter at the message level: what it holds back, rewrites and hands on as is."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mypharm_consent import ConsentMiddleware, ConsentState
from mypharm_consent.asgi import _page_values

from .conftest import make_config

PAGE = (
    b"<!doctype html><html><head><title>Pharmacie</title></head><body><p>Bonjour</p></body></html>"
)
BANNER = b'id="mypharm-consent-banner"'
Message = dict[str, Any]


def app_sending(*messages: Message) -> Any:
    """An ASGI app that answers every request with ``messages`` and records its scope."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app.scope = scope  # type: ignore[attr-defined]
        for message in messages:
            await send(message)

    return app


def call(
    app: Any, *, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    """The messages the middleware around ``app`` (or ``app`` itself if it is one) sends."""
    sent: list[Message] = []
    scope = {
        "type": "http",
        "method": method,
        "path": "/page",
        "raw_path": b"/page",
        "query_string": b"q=1",
        "headers": headers if headers is not None else [(b"host", b"example.test")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = (
        app if isinstance(app, ConsentMiddleware) else ConsentMiddleware(app, config=make_config())
    )
    anyio.run(middleware, scope, receive, send)
    return sent


def start(*headers: tuple[bytes, bytes], status: int = 200) -> Message:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(content: bytes, *, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": content, "more_body": more}


@pytest.mark.parametrize(
    "content_type",
    [b"text/html; charset=utf-8", b"Text/HTML; Charset=UTF-8", b" text/html "],
    ids=["plain", "mixed-case", "spaces"],
)
def test_header_names_and_values_in_any_case_are_recognized(content_type: bytes) -> None:
    sent = call(
        app_sending(
            start(
                (b"Content-Type", content_type),
                (b"Content-Length", b"%d" % len(PAGE)),
                (b"ETag", b'"v1"'),
                (b"X-Request", b"kept"),
            ),
            body(PAGE),
        )
    )
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    headers = sent[0]["headers"]
    names = [name.lower() for name, _ in headers]
    assert BANNER in sent[1]["body"]
    assert names.count(b"content-length") == 1
    assert dict(headers)[b"content-length"] == b"%d" % len(sent[1]["body"])
    assert b"etag" not in names
    assert (b"X-Request", b"kept") in headers
    assert dict(headers)[b"vary"] == b"Cookie, Accept-Language"


@pytest.mark.parametrize(
    "first",
    [
        start((b"content-type", b"application/json")),
        start((b"content-type", b"text/html"), (b"content-encoding", b"gzip")),
        start((b"content-type", b"text/html"), status=304),
    ],
    ids=["json", "compressed", "not-modified"],
)
def test_other_responses_are_handed_on_as_the_same_messages(first: Message) -> None:
    messages = (first, body(b"{", more=True), body(b"}"))
    sent = call(app_sending(*messages))
    assert len(sent) == len(messages)
    assert all(got is message for got, message in zip(sent, messages, strict=True))


def test_a_head_request_is_never_held_back() -> None:
    messages = (start((b"content-type", b"text/html")), body(b""))
    sent = call(app_sending(*messages), method="HEAD")
    assert all(got is message for got, message in zip(sent, messages, strict=True))


def test_the_state_is_read_from_every_cookie_header() -> None:
    app = app_sending(start((b"content-type", b"text/plain")), body(b"ok"))
    call(app, headers=[(b"cookie", b"a=1"), (b"sec-gpc", b"1"), (b"cookie", b"b=2")])
    assert app.scope["state"]["consent"] == ConsentState.undecided(gpc=True)


def test_a_page_is_rewritten_from_the_target_and_three_headers_as_sent() -> None:
    values = _page_values(
        (
            "GET",
            "/page",
            b"/p%C3%A2ge",
            b"q=1",
            [
                (b"host", b"example.test"),
                (b"accept-language", b"en"),
                (b"cookie", b"a=1"),
                (b"user-agent", b"not needed"),
                (b"cookie", b"b=2"),
            ],
        )
    )
    assert values == ("/p%C3%A2ge?q=1", "en", "a=1; b=2", "example.test")
    assert _page_values(("GET", "/page", None, b"", [])) == ("/page", None, None, None)


def test_a_refused_categorys_cookies_are_expired_on_a_rewritten_page() -> None:
    sent = call(
        app_sending(start((b"content-type", b"text/html")), body(PAGE)),
        headers=[(b"host", b"example.test"), (b"cookie", b"_ga=GA1.2; _fbp=fb.1; other=1")],
    )
    expired = [value for name, value in sent[0]["headers"] if name == b"set-cookie"]
    assert [value.split(b"=")[0] for value in expired] == [b"_ga", b"_fbp"]
    assert all(b"Max-Age=0" in value for value in expired)


def test_a_page_answered_again_is_the_same_bytes_with_the_same_banner() -> None:
    middleware = ConsentMiddleware(
        app_sending(start((b"content-type", b"text/html")), body(PAGE)), config=make_config()
    )
    answers = [call(middleware)[1]["body"] for _ in range(3)]
    # The third answer comes from the page kept after the second one.
    assert answers[0] == answers[1] == answers[2]
    assert BANNER in answers[0]
    assert len(middleware.engine.pages) == 1


@pytest.mark.parametrize("destination", [b"image", b"script", b"style", b"font", b"worker"])
def test_a_subresource_request_is_handed_its_response_untouched(destination: bytes) -> None:
    messages = (start((b"content-type", b"text/html")), body(PAGE))
    app = app_sending(*messages)
    sent = call(
        app,
        headers=[
            (b"host", b"example.test"),
            (b"sec-fetch-dest", destination),
            (b"cookie", b"_ga=GA1.2"),
        ],
    )
    # The very messages the app sent: never held back, never rewritten.
    assert sent == list(messages)
    assert BANNER not in sent[1]["body"]
    assert isinstance(app.scope["state"]["consent"], ConsentState)


@pytest.mark.parametrize("destination", [b"document", b"iframe", b"empty", b"object", b"future"])
def test_pages_fetched_or_framed_and_unknown_destinations_are_rewritten(
    destination: bytes,
) -> None:
    sent = call(
        app_sending(start((b"content-type", b"text/html")), body(PAGE)),
        headers=[(b"host", b"example.test"), (b"sec-fetch-dest", destination)],
    )
    assert BANNER in sent[1]["body"]


@pytest.mark.parametrize("kind", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_a_page_sent_as_another_bytes_like_object_is_rewritten(kind: Any) -> None:
    middleware = ConsentMiddleware(
        app_sending(
            start((b"content-type", b"text/html")),
            body(kind(PAGE[:40]), more=True),
            body(kind(PAGE[40:])),
        ),
        config=make_config(),
    )
    single = ConsentMiddleware(
        app_sending(start((b"content-type", b"text/html")), body(kind(PAGE))),
        config=make_config(),
    )
    for app in (middleware, single):
        # Three times: the page is then kept, and answered from what was kept.
        answers = [call(app) for _ in range(3)]
        for sent in answers:
            assert BANNER in sent[1]["body"]
            assert b"<p>Bonjour</p>" in sent[1]["body"]
            assert dict(sent[0]["headers"])[b"content-length"] == b"%d" % len(sent[1]["body"])


def test_a_body_that_is_not_bytes_is_handed_on_as_it_is() -> None:
    message = body("<p>not bytes</p>")  # type: ignore[arg-type]
    sent = call(app_sending(start((b"content-type", b"text/html")), message))
    assert sent == [start((b"content-type", b"text/html")), message]
