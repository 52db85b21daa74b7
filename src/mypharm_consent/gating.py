"""Server-side gating of third-party tags (scripts, pixels, iframes, media).

:func:`gate_html` rewrites an HTML page so that the third-party tags of
categories the visitor has not granted stay inert, then injects into
``<head>`` the external scripts that bring them back to life on the client
(``gate.js``) and, when enabled, the Google Consent Mode v2 bootstrap.

How the page is read
--------------------
The page is never parsed into a tree and re-serialized: the output is the
input, byte for byte, except for the attributes that are renamed and the
markup that is inserted. A tokenizer made of a few regular expressions
follows the HTML standard's tokenization rules wherever they decide what is
a tag and what is not:

* comments (``<!-- -->``, ``<!-->``, ``--!>``), bogus comments (``<!...>``,
  ``<?...>``, ``</ ...>``) and ``<![CDATA[`` outside foreign content (a bogus
  comment ending at the first ``>``, which is also the safe reading: nothing
  after that ``>`` is hidden from gating);
* attribute values with the standard's quoting rules (double, single,
  unquoted, missing), so a ``>`` or ``<script`` inside a quoted value is
  never taken for markup;
* raw text elements (``<script>`` with its escape states, ``<style>``,
  ``<textarea>``, ``<title>``, ``<xmp>``, ``<iframe>``, ``<noembed>``,
  ``<noframes>``, ``<plaintext>``), so tag-like text in a script string is
  never rewritten;
* ``<noscript>`` content is read as markup (that is how a browser without
  JavaScript reads it, and tracking pixels live there) but bounded by its
  ``</noscript>``, which is how a browser with JavaScript reads it;
* tag and attribute names in any case; an unterminated tag or comment at the
  end of the page hides the rest of it from the browser, and from us.

Cost, in three tiers, each linear in the page size:

* a page that mentions neither ``data-consent`` nor a declared host (found
  by searches that run in C) is not tokenized at all;
* otherwise, when no quoted attribute value before the last mention holds a
  ``>`` (then every tag ends at its first ``>``), only the landmarks that
  change the tokenizer's state (comments, raw text elements...) and the tags
  holding a mention are read (:meth:`_Page.skim`);
* otherwise the full tokenizer runs up to the last mention: uninteresting
  markup is skipped by one possessive regular expression inside the regex
  engine, and only tags that can load something reach Python
  (:meth:`_Page.scan`). Both reads give the same output (a property test
  checks it).

Whichever the read, what was decided for a tag is remembered by its text and
the granted categories (:meth:`_Page.verdict`): the same third-party tags
come back on every page, so a page never seen before mostly pays for the
searches alone.

Those searches over the whole page (the mentions, the landmarks, the
quoted ``>``, the skip of the full read) run in the optional C extension
``mypharm_consent._gatescan`` when it is built, one pass each, and so does
the quick read of a page whose every tag to gate was decided before
(:meth:`_Page.skim_compiled`): eight to nine times faster on a new 30 KB
page. The regular expressions and the Python read here stay their
definition, used alone without the extension or with the environment
variable ``MYPHARM_CONSENT_SPEEDUPS=0``, and property tests check that both
give the same answers on arbitrary text.

A UTF-8 page (nearly all of them) is read byte for byte (:func:`gate_utf8`):
decoding a French page to text and encoding it back cost more than gating
it, and its structure is all ASCII, which UTF-8 leaves as it is. A property
test checks that both readings give the same page.

:mod:`html.parser` was not used: it calls back into Python for every tag,
reports positions as line/column pairs, and does not implement the script
escape states, so it is both slower and less faithful to browsers.

What is gated
-------------
An element is gated when it carries ``data-consent="a b"`` naming
categories not all granted, or when it is untagged and one of its URLs
points at a host declared by a service of a category
(:attr:`~mypharm_consent.config.Service.hosts`). Gating renames ``src``,
``href``, ``srcset``, ``imagesrcset``, ``poster`` and ``srcdoc`` to their
``data-`` form and turns scripts into ``type="text/plain"`` with the original
type kept in ``data-type``. ``<source>``, ``<track>`` and ``<img>`` inside a
gated ``<video>``, ``<audio>`` or ``<picture>`` inherit its categories. A
visible gated ``<iframe>`` is wrapped in a click-to-load placeholder
(template ``placeholder.html``).
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import logging
import os
import re
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import TypeVar
from urllib.parse import unquote

from markupsafe import Markup

from mypharm_consent.config import NECESSARY, ConsentConfig, Language
from mypharm_consent.csrf import CsrfGuard
from mypharm_consent.services import services_of
from mypharm_consent.state import ConsentState
from mypharm_consent.templating import environment

__all__ = [
    "CONSENT_MODE_SIGNALS",
    "DEFAULT_CONSENT_MODE_MAPPING",
    "PLACEHOLDER_TEMPLATE",
    "PLACEHOLDER_TEXTS",
    "SPEEDUPS",
    "asset_version",
    "consent_mode_defaults",
    "gate_html",
    "gate_utf8",
    "url_host",
    "verbatim_spans",
]

logger = logging.getLogger("mypharm_consent")

#: The template of the click-to-load placeholder around a gated iframe.
PLACEHOLDER_TEMPLATE = "placeholder.html"

#: The storage types of Google Consent Mode v2.
CONSENT_MODE_SIGNALS = (
    "ad_storage",
    "analytics_storage",
    "ad_user_data",
    "ad_personalization",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)

#: Which Consent Mode signals each category grants, unless
#: ``ConsentConfig.consent_mode_signals`` says otherwise. Categories the site
#: does not declare are ignored; a signal no declared category grants stays
#: ``"denied"``.
DEFAULT_CONSENT_MODE_MAPPING: Mapping[str, tuple[str, ...]] = {
    NECESSARY: ("security_storage",),
    "analytics": ("analytics_storage",),
    "marketing": ("ad_storage", "ad_user_data", "ad_personalization"),
    "preferences": ("functionality_storage", "personalization_storage"),
}

#: The placeholder's words, per language.
PLACEHOLDER_TEXTS: Mapping[str, Mapping[str, str]] = {
    "fr": {
        "title": "Contenu de {service} bloqué",
        "message": (
            "Ce contenu est fourni par {service} ({host}), qui peut déposer des cookies. "
            "Il relève de la catégorie « {category} », que vous n'avez pas acceptée."
        ),
        "load": "Charger ce contenu",
        "always": "Toujours autoriser {service}",
        "preferences": "Gérer mes préférences",
        "gpc": (
            "Votre navigateur demande de ne pas partager vos données (Global Privacy Control) : "
            "ce contenu ne se chargera que si vous le demandez."
        ),
        "failed": "Votre choix n'a pas pu être enregistré. Réessayez.",
    },
    "en": {
        "title": "{service} content blocked",
        "message": (
            "This content is provided by {service} ({host}), which may set cookies. "
            "It belongs to the “{category}” category, which you have not accepted."
        ),
        "load": "Load this content",
        "always": "Always allow {service}",
        "preferences": "Manage my preferences",
        "gpc": (
            "Your browser asks not to share your data (Global Privacy Control): "
            "this content only loads if you ask for it."
        ),
        "failed": "Your choice could not be saved. Please try again.",
    },
}

# -- tokenizer ---------------------------------------------------------------

_WS = "\\t\\n\\f\\r "
# The attribute part of a tag, by the standard's before/after attribute name
# and value states. Possessive: never backtracks, so linear on any input.
_ATTRS = (
    rf"(?:[{_WS}/]++|[^{_WS}/>][^{_WS}/=>]*+"
    rf"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+\"|'[^']*+'|[^{_WS}>]*+))?+)*+"
)
_DELIM = rf"(?=[{_WS}/>])"
_RAW_TEXT = ("style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_MEDIA = ("img", "video", "audio", "source", "track", "link", "script", "iframe")
_CONTAINERS = ("video", "audio", "picture")
_START_NAMES = (*_MEDIA, *_RAW_TEXT, *_CONTAINERS, "head", "noscript", "plaintext")
_START_ALT = "|".join(sorted(set(_START_NAMES), key=len, reverse=True))
_END_ALT = "|".join(_CONTAINERS)


def _trie(names: tuple[str, ...]) -> str:
    """An alternation of ``names`` factored by first letter (faster to reject)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        groups.setdefault(name[0], []).append(name[1:])
    return "|".join(
        f"{first}(?:{'|'.join(sorted(rests, key=len, reverse=True))})"
        for first, rests in groups.items()
    )


# Everything gating can skip without looking: text, comments, bogus comments,
# and lower-case tags (with their attributes) that can neither load nor hide
# anything. Names with an upper-case letter stop the skip and are sorted out
# one by one (rare), which keeps the common case free of case folding.
_SKIP = re.compile(
    r"(?:[^<]++"
    r"|<!--(?:-?>|(?s:.*?)--!?>)"
    r"|<!(?!--)[^>]*+>"
    r"|<\?[^>]*+>"
    r"|</(?![A-Za-z])[^>]*+>"
    r"|<(?![A-Za-z!?/])"
    rf"|<(?!(?:{_trie(_START_NAMES)}){_DELIM}|[a-z]*+[A-Z])[a-z][^{_WS}/>]*+{_ATTRS}>"
    rf"|</(?!(?:{_END_ALT}){_DELIM}|[a-z]*+[A-Z])[a-z][^{_WS}/>]*+{_ATTRS}>"
    r")*+"
)
_ANY_TAG = re.compile(rf"</?[A-Za-z][^{_WS}/>]*+{_ATTRS}>")
# Tags that only load what they point at (not containers, not raw text): one
# that mentions no trigger is left as written unless a gated container holds it.
_QUIET_MEDIA = re.compile(rf"<(?:img|source|track|link){_DELIM}{_ATTRS}>")
_START_TAG = re.compile(rf"<((?i:{_START_ALT})){_DELIM}({_ATTRS})>")
_END_TAG = re.compile(rf"</((?i:{_END_ALT})){_DELIM}{_ATTRS}>")
_ATTR = re.compile(
    rf"([^{_WS}/>][^{_WS}/=>]*)(?:[{_WS}]*=[{_WS}]*(\"[^\"]*\"|'[^']*'|[^{_WS}>]*))?"
)
_RAW_END = {
    name: re.compile(rf"</(?i:{name}){_DELIM}") for name in (*_RAW_TEXT, "script", "noscript")
}
_ANY_END_TAG = re.compile(rf"</[A-Za-z][^{_WS}/>]*+{_ATTRS}>")
# Script data, escaped and double-escaped states (HTML standard 13.2.5.4-31).
_SCRIPT_DATA = re.compile(rf"<!--|</(?i:script){_DELIM}")
_SCRIPT_ESCAPED = re.compile(rf"-->|</?(?i:script){_DELIM}")
_SCRIPT_DOUBLE = re.compile(rf"-->|</(?i:script){_DELIM}")
_DOCUMENT_START = re.compile(
    r"\ufeff?(?:[\t\n\f\r ]++|<!--(?s:.*?)-->)*+(<!(?i:doctype)[^>]*+>)?"
    r"(?:[\t\n\f\r ]++|<!--(?s:.*?)-->)*+(<(?i:html)" + _DELIM + ")?"
)

# Attributes that make an element load something, per element.
_URL_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src", "srcdoc"),
    "link": ("href", "imagesrcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "picture": (),
}
_SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})
_INHERITING = frozenset({"source", "track", "img"})
_URL_HOST = re.compile(
    r"^(?:(?:https?|wss?|ftp):[/\\]*|[/\\]{2})([^/\\?#]*)", re.IGNORECASE | re.ASCII
)
_URL_NOISE = re.compile(r"[\t\n\r]")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_TINY = frozenset({"0", "1", "0px", "1px"})
# The tail of ``data-consent`` in any case (attribute names are
# case-insensitive); the search runs from each "-" (a literal first
# character keeps it fast), the "data" before it is checked in Python.
_CONSENT_TAIL = re.compile(r"-[cC][oO][nN][sS][eE][nN][tT]")
# The quick read (see ``_Page.skim``) holds only while no quoted attribute
# value contains ">": then every tag ends at its first ">".
_QUOTED_GT = re.compile(r"=[\t\n\f\r ]*+(?:\"[^\">]*+>|'[^'>]*+>)")
# What changes the tokenizer's state, or matters to gating, besides the tags
# that mention a trigger: comments, raw text elements, <noscript>, <head>,
# media containers. A name with a capital letter sends the page to the full read.
_LANDMARK = re.compile(
    r"<(?:!--|(?P<capital>/?[a-z]*+[A-Z])|/?(?:video|audio|picture)(?=[\t\n\f\r />])"
    r"|(?:script|style|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext|head)"
    r"(?=[\t\n\f\r />]))"
)
_COMMENT = re.compile(r"<!--(?:-?>|(?s:.*?)--!?>)")
_OPENING = re.compile(r"<[A-Za-z!?/]")
# Where a URL's host may start: after two slashes (protocol-relative or
# not), and after a colon (``https:host``, ``https:/host``, ``https:\\host``
# and tabs or newlines between them all reach the host, as in browsers).
_AUTHORITY = re.compile(r"/[\t\n\r]*+/[/\t\n\r]*+([^/\\?#\f \"'<>]*)")
_AFTER_COLON = re.compile(r":[/\\\t\n\r]*+([^/\\?#\f \"'<>]*)")
# Two slashes or backslashes in any mix: the protocol-relative spellings
# with a backslash (only looked for when the page has one).
_BACKSLASHED = re.compile(r"[/\\][\t\n\r]*+[/\\][/\\\t\n\r]*+([^/\\?#\f \"'<>]*)")
# Slashes, backslashes, colons, tabs or newlines written as character
# references: a URL spelt that way may reach any host, so every tag is read.
_ENCODED_SEPARATOR = re.compile(
    r"&(?:#0*+(?:47|92|58|9|10|13)(?![0-9])|#[xX]0*+(?:2[fF]|5[cC]|3[aA]|[9aAdD])(?![0-9a-fA-F])"
    r"|(?:sol|bsol|colon|Tab|NewLine)(?![A-Za-z]))"
)
# The same over a UTF-8 page read byte for byte (see :func:`gate_utf8`):
# its byte order mark is three characters there.
_DOCUMENT_START_RAW = re.compile(
    "(?:\xef\xbb\xbf)?" + _DOCUMENT_START.pattern.removeprefix(r"\ufeff?")
)
_DOCUMENT_TAG = re.compile(r"<(?i:head|body)" + _DELIM)
_ELEMENT_MARK = Markup("\x00")


@dataclass(frozen=True)
class _Attribute:
    name: str
    name_start: int
    value: str | None


_Hit = tuple[str, str, str]  # category, service name, service label


@dataclass(frozen=True)
class _Match:
    categories: tuple[str, ...]
    services: tuple[str, ...]
    labels: tuple[str, ...]


#: What gating makes of one start tag: its attributes and the insertions
#: that make it inert (positions from the tag's ``<``), the categories
#: keeping it inert (``None``: left as written), and whether the site wrote
#: it inert already (``gate.js`` must then come).
_Verdict = tuple[tuple[_Attribute, ...], _Match | None, tuple[tuple[int, str], ...], bool]

#: A placeholder made for a tag: its verdict's attributes and match, and the markup.
_Placeholder = tuple[tuple[_Attribute, ...], _Match, tuple[str, str]]

#: ``_gatescan.skim``: the quick read compiled, or ``None`` (see :meth:`_Page.skim_compiled`).
_Skim = Callable[..., tuple[list[str], int, int | None, int | None, bool, bool, int, int] | None]
#: How many verdicts a configuration keeps, and the longest tag kept.
_REMEMBERED_VERDICTS = 1024
_REMEMBERED_TAG_CHARS = 2048
#: How many URL authorities a configuration remembers the nature of, and the longest.
_REMEMBERED_TOKENS = 4096
_REMEMBERED_TOKEN_CHARS = 256
#: How many placeholders, and how many head markups, a configuration keeps.
_REMEMBERED_MARKUPS = 256

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _keep(store: dict[_Key, _Value], key: _Key, value: _Value, limit: int) -> None:
    """``store[key] = value``, ``store`` emptied first once it holds ``limit`` entries.

    The memos of a configuration: what they hold comes back page after page,
    so a full one is simply started again (no order to keep per lookup).
    """
    if len(store) >= limit:
        store.clear()
    store[key] = value


class _Gate:
    """What gating needs from one configuration, computed once."""

    def __init__(self, config: ConsentConfig) -> None:
        self.config = config
        self.categories = frozenset(config.category_names)
        self.exact: dict[str, list[_Hit]] = {}
        self.wildcard: dict[str, list[_Hit]] = {}
        for category in config.categories:
            for service in services_of(category):
                entry = (category.name, service.name, service.label)
                for host in service.hosts:
                    if host.startswith("*."):
                        self.wildcard.setdefault(host[2:], []).append(entry)
                    else:
                        self.exact.setdefault(host, []).append(entry)
        prefix = config.prefix
        self.gate_script = (
            f'<script src="{prefix}/static/gate.js?v={asset_version("gate.js")}" defer'
        )
        self.gate_attributes = f' data-prefix="{prefix}"'
        self.gate_css = (
            f'<link rel="stylesheet" href="{prefix}/static/gate.css?v={asset_version("gate.css")}">'
        )
        self.consent_mode_script = (
            f'<script src="{prefix}/static/consent-mode.js?v={asset_version("consent-mode.js")}">'
            "</script>"
        )
        self.mapping = tuple(sorted(_signal_mapping(config).items()))
        self.csrf = CsrfGuard(config)
        self.token: tuple[float, str] | None = None
        self.unknown_reported: set[str] = set()
        self.lock = threading.Lock()
        #: What was decided for a tag, by its text and the granted categories.
        self.verdicts: dict[tuple[str, frozenset[str], bool], _Verdict] = {}
        #: Whether a URL authority found in a page is a trigger, by its text.
        self.tokens: dict[str, bool] = {}
        #: Placeholders made (see :meth:`_Page.placeholder`) and head markup made.
        self.placeholders: dict[tuple[object, ...], _Placeholder] = {}
        self.head_markups: dict[tuple[object, ...], str] = {}
        #: Whether a gated iframe gets a placeholder, by its attributes (see ``wants_placeholder``).
        self.wants: dict[int, tuple[tuple[_Attribute, ...], bool]] = {}
        #: The states gating reads a page for, by choice (see ``state_for``).
        self.states: dict[tuple[frozenset[str], bool], ConsentState] = {}

    def form_token(self) -> str:
        """A signed form token for the placeholders' buttons, renewed every minute.

        The token only proves that a form came from one of our pages; it is
        the same for everyone, so sharing one for a minute costs nothing.
        """
        now = time.monotonic()
        with self.lock:
            if self.token is None or now - self.token[0] > 60:
                self.token = (now, self.csrf.token())
            return self.token[1]

    def remember(self, key: tuple[str, frozenset[str], bool], verdict: _Verdict) -> None:
        """Keep the verdict on a tag: the same tags come back page after page."""
        _keep(self.verdicts, key, verdict, _REMEMBERED_VERDICTS)

    def state_for(self, granted: frozenset[str], gpc: bool) -> ConsentState:
        """The decided state granting ``granted`` (one object per choice, made once)."""
        key = (granted, gpc)
        state = self.states.get(key)
        if state is None:
            state = ConsentState(decided=True, granted=granted, gpc=gpc)
            _keep(self.states, key, state, _REMEMBERED_MARKUPS)
        return state

    def wants_placeholder(self, attributes: tuple[_Attribute, ...]) -> bool:
        """:func:`_wants_placeholder` of a remembered verdict's attributes, known by identity."""
        known = self.wants.get(id(attributes))
        if known is not None and known[0] is attributes:
            return known[1]
        wants = _wants_placeholder(attributes)
        _keep(self.wants, id(attributes), (attributes, wants), _REMEMBERED_MARKUPS)
        return wants

    def lookup(self, host: str) -> list[_Hit]:
        found = list(self.exact.get(host, ()))
        labels = host.split(".")
        for index in range(len(labels)):
            found += self.wildcard.get(".".join(labels[index:]), ())
        return found

    def report_unknown(self, name: str) -> None:
        with self.lock:
            if name in self.unknown_reported:
                return
            self.unknown_reported.add(name)
        logger.warning(
            "data-consent names the undeclared category %r: the element stays inert", name
        )


_gates: dict[int, tuple[weakref.ref[ConsentConfig], _Gate]] = {}
_gates_lock = threading.Lock()


def _gate_for(config: ConsentConfig) -> _Gate:
    entry = _gates.get(id(config))
    if entry is not None and entry[0]() is config:
        return entry[1]
    gate = _Gate(config)
    with _gates_lock:
        # Configurations are few and long-lived; forget those that are gone.
        for key in [key for key, (ref, _) in _gates.items() if ref() is None]:
            del _gates[key]
        _gates[id(config)] = (weakref.ref(config), gate)
    return gate


@lru_cache(maxsize=8)
def asset_version(name: str) -> str:
    """A short hash of the bundled static file ``name``, for cache-busting URLs."""
    body = (files("mypharm_consent") / "static" / name).read_bytes()
    return hashlib.sha256(body).hexdigest()[:12]


def _signal_mapping(config: ConsentConfig) -> dict[str, tuple[str, ...]]:
    """For each Consent Mode signal, the categories that must all be granted."""
    source = config.consent_mode_signals
    if source is None:
        source = {
            name: signals
            for name, signals in DEFAULT_CONSENT_MODE_MAPPING.items()
            if name in config.category_names
        }
    required: dict[str, list[str]] = {signal: [] for signal in CONSENT_MODE_SIGNALS}
    for category, signals in source.items():
        for signal in signals:
            required[signal].append(category)
    return {signal: tuple(categories) for signal, categories in required.items()}


def _signals(
    mapping: tuple[tuple[str, tuple[str, ...]], ...], granted: frozenset[str]
) -> dict[str, str]:
    return {
        signal: "granted"
        if categories and all(c == NECESSARY or c in granted for c in categories)
        else "denied"
        for signal, categories in mapping
    }


def consent_mode_defaults(state: ConsentState, config: ConsentConfig) -> dict[str, str]:
    """The Consent Mode v2 signals for ``state``: ``"granted"`` or ``"denied"`` each.

    A signal is granted when every category mapped to it is granted; a
    signal no category maps to is denied.
    """
    return _signals(_gate_for(config).mapping, state.granted)


def _json_for_script(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@lru_cache(maxsize=256)
def _consent_mode_block(
    mapping: tuple[tuple[str, tuple[str, ...]], ...], granted: frozenset[str], gpc: bool
) -> str:
    payload = {
        "default": _signals(mapping, granted),
        "signals": {signal: list(categories) for signal, categories in mapping},
        "gpc": gpc,
    }
    return (
        '<script type="application/json" id="mypharm-consent-mode">'
        f"{_json_for_script(payload)}</script>"
    )


# -- URL hosts ---------------------------------------------------------------


def _unescape(value: str) -> str:
    return html_lib.unescape(value) if "&" in value else value


def url_host(value: str) -> str | None:
    """The host an attribute's URL loads from, the way a browser reads it.

    Absolute (``https://``, also with backslashes or missing slashes) and
    protocol-relative (``//host``) URLs give their lower-cased host, without
    user info, port or trailing dot; relative URLs give ``None``.
    """
    value = _URL_NOISE.sub("", value.strip("\t\n\f\r "))
    match = _URL_HOST.match(value)
    if match is None:
        return None
    host = match.group(1).rpartition("@")[2]
    if host.startswith("["):
        return host.lower()
    host = unquote(host.partition(":")[0]).rstrip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host
    return host or None


def _srcset_hosts(value: str) -> list[str]:
    hosts = []
    for candidate in value.split():
        host = url_host(candidate.strip(","))
        if host:
            hosts.append(host)
    return hosts


# -- rewriting ---------------------------------------------------------------


def _attributes(html: str, start: int, end: int, *, raw: bool = False) -> tuple[_Attribute, ...]:
    """The attributes in ``html[start:end]``, names lower-cased and values decoded.

    ``raw``: ``html`` is a UTF-8 page read byte for byte (see
    :func:`gate_utf8`); names and values are decoded from UTF-8 first, so
    that they are judged as the characters the browser reads.
    """
    found = []
    for match in _ATTR.finditer(html, start, end):
        name = match.group(1)
        text = match.group(2)
        if raw:
            name = _from_raw(name)
            text = None if text is None else _from_raw(text)
        if text is None:
            value = None
        elif text[:1] in ('"', "'"):
            value = _unescape(text[1:-1])
        else:
            value = _unescape(text)
        found.append(_Attribute(name.lower(), match.start(1), value))
    return tuple(found)


def _from_raw(text: str) -> str:
    """Characters of a UTF-8 page read byte for byte, as the browser decodes them."""
    if text.isascii():
        return text
    return text.encode("latin-1").decode("utf-8", errors="replace")


def _to_raw(text: str) -> str:
    """What ``text`` becomes in a UTF-8 page read byte for byte: its UTF-8 bytes.

    Characters UTF-8 cannot carry (lone surrogates) become character
    references, as they do when a decoded page is encoded.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", errors="xmlcharrefreplace").decode("latin-1")


def _attr_escape(value: str) -> str:
    return html_lib.escape(value, quote=True)


class _Page:
    """One run of gating over one page (no state is kept between pages)."""

    def __init__(
        self,
        html: str,
        state: ConsentState,
        gate: _Gate,
        language: Language,
        *,
        raw: bool = False,
    ) -> None:
        self.html = html
        #: ``html`` is a UTF-8 page read byte for byte (see :func:`gate_utf8`).
        self.raw = raw
        self.state = state
        self.gate = gate
        self.language = language
        self.out: list[str] = []
        self.copied = 0
        # Indices in ``out`` of the empty pieces standing for the head markup.
        self.head_slot: int | None = None
        self.script_slot: int | None = None
        self.needs_client = False
        self.changed = False
        self.gated = 0
        self.placeholders = 0
        self.containers: list[tuple[str, _Match | None]] = []
        # Gating looks no further than the last mention of ``data-consent``
        # or of a declared host (see ``_triggers``); only tags holding one
        # of those mentions are read.
        self.limit = 0
        self.triggers: list[int] = []
        self.read_all = False
        self.want_head = False

    def copy_to(self, position: int) -> None:
        if position > self.copied:
            self.out.append(self.html[self.copied : position])
            self.copied = position

    def slot(self, position: int) -> int:
        self.copy_to(position)
        self.out.append("")
        return len(self.out) - 1

    def inheriting(self) -> bool:
        """Whether the innermost open container is gated (its media inherit)."""
        return bool(self.containers) and self.containers[-1][1] is not None

    def done(self, position: int) -> bool:
        """Whether nothing at or after ``position`` can matter any more."""
        if position < self.limit or self.inheriting():
            return False
        return not self.want_head or self.head_slot is not None or self.script_slot is not None

    def scan(
        self, start: int, end: int, *, in_noscript: bool = False, container: bool = False
    ) -> int:
        """Gate ``[start, end)`` reading every tag; where it stopped (``-1``: the end).

        It stops early, outside any tag, once nothing further can matter, or
        (``container``) once the gated container it was called for is closed.
        """
        html = self.html
        position = start
        while not self.done(position) and not (container and not self.inheriting()):
            quiet = None if self.read_all or self.inheriting() else self.triggers
            position = _skip(html, position, end, quiet)
            if position >= end:
                return end
            if html.startswith("</", position):
                closing = _END_TAG.match(html, position, end)
                if closing is not None:
                    self.close_container(closing.group(1).lower())
                    position = closing.end()
                    continue
            tag = _START_TAG.match(html, position, end)
            if tag is None:
                other = _ANY_TAG.match(html, position, end)
                if other is not None:
                    # A tag spelt with capitals that gating has no business with.
                    position = other.end()
                    continue
                # An unterminated tag or comment: the browser reads the rest
                # of the page as part of it, so nothing there can load.
                return -1
            name = tag.group(1).lower()
            after = tag.end()
            if name == "head":
                if self.head_slot is None and not in_noscript:
                    self.head_slot = self.slot(after)
                position = after
            elif name == "noscript":
                close = _RAW_END["noscript"].search(html, after, end)
                inner_end = close.start() if close else end
                self.noscript(after, inner_end)
                position = inner_end
            elif name == "plaintext":
                return -1
            elif name in _URL_ATTRIBUTES:
                if name == "script" and self.script_slot is None and not in_noscript:
                    self.script_slot = self.slot(tag.start())
                position = self.element(name, tag, end)
            else:
                close = _RAW_END[name].search(html, after, end)
                position = close.start() if close else end
        return position

    def skim(self) -> bool:
        """Gate the page reading only its landmarks and the tags that mention a trigger.

        Valid when every tag that may be gated holds a mention (not so on a
        page with a backslashed URL), no quoted attribute value before the
        last mention holds a ``>`` and no tag name there has a capital letter
        (checked first: the page is then left to :meth:`scan`, and ``False``
        returned). Under
        those conditions every construct other than a comment or a raw text
        element ends at its first ``>``, so whether a position is in the
        middle of a tag is told by the nearest ``>`` and ``<`` before it, and
        the regular expressions skip everything else at the speed of a
        search.
        """
        html = self.html
        limit = self.limit
        if self.read_all:
            return False
        if _skim is not None and self.skim_compiled():
            return True
        landmarks = _landmarks(html, limit)
        if landmarks is None:
            return False
        marks = sorted({*landmarks, *self.trigger_tags(limit)})
        safe = 0
        for position in marks:
            if position < safe:
                continue
            if not self.in_data(safe, position):
                # Inside a tag, which ends at its first ">": skip past it.
                closed = html.find(">", position)
                if closed == -1:
                    return True
                safe = closed + 1
                continue
            safe = self.landmark(position)
            if safe < 0:
                return True
        if self.want_head and self.head_slot is None and self.script_slot is None:
            self.scan(safe, len(html))
        return True

    def skim_compiled(self) -> bool:
        """:meth:`skim` run by ``mypharm_consent._gatescan.skim``; whether it could.

        It can when every tag it must gate was decided before (on an earlier
        page: the same tags come back page after page) and nothing on the
        page needs the full read (``<noscript>``, a gated media container);
        it then leaves the page in the state :meth:`skim` would have. When it
        cannot, nothing of the page is changed but the placeholders counted.
        """
        assert _skim is not None
        done = _skim(
            self.html,
            self.limit,
            self.triggers,
            self.gate.verdicts,
            self.state.granted,
            self.raw,
            self.placeholder,
            self.gate.wants_placeholder,
        )
        if done is None:
            self.placeholders = 0
            return False
        (
            self.out,
            self.copied,
            self.head_slot,
            self.script_slot,
            self.needs_client,
            self.changed,
            self.gated,
            safe,
        ) = done
        if safe >= 0 and self.want_head and self.head_slot is None and self.script_slot is None:
            self.scan(safe, len(self.html))
        return True

    def trigger_tags(self, limit: int) -> list[int]:
        """The starts of the tags that hold a trigger (a candidate each)."""
        html = self.html
        starts: list[int] = []
        # After the last ">" before a trigger, the first opening starts the
        # tag that holds it. Both are tracked from trigger to trigger, so
        # that every character is looked at once.
        previous = 0
        searched = 0
        opening: int | None = None
        for trigger in self.triggers:
            if trigger >= limit:
                break
            closed = html.rfind(">", previous, trigger)
            if closed != -1:
                searched, opening = closed + 1, None
            previous = trigger
            if opening is None:
                found = _OPENING.search(html, searched, trigger)
                searched = trigger
                opening = found.start() if found else None
            if opening is not None and (not starts or starts[-1] != opening):
                starts.append(opening)
        return starts

    def in_data(self, safe: int, position: int) -> bool:
        """Whether ``position`` (a ``<``) opens a tag, given ``safe`` is outside any."""
        html = self.html
        closed = html.rfind(">", safe, position)
        return _OPENING.search(html, max(closed + 1, safe), position) is None

    def landmark(self, position: int) -> int:
        """Handle what starts at ``position``; the next safe position (``-1``: the end)."""
        html = self.html
        end = len(html)
        if html.startswith("<!--", position):
            comment = _COMMENT.match(html, position)
            return comment.end() if comment else -1
        if html.startswith("</", position):
            closing = _END_TAG.match(html, position)
            if closing is not None:
                self.close_container(closing.group(1).lower())
                return closing.end()
        tag = _START_TAG.match(html, position)
        if tag is None:
            other = _ANY_TAG.match(html, position)
            if other is not None:
                return other.end()
            # A bogus comment (<!...>, <?...>, </ ...>) or an unterminated tag.
            closed = html.find(">", position)
            # "</" then anything but an ASCII letter opens a bogus comment.
            letter = html[position + 2 : position + 3]
            bogus = html[position + 1] in "!?" or not (letter.isascii() and letter.isalpha())
            return closed + 1 if bogus and closed != -1 else -1
        name = tag.group(1).lower()
        after = tag.end()
        if name == "head":
            if self.head_slot is None:
                self.head_slot = self.slot(after)
            return after
        if name == "noscript":
            close = _RAW_END["noscript"].search(html, after)
            inner_end = close.start() if close else end
            self.noscript(after, inner_end)
            return inner_end
        if name == "plaintext":
            return -1
        if name in _URL_ATTRIBUTES:
            if name == "script" and self.script_slot is None:
                self.script_slot = self.slot(position)
            body_end = self.element(name, tag, end)
            if name in _CONTAINERS and self.inheriting():
                # Its media inherit its categories: read it all, tag by tag.
                return self.scan(body_end, end, container=True)
            return body_end
        close = _RAW_END[name].search(html, after)
        return close.start() if close else -1

    def noscript(self, start: int, end: int) -> None:
        """Gate a ``<noscript>``'s content: markup without JavaScript, text with it.

        Containers opened inside end with it, as they do in a browser.
        """
        depth = len(self.containers)
        self.scan(start, end, in_noscript=True)
        del self.containers[depth:]

    def close_container(self, name: str) -> None:
        for index in range(len(self.containers) - 1, -1, -1):
            if self.containers[index][0] == name:
                del self.containers[index:]
                return

    def element(self, name: str, tag: re.Match[str], end: int) -> int:
        html = self.html
        after = tag.end()
        if name == "script":
            body_end = _script_end(html, after, end)
        elif name == "iframe":
            close = _RAW_END["iframe"].search(html, after, end)
            body_end = close.start() if close else end
        else:
            body_end = after
        if not (tag.start() < self.limit or self.inheriting()) or not self.worth_reading(tag):
            if name in _CONTAINERS:
                self.containers.append((name, None))
            return body_end
        attributes, match, relative, authored_inert = self.verdict(name, tag)
        if authored_inert:
            self.needs_client = True
        if name in _CONTAINERS:
            self.containers.append((name, match))
        if match is None:
            return body_end
        self.gated += 1
        self.needs_client = True
        start = tag.start()
        edits = [(start + position, text) for position, text in relative]
        if name == "iframe" and body_end < end and _wants_placeholder(attributes):
            closing = _ANY_END_TAG.match(html, body_end, end)
            if closing is not None:
                opening, ending = self.placeholder(attributes, match)
                self.copy_to(tag.start())
                self.out.append(opening)
                self.apply(edits, hidden_at=tag.start() + 1 + len(name))
                self.copy_to(closing.end())
                self.out.append(ending)
                return closing.end()
        self.apply(edits)
        return body_end

    def verdict(self, name: str, tag: re.Match[str]) -> _Verdict:
        """What to make of this start tag, remembered by its text and the granted categories.

        The same third-party tags come back on every page, mostly spelt the
        same: their attributes are decoded and judged once. A tag inside a
        gated container inherits from it, so it is judged on the spot.
        """
        inheriting = self.inheriting()
        text = tag.group()
        # Read byte for byte, a tag gets its insertions as UTF-8 bytes.
        key = (text, self.state.granted, self.raw)
        if not inheriting:
            known = self.gate.verdicts.get(key)
            if known is not None:
                return known
        start = tag.start()
        attributes = _attributes(text, tag.start(2) - start, tag.end(2) - start, raw=self.raw)
        match, authored_inert = self.decide(name, attributes)
        edits = self.edits(name, attributes, match) if match is not None else ()
        verdict = (attributes, match, edits, authored_inert)
        if not inheriting and len(text) <= _REMEMBERED_TAG_CHARS:
            self.gate.remember(key, verdict)
        return verdict

    def worth_reading(self, tag: re.Match[str]) -> bool:
        """Whether the tag holds a mention of ``data-consent`` or of a declared host.

        Otherwise it can be neither tagged nor auto-blocked (unless it
        inherits from a gated container), and its attributes are not decoded.
        """
        if self.read_all or self.inheriting():
            return True
        index = bisect_left(self.triggers, tag.start())
        return index < len(self.triggers) and self.triggers[index] < tag.end()

    def decide(self, name: str, attributes: tuple[_Attribute, ...]) -> tuple[_Match | None, bool]:
        """The categories that keep this element inert (``None`` to leave it).

        And whether the site wrote it inert already, for ``gate.js`` to
        activate (only said of an element left as written).
        """
        state = self.state
        first: dict[str, str | None] = {}
        for attribute in attributes:
            first.setdefault(attribute.name, attribute.value)
        tag_value = first.get("data-consent")
        if tag_value is not None and tag_value.strip():
            wanted = tuple(dict.fromkeys(tag_value.split()))
            for category in wanted:
                if category not in self.gate.categories:
                    self.gate.report_unknown(category)
            if all(state.allows(c) and c in self.gate.categories for c in wanted):
                return None, _authored_inert(name, first)
            service = first.get("data-service") or ""
            labels = ((service,) if service else ()) + tuple(
                dict.fromkeys(label for _, _, label in self.host_hits(name, first))
            )
            return _Match(wanted, (), labels), False
        if name in _INHERITING and self.containers:
            inherited = self.containers[-1][1]
            if inherited is not None:
                return inherited, False
        hits = self.host_hits(name, first)
        if not hits:
            return None, False
        categories = tuple(dict.fromkeys(c for c, _, _ in hits))
        if all(state.allows(c) for c in categories):
            return None, False
        found = _Match(
            categories,
            tuple(dict.fromkeys(s for _, s, _ in hits)),
            tuple(dict.fromkeys(label for _, _, label in hits)),
        )
        return found, False

    def host_hits(self, name: str, first: Mapping[str, str | None]) -> list[_Hit]:
        gate = self.gate
        if not gate.exact and not gate.wildcard:
            return []
        hits: list[_Hit] = []
        for attribute in _URL_ATTRIBUTES[name]:
            value = first.get(attribute)
            if not value or attribute == "srcdoc":
                continue
            hosts = _srcset_hosts(value) if attribute in _SRCSET_ATTRIBUTES else [url_host(value)]
            for host in hosts:
                if host:
                    hits += gate.lookup(host)
        return hits

    def edits(
        self, name: str, attributes: tuple[_Attribute, ...], match: _Match
    ) -> tuple[tuple[int, str], ...]:
        """Insertions ``(position from the tag's <, text)`` that make this start tag inert."""
        present = {a.name for a in attributes}
        inserted = []
        edits: list[tuple[int, str]] = []
        if name == "script":
            types = [a for a in attributes if a.name == "type"]
            if not types or (types[0].value or "").strip().lower() != "text/plain":
                # First in the tag, so it wins over any (even repeated) type.
                inserted.append(' type="text/plain"')
                if types:
                    prefix = "data-consent-" if "data-type" in present else "data-"
                    edits.append((types[0].name_start, prefix))
        declared = next((a.value for a in attributes if a.name == "data-consent"), None)
        if not (declared or "").strip():
            inserted.append(f' data-consent="{_attr_escape(" ".join(match.categories))}"')
            if match.services and "data-service" not in present:
                inserted.append(f' data-service="{_attr_escape(" ".join(match.services))}"')
        if inserted:
            edits.append((1 + len(name), "".join(inserted)))
        for attribute in attributes:
            if attribute.name in _URL_ATTRIBUTES[name]:
                taken = f"data-{attribute.name}" in present
                edits.append((attribute.name_start, "data-consent-" if taken else "data-"))
        edits.sort(key=lambda edit: edit[0])
        if self.raw:
            return tuple((position, _to_raw(text)) for position, text in edits)
        return tuple(edits)

    def apply(self, edits: list[tuple[int, str]], hidden_at: int | None = None) -> None:
        if hidden_at is not None:
            edits = sorted([(hidden_at, " hidden"), *edits], key=lambda edit: edit[0])
        for position, text in edits:
            self.copy_to(position)
            self.out.append(text)
        self.changed = True

    def placeholder(self, attributes: tuple[_Attribute, ...], match: _Match) -> tuple[str, str]:
        """The markup around a gated iframe, made once per tag, choice and number on the page.

        A remembered verdict hands the same ``attributes`` and ``match``
        objects to every page, so they are known by identity (and kept with
        the markup, so that an identity is never taken for another's).
        """
        self.placeholders += 1
        state = self.state
        key = (
            id(attributes),
            id(match),
            self.placeholders,
            self.language,
            state.granted,
            state.gpc,
            self.raw,
        )
        known = self.gate.placeholders.get(key)
        if known is not None and known[0] is attributes and known[1] is match:
            return known[2]
        made = self.render_placeholder(attributes, match)
        _keep(self.gate.placeholders, key, (attributes, match, made), _REMEMBERED_MARKUPS)
        return made

    def render_placeholder(
        self, attributes: tuple[_Attribute, ...], match: _Match
    ) -> tuple[str, str]:
        source = next((a.value for a in attributes if a.name == "src"), None) or ""
        host = url_host(source) or ""
        config = self.gate.config
        refused = [c for c in match.categories if not self.state.allows(c)] or [
            match.categories[-1]
        ]
        found = config.category(refused[0])
        category_label = found.label[self.language] if found else refused[0]
        service = match.labels[0] if match.labels else (host or category_label)
        opening, ending = _render_placeholder(
            self.gate,
            self.language,
            number=self.placeholders,
            service=service,
            host=host,
            category_label=category_label,
            categories=" ".join(match.categories),
            gpc=self.state.gpc and "marketing" in refused,
        )
        if self.raw:
            return _to_raw(opening), _to_raw(ending)
        return opening, ending

    def head_markup(self, consent_mode: bool) -> str:
        """The scripts (and stylesheet) for ``<head>``, made once per kind of page and choice."""
        gate = self.gate
        state = self.state
        token = gate.form_token() if self.needs_client and self.placeholders else ""
        key = (
            consent_mode,
            self.needs_client,
            token,
            self.language,
            state.granted,
            state.gpc,
            self.raw,
        )
        known = gate.head_markups.get(key)
        if known is None:
            known = self.render_head_markup(consent_mode, token)
            _keep(gate.head_markups, key, known, _REMEMBERED_MARKUPS)
        return known

    def render_head_markup(self, consent_mode: bool, token: str) -> str:
        gate = self.gate
        state = self.state
        parts = []
        if consent_mode:
            parts.append(_consent_mode_block(gate.mapping, state.granted, state.gpc))
            parts.append(gate.consent_mode_script)
        if self.needs_client:
            granted = " ".join(sorted(state.granted | {NECESSARY}))
            script = [
                gate.gate_script,
                gate.gate_attributes,
                f' data-granted="{_attr_escape(granted)}"',
            ]
            if self.placeholders:
                parts.append(gate.gate_css)
                script.append(f' data-csrf="{_attr_escape(token)}"')
                script.append(f' data-lang="{self.language}"')
            script.append("></script>")
            parts.append("".join(script))
        markup = "".join(parts)
        return _to_raw(markup) if self.raw else markup


def _authored_inert(name: str, first: Mapping[str, str | None]) -> bool:
    """Whether the site wrote the element already inert, for ``gate.js`` to activate."""
    if name == "script" and (first.get("type") or "").strip().lower() == "text/plain":
        return True
    return any(
        f"data-{attribute}" in first and attribute not in first
        for attribute in _URL_ATTRIBUTES[name]
    )


def _wants_placeholder(attributes: tuple[_Attribute, ...]) -> bool:
    """Visible iframes get a placeholder; hidden ones (tracking frames) do not."""
    for attribute in attributes:
        value = (attribute.value or "").strip().lower()
        if attribute.name == "hidden":
            return False
        if attribute.name == "data-consent-placeholder" and value in ("off", "false", "no"):
            return False
        if attribute.name == "style" and _HIDDEN_STYLE.search(value):
            return False
        if attribute.name in ("width", "height") and value in _TINY:
            return False
    return True


@lru_cache(maxsize=256)
def _render_placeholder(
    gate: _Gate,
    language: Language,
    *,
    number: int,
    service: str,
    host: str,
    category_label: str,
    categories: str,
    gpc: bool,
) -> tuple[str, str]:
    """The placeholder markup before and after the iframe it wraps (remembered)."""
    config = gate.config
    values = {"service": service, "host": host or service, "category": category_label}
    template = environment(config).get_template(PLACEHOLDER_TEMPLATE)
    body = template.render(
        id=f"mypharm-gate-{number}",
        lang=language,
        service=service,
        host=host,
        categories=categories,
        gpc=gpc,
        preferences_url=f"{config.prefix}/preferences",
        t={key: text.format(**values) for key, text in PLACEHOLDER_TEXTS[language].items()},
        element=_ELEMENT_MARK,
    )
    opening, marker, ending = body.partition(_ELEMENT_MARK)
    # The template file's final newline is not part of the page.
    return (opening, ending.rstrip("\n")) if marker else (body.rstrip("\n"), "")


def _script_end(html: str, start: int, end: int) -> int:
    """Where the ``</script`` that really ends a script body starts (or ``end``)."""
    position = start
    state = 0  # 0: script data, 1: escaped, 2: double escaped
    while True:
        if state == 0:
            found = _SCRIPT_DATA.search(html, position, end)
            if found is None:
                return end
            if found.group().startswith("</"):
                return found.start()
            # "<!-->" closes at once: the dashes of "<!--" count for "-->".
            state, position = 1, found.end() - 2
        elif state == 1:
            found = _SCRIPT_ESCAPED.search(html, position, end)
            if found is None:
                return end
            text = found.group()
            if text == "-->":
                state, position = 0, found.end()
            elif text.startswith("</"):
                return found.start()
            else:
                state, position = 2, found.end() + 1
        else:
            found = _SCRIPT_DOUBLE.search(html, position, end)
            if found is None:
                return end
            if found.group() == "-->":
                state, position = 0, found.end()
            else:
                state, position = 1, found.end() + 1


def _triggers(html: str, gate: _Gate) -> list[int] | None:
    """Where the page mentions something gating may act on, in order.

    A tag can only be gated if it says ``data-consent`` (in any case) or
    holds a URL whose authority (after ``//``, or after a scheme's colon
    with any slashes, backslashes, tabs or newlines) names a declared host.
    Both are found with searches that run in C over the whole page, so a
    page without any costs no tokenizing at all, the tokenizer stops after
    the last one, and only the tags around them are read. Hosts the browser
    would decode first (character references, percent-escapes, tabs and
    newlines) count as mentions; separators written as character references
    (``&sol;&sol;host``) make every tag count (``None``).
    """
    positions, tokens = _mentions(html, bool(gate.exact or gate.wildcard))
    if tokens is None:
        return None
    known = gate.tokens
    wanted: list[str] = []
    for token in tokens:
        # The remembered answer first: the same authorities come back page after page.
        trigger = known.get(token)
        if trigger is None:
            trigger = _is_trigger(token, gate)
        if trigger:
            wanted.append(token)
    if wanted:
        _occurrences_all(html, wanted, positions)
    positions.sort()
    return positions


def _occurrences_py(html: str, text: str, positions: list[int]) -> None:
    """Append the start of every occurrence of ``text`` in ``html``, overlaps included."""
    found = html.find(text)
    while found != -1:
        positions.append(found)
        found = html.find(text, found + 1)


def _occurrences_all_py(html: str, texts: list[str], positions: list[int]) -> None:
    """Append the start of every occurrence of each of ``texts``, in order.

    A position comes once for each text found there; overlaps are included.
    """
    found: list[int] = []
    for text in texts:
        _occurrences_py(html, text, found)
    found.sort()
    positions += found


def _skip_py(html: str, position: int, end: int, triggers: list[int] | None = None) -> int:
    """Where :data:`_SKIP` stops from ``position`` (before ``end``): the next thing to read.

    With ``triggers`` (the sorted mentions), also past the ``<img>``,
    ``<source>``, ``<track>`` and ``<link>`` tags that hold none: outside a
    gated container, :meth:`_Page.element` would leave them as they are. The
    definition; ``mypharm_consent._gatescan.skip`` gives the same answer.
    """
    while True:
        skipped = _SKIP.match(html, position, end)
        assert skipped is not None  # the pattern also matches the empty string
        position = skipped.end()
        if triggers is None or position >= end:
            return position
        tag = _QUIET_MEDIA.match(html, position, end)
        if tag is None:
            return position
        index = bisect_left(triggers, position)
        if index < len(triggers) and triggers[index] < tag.end():
            return position
        position = tag.end()


def _landmarks_py(html: str, limit: int) -> list[int] | None:
    """The starts of the landmarks in ``html[:limit]``; ``None`` if the quick read does not hold.

    It does not hold when a quoted attribute value there holds a ``>`` or a
    tag name there has a capital letter (see :meth:`_Page.skim`). The
    definition; ``mypharm_consent._gatescan.landmarks`` gives the same answer.
    """
    if _QUOTED_GT.search(html, 0, limit):
        return None
    landmarks = []
    for found in _LANDMARK.finditer(html, 0, limit):
        if found.group("capital"):
            return None
        landmarks.append(found.start())
    return landmarks


def _mentions_py(html: str, hosts: bool) -> tuple[list[int], set[str] | None]:
    """The starts of ``data-consent`` and, with ``hosts``, the URL authorities in ``html``.

    The authorities are ``None`` when a separator is written as a character
    reference (every tag must then be read). The definition;
    ``mypharm_consent._gatescan.mentions`` gives the same answer.
    """
    positions: list[int] = []
    for tail in _CONSENT_TAIL.finditer(html):
        start = tail.start() - 4
        if start >= 0 and html[start : start + 4].lower() == "data":
            positions.append(start)
    if not hosts:
        return positions, set()
    if "&" in html and _ENCODED_SEPARATOR.search(html):
        return positions, None
    tokens = set(_AUTHORITY.findall(html))
    tokens.update(_AFTER_COLON.findall(html))
    if "\\" in html:
        tokens.update(_BACKSLASHED.findall(html))
    return positions, tokens


def _join_raw_py(pieces: list[str | bytes | memoryview]) -> bytes:
    """The definition of ``mypharm_consent._gatescan.join_raw``."""
    if type(pieces) is not list:
        raise TypeError("join_raw() takes a list")
    parts: list[bytes | memoryview] = []
    for piece in pieces:
        if type(piece) is str:
            parts.append(piece.encode("latin-1"))
        elif type(piece) is bytes or type(piece) is memoryview:
            parts.append(piece)
        else:
            kind = type(piece).__name__
            raise TypeError(f"join_raw() takes str, bytes and memoryview pieces, not {kind}")
    return b"".join(parts)


def _load_scan() -> tuple[
    Callable[[str, int, int, list[int] | None], int],
    Callable[[str, int], list[int] | None],
    Callable[[str, bool], tuple[list[int], set[str] | None]],
    Callable[[str, list[str], list[int]], None],
    _Skim | None,
    Callable[[list[str | bytes | memoryview]], bytes],
    Callable[[str, int, tuple[str, str, str, str, str, str]], list[tuple[int, int, str]] | None]
    | None,
]:
    """The compiled functions when built and allowed, else their definitions here."""
    if os.environ.get("MYPHARM_CONSENT_SPEEDUPS", "1") != "0":
        try:
            from mypharm_consent import _gatescan
        except ImportError:
            logger.debug("mypharm_consent._gatescan is not built: gating searches in Python")
        else:
            return (
                _gatescan.skip,
                _gatescan.landmarks,
                _gatescan.mentions,
                _gatescan.occurrences_all,
                _gatescan.skim,
                _gatescan.join_raw,
                _gatescan.verbatim_spans,
            )
    else:
        logger.debug("MYPHARM_CONSENT_SPEEDUPS=0: gating searches in Python")
    return _skip_py, _landmarks_py, _mentions_py, _occurrences_all_py, None, _join_raw_py, None


# ``join_raw(pieces)``: ``pieces`` (str, bytes, memoryview) joined into bytes, each
# str taken one byte per character (``str.encode("latin-1")``): a UTF-8 page read
# byte for byte (see :func:`gate_utf8`) written back with a single copy. Raises
# ``UnicodeEncodeError`` for a character past U+00FF and ``TypeError`` for a piece
# of another type.
(
    _skip,
    _landmarks,
    _mentions,
    _occurrences_all,
    _skim,
    join_raw,
    _verbatim_spans_c,
) = _load_scan()
#: Whether gating's searches run compiled (``mypharm_consent._gatescan``) in this
#: process; they give the same answers as the regular expressions of this module.
SPEEDUPS = _landmarks is not _landmarks_py


def _authority_host(token: str) -> str:
    host = _URL_NOISE.sub("", token).rpartition("@")[2]
    return host.partition(":")[0].rstrip(".").lower()


def _is_trigger(token: str, gate: _Gate) -> bool:
    """Whether the URL authority ``token`` may name a declared host (remembered per gate)."""
    known = gate.tokens.get(token)
    if known is not None:
        return known
    if "&" in token or "%" in token or not token.isascii():
        known = True
    else:
        host = _authority_host(token)
        known = bool(host) and bool(gate.lookup(host))
    if len(token) <= _REMEMBERED_TOKEN_CHARS:
        _keep(gate.tokens, token, known, _REMEMBERED_TOKENS)
    return known


#: What may not be written in each kind of verbatim span (see :func:`verbatim_spans`).
_IN_TEXT = "<"
_IN_COMMENT = "<>-!"
_IN_SCRIPT = "<>-!"
_IN_RAW_TEXT = "<"
_TAG_NAME = re.compile(rf"</?([A-Za-z][^{_WS}/>]*)")
#: Attributes gating never reads, whatever the element: a nonce changes on every page.
_UNREAD_ATTRIBUTES = frozenset({"nonce", "integrity", "id", "class", "title", "alt"})
_START_NAME_SET = frozenset(_START_NAMES)


#: The kinds of span ``_gatescan.verbatim_spans`` numbers, by what they forbid.
_SPAN_KINDS = (_IN_TEXT, _IN_COMMENT, _IN_SCRIPT, _IN_RAW_TEXT, '"<>', "'<>")


def verbatim_spans(html: str, *, raw: bool = False) -> list[tuple[int, int, str]]:
    """:func:`_verbatim_spans_py`, read in C (``_gatescan``) for a text of one byte a character."""
    if _verbatim_spans_c is not None:
        start = (_DOCUMENT_START_RAW if raw else _DOCUMENT_START).match(html)
        assert start is not None  # every part of the pattern is optional
        found = _verbatim_spans_c(html, start.end() + 1, _SPAN_KINDS)
        if found is not None:
            return found
    return _verbatim_spans_py(html, raw=raw)


def _verbatim_spans_py(html: str, *, raw: bool = False) -> list[tuple[int, int, str]]:
    """The parts of ``html`` gating copies as they are, whatever they hold, in order.

    Each is ``(start, end, forbidden)``: gating ``html`` with a change inside
    ``html[start:end]`` gives the page gating gave with the same change, as
    long as neither the old characters nor the new ones, with the character
    on each side of them that is still in the part, include one of
    ``forbidden``. The parts are, read as gating reads a page:

    * text between tags, after the document's start (its doctype, leading
      comments and ``<html``); no ``<``;
    * a comment's content; no ``<``, ``>``, ``-`` or ``!`` (which could end it);
    * a script's body; the same (which could end it, or escape it);
    * the body of a ``<style>``, ``<textarea>``, ``<title>``, ``<xmp>``,
      ``<noembed>`` or ``<noframes>``; no ``<``;
    * a quoted attribute value of a tag gating has no business with (not
      one that loads, hides or holds anything gating reads), or of one
      gating never reads in any tag (``nonce``, ``integrity``, ``id``,
      ``class``, ``title``, ``alt``); not its quote, ``<`` or ``>``.

    Nothing is found after what gating cannot read through (an unterminated
    tag or comment, ``<plaintext>``). ``raw`` is for a UTF-8 page read one
    character per byte, as in :func:`gate_utf8`.
    """
    spans: list[tuple[int, int, str]] = []
    start = (_DOCUMENT_START_RAW if raw else _DOCUMENT_START).match(html)
    assert start is not None  # every part of the pattern is optional
    floor = start.end() + 1
    end = len(html)
    position = guard = 0
    while position < end:
        opening = html.find("<", position)
        if opening == -1:
            opening = end
        if opening > max(position, floor, guard):
            spans.append((max(position, floor, guard), opening, _IN_TEXT))
        if opening >= end:
            break
        following = html[opening + 1 : opening + 2]
        if html.startswith("<!--", opening):
            comment = _COMMENT.match(html, opening)
            if comment is None:
                break
            closed = comment.end()
            inner_end = closed - (4 if html.startswith("--!>", closed - 4) else 3)
            if inner_end > max(opening + 4, floor):
                spans.append((max(opening + 4, floor), inner_end, _IN_COMMENT))
            position = closed
            continue
        letter = html[opening + 2 : opening + 3] if following == "/" else following
        if following in ("!", "?") or not (letter.isascii() and letter.isalpha()):
            if following not in ("!", "?", "/"):
                # A "<" that opens nothing is text; the character after it stays as it is.
                position = opening + 1
                guard = opening + 2
                continue
            # A bogus comment, to the first ">".
            closed = html.find(">", opening)
            if closed == -1:
                break
            position = closed + 1
            continue
        tag = _ANY_TAG.match(html, opening)
        if tag is None:
            break
        name_match = _TAG_NAME.match(html, opening)
        assert name_match is not None  # the tag matched
        after = tag.end()
        if following == "/":
            position = after
            continue
        name = name_match.group(1).lower()
        relevant = name in _START_NAME_SET
        for attribute in _ATTR.finditer(html, name_match.end(), after - 1):
            value = attribute.group(2)
            if (
                value
                and value[0] in "\"'"
                and value[-1] == value[0]
                and attribute.end(2) - 1 > attribute.start(2) + 1
                and (not relevant or attribute.group(1).lower() in _UNREAD_ATTRIBUTES)
            ):
                spans.append((attribute.start(2) + 1, attribute.end(2) - 1, value[0] + "<>"))
        if not relevant:
            position = after
            continue
        if name == "plaintext":
            break
        if name == "script":
            body_end = _script_end(html, after, end)
            if body_end >= end:
                break
            if body_end > after:
                spans.append((after, body_end, _IN_SCRIPT))
            position = body_end
            continue
        if name in _RAW_END:
            close = _RAW_END[name].search(html, after)
            if close is None:
                break
            if name not in ("iframe", "noscript") and close.start() > after:
                spans.append((after, close.start(), _IN_RAW_TEXT))
            position = close.start()
            continue
        position = after
    return spans


def _language(language: str | None, config: ConsentConfig) -> Language:
    if language == "fr":
        return "fr"
    if language == "en":
        return "en"
    return config.default_language


def gate_html(
    html: str,
    state: ConsentState,
    config: ConsentConfig,
    *,
    language: str | None = None,
    remember: bool = True,
) -> str:
    """Return ``html`` with the tags of categories ``state`` does not grant made inert.

    Everything not gated is returned byte for byte; tags of granted
    categories are left exactly as written. ``language`` (``"fr"`` or
    ``"en"``, default ``config.default_language``) is the language of the
    click-to-load placeholders. A full document also gets, first thing in
    its ``<head>``, the Consent Mode v2 bootstrap (``config.consent_mode``)
    and, when it has gated elements, ``gate.js``. Linear in the page size;
    the last few pages are remembered, rewritten, for a few minutes, since
    most pages are the same for every visitor who made the same choice.
    ``remember=False`` skips that (and the hash of the page it costs): for a
    caller that keeps rewritten pages itself, as the middleware does.
    """
    if not config.gating and not config.consent_mode:
        return html
    gate = _gate_for(config)
    chosen = _language(language, config)
    if not remember or len(html) > _REMEMBERED_CHARS:
        return _gate(html, state.granted, state.gpc, gate, chosen)
    period = int(time.monotonic() // _REMEMBERED_SECONDS)
    return _remembered(html, state.granted, state.gpc, gate, chosen, period)


def gate_utf8(
    body: bytes,
    state: ConsentState,
    config: ConsentConfig,
    *,
    language: str | None = None,
) -> bytes:
    """:func:`gate_html` over a UTF-8 page as bytes, without decoding it.

    Everything gating reads in the page's structure (tag and attribute
    names, ``<``, ``>``, quotes, URL separators) is ASCII, and in UTF-8 an
    ASCII byte only ever stands for itself: so the page is read one
    character per byte (as Latin-1, which costs a copy where decoding UTF-8
    costs a character-by-character pass), attribute values are decoded from
    UTF-8 where they are judged, and what gating writes (placeholders,
    scripts, attribute values) is inserted as its UTF-8 bytes. The answer
    is ``gate_html(body.decode("utf-8"), ...).encode("utf-8")`` for any
    valid page, and a page with bytes that are not UTF-8 is gated all the
    same, those bytes kept as they are. Not remembered: the middleware
    keeps the pages it rewrote itself.
    """
    gated = gate_utf8_pieces(body, state, config, language=language)
    if gated is None:
        return body
    pieces, rest = gated
    return join_raw([*pieces, memoryview(body)[rest:]])


def gate_utf8_pieces(
    body: bytes,
    state: ConsentState,
    config: ConsentConfig,
    *,
    language: str | None = None,
) -> tuple[list[str], int] | None:
    """:func:`gate_utf8` left in pieces: ``None`` for ``body`` unchanged, else ``(pieces, rest)``.

    The gated page is ``join_raw([*pieces, body[rest:]])``: the pieces (one
    character per byte) up to where gating last wrote, then the body as it
    is. A caller adding to the page (the middleware's banner, before
    ``</body>``) joins everything once instead of copying the page at each
    step. The list is the caller's.
    """
    if not config.gating and not config.consent_mode:
        return None
    gate = _gate_for(config)
    chosen = _language(language, config)
    return _gate_pieces(body.decode("latin-1"), state.granted, state.gpc, gate, chosen, raw=True)


#: The last few pages are remembered, rewritten, for a few minutes: most pages
#: are the same for every visitor who made the same choice. (The form token a
#: remembered page carries stays valid for days.)
_REMEMBERED_PAGES = 16
_REMEMBERED_CHARS = 256 * 1024
_REMEMBERED_SECONDS = 300


@lru_cache(maxsize=_REMEMBERED_PAGES)
def _remembered(
    html: str, granted: frozenset[str], gpc: bool, gate: _Gate, language: Language, period: int
) -> str:
    return _gate(html, granted, gpc, gate, language)


def _gate(
    html: str,
    granted: frozenset[str],
    gpc: bool,
    gate: _Gate,
    language: Language,
    *,
    fast: bool = True,
    raw: bool = False,
) -> str:
    gated = _gate_pieces(html, granted, gpc, gate, language, fast=fast, raw=raw)
    if gated is None:
        return html
    pieces, rest = gated
    if rest < len(html):
        pieces.append(html[rest:])
    return "".join(pieces)


def _gate_pieces(
    html: str,
    granted: frozenset[str],
    gpc: bool,
    gate: _Gate,
    language: Language,
    *,
    fast: bool = True,
    raw: bool = False,
) -> tuple[list[str], int] | None:
    """The gated page as ``"".join(pieces) + html[rest:]``, or ``None`` for ``html`` unchanged."""
    config = gate.config
    state = gate.state_for(granted, gpc)
    page = _Page(html, state, gate, language, raw=raw)
    if config.gating:
        triggers = _triggers(html, gate)
        if triggers is None:
            page.read_all = True
            page.limit = len(html)
        elif triggers:
            page.triggers = triggers
            page.limit = triggers[-1] + 1
    page.want_head = config.consent_mode or page.limit > 0
    if not page.want_head:
        return None
    if not (fast and page.limit and page.skim()):
        page.scan(0, len(html))
    markup = page.head_markup(config.consent_mode)
    if not markup:
        return (page.out, page.copied) if page.changed else None
    start = (_DOCUMENT_START_RAW if raw else _DOCUMENT_START).match(html)
    assert start is not None  # every part of the pattern is optional
    document = start.group(1) or start.group(2) or _DOCUMENT_TAG.search(html)
    if page.head_slot is None and not document:
        # A fragment (a partial page update): the page it lands in has the scripts.
        return (page.out, page.copied) if page.changed else None
    # Into <head> if it comes before any script (a later one is ignored by
    # browsers), else before the first script.
    slots = [slot for slot in (page.head_slot, page.script_slot) if slot is not None]
    if slots:
        page.out[min(slots)] = markup
        return page.out, page.copied
    page.copy_to(len(html))
    rewritten = "".join(page.out)
    # Right after the doctype, or before <html>: nothing there is ever rewritten.
    position = start.end(1) if start.group(1) else start.start(2) if start.group(2) else 0
    return [rewritten[:position], markup, rewritten[position:]], len(html)
