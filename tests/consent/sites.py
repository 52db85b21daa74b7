"""One tiny site, served identically by an ASGI app and a WSGI app, for the protocol table."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from mypharm_consent import ConsentConfig, ConsentMiddleware, ConsentState
from mypharm_consent.wsgi import ConsentWSGIMiddleware

PAGE = (
    "<!doctype html><html><head><title>Accueil</title></head><body><h1>Pharmacie</h1></body></html>"
)
FRAGMENT = "<li>Paracétamol</li>"
#: Path -> (status, content-type, body chunks, extra headers).
PAGES: dict[str, tuple[int, str, list[bytes], list[tuple[str, str]]]] = {
    "/": (200, "text/html; charset=utf-8", [PAGE.encode()], [("etag", '"page-1"')]),
    "/missing": (404, "text/html; charset=utf-8", [PAGE.encode()], []),
    "/chunked": (
        200,
        "text/html; charset=utf-8",
        [b"<html><body><h1>Un</h1>", b"<p>deux</p>", b"</body></html>"],
        [],
    ),
    "/fragment": (200, "text/html; charset=utf-8", [FRAGMENT.encode()], []),
    "/upper": (200, "text/html", [b"<HTML><BODY><P>Pharmacie</P></BODY></HTML>"], []),
    "/no-end": (200, "text/html", [b"<!doctype html><html><body><p>Pharmacie"], []),
    "/latin1": (
        200,
        "text/html; charset=iso-8859-1",
        ["<html><body><p>Crème</p></body></html>".encode("latin-1")],
        [],
    ),
    "/bad-bytes": (200, "text/html; charset=utf-8", [b"<html><body>\xff\xfe</body></html>"], []),
    "/bad-ascii": (200, "text/html; charset=ascii", [b"<html><body>\xff\xfe</body></html>"], []),
    "/gzipped": (
        200,
        "text/html; charset=utf-8",
        [gzip.compress(PAGE.encode(), mtime=0)],
        [("content-encoding", "gzip")],
    ),
    "/plain": (200, "text/plain; charset=utf-8", [b"</body> not html"], []),
    "/excluded": (200, "text/html; charset=utf-8", [PAGE.encode()], []),
    "/vary": (200, "text/html; charset=utf-8", [PAGE.encode()], [("vary", "Accept-Encoding")]),
}
BIG_CHUNK = b"<p>" + b"x" * 1020 + b"</p>"


def big_page_chunks(cap: int) -> list[bytes]:
    """An HTML body streamed in 1 KiB chunks, larger than ``cap``."""
    count = cap // len(BIG_CHUNK) + 2
    return [b"<html><body>", *([BIG_CHUNK] * count), b"</body></html>"]


def state_json(state: ConsentState) -> bytes:
    """What the ``/state`` page answers: the consent state the app received."""
    return json.dumps(
        {
            "decided": state.decided,
            "granted": sorted(state.granted),
            "consent_id": state.consent_id,
            "revision": state.revision,
            "marketing": state.allows("marketing"),
            "gpc": state.gpc,
        }
    ).encode()


def asgi_site(config: ConsentConfig, clock: Callable[[], float]) -> Any:
    """The site as a Starlette app behind :class:`ConsentMiddleware`."""

    async def page(request: Request) -> Response:
        if request.url.path == "/state":
            return Response(state_json(request.state.consent), media_type="application/json")
        if request.url.path == "/big":
            chunks = big_page_chunks(config.html_size_cap)
            return StreamingResponse(iter(chunks), media_type="text/html")
        status, content_type, chunks, headers = PAGES[request.url.path]
        if len(chunks) > 1:
            return StreamingResponse(iter(chunks), status, dict(headers), content_type)
        response = Response(chunks[0], status, dict(headers))
        response.headers["content-type"] = content_type
        return response

    routes = [
        Route(path, page, methods=["GET", "HEAD", "POST"]) for path in [*PAGES, "/state", "/big"]
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(ConsentMiddleware, config=config, clock=clock)]
    )


def wsgi_site(config: ConsentConfig, clock: Callable[[], float]) -> Any:
    """The same site as a plain WSGI app behind :class:`ConsentWSGIMiddleware`."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/state":
            start_response("200 OK", [("content-type", "application/json")])
            return [state_json(environ["mypharm_consent"])]
        if path == "/big":
            start_response("200 OK", [("content-type", "text/html; charset=utf-8")])
            return iter(big_page_chunks(config.html_size_cap))
        if path not in PAGES:
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"not found"]
        status, content_type, chunks, headers = PAGES[path]
        reason = "OK" if status == 200 else "Not Found"
        response_headers = [("content-type", content_type), *headers]
        if len(chunks) == 1:
            response_headers.append(("content-length", str(len(chunks[0]))))

        def body() -> Iterator[bytes]:
            start_response(f"{status} {reason}", response_headers)
            yield from chunks

        return body()

    return ConsentWSGIMiddleware(app, config=config, clock=clock)


class SyncASGITransport(httpx.BaseTransport):
    """Drives an ASGI app from a synchronous :class:`httpx.Client`, one event loop per request.

    So that the ASGI and WSGI adapters run the very same test code. The loop
    runs in a worker thread: the test's own thread may already run one (the
    synchronous Playwright API does).
    """

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)
        self.worker = ThreadPoolExecutor(max_workers=1)

    def close(self) -> None:
        self.worker.shutdown()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )

        return self.worker.submit(anyio.run, send).result()


class LatinWSGITransport(httpx.BaseTransport):
    """Calls a WSGI app the way PEP 3333 servers do: header bytes decoded as latin-1.

    httpx's own WSGI transport decodes header values as ASCII, which would
    keep the tests from sending the raw non-UTF-8 bytes real clients can send.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.url.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(request.url.raw_path.split(b"?")[0].decode("ascii"), "latin-1"),
            "QUERY_STRING": request.url.query.decode("ascii"),
            "SERVER_NAME": request.url.host,
            "SERVER_PORT": str(request.url.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
        }
        for raw_name, raw_value in request.headers.raw:
            key = raw_name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            value = raw_value.decode("latin-1")
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        if request.method == "HEAD":
            content = b""
        return httpx.Response(
            int(status.split()[0]), headers=headers, content=content, request=request
        )


def run_async(function: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``function`` in a fresh event loop on a worker thread (see SyncASGITransport)."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(anyio.run, function).result()


def client_for(adapter: str, app: Any) -> httpx.Client:
    """A synchronous client talking to ``app`` through the named adapter."""
    transport: httpx.BaseTransport = (
        SyncASGITransport(app) if adapter == "asgi" else LatinWSGITransport(app)
    )
    return httpx.Client(transport=transport, base_url="http://testserver")
