"""The framework-free engine on its own: hostile values never raise, streams pass as they came."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mypharm_consent import ConsentMiddleware, ConsentState, gating
from mypharm_consent.cleanup import request_cookie_names
from mypharm_consent.cookie import ConsentCookie
from mypharm_consent.csrf import TOKEN_REUSE_SECONDS
from mypharm_consent.engine import ConsentEngine, ConsentRequest, safe_next
from mypharm_consent.pagecache import PageCache
from mypharm_consent.wsgi import ConsentWSGIMiddleware

from .conftest import FakeClock, form_token, make_config
from .gating_pages import gating_config
from .sites import run_async

ENGINE = ConsentEngine(make_config(), clock=FakeClock())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"[/\\%a-z:.0-9]{0,20}", fullmatch=True))
def test_safe_next_never_leaves_the_site(value: str) -> None:
    result = safe_next(value)
    for form in (result, unquote(result)):
        assert form.startswith("/")
        assert not form.startswith("//")
        assert "\\" not in form
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in form)
    parts = urlsplit(result)
    assert not parts.scheme
    assert not parts.netloc
    assert result.isascii()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_cookie_header_reads_without_raising(header: str) -> None:
    cookie = ConsentCookie(make_config(), clock=FakeClock())
    state = cookie.state(cookie.read(f"mypharm_consent={header}; {header}"))
    assert state.decided is False


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["application/x-www-form-urlencoded", "", "x/y"]))
def test_any_form_body_gets_a_4xx(body: bytes, content_type: str) -> None:
    request = ConsentRequest.from_pairs(
        "POST", "/_consent/decide", "", [("content-type", content_type), ("host", "h")]
    )
    response = ENGINE.handle(request, body)
    assert 400 <= response.status < 500


def _run(scope: dict[str, Any], body_messages: list[dict[str, Any]]) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        for message in body_messages:
            await send(message)

    async def main() -> None:
        await ConsentMiddleware(inner, config=make_config())(scope, receive, send)

    run_async(main)
    return sent


def _scope(path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }


def test_non_html_streams_pass_through_message_by_message() -> None:
    messages = [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]},
        {"type": "http.response.body", "body": b"a,b\n", "more_body": True},
        {"type": "http.response.body", "body": b"1,2\n", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]
    assert _run(_scope(), messages) == messages


def test_html_past_the_cap_is_released_unchanged_as_soon_as_it_is_known() -> None:
    chunk = b"<p>" + b"x" * 3000 + b"</p>"
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html"), (b"content-length", b"6014")],
    }
    messages = [
        start,
        {"type": "http.response.body", "body": chunk, "more_body": True},
        {"type": "http.response.body", "body": chunk, "more_body": True},
        {"type": "http.response.body", "body": b"</body>", "more_body": False},
    ]
    sent = _run(_scope(), messages)
    assert sent[0] == start
    assert b"".join(m.get("body", b"") for m in sent[1:]) == chunk * 2 + b"</body>"
    assert sent[-1]["more_body"] is False


def test_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def main() -> None:
        middleware = ConsentMiddleware(inner, config=make_config())
        for kind in ("websocket", "lifespan"):
            await middleware({"type": kind}, None, None)  # type: ignore[arg-type]

    run_async(main)
    assert seen == ["websocket", "lifespan"]


def test_a_file_send_extension_after_an_html_start_is_not_lost() -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html")],
    }
    pathsend = {"type": "http.response.pathsend", "path": "/tmp/page.html"}
    assert _run(_scope(), [start, pathsend]) == [start, pathsend]


def test_wsgi_apps_using_the_legacy_write_callable_are_rewritten() -> None:
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        write = start_response("200 OK", [("content-type", "text/html")])
        write(b"<html><body><h1>Pharmacie</h1>")
        return Body([b"</body></html>"])

    middleware = ConsentWSGIMiddleware(app, config=make_config())
    started: list[Any] = []
    result = middleware(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "h", "wsgi.url_scheme": "http"},
        lambda status, headers, exc_info=None: started.append((status, dict(headers))),
    )
    body = b"".join(result)
    result.close()  # type: ignore[attr-defined]
    assert body.startswith(b"<html><body><h1>Pharmacie</h1>")
    assert b'id="mypharm-consent-banner"' in body
    assert body.endswith(b"</body></html>")
    status, headers = started[0]
    assert status == "200 OK"
    assert int(headers["content-length"]) == len(body)
    assert closed == [True]


# -- the cache of rewritten pages ---------------------------------------------

VIDEO_PAGE = (
    "<!doctype html><html lang='fr'><head><title>Conseils</title></head><body>"
    "<h1>Bien prendre son traitement é</h1>"
    '<iframe src="https://www.youtube.com/embed/abc" width="560" height="315"></iframe>'
    "</body></html>"
)
PAGES = {
    "tagged": VIDEO_PAGE,
    "plain": "<html><body><p>Pharmacie du Marché</p></body></html>",
    "capital-body": "<HTML><BODY><p>Crème</p></BODY></HTML>",
    "no-body-end": "<html><body><p>Sans fin",
    "fragment": "<p>Un fragment</p>",
    # The last "</body" before what gating last wrote: the banner is placed
    # from the whole gated page, not from the body left as it was.
    "gated-after-body-end": (
        "<html><head></head><body><p>Fin</p></body>"
        '<iframe src="https://www.youtube.com/embed/abc"></iframe></html>'
    ),
    "lower-then-capital-body-end": (
        "<html><body><p>a</p></body>"
        '<iframe src="https://www.youtube.com/embed/abc"></iframe></BODY></html>'
    ),
    "body-end-in-a-gated-tag": (
        "<html><body><iframe title='</body>' src='https://www.youtube.com/embed/abc'>"
        "</iframe><p>fin é</p></body></html>"
    ),
}
STATES = {
    "undecided": ConsentState.undecided(),
    "gpc": ConsentState.undecided(gpc=True),
    "analytics": ConsentState(decided=True, granted=frozenset({"necessary", "analytics"})),
    "all": ConsentState(decided=True, granted=frozenset({"necessary", "analytics", "marketing"})),
}


def _page_request(target: str = "/page", language: str = "fr") -> ConsentRequest:
    return ConsentRequest.from_pairs(
        "GET", target.partition("?")[0], "", [("host", "h"), ("accept-language", language)], target
    )


def _rewrite(
    engine: ConsentEngine,
    html: str,
    state: ConsentState,
    *,
    charset: str = "utf-8",
    target: str = "/page",
    language: str = "fr",
) -> str:
    headers = [("content-type", f"text/html; charset={charset}")]
    rewritten = engine.rewrite_html(
        _page_request(target, language), state, headers, html.encode(charset)
    )
    assert rewritten is not None
    new_headers, body = rewritten
    assert dict(new_headers)["content-length"] == str(len(body))
    return body.decode(charset)


@pytest.mark.parametrize("state_name", list(STATES))
@pytest.mark.parametrize("page_name", list(PAGES))
def test_a_page_served_from_the_cache_is_the_page_rewritten_afresh(
    page_name: str, state_name: str
) -> None:
    html, state = PAGES[page_name], STATES[state_name]
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    first = _rewrite(engine, html, state)
    # Kept the second time it is seen, served from the cache from then on.
    assert len(engine.pages) == 0
    assert _rewrite(engine, html, state) == first
    assert len(engine.pages) == 1
    assert _rewrite(engine, html, state) == first
    # UTF-16 pages are never split for the cache: they take the direct path.
    assert _rewrite(engine, html, state, charset="utf-16") == first
    assert len(engine.pages) == 1


def test_the_return_path_and_the_choice_are_per_request_on_a_cached_page() -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    first = _rewrite(engine, VIDEO_PAGE, STATES["undecided"], target="/a?x=1")
    second = _rewrite(engine, VIDEO_PAGE, STATES["undecided"], target="/b")
    assert 'name="next" value="/a?x=1"' in first
    assert 'name="next" value="/b"' in second
    decided = _rewrite(engine, VIDEO_PAGE, STATES["all"], target="/b")
    assert 'id="mypharm-consent-banner"' in second
    assert 'id="mypharm-consent-banner"' not in decided
    assert "youtube.com/embed/abc" in decided


def test_placeholders_follow_the_visitors_language() -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    french = _rewrite(engine, VIDEO_PAGE, STATES["undecided"], language="fr")
    english = _rewrite(engine, VIDEO_PAGE, STATES["undecided"], language="en-GB,en;q=0.9")
    assert "Charger ce contenu" in french
    assert "Load this content" in english
    assert "Charger ce contenu" not in english


def test_the_form_token_of_a_cached_page_rotates_and_stays_valid() -> None:
    clock = FakeClock()
    engine = ConsentEngine(gating_config(), clock=clock)
    first = form_token(_rewrite(engine, VIDEO_PAGE, STATES["undecided"]))
    assert form_token(_rewrite(engine, VIDEO_PAGE, STATES["undecided"])) == first
    clock.advance(TOKEN_REUSE_SECONDS)
    second = form_token(_rewrite(engine, VIDEO_PAGE, STATES["undecided"]))
    assert second != first
    assert len(engine.pages) == 1
    for token in (first, second):
        assert engine.csrf.check({}, "h", token) is None


def test_a_page_that_never_repeats_does_not_push_out_one_that_does() -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    engine.pages = PageCache(max_pages=2)
    for _ in range(2):
        _rewrite(engine, VIDEO_PAGE, STATES["undecided"])
    for number in range(10):
        unique = VIDEO_PAGE.replace("</h1>", f"</h1><!-- {number} -->")
        assert f"<!-- {number} -->" in _rewrite(engine, unique, STATES["undecided"])
    assert len(engine.pages) == 1
    assert _rewrite(engine, VIDEO_PAGE, STATES["undecided"]).count("Charger ce contenu") == 1


def test_pages_the_cache_would_not_hold_are_still_rewritten() -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    engine.pages = PageCache(max_page_bytes=10)
    for _ in range(2):
        html = _rewrite(engine, VIDEO_PAGE, STATES["undecided"])
        assert 'id="mypharm-consent-banner"' in html
    assert len(engine.pages) == 0


def test_the_return_path_is_the_one_the_client_asked_for_even_if_routing_changes_it() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        scope["path"], scope["raw_path"] = "/inner", b"/inner"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": b"<html><body></body></html>"})

    async def main() -> None:
        await ConsentMiddleware(mounted, config=make_config())(_scope("/shop/page"), receive, send)

    run_async(main)
    assert b'name="next" value="/shop/page"' in sent[1]["body"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/shop", "/inner"
        start_response("200 OK", [("content-type", "text/html")])
        return [b"<html><body></body></html>"]

    middleware = ConsentWSGIMiddleware(app, config=make_config())
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/shop/page", "HTTP_HOST": "h"}
    body = b"".join(middleware(environ, lambda status, headers, exc_info=None: None))
    assert b'name="next" value="/shop/page"' in body


@pytest.mark.parametrize("charset", ["base64", "rot13", "idna", "no-such-charset"])
def test_a_page_in_a_charset_that_is_no_text_encoding_passes_through(charset: str) -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    headers = [("content-type", f"text/html; charset={charset}")]
    for body in (b"", b"<html><body></body></html>", b"<html><body></body></html>"):
        assert engine.rewrite_html(_page_request(), ConsentState.undecided(), headers, body) is None


def test_a_page_whose_headers_are_not_latin1_passes_through() -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    headers = [("content-type", "text/html"), ("x-title", "Pharmacie – Lyon")]
    body = b"<html><body></body></html>"
    assert engine.rewrite_html(_page_request(), ConsentState.undecided(), headers, body) is None


@pytest.mark.parametrize("state_name", list(STATES))
def test_the_str_bytes_and_plain_value_rewrites_agree(state_name: str) -> None:
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    state = STATES[state_name]
    request = ConsentRequest.from_pairs(
        "GET",
        "/page",
        "q=1",
        [("host", "shop.example"), ("accept-language", "en"), ("cookie", "_ga=1; _fbp=2")],
        "/page?q=1",
    )
    body = PAGES["tagged"].encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("ETag", '"1"'), ("Vary", "Origin")]
    raw = [(name.encode(), value.encode()) for name, value in headers]
    as_text = engine.rewrite_html(request, state, headers, body)
    as_bytes = engine.rewrite_raw_html(request, state, raw, body)
    as_values = engine.rewrite_page(
        state,
        raw,
        body,
        target="/page?q=1",
        accept_language="en",
        cookie_header="_ga=1; _fbp=2",
        host="shop.example",
    )
    assert as_text is not None
    assert as_bytes is not None
    assert as_bytes == as_values
    assert as_text == (
        [(name.decode(), value.decode()) for name, value in as_bytes[0]],
        as_bytes[1],
    )
    assert (b"vary", b"Origin, Cookie, Accept-Language") in as_bytes[0]


_PAGE_PIECES = st.sampled_from(
    [
        "<html>",
        "<head>",
        "<body>",
        "</body>",
        "</BODY>",
        "</Body >",
        "<BODY>",
        "</html>",
        "<p>é</p>",
        "–",
        "€",
        "😀",
        "<!-- </body> -->",
        "<script>a='</body>'</script>",
        '<script src="https://www.googletagmanager.com/gtag/js"></script>',
        '<img data-consent="marketing" src="/p.gif">',
        "x",
        "\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_PAGE_PIECES, max_size=12).map("".join),
    st.sampled_from(["utf-8", "iso-8859-1", "cp1252", "ascii", "utf-16"]),
    st.sampled_from(list(STATES)),
    st.booleans(),
)
def test_the_rewritten_page_is_the_gated_text_with_the_markup_encoded(
    page: str, charset: str, state_name: str, seen_before: bool
) -> None:
    # The middleware encodes the gated page once and joins it with the banner as
    # bytes; it must answer exactly what gating the text, inserting the markup
    # before the last </body> (the last in any case when none is in lower case)
    # and encoding the whole would give.
    engine = ConsentEngine(gating_config(), clock=FakeClock())
    state = STATES[state_name]
    body = page.encode(charset, errors="xmlcharrefreplace")
    headers = [(b"content-type", f"text/html; charset={charset}".encode())]
    rewrites = 3 if seen_before else 1  # the third answer comes from the page cache
    for _ in range(rewrites):
        rewritten = engine.rewrite_page(state, headers, body, target="/p")
    assert rewritten is not None
    html = gating.gate_html(body.decode(charset), state, engine.config, remember=False)
    lowered = html.lower()
    position = html.rfind("</body")
    if position == -1:
        position = lowered.rfind("</body")
    if position == -1:
        position = len(html) if "<body" in lowered or "<html" in lowered else -1
    expected = html
    if position != -1:
        if state.decided:
            markup = engine._render_markup("fr", state.granted, "/p", "")
        else:
            markup = engine._render_markup("fr", None, "/p", engine.csrf.token())
        expected = html[:position] + markup + html[position:]
    assert rewritten[1] == expected.encode(charset, errors="xmlcharrefreplace")


# -- what a Cookie header says, remembered per header ---------------------------

_GENUINE = ConsentCookie(make_config(), clock=FakeClock()).encode(
    "AAAAAAAAAAAAAAAAAAAAAA", frozenset({"necessary", "analytics"})
)
_COOKIE_PIECES = st.sampled_from(
    [
        f"mypharm_consent={_GENUINE}",
        f'mypharm_consent="{_GENUINE}"',
        "mypharm_consent=forged.value.sig",
        "mypharm_consent=",
        "_ga=GA1.2.3",
        "_gid=x",
        "ap_id=1",
        "bad name=1",
        "mypharm_consentx=1",
        "sessionid=abc",
        "",
        " ",
        "=",
    ]
)


_CLOCK_START = 1_800_000_000.0
_MAX_AGE = make_config().consent_max_age.total_seconds()


def _signed(at: float, revision: int, consent_id: str, granted: set[str]) -> str:
    """A genuine consent cookie value signed at ``at`` under policy ``revision``."""
    cookie = ConsentCookie(make_config(policy_revision=revision), clock=FakeClock(at))
    return cookie.encode(consent_id, frozenset(granted))


_VALUES = [
    _signed(_CLOCK_START, 1, "D" * 22, {"necessary", "analytics"}),
    _signed(_CLOCK_START - _MAX_AGE + 50, 1, "E" * 22, {"necessary", "marketing"}),
    _signed(_CLOCK_START + 100, 1, "F" * 22, {"necessary"}),
    _signed(_CLOCK_START, 2, "G" * 22, {"necessary", "analytics"}),
]
_MORE_PIECES = st.sampled_from([f"mypharm_consent={value}" for value in _VALUES])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_COOKIE_PIECES | _MORE_PIECES | st.text(max_size=30), max_size=8),
    st.sampled_from([None, "1"]),
    st.lists(st.sampled_from([0, 60, 120, 3600]), min_size=1, max_size=3),
)
def test_a_remembered_cookie_header_reads_as_a_first_reading(
    pieces: list[str], gpc: str | None, steps: list[int]
) -> None:
    header = "; ".join(pieces)
    clock = FakeClock(_CLOCK_START)
    engine = ConsentEngine(make_config(), clock=clock)
    reference = ConsentCookie(make_config(), clock=clock)
    expected_names = tuple(request_cookie_names(header))
    # A first reading, then what the engine remembered, as the clock moves on: the
    # state is that of the first genuine, unexpired cookie of the current policy.
    for step in [0, 0, *steps]:
        clock.advance(step)
        expected_state = reference.state(reference.read(header), gpc=gpc == "1")
        assert engine.state_from(header, gpc) == expected_state
        if header:
            assert engine._cookie_says(header)[1] == expected_names


def test_a_remembered_cookie_still_expires() -> None:
    clock = FakeClock()
    config = make_config()
    value = ConsentCookie(config, clock=clock).encode(
        "BBBBBBBBBBBBBBBBBBBBBB", frozenset({"necessary", "analytics"})
    )
    engine = ConsentEngine(config, clock=clock)
    header = f"_ga=1; mypharm_consent={value}"
    assert engine.state_from(header, None).decided
    assert engine._current_cookies.cache_info().currsize == 1
    clock.advance(config.consent_max_age.total_seconds() + 1)
    # Same header, same remembered values: the age is checked again.
    assert not engine.state_from(header, None).decided
    assert engine._current_cookies.cache_info().hits >= 1


def test_long_cookie_headers_are_read_but_not_remembered() -> None:
    clock = FakeClock()
    config = make_config()
    value = ConsentCookie(config, clock=clock).encode(
        "CCCCCCCCCCCCCCCCCCCCCC", frozenset({"necessary", "marketing"})
    )
    engine = ConsentEngine(config, clock=clock)
    header = "x=" + "a" * 3000 + f"; mypharm_consent={value}"
    state = engine.state_from(header, None)
    assert state.decided
    assert "marketing" in state.granted
    assert engine._cookie_reading.cache_info().currsize == 0
    assert engine._current_cookies.cache_info().currsize == 0
    assert engine._cookie_says(header)[1] == ("x", "mypharm_consent")
