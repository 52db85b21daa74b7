"""``ConsentMiddleware``: the consent layer as pure ASGI middleware.

It exposes the visitor's consent as ``scope["state"]["consent"]`` (so
``request.state.consent`` in Starlette and FastAPI), answers the package's
own endpoints under ``config.prefix``, and rewrites HTML pages through
:class:`~mypharm_consent.engine.ConsentEngine`. Everything else passes through
untouched: non-HTML and compressed responses, ``HEAD`` requests, requests
for a subresource (``Sec-Fetch-Dest`` ``image``, ``script``, ``style``...),
and HTML bodies that grow past ``html_size_cap`` while streaming.

Place it inside any compression middleware, which must run outermost (first
in a ``middleware=[...]`` list, or added last with ``add_middleware``):
compressed pages cannot be rewritten.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Generator, Iterable
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mypharm_consent.config import ConsentConfig
from mypharm_consent.cookie import Clock
from mypharm_consent.engine import (
    _MAX_REMEMBERED_COOKIE_CHARS,
    ConsentEngine,
    ConsentRequest,
    ConsentResponse,
)
from mypharm_consent.state import ConsentState

__all__ = ["SPEEDUPS", "ConsentMiddleware"]

logger = logging.getLogger("mypharm_consent")


class _PyFront:
    """What :class:`ConsentMiddleware` is built on without the compiled dispatch: nothing.

    With ``mypharm_consent._responder`` built it is ``_responder.Front``
    instead: the same attributes held as C fields, and a call that runs the
    common case of :meth:`ConsentMiddleware.__call__` in C and hands the app's
    own awaitable back (see :func:`_fasten_call`).
    """


def _no_fastening(cls: type) -> None:
    """Without the compiled dispatch a class is called through its ``__call__``."""


def _load_compiled() -> ModuleType | None:
    """``mypharm_consent._responder`` when built and allowed, else ``None``.

    ``MYPHARM_CONSENT_SPEEDUPS=0`` keeps the whole middleware on its Python
    definitions.
    """
    if os.environ.get("MYPHARM_CONSENT_SPEEDUPS", "1") == "0":
        return None
    try:
        from mypharm_consent import _responder
    except ImportError:
        logger.debug("mypharm_consent._responder is not built: the middleware runs in Python")
        return None
    return _responder


_compiled = _load_compiled()
if TYPE_CHECKING:
    _Front = _PyFront
    _fasten_call = _no_fastening
else:
    _Front = _PyFront if _compiled is None else _compiled.Front
    _fasten_call = _no_fastening if _compiled is None else _compiled.fasten_call


class ConsentMiddleware(_Front):
    """Cookie consent for an ASGI app: banner, decide endpoint, consent state.

    ``app.add_middleware(ConsentMiddleware, config=ConsentConfig(...))``.
    ``clock`` (seconds since the epoch) is for tests.

    ``__call__`` below is the definition. With the compiled extension a call
    runs its common case in C (a page or any other response of the app: the
    consent state set, the send wrapped when the response may be HTML) and
    returns the app's own awaitable, without a coroutine of the middleware's;
    the package's endpoints, and anything of an unusual type, are answered by
    the definition itself. A subclass that overrides ``__call__`` is called
    through its override.
    """

    def __init__(self, app: ASGIApp, *, config: ConsentConfig, clock: Clock = time.time) -> None:
        self.app = app
        self.config = config
        self.engine = ConsentEngine(config, clock=clock)
        # What every request is checked against, read once (see ConsentEngine.owns
        # and ConsentEngine.rewrites_path, which these checks inline).
        self._prefix = config.prefix
        self._owned_prefix = config.prefix + "/"
        self._excludes = bool(config.exclude_paths)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "__call__" not in cls.__dict__:
            _fasten_call(cls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        engine = self.engine
        # ASGI servers hand header names over lower-cased. Only the two the
        # consent state depends on are decoded here, and the one that tells
        # a subresource: most responses (anything not HTML) need nothing more.
        headers = scope.get("headers", ())
        cookie, gpc, destination = _read_headers(headers)
        if cookie is None and gpc is None:
            state = engine.first_visit
        else:
            state = engine.state_from(
                cookie.decode("latin-1") if cookie is not None else None,
                gpc.decode("latin-1") if gpc is not None else None,
            )
        scope.setdefault("state", {})["consent"] = state
        path = scope["path"]
        if path == self._prefix or path.startswith(self._owned_prefix):
            await self._answer(_request(scope), receive, send)
            return
        method = scope["method"].upper()
        if (
            destination in _SUBRESOURCE_DESTINATIONS
            or method == "HEAD"
            or (self._excludes and engine.is_excluded(path))
        ):
            await self.app(scope, receive, send)
            return
        # What the request is made of, as the client sent it: routing may
        # change the scope before the response starts.
        responder = _HTMLResponder(
            engine,
            (method, path, scope.get("raw_path"), scope.get("query_string", b""), headers),
            state,
            send,
        )
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


#: ``Sec-Fetch-Dest`` values of requests whose answer a browser never shows
#: as a page (images, scripts, style sheets, fonts, media, workers...): their
#: responses are passed through without being looked at. Documents, frames,
#: embeds, objects and ``empty`` (``fetch``/XHR, whose HTML a script may put
#: into the page) are rewritten, as is every request without the header.
_SUBRESOURCE_DESTINATIONS = frozenset(
    {
        b"audio",
        b"audioworklet",
        b"font",
        b"image",
        b"json",
        b"manifest",
        b"paintworklet",
        b"report",
        b"script",
        b"serviceworker",
        b"sharedworker",
        b"style",
        b"track",
        b"video",
        b"worker",
        b"xslt",
    }
)

#: How the request of a page to rewrite was sent: method, path, raw path,
#: query string and headers.
_RequestParts = tuple[str, str, bytes | None, bytes, Iterable[tuple[bytes, bytes]]]
_Headers = Iterable[tuple[bytes, bytes]]


def read_request_headers(headers: _Headers) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The request headers the middleware reads before the app answers.

    The ``Cookie`` headers joined with ``; ``, the ``Sec-GPC`` ones with
    ``, ``, and the last ``Sec-Fetch-Dest``, each ``None`` when absent.
    ASGI servers hand header names over lower-cased. The definition;
    ``mypharm_consent._responder.request_headers`` gives the same answer.
    """
    cookie: bytes | None = None
    gpc: bytes | None = None
    destination: bytes | None = None
    for name, value in headers:
        if name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
        elif name == b"sec-gpc":
            gpc = value if gpc is None else gpc + b", " + value
        elif name == b"sec-fetch-dest":
            destination = value
    return cookie, gpc, destination


class _PyResponder:
    """One response on its way out: held back if it is HTML, handed on otherwise.

    Whether it is HTML is known at ``http.response.start``; any other
    response is handed on message by message from then on, untouched, at
    the cost of one flag test per message. The definition of
    ``mypharm_consent._responder.Responder``, which does the same in C;
    :class:`_HTMLResponder` adds what happens to a response held back.
    """

    __slots__ = ("chunks", "downstream", "engine", "parts", "passing", "size", "start", "state")

    def __init__(
        self, engine: ConsentEngine, parts: _RequestParts, state: ConsentState, send: Send
    ) -> None:
        self.engine = engine
        self.parts = parts
        self.state = state
        self.downstream = send
        self.start: Message | None = None
        self.passing = False
        # ``chunks`` and ``size`` are only set for an HTML page held back.

    def send(self, message: Message) -> Awaitable[None]:
        """The app's ``send``: a plain function handing back what to await.

        A response passed through costs one call per message and no
        coroutine of its own: the downstream ``send``'s awaitable is
        returned as it is.
        """
        if self.passing:
            return self.downstream(message)
        if self.start is None:
            if message["type"] == "http.response.start" and self.engine.rewrites_raw_response(
                message["status"], message.get("headers", ())
            ):
                self.start = message
                self.chunks: list[bytes] = []
                self.size = 0
                return _DONE
            self.passing = True
            return self.downstream(message)
        return self._held(message)

    def _held(self, message: Message) -> Awaitable[None]:
        raise NotImplementedError


if TYPE_CHECKING or _compiled is None:
    _Responder = _PyResponder
    _read_headers = read_request_headers
else:
    _Responder = _compiled.Responder
    _read_headers = partial(_compiled.request_headers, read_request_headers)
#: Whether the middleware runs compiled (``mypharm_consent._responder``) in this
#: process: its dispatch (see :class:`ConsentMiddleware`) and its send wrapper, which
#: behaves as :class:`_PyResponder` does.
SPEEDUPS = _compiled is not None


class _HTMLResponder(_Responder):
    """One response on its way out: held back if it is HTML, rewritten when complete."""

    __slots__ = ()

    async def _held(self, message: Message) -> None:
        """A message after the start of an HTML response held back.

        The definition. The compiled responder answers the usual case itself
        (the page whole in one ``bytes`` message within ``html_size_cap``:
        the same call of :meth:`ConsentEngine.rewrite_page` with the values
        :func:`_page_values` gives, the same two messages sent, or the same
        :meth:`_give_up`) and hands every other message to this method.
        """
        start = self.start
        assert start is not None
        if message["type"] != "http.response.body":
            await self._give_up(message)
            return
        engine = self.engine
        cap = engine.config.html_size_cap
        chunk = message.get("body", b"")
        if type(chunk) is not bytes:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                # Not a body at all: handed on as it is, for the server to refuse.
                await self._give_up(message)
                return
            chunk = bytes(chunk)
        self.size += len(chunk)
        if message.get("more_body", False):
            self.chunks.append(chunk)
            if self.size > cap:
                engine.note_oversized(ConsentRequest(self.parts[0], self.parts[1]))
                await self._give_up({"type": "http.response.body", "body": b"", "more_body": True})
            return
        body = b"".join((*self.chunks, chunk)) if self.chunks else chunk
        self.chunks = []
        rewritten = None
        if self.size <= cap:
            target, accept_language, cookie, host = _page_values(self.parts)
            rewritten = engine.rewrite_page(
                self.state,
                start.get("headers", ()),
                body,
                target=target,
                accept_language=accept_language,
                cookie_header=cookie,
                host=host,
            )
        else:
            engine.note_oversized(ConsentRequest(self.parts[0], self.parts[1]))
        if rewritten is None:
            await self._give_up({"type": "http.response.body", "body": body, "more_body": False})
            return
        headers, new_body = rewritten
        await self.downstream({**start, "headers": headers})
        await self.downstream({"type": "http.response.body", "body": new_body, "more_body": False})

    async def _give_up(self, message: Message) -> None:
        """Send what was held back unchanged, then ``message``, and stop rewriting."""
        self.passing = True
        if self.start is not None:
            await self.downstream(self.start)
            if self.chunks:
                body = b"".join(self.chunks)
                self.chunks = []
                await self.downstream(
                    {"type": "http.response.body", "body": body, "more_body": True}
                )
        await self.downstream(message)


class _Done:
    """An awaitable that is already complete (awaiting it gives ``None`` at once)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        # A generator that stops at once: ``await`` returns ``None`` without suspending.
        return
        yield


_DONE = _Done()

if _compiled is not None:
    _compiled.configure(_HTMLResponder, _SUBRESOURCE_DESTINATIONS, _MAX_REMEMBERED_COOKIE_CHARS)
    _fasten_call(ConsentMiddleware)


def _page_values(parts: _RequestParts) -> tuple[str, str | None, str | None, str | None]:
    """What the rewrite of a page reads: target, ``Accept-Language``, ``Cookie``, ``Host``."""
    _, path, raw_path, query_string, raw_headers = parts
    accept_language = cookie = host = None
    for name, value in raw_headers:
        if name == b"cookie":
            text = value.decode("latin-1")
            cookie = text if cookie is None else f"{cookie}; {text}"
        elif name == b"accept-language":
            text = value.decode("latin-1")
            accept_language = text if accept_language is None else f"{accept_language}, {text}"
        elif name == b"host":
            text = value.decode("latin-1")
            host = text if host is None else f"{host}, {text}"
    target = raw_path.decode("latin-1") if raw_path else path
    if query_string:
        target += "?" + query_string.decode("latin-1")
    return target, accept_language, cookie, host


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
