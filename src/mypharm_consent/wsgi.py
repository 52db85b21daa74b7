"""``ConsentWSGIMiddleware``: the consent layer for WSGI apps (Flask, Django, ...).

Same engine and same behaviour as :class:`~mypharm_consent.ConsentMiddleware`:
the visitor's consent is ``environ["mypharm_consent"]``, the package's
endpoints are answered under ``config.prefix``, and complete, uncompressed
HTML pages are rewritten; everything else streams through untouched.

``app.wsgi_app = ConsentWSGIMiddleware(app.wsgi_app, config=ConsentConfig(...))``
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from mypharm_consent.config import ConsentConfig
from mypharm_consent.cookie import Clock
from mypharm_consent.engine import ConsentEngine, ConsentRequest, ConsentResponse
from mypharm_consent.state import ConsentState

__all__ = ["ENVIRON_KEY", "ConsentWSGIMiddleware"]

#: Where the visitor's :class:`~mypharm_consent.ConsentState` is put in the environ.
ENVIRON_KEY = "mypharm_consent"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
_Headers = list[tuple[str, str]]


class StartResponse(Protocol):
    """The WSGI ``start_response`` callable."""

    def __call__(
        self, status: str, headers: _Headers, exc_info: _ExcInfo | None = ..., /
    ) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_REASONS = {
    200: "OK",
    303: "See Other",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
}


class ConsentWSGIMiddleware:
    """Cookie consent for a WSGI app: banner, decide endpoint, consent state.

    ``clock`` (seconds since the epoch) is for tests.
    """

    def __init__(self, app: WSGIApp, *, config: ConsentConfig, clock: Clock = time.time) -> None:
        self.app = app
        self.config = config
        self.engine = ConsentEngine(config, clock=clock)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        engine = self.engine
        state = engine.state_from(environ.get("HTTP_COOKIE"), environ.get("HTTP_SEC_GPC"))
        environ[ENVIRON_KEY] = state
        path = _path(environ)
        if engine.owns(path):
            request = _request(environ, path)
            return _respond(start_response, self._answer(request, environ))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        # The request itself is only read for an HTML page: keep what the app
        # might change in the environ (routing rewrites PATH_INFO) as it was.
        rewrites_path = engine.rewrites_path(method, path)
        snapshot = environ.copy() if rewrites_path else environ
        return _Rewriter(self, environ, snapshot, path, rewrites_path, state, start_response)

    def _answer(self, request: ConsentRequest, environ: dict[str, Any]) -> ConsentResponse:
        if not self.engine.reads_body(request):
            return self.engine.handle(request)
        if self.engine.body_too_large(request):
            return self.engine.payload_too_large(request)
        body = _read_body(environ, self.config.max_form_bytes)
        if body is None:
            return self.engine.payload_too_large(request)
        return self.engine.handle(request, body)


class _Rewriter:
    """The response iterable: the app's body, rewritten if it is a complete HTML page."""

    def __init__(
        self,
        middleware: ConsentWSGIMiddleware,
        environ: dict[str, Any],
        original: dict[str, Any],
        path: str,
        rewrites_path: bool,
        state: ConsentState,
        start_response: StartResponse,
    ) -> None:
        self.engine = middleware.engine
        self.original = original
        self.path = path
        self.rewrites_path = rewrites_path
        self.state = state
        self.start_response = start_response
        self.status = ""
        self.headers: _Headers = []
        self.written: list[bytes] = []
        self.result = middleware.app(environ, self._capture)
        self.iterator = self._run()

    def _is_html(self) -> bool:
        return self.rewrites_path and self.engine.rewrites_response(
            _status_code(self.status), self.headers
        )

    def _capture(
        self, status: str, headers: _Headers, exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[1] is not None and self.status == "sent":
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.written.append

    def __iter__(self) -> Iterator[bytes]:
        return self.iterator

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()

    def _run(self) -> Iterator[bytes]:
        source = iter(self.result)
        held: list[bytes] = []
        size = 0
        rewrite: bool | None = None
        cap = self.engine.config.html_size_cap
        for chunk in source:
            if rewrite is None:
                if not self.status:
                    if chunk:
                        raise RuntimeError("the application sent a body before start_response")
                    continue
                rewrite = self._is_html()
                if not rewrite:
                    yield from self._pass_through(self.written, chunk, source)
                    return
            held.append(chunk)
            size += len(chunk)
            if size > cap:
                self.engine.note_oversized(_request(self.original, self.path))
                yield from self._pass_through([*self.written, *held], b"", source)
                return
        if not self.status:
            raise RuntimeError("the application did not call start_response")
        body = b"".join([*self.written, *held])
        rewritten = None
        if self._is_html():
            request = _request(self.original, self.path)
            rewritten = self.engine.rewrite_html(request, self.state, self.headers, body)
        if rewritten is None:
            self._start(self.headers)
            if body:
                yield body
            return
        headers, new_body = rewritten
        self._start(headers)
        yield new_body

    def _pass_through(
        self, before: list[bytes], chunk: bytes, rest: Iterator[bytes]
    ) -> Iterator[bytes]:
        self._start(self.headers)
        yield from before
        if chunk:
            yield chunk
        yield from rest

    def _start(self, headers: _Headers) -> None:
        status = self.status
        self.status = "sent"
        self.start_response(status, headers)


def _status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 500


def _respond(start_response: StartResponse, response: ConsentResponse) -> list[bytes]:
    headers = list(response.headers)
    if response.status not in (204, 304) and not any(n == "content-length" for n, _ in headers):
        headers.append(("content-length", str(len(response.body))))
    reason = _REASONS.get(response.status, "")
    start_response(f"{response.status} {reason}".rstrip(), headers)
    return [response.body]


def _read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The request body, or ``None`` if it is larger than ``limit`` bytes."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    declared = environ.get("CONTENT_LENGTH", "")
    if isinstance(declared, str) and declared.strip().isdigit():
        body: bytes = stream.read(int(declared.strip()))
        return body
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if not chunked and not environ.get("wsgi.input_terminated"):
        return b""
    body = stream.read(limit + 1)
    return None if len(body) > limit else body


def _path(environ: dict[str, Any]) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PEP 3333 hands paths over as latin-1 decoded bytes; go back to real text.
    try:
        return str(path.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        return str(path)


def _request(environ: dict[str, Any], path: str) -> ConsentRequest:
    headers: _Headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), value))
    if "HTTP_HOST" not in environ and environ.get("SERVER_NAME"):
        port = environ.get("SERVER_PORT", "")
        default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
        host = environ["SERVER_NAME"] + (f":{port}" if port and port != default else "")
        headers.append(("host", host))
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    query = environ.get("QUERY_STRING", "")
    target = raw if isinstance(raw, str) and raw.startswith("/") else None
    return ConsentRequest.from_pairs(
        environ.get("REQUEST_METHOD", "GET"), path, query, headers, target
    )
