"""The framework-free consent core: plain request values in, plain response values out.

:class:`ConsentEngine` answers every question the adapters ask: the
visitor's :class:`~mypharm_consent.ConsentState`, the answer to a request for
one of the package's own endpoints (``{prefix}/decide``,
``{prefix}/preferences``, ``{prefix}/static/*``), and the rewriting of an
HTML page (gating of third-party tags, then the banner or the reopen link
before ``</body>``). The ASGI and WSGI middlewares only translate.

Decide endpoint contract (``POST {prefix}/decide``, form-encoded):

* ``action``: ``accept_all``, ``reject_all`` or ``save`` (exactly one value);
* ``category``: repeated, the optional categories granted with ``save``;
  unknown names are ignored (a category the site has since removed must not
  turn a visitor's choice into an error), ``necessary`` is always granted;
* ``next``: where to go back to; only a same-site path is followed, anything
  else goes to ``/``;
* ``csrf``: the signed form token; ``lang`` and ``from`` (``banner`` or
  ``preferences``) record what the visitor was shown.

The answer is a ``303`` to ``next``, or JSON (``{"decided": true, "granted":
[...], "refused": [...], "revision": n}``) when the request accepts
``application/json``. Wrong requests get a clear ``400``, ``403``, ``405``,
``413`` or ``415`` page, never a ``500``.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import get_args
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import user_agents

from mypharm_consent import cleanup, gating
from mypharm_consent.banner import BANNER_TEMPLATE, PREFERENCES_TEMPLATE, BannerRenderer
from mypharm_consent.config import NECESSARY, ConsentConfig, Language
from mypharm_consent.cookie import (
    Clock,
    ConsentCookie,
    CookiePayload,
    VerifiedCookie,
    cookie_values,
    new_consent_id,
)
from mypharm_consent.csrf import CsrfGuard
from mypharm_consent.decisions import ConsentDecision, DecisionAction, DecisionSource
from mypharm_consent.history import ConsentHistory, HistoryRefusal
from mypharm_consent.pagecache import PageCache, PageKey, RewrittenPage
from mypharm_consent.splice import Spliced, SpliceStore
from mypharm_consent.state import ConsentState
from mypharm_consent.texts import LANGUAGES, negotiate_language

__all__ = ["ConsentEngine", "ConsentRequest", "ConsentResponse", "safe_next"]

logger = logging.getLogger("mypharm_consent")

_FORM_ACTIONS = ("accept_all", "reject_all", "save")
_MAX_NEXT_CHARS = 2048
_MAX_FORM_FIELDS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEXT_SAFE_CHARS = "/?#&=%:+,;@!$'()*~._-[]"
#: Headers of our own pages: no inline anything, no framing, no caching.
_PAGE_HEADERS = (
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self';"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)
_NO_BODY_STATUSES = frozenset({204, 205, 304})
#: Response headers a rewritten page replaces (validators would now lie).
_REPLACED_HEADERS = frozenset({b"content-length", b"etag", b"last-modified"})
#: Codecs whose encoding of a text is the concatenation of the encodings of
#: its parts (no byte-order mark, no shift state): only pages in these are
#: kept split around the banner by the page cache.
_SPLITTABLE_CODECS = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1252"})


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, otherwise ``/`` (no open redirect).

    Refused: anything not starting with a single ``/`` (absolute and
    scheme-relative URLs), backslashes, control characters (CR/LF), and the
    same tricks hidden behind percent-encoding. Non-ASCII characters are
    percent-encoded so the result is always a valid ``Location``.
    """
    if not value or len(value) > _MAX_NEXT_CHARS:
        return "/"
    for candidate in (value, unquote(value)):
        if (
            not candidate.startswith("/")
            or candidate.startswith("//")
            or "\\" in candidate
            or _CONTROL.search(candidate)
        ):
            return "/"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    return quote(value, safe=_NEXT_SAFE_CHARS)


#: The same pages ask for the same return path again and again.
_cached_next = lru_cache(maxsize=1024)(safe_next)
#: Browsers send a handful of distinct ``Accept-Language`` values.
_cached_language = lru_cache(maxsize=256)(negotiate_language)
_MAX_CACHED_HEADER_CHARS = 512
#: ``Cookie`` headers up to this long have what they say remembered (see
#: ``ConsentEngine._cookie_reading``), 1,024 of them at most.
_MAX_REMEMBERED_COOKIE_CHARS = 2048


@dataclass(frozen=True)
class ConsentRequest:
    """The parts of an HTTP request the consent layer looks at.

    ``headers`` maps lower-case names to values (repeated headers joined with
    ``", "``, repeated ``Cookie`` headers with ``"; "``). ``target`` is the
    path and query as the client sent them, used to come back after a choice.
    """

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    target: str = "/"

    @classmethod
    def from_pairs(
        cls,
        method: str,
        path: str,
        query_string: str,
        headers: Iterable[tuple[str, str]],
        target: str | None = None,
    ) -> ConsentRequest:
        """Build a request from raw header pairs (any case, repeats allowed)."""
        merged: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            if key in merged:
                merged[key] += ("; " if key == "cookie" else ", ") + value
            else:
                merged[key] = value
        if target is None:
            target = path + (f"?{query_string}" if query_string else "")
        return cls(method.upper(), path, query_string, merged, target)

    @property
    def host(self) -> str | None:
        """The ``Host`` header, if any."""
        return self.headers.get("host")

    @property
    def cookie_header(self) -> str | None:
        """The ``Cookie`` header, if any."""
        return self.headers.get("cookie")


@dataclass
class ConsentResponse:
    """A complete answer from one of the package's own endpoints."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class _BadForm(Exception):
    """The posted form cannot be understood (answered with ``400``)."""


class ConsentEngine:
    """Everything the middlewares do, over plain values, for one configuration.

    ``clock`` returns seconds since the epoch (tests inject one to age
    cookies and form tokens).
    """

    def __init__(self, config: ConsentConfig, *, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.cookie = ConsentCookie(config, clock=clock)
        self.csrf = CsrfGuard(config, clock=clock)
        self.renderer = BannerRenderer(config)
        #: Pages already rewritten, by original body and visitor's choice.
        self.pages = PageCache()
        #: The last page gated in full per address and choice, that pages
        #: differing from it in a little text are spliced from.
        self.splices = SpliceStore(_markup_byte_position)
        # The banner changes with the page's return path and, every minute, the token.
        self._encoded_markup = lru_cache(maxsize=256)(self._encode_markup)
        # Which cookies to expire depends only on their names, the choice and the host.
        self._expired_cookies = lru_cache(maxsize=512)(self._expired_cookie_headers)
        # A returning visitor sends the same Cookie header page after page: what it
        # says (the consent cookie's values, the cookie names) is read once.
        self._cookie_reading = lru_cache(maxsize=1024)(self._read_cookie_header)
        # And which of its values are genuine: a returning visitor's state is then one
        # look-up and an age check.
        self._current_cookies = lru_cache(maxsize=1024)(self._current_in)
        self._decide_path = f"{config.prefix}/decide"
        self._preferences_path = f"{config.prefix}/preferences"
        self._static_prefix = f"{config.prefix}/static/"
        self._optional = frozenset(c.name for c in config.optional_categories)
        self._owned_prefix = config.prefix + "/"
        self._excluded = tuple((path, path.rstrip("/") + "/") for path in config.exclude_paths)
        self._oversized_logged = False
        #: First visits, without and with Global Privacy Control.
        self._undecided = (ConsentState.undecided(), ConsentState.undecided(gpc=True))
        #: The state of a request without ``Cookie`` and ``Sec-GPC`` headers.
        self.first_visit = self._undecided[0]
        #: The visitor's receipts on the preferences page, when a provider is set.
        self.history: ConsentHistory | None = None
        if config.receipts is not None:
            self.history = ConsentHistory(
                config,
                config.receipts,
                cookie=self.cookie,
                csrf=self.csrf,
                texts=self.renderer.texts,
            )

    # -- reading -----------------------------------------------------------

    def read_state(self, request: ConsentRequest) -> ConsentState:
        """The visitor's consent: decided only with a genuine, current cookie."""
        return self.state_from(request.cookie_header, request.headers.get("sec-gpc"))

    def state_from(self, cookie_header: str | None, sec_gpc: str | None) -> ConsentState:
        """:meth:`read_state` from the two headers it depends on (``Cookie``, ``Sec-GPC``).

        Adapters call it before building a full :class:`ConsentRequest`, which
        most responses (anything not HTML) never need.
        """
        gpc = self.config.honor_gpc and sec_gpc is not None and sec_gpc.strip() == "1"
        if not cookie_header:
            return self._undecided[gpc]
        # The genuine values are remembered by header, not the state: a cookie's age
        # (and so whether it still counts) is checked on every request.
        if len(cookie_header) <= _MAX_REMEMBERED_COOKIE_CHARS:
            current = self._current_cookies(cookie_header)
        else:
            current = self._current_in(cookie_header)
        return self.cookie.state_among(current, gpc=gpc)

    def _current_in(self, cookie_header: str) -> tuple[VerifiedCookie, ...]:
        """The genuine consent cookie values of the current policy in ``cookie_header``."""
        return self.cookie.current_values(self._cookie_says(cookie_header)[0])

    def _cookie_says(self, cookie_header: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The consent cookie's values in ``cookie_header`` and its distinct cookie names."""
        if len(cookie_header) <= _MAX_REMEMBERED_COOKIE_CHARS:
            return self._cookie_reading(cookie_header)
        return self._read_cookie_header(cookie_header)

    def _read_cookie_header(self, cookie_header: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (
            tuple(cookie_values(cookie_header, self.config.cookie_name)),
            tuple(cleanup.request_cookie_names(cookie_header)),
        )

    def language(self, request: ConsentRequest) -> Language:
        """The language to speak to this visitor in."""
        return self._language(request.headers.get("accept-language"))

    def _language(self, accept_language: str | None) -> Language:
        if accept_language is not None and len(accept_language) <= _MAX_CACHED_HEADER_CHARS:
            return _cached_language(accept_language, self.config.default_language)
        return negotiate_language(accept_language, self.config.default_language)

    # -- routing -----------------------------------------------------------

    def owns(self, path: str) -> bool:
        """Whether ``path`` is one of the package's endpoints (under the prefix)."""
        return path == self.config.prefix or path.startswith(self._owned_prefix)

    def is_excluded(self, path: str) -> bool:
        """Whether pages at ``path`` are left untouched (``exclude_paths``)."""
        return any(path == excluded or path.startswith(below) for excluded, below in self._excluded)

    def reads_body(self, request: ConsentRequest) -> bool:
        """Whether answering ``request`` needs its body (a post to the decide endpoint)."""
        if self.history is not None and self.history.reads_body(request.method, request.path):
            return True
        return request.method == "POST" and request.path == self._decide_path

    def body_too_large(self, request: ConsentRequest) -> bool:
        """Whether the declared ``Content-Length`` already exceeds ``max_form_bytes``."""
        declared = request.headers.get("content-length", "").strip()
        return declared.isdigit() and int(declared) > self.config.max_form_bytes

    def handle(self, request: ConsentRequest, body: bytes = b"") -> ConsentResponse:
        """Answer a request for one of the package's endpoints (see :meth:`owns`)."""
        path = request.path
        if path == self._decide_path:
            if request.method != "POST":
                return self.error(request, 405, "error_method", allow="POST")
            return self._decide(request, body)
        if path == self._preferences_path:
            if request.method not in ("GET", "HEAD"):
                return self.error(request, 405, "error_method", allow="GET, HEAD")
            return self._preferences(request)
        if path.startswith(self._static_prefix):
            if request.method not in ("GET", "HEAD"):
                return self.error(request, 405, "error_method", allow="GET, HEAD")
            return self._static(request, path[len(self._static_prefix) :])
        if self.history is not None and self.history.owns(path):
            answer = self.history.handle(request.method, path, request.headers, body)
            if isinstance(answer, HistoryRefusal):
                return self.error(request, answer.status, answer.message_key, allow=answer.allow)
            return ConsentResponse(answer.status, answer.headers, answer.body)
        return self.error(request, 404, "error_not_found")

    def payload_too_large(self, request: ConsentRequest) -> ConsentResponse:
        """The ``413`` answer for a form larger than ``max_form_bytes``."""
        return self.error(request, 413, "error_too_large")

    def error(
        self, request: ConsentRequest, status: int, message_key: str, *, allow: str | None = None
    ) -> ConsentResponse:
        """A clear error page (or JSON for scripts) in the visitor's language."""
        language = self.language(request)
        next_path = "/"
        headers: list[tuple[str, str]] = []
        if allow:
            headers.append(("allow", allow))
        message = self.renderer.texts[language][message_key]
        if _wants_json(request):
            body = json.dumps({"error": message_key.removeprefix("error_"), "message": message})
            headers += [("content-type", "application/json"), ("cache-control", "no-store")]
            return ConsentResponse(status, headers, body.encode("utf-8"))
        html = self.renderer.error_page(language, message_key, next_path=next_path)
        headers += [("content-type", "text/html; charset=utf-8"), *_PAGE_HEADERS]
        return _page(request, status, headers, html)

    # -- endpoints ---------------------------------------------------------

    def _preferences(self, request: ConsentRequest) -> ConsentResponse:
        next_path = "/"
        try:
            for name, value in parse_qsl(request.query_string, max_num_fields=_MAX_FORM_FIELDS):
                if name == "next":
                    next_path = safe_next(value)
                    break
        except ValueError:
            next_path = "/"
        state = self.read_state(request)
        language = self.language(request)
        view = None
        if self.history is not None:
            view = self.history.view(request.cookie_header, request.query_string, language)
        html = self.renderer.preferences_page(
            language,
            state,
            csrf=self.csrf.token(),
            next_path=next_path,
            history=view.context if view is not None else None,
        )
        headers = [
            ("content-type", "text/html; charset=utf-8"),
            ("vary", "Cookie, Accept-Language"),
            *_PAGE_HEADERS,
            *(view.headers if view is not None else ()),
        ]
        return _page(request, 200, headers, html)

    def _static(self, request: ConsentRequest, name: str) -> ConsentResponse:
        asset = self.renderer.assets.get(name)
        if asset is None:
            return self.error(request, 404, "error_not_found")
        versioned = f"v={asset.version}" in request.query_string.split("&")
        headers = [
            ("content-type", asset.content_type),
            ("etag", asset.etag),
            ("x-content-type-options", "nosniff"),
            (
                "cache-control",
                "public, max-age=31536000, immutable" if versioned else "public, max-age=3600",
            ),
        ]
        if asset.etag in request.headers.get("if-none-match", ""):
            return ConsentResponse(304, headers)
        headers.append(("content-length", str(len(asset.body))))
        return ConsentResponse(200, headers, b"" if request.method == "HEAD" else asset.body)

    def _decide(self, request: ConsentRequest, body: bytes) -> ConsentResponse:
        if len(body) > self.config.max_form_bytes:
            return self.payload_too_large(request)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/x-www-form-urlencoded":
            return self.error(request, 415, "error_unsupported")
        try:
            form = _parse_form(body)
        except _BadForm:
            return self.error(request, 400, "error_bad_request")
        refusal = self.csrf.check(request.headers, request.host, _single(form, "csrf"))
        if refusal is not None:
            logger.info("consent form refused: %s", refusal.reason)
            return self.error(request, 403, "error_forbidden")
        actions = set(form.get("action", ()))
        if len(actions) != 1 or not actions <= set(_FORM_ACTIONS):
            return self.error(request, 400, "error_bad_request")
        action = actions.pop()
        if action == "accept_all":
            optional = self._optional
        elif action == "reject_all":
            optional = frozenset()
        else:
            optional = frozenset(form.get("category", ())) & self._optional
        next_path = safe_next(_single(form, "next"))
        posted_language = _single(form, "lang")
        language: Language = (
            posted_language if posted_language in LANGUAGES else self.language(request)
        )
        previous = self.cookie.read(request.cookie_header)
        # One consent id per browser, so its receipts form one history.
        consent_id = previous.consent_id if previous is not None else new_consent_id()
        decided_at = datetime.fromtimestamp(int(self.clock()), UTC)
        state = ConsentState(
            decided=True,
            granted=optional | {NECESSARY},
            consent_id=consent_id,
            revision=self.config.policy_revision,
            decided_at=decided_at,
            gpc=self.config.honor_gpc and request.headers.get("sec-gpc", "").strip() == "1",
        )
        origin = "preferences" if _single(form, "from") == "preferences" else "banner"
        decision = ConsentDecision(
            consent_id=consent_id,
            previous_consent_id=previous.consent_id if previous else None,
            time=decided_at,
            action=_decision_action(action, optional, previous, self.config.policy_revision),
            granted=state.granted,
            refused=self._optional - optional,
            policy_revision=self.config.policy_revision,
            banner_hash=self.renderer.banner_hash(
                language, PREFERENCES_TEMPLATE if origin == "preferences" else BANNER_TEMPLATE
            ),
            language=language,
            source=_decision_source(origin, _wants_json(request)),
            device_class=device_class(request.headers.get("user-agent")),
        )
        self._notify(decision)
        headers = [
            (
                "set-cookie",
                self.cookie.set_cookie_header(self.cookie.encode(consent_id, state.granted)),
            ),
            *(
                ("set-cookie", value)
                for value in cleanup.expired_cookie_headers(
                    request.cookie_header, state, self.config, request.host
                )
            ),
            ("cache-control", "no-store"),
        ]
        if _wants_json(request):
            answer = {
                "decided": True,
                "granted": sorted(state.granted),
                "refused": sorted(decision.refused),
                "revision": self.config.policy_revision,
            }
            headers.append(("content-type", "application/json"))
            return ConsentResponse(200, headers, json.dumps(answer).encode("utf-8"))
        headers.append(("location", next_path))
        return ConsentResponse(303, headers)

    def _notify(self, decision: ConsentDecision) -> None:
        hook = self.config.on_decision
        if hook is None:
            return
        try:
            hook(decision)
        except Exception:
            # The visitor's choice is honoured even if keeping its receipt failed.
            logger.exception("the on_decision hook failed for a %s decision", decision.action)

    # -- pages -------------------------------------------------------------

    def should_rewrite(
        self, request: ConsentRequest, status: int, headers: Iterable[tuple[str, str]]
    ) -> bool:
        """Whether a response to ``request`` is an HTML page this layer rewrites.

        Only uncompressed ``text/html`` bodies of ``GET``/``POST``-like
        requests outside ``exclude_paths`` are; everything else passes
        through untouched.
        """
        return self.rewrites_path(request.method, request.path) and self.rewrites_response(
            status, headers
        )

    def rewrites_path(self, method: str, path: str) -> bool:
        """The request half of :meth:`should_rewrite`: not ``HEAD``, not excluded.

        Known before the app answers, so an adapter can leave the response
        alone from the start.
        """
        return method != "HEAD" and not (self._excluded and self.is_excluded(path))

    def rewrites_response(self, status: int, headers: Iterable[tuple[str, str]]) -> bool:
        """The response half of :meth:`should_rewrite`: an uncompressed HTML body.

        Only the ``Content-Type`` and ``Content-Encoding`` headers are looked
        at (any case); an adapter may pass just those.
        """
        if status < 200 or status in _NO_BODY_STATUSES:
            return False
        content_type = ""
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "content-encoding" and value.strip().lower() not in ("", "identity"):
                return False
        return content_type.split(";")[0].strip().lower() == "text/html"

    def rewrites_raw_response(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """:meth:`rewrites_response` over header names and values as bytes (any case).

        The adapter's check on every response, HTML or not: kept to a length
        comparison for the headers that are neither of the two it reads.
        """
        if status < 200 or status in _NO_BODY_STATUSES:
            return False
        content_type = b""
        for name, value in headers:
            size = len(name)
            if size == 12 and name.lower() == b"content-type":
                content_type = value
            elif (
                size == 16
                and name.lower() == b"content-encoding"
                and value.strip().lower() not in (b"", b"identity")
            ):
                return False
        return content_type.split(b";")[0].strip().lower() == b"text/html"

    def note_oversized(self, request: ConsentRequest) -> None:
        """Record that a page too large to rewrite went out without a banner.

        Logged once per engine: the fix (a larger ``html_size_cap`` or an
        excluded path) is a configuration change, not a per-request event.
        """
        if not self._oversized_logged:
            self._oversized_logged = True
            logger.warning(
                "an HTML page at %s exceeded html_size_cap (%d bytes) and was sent without"
                " the consent banner; raise html_size_cap or exclude the path",
                request.path,
                self.config.html_size_cap,
            )

    def rewrite_html(
        self,
        request: ConsentRequest,
        state: ConsentState,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[list[tuple[str, str]], bytes] | None:
        """The rewritten headers and body of an HTML page, or ``None`` to pass it through.

        Gating runs first, then the banner (undecided visitors) or the
        script and reopen link (decided ones) goes before ``</body>``.
        ``Content-Length`` is recomputed, ``Vary`` extended, and validators
        dropped: the page now depends on the visitor's cookie, so a ``304``
        for the app's own ``ETag`` could resurrect a banner already answered.

        Gating follows the visitor's language (placeholders). A page seen
        again is kept in :attr:`pages`, split where the markup goes, so the
        same page for the same choice and language is only gated once in a
        while; the banner, with its form token and return path, is added per
        request. Of the request, only the target and the ``Accept-Language``,
        ``Cookie`` and ``Host`` headers are read (see :meth:`rewrite_page`).
        """
        try:
            raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        except UnicodeEncodeError:
            return None
        rewritten = self.rewrite_raw_html(request, state, raw, body)
        if rewritten is None:
            return None
        new_headers, new_body = rewritten
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in new_headers], new_body

    def rewrite_raw_html(
        self,
        request: ConsentRequest,
        state: ConsentState,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
    ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """:meth:`rewrite_html` over header names and values as bytes, as ASGI carries them.

        Names may come in any case; the headers the rewrite adds are lower-case.
        """
        return self.rewrite_page(
            state,
            headers,
            body,
            target=request.target,
            accept_language=request.headers.get("accept-language"),
            cookie_header=request.cookie_header,
            host=request.host,
        )

    def rewrite_page(
        self,
        state: ConsentState,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        *,
        target: str,
        accept_language: str | None = None,
        cookie_header: str | None = None,
        host: str | None = None,
    ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """:meth:`rewrite_raw_html` from the only request values it reads.

        ``target`` is the path and query as sent, the others the request's
        ``Accept-Language``, ``Cookie`` and ``Host`` headers: an adapter
        answering many pages need not build a :class:`ConsentRequest` each time.
        """
        headers = tuple(headers)
        language = self._language(accept_language)
        names = self._cookie_says(cookie_header)[1] if cookie_header else ()
        # The banner's form token; a decided visitor's markup has none.
        token = "" if state.decided else self.csrf.token()
        # Everything the answer depends on besides the body (see PageCache.answer):
        # a page kept in self.pages and asked for again in the same way is answered
        # with the very same headers and body.
        answer_key: Hashable | None = (
            len(body),
            state.decided,
            state.granted,
            state.gpc,
            language,
            target,
            names,
            host if names else None,
            token,
            headers,
        )
        pages = self.pages
        try:
            answer = pages.answer(answer_key, body)
        except TypeError:  # header pairs given as lists: nothing is remembered
            answer_key = None
            answer = None
        if answer is not None:
            return answer
        charset: str | None = None
        vary: list[bytes] = []
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered in _REPLACED_HEADERS:
                continue
            if lowered == b"vary":
                vary.append(value)
                continue
            if charset is None and lowered == b"content-type":
                charset = _content_type_charset(value)
            kept.append((name, value))
        rewritten = self._rewritten_body(state, charset or "utf-8", body, target, language, token)
        if rewritten is None:
            return None
        encoded, source = rewritten
        kept.append((b"vary", _merged_vary(tuple(vary))))
        kept.append((b"content-length", b"%d" % len(encoded)))
        if names:
            kept += self._expired_cookies(names, state.granted, host)
        if source is not None and answer_key is not None:
            pages.keep_answer(answer_key, source[0], kept, encoded, source[1])
        return kept, encoded

    def _rewritten_body(
        self,
        state: ConsentState,
        charset: str,
        body: bytes,
        target: str,
        language: Language,
        token: str,
    ) -> tuple[bytes, tuple[bytes, float] | None] | None:
        """The page with gating and markup (its form ``token``), or ``None`` if unreadable.

        With it, when the page came from :attr:`pages`, the original body it
        is kept under and when it goes stale (see :meth:`PageCache.lookup`).
        """
        try:
            codec = _codec_name(charset)
        except LookupError:
            return None
        key: PageKey | None = None
        page: RewrittenPage | None = None
        source: tuple[bytes, float] | None = None
        pages = self.pages
        splice_key = _splice_key(target, state, language) if codec == "utf-8" else None
        spliced: Spliced | None = None
        tried = splice_key is not None and self.splices.changing(splice_key)
        if tried:
            # The last page here was spliced with changes: pages at this address
            # differ on every request, and are looked for in self.pages in vain.
            spliced = self._spliced(state, body, splice_key, language)
            if spliced is not None and not spliced.same:
                return self._spliced_page(spliced, state, language, target, charset, token), None
        if codec in _SPLITTABLE_CODECS and len(body) <= pages.max_page_bytes:
            key = (body, codec, state.decided, state.granted, state.gpc, language)
            found = pages.lookup(key)
            if found is not None:
                original, page, stale_at = found
                source = (original, stale_at)
        if page is None:
            if splice_key is not None and not tried:
                spliced = self._spliced(state, body, splice_key, language)
            # A page spliced from another differs from it: one that may repeat
            # (not spliced, or the very page spliced from) is kept from its second time.
            if key is not None and (
                (spliced is not None and not spliced.same) or not pages.admits(key)
            ):
                key = None
            # Pages that repeat are kept below (self.pages): gating need not keep them too.
            if spliced is not None:
                if key is None:
                    page_bytes = self._spliced_page(
                        spliced, state, language, target, charset, token
                    )
                    return page_bytes, None
                encoded = spliced.join()
            elif splice_key is not None:
                # UTF-8, gated as bytes, never decoded: a byte that is not UTF-8 is
                # kept as it is (the browser shows it as U+FFFD) and does not
                # keep the page from being gated.
                gated = gating.gate_utf8_pieces(body, state, self.config, language=language)
                self.splices.offer(
                    splice_key,
                    body,
                    None if gated is None else gated[0],
                    0 if gated is None else gated[1],
                )
                pieces, rest = ([], 0) if gated is None else gated
                view = memoryview(body)
                if key is None:
                    # The last "</body" of the gated page is in the untouched rest
                    # of the body, as a rule: the page is then written in one copy.
                    closing = body.rfind(b"</body", rest)
                    if closing != -1:
                        banner = self._page_markup(state, language, target, charset, token)
                        joined: list[str | bytes | memoryview] = [
                            *pieces,
                            view[rest:closing],
                            banner,
                            view[closing:],
                        ]
                        return gating.join_raw(joined), None
                encoded = gating.join_raw([*pieces, view[rest:]]) if gated else body
            else:
                try:
                    html = body.decode(charset)
                except UnicodeDecodeError:
                    return None
                html = gating.gate_html(html, state, self.config, language=language, remember=False)
                if codec not in _SPLITTABLE_CODECS:
                    position = _markup_position(html)
                    if position is not None:
                        markup = self._markup(target, state, language, token)
                        html = html[:position] + markup + html[position:]
                    return html.encode(charset, errors="xmlcharrefreplace"), None
                # Encoded once and cut as bytes: in these codecs "</body" is the same
                # six bytes wherever it is, and a page-sized string is never built
                # twice (large short-lived strings cost far more than their copy).
                encoded = html.encode(charset, errors="xmlcharrefreplace")
            position = _markup_byte_position(encoded)
            if key is None:
                if position is None:
                    return encoded, None
                view = memoryview(encoded)
                encoded_markup = self._page_markup(state, language, target, charset, token)
                return b"".join((view[:position], encoded_markup, view[position:])), None
            if position is None:
                page = RewrittenPage(encoded, None)
            else:
                page = RewrittenPage(encoded[:position], encoded[position:])
            self.pages.put(key, page)
        if page.after is None:
            return page.before, source
        encoded_markup = self._page_markup(state, language, target, charset, token)
        return page.with_markup(encoded_markup), source

    def _spliced(
        self, state: ConsentState, body: bytes, key: Hashable, language: Language
    ) -> Spliced | None:
        """A UTF-8 page gated by splicing it into one gated before under ``key`` (see
        :mod:`mypharm_consent.splice`), or ``None``."""
        config = self.config

        def regate(page: bytes) -> bytes:
            return gating.gate_utf8(page, state, config, language=language)

        return self.splices.splice(key, body, regate)

    def _spliced_page(
        self,
        spliced: Spliced,
        state: ConsentState,
        language: Language,
        target: str,
        charset: str,
        token: str,
    ) -> bytes:
        """A spliced page written out, with its banner or script where it has a place."""
        if spliced.at is None:
            return spliced.join()
        return spliced.join(self._page_markup(state, language, target, charset, token))

    def _page_markup(
        self, state: ConsentState, language: Language, target: str, charset: str, token: str
    ) -> bytes:
        """The encoded banner (undecided visitors) or script and reopen link (decided ones)."""
        granted = state.granted if state.decided else None
        return self._encoded_markup(language, granted, target, token, charset)

    def _markup(self, target: str, state: ConsentState, language: Language, token: str) -> str:
        """The banner (undecided visitors) or the script and reopen link (decided ones)."""
        granted = state.granted if state.decided else None
        return self._render_markup(language, granted, target, token)

    def _render_markup(
        self, language: Language, granted: frozenset[str] | None, target: str, token: str
    ) -> str:
        """The markup for a page at ``target``: a decided visitor's (``granted``) or the banner."""
        next_path = _cached_next(target) if len(target) <= _MAX_NEXT_CHARS else "/"
        if granted is not None:
            decided = ConsentState(decided=True, granted=granted)
            return self.renderer.footer(language, decided, next_path=next_path)
        return self.renderer.banner(language, csrf=token, next_path=next_path)

    def _expired_cookie_headers(
        self, names: tuple[str, ...], granted: frozenset[str], host: str | None
    ) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(
            (b"set-cookie", value.encode("latin-1"))
            for value in cleanup.expired_cookie_headers_for(names, granted, self.config, host)
        )

    def _encode_markup(
        self,
        language: Language,
        granted: frozenset[str] | None,
        target: str,
        token: str,
        charset: str,
    ) -> bytes:
        markup = self._render_markup(language, granted, target, token)
        return markup.encode(charset, errors="xmlcharrefreplace")


def _splice_key(target: str, state: ConsentState, language: Language) -> Hashable:
    """What a page's gating depends on besides its body: its path, the choice, the language."""
    return (target.partition("?")[0], state.granted, state.gpc, language)


def _markup_byte_position(encoded: bytes) -> int | None:
    """Where the banner goes in a page encoded in an ASCII-compatible codec, in bytes.

    Before the last ``</body`` (in lower case if there is one, else in any
    case), at the end of a document that omits it, ``None`` for a fragment
    (e.g. a partial page update, which gets no banner).
    """
    position = encoded.rfind(b"</body")
    if position != -1:
        return position
    # Lower-casing a whole page is costly: only for the rare upper-case tag.
    lowered = encoded.lower()  # ASCII letters only: the positions stay the same
    position = lowered.rfind(b"</body")
    if position != -1:
        return position
    if b"<body" not in lowered and b"<html" not in lowered:
        return None
    return len(encoded)


def _markup_position(html: str) -> int | None:
    """:func:`_markup_byte_position` of a text, in characters.

    Every character stands for one byte (``?`` for those outside ASCII), so
    the positions are the text's own.
    """
    return _markup_byte_position(html.encode("ascii", errors="replace"))


@lru_cache(maxsize=64)
def _codec_name(charset: str) -> str:
    """The canonical name of ``charset``'s codec.

    ``LookupError`` if it is unknown, not a text encoding (``base64``), or
    cannot write a page (``idna`` refuses character references): such a page
    is passed through untouched.
    """
    name = codecs.lookup(charset).name
    try:
        "<é>".encode(charset, errors="xmlcharrefreplace")
    except UnicodeError as exc:
        raise LookupError(f"{charset!r} cannot encode a page") from exc
    return name


def _wants_json(request: ConsentRequest) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _page(
    request: ConsentRequest, status: int, headers: list[tuple[str, str]], html: str
) -> ConsentResponse:
    body = html.encode("utf-8")
    headers.append(("content-length", str(len(body))))
    return ConsentResponse(status, headers, b"" if request.method == "HEAD" else body)


def _single(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _parse_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadForm(str(exc)) from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def _decision_action(
    action: str, optional: frozenset[str], previous: CookiePayload | None, revision: int
) -> DecisionAction:
    if action == "save" and previous is not None and previous.revision == revision:
        before = previous.granted - {NECESSARY}
        return "withdraw" if optional < before else "change"
    assert action in get_args(DecisionAction)
    return action  # type: ignore[return-value]


def _decision_source(origin: str, scripted: bool) -> DecisionSource:
    if origin == "preferences":
        return "preferences"
    return "js" if scripted else "no-js"


@lru_cache(maxsize=1024)
def device_class(user_agent: str | None) -> str:
    """``desktop``, ``mobile``, ``tablet``, ``bot`` or ``unknown``: never the User-Agent itself."""
    if not user_agent:
        return "unknown"
    parsed = user_agents.parse(user_agent[:512])
    if parsed.is_bot:
        return "bot"
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "unknown"


@lru_cache(maxsize=64)
def _content_type_charset(content_type: bytes) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value, if any."""
    for param in content_type.decode("latin-1").split(";")[1:]:
        key, _, charset = param.strip().partition("=")
        if key.strip().lower() == "charset" and charset.strip():
            return charset.strip().strip('"')
    return None


@lru_cache(maxsize=64)
def _merged_vary(existing: tuple[bytes, ...]) -> bytes:
    """The ``Vary`` value of a rewritten page: the app's own, plus what the rewrite reads."""
    names: list[str] = []
    for value in existing:
        names += [item.strip() for item in value.decode("latin-1").split(",") if item.strip()]
    if "*" in names:
        return b"*"
    lowered = {name.lower() for name in names}
    names += [name for name in ("Cookie", "Accept-Language") if name.lower() not in lowered]
    return ", ".join(names).encode("latin-1")
