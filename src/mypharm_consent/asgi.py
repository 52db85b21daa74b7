"""``ConsentMiddleware``: the consent layer as pure ASGI middleware.

It exposes the visitor's consent as ``scope["state"]["consent"]`` (so
``request.state.consent`` in Starlette and FastAPI), answers the package's
own endpoints under ``config.prefix``, and rewrites HTML pages through
:class:`~mypharm_consent.engine.ConsentEngine`. Everything else passes through
untouched: non-HTML and compressed responses, ``HEAD`` requests, and HTML
bodies that grow past ``html_size_cap`` while streaming.

Place it inside any compression middleware, which must run outermost (first
in a ``middleware=[...]`` list, or added last with ``add_middleware``):
compressed pages cannot be rewritten.
"""

from __future__ import annotations

import time

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mypharm_consent.config import ConsentConfig
from mypharm_consent.cookie import Clock
from mypharm_consent.engine import ConsentEngine, ConsentRequest, ConsentResponse
from mypharm_consent.state import ConsentState

__all__ = ["ConsentMiddleware"]

#: The response headers that tell whether a body is rewritten.
_RESPONSE_TYPE_HEADERS = frozenset({b"content-type", b"content-encoding"})
#: The parts of the scope a :class:`ConsentRequest` is built from.
_REQUEST_KEYS = ("method", "path", "raw_path", "query_string", "headers")


class ConsentMiddleware:
    """Cookie consent for an ASGI app: banner, decide endpoint, consent state.

    ``app.add_middleware(ConsentMiddleware, config=ConsentConfig(...))``.
    ``clock`` (seconds since the epoch) is for tests.
    """

    def __init__(self, app: ASGIApp, *, config: ConsentConfig, clock: Clock = time.time) -> None:
        self.app = app
        self.config = config
        self.engine = ConsentEngine(config, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        engine = self.engine
        # Only the two headers the consent state depends on are decoded here:
        # most responses (anything not HTML) need nothing more.
        cookies: list[bytes] = []
        gpc: list[bytes] = []
        for name, value in scope.get("headers", ()):
            key = name.lower()
            if key == b"cookie":
                cookies.append(value)
            elif key == b"sec-gpc":
                gpc.append(value)
        state = engine.state_from(
            b"; ".join(cookies).decode("latin-1") if cookies else None,
            b", ".join(gpc).decode("latin-1") if gpc else None,
        )
        scope.setdefault("state", {})["consent"] = state
        path = scope["path"]
        if engine.owns(path):
            await self._answer(_request(scope), receive, send)
            return
        if not engine.rewrites_path(scope["method"].upper(), path):
            await self.app(scope, receive, send)
            return
        # What the request is made of, as the client sent it: routing may
        # change the scope before the response starts.
        sent = {key: scope[key] for key in _REQUEST_KEYS if key in scope}
        responder = _HTMLResponder(engine, sent, state, send)
        await self.app(scope, receive, responder.send)

    async def _answer(self, request: ConsentRequest, receive: Receive, send: Send) -> None:
        if not self.engine.reads_body(request):
            if self.engine.history is not None:
                # The history part of the preferences page queries the receipt store.
                response = await anyio.to_thread.run_sync(self.engine.handle, request)
            else:
                response = self.engine.handle(request)
            await _send_response(send, response)
            return
        if self.engine.body_too_large(request):
            await _send_response(send, self.engine.payload_too_large(request))
            return
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
            if len(body) > self.config.max_form_bytes:
                await _send_response(send, self.engine.payload_too_large(request))
                return
        # The decision hook may write a receipt: keep it off the event loop.
        response = await anyio.to_thread.run_sync(self.engine.handle, request, bytes(body))
        await _send_response(send, response)


class _HTMLResponder:
    """One response on its way out: held back if it is HTML, rewritten when complete.

    Whether it is HTML is known at ``http.response.start``; any other
    response is handed on message by message from then on, untouched.
    """

    __slots__ = (
        "chunks",
        "downstream",
        "engine",
        "headers",
        "passing",
        "request",
        "scope",
        "size",
        "start",
        "state",
    )

    def __init__(
        self, engine: ConsentEngine, scope: Scope, state: ConsentState, send: Send
    ) -> None:
        self.engine = engine
        self.scope = scope
        self.state = state
        self.downstream = send
        self.request: ConsentRequest | None = None
        self.start: Message | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.passing = False

    async def send(self, message: Message) -> None:
        if self.passing:
            await self.downstream(message)
            return
        kind = message["type"]
        if kind == "http.response.start" and self.start is None:
            raw = message.get("headers", ())
            relevant = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in raw
                if name.lower() in _RESPONSE_TYPE_HEADERS
            ]
            if not self.engine.rewrites_response(message["status"], relevant):
                self.passing = True
                await self.downstream(message)
                return
            self.request = _request(self.scope)
            self.start = message
            self.headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
            return
        request = self.request
        if kind != "http.response.body" or request is None:
            await self._give_up(message)
            return
        chunk = message.get("body", b"")
        self.chunks.append(chunk)
        self.size += len(chunk)
        if message.get("more_body", False):
            if self.size > self.engine.config.html_size_cap:
                self.engine.note_oversized(request)
                await self._give_up({"type": "http.response.body", "body": b"", "more_body": True})
            return
        body = b"".join(self.chunks)
        rewritten = None
        if self.size <= self.engine.config.html_size_cap:
            rewritten = self.engine.rewrite_html(request, self.state, self.headers, body)
        else:
            self.engine.note_oversized(request)
        if rewritten is None:
            await self._give_up({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers, new_body = rewritten
        start = dict(self.start or {})
        start["headers"] = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": new_body, "more_body": False})

    async def _give_up(self, message: Message) -> None:
        """Send what was held back unchanged, then ``message``, and stop rewriting."""
        self.passing = True
        if self.start is not None:
            await self.downstream(self.start)
            if self.chunks:
                body = b"".join(self.chunks)
                await self.downstream(
                    {"type": "http.response.body", "body": body, "more_body": True}
                )
        await self.downstream(message)


def _request(scope: Scope) -> ConsentRequest:
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope.get("headers", [])]
    query = scope.get("query_string", b"").decode("latin-1")
    raw_path = scope.get("raw_path")
    path_part = raw_path.decode("latin-1") if raw_path else scope["path"]
    target = path_part + (f"?{query}" if query else "")
    return ConsentRequest.from_pairs(scope["method"], scope["path"], query, headers, target)


async def _send_response(send: Send, response: ConsentResponse) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    if response.status not in (204, 304) and not any(n == b"content-length" for n, _ in headers):
        headers.append((b"content-length", str(len(response.body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
