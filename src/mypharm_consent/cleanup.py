"""Expiry of the cookies that belong to categories the visitor has not granted.

When a visitor refuses or withdraws a category, the cookies its tags set
earlier are still in the browser. Deleting them from JavaScript cannot reach
``HttpOnly`` ones, so the server expires them: every response of the
middleware carries a ``Set-Cookie`` with ``Max-Age=0`` and an ``Expires`` in
the past for each such cookie present in the request.

A cookie belongs to a category when its name matches one of the category's
``cookies`` or one of its services' ``cookies`` (a trailing ``*`` matches a
prefix). The consent cookie itself and cookies claimed by ``necessary`` or by
any granted category are never expired: an explicit grant wins over a
pattern another category happens to share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from mypharm_consent.config import NECESSARY, ConsentConfig
from mypharm_consent.services import services_of
from mypharm_consent.state import ConsentState

__all__ = [
    "expired_cookie_headers",
    "expired_cookie_headers_for",
    "matches_cookie",
    "request_cookie_names",
]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"


def request_cookie_names(cookie_header: str | None) -> list[str]:
    """The distinct cookie names of a ``Cookie`` header, in order.

    Names that are not valid cookie tokens are dropped: they could not have
    been set by a well-formed ``Set-Cookie`` and must never be echoed into one.
    """
    if not cookie_header:
        return []
    names: dict[str, None] = {}
    for pair in cookie_header.split(";"):
        name = pair.partition("=")[0].strip()
        if name and name not in names and _is_token(name):
            names[name] = None
    return list(names)


#: Names up to this long have their verdict remembered: visitors send the
#: same few names (the site's and its services'), page after page.
_REMEMBERED_NAME_CHARS = 64


def _is_token(name: str) -> bool:
    """Whether ``name`` is a valid cookie name (an HTTP token)."""
    if len(name) <= _REMEMBERED_NAME_CHARS:
        return _is_short_token(name)
    return _TOKEN.match(name) is not None


@lru_cache(maxsize=1024)
def _is_short_token(name: str) -> bool:
    return _TOKEN.match(name) is not None


def matches_cookie(name: str, patterns: Iterable[str]) -> bool:
    """Whether cookie ``name`` matches one of ``patterns`` (exact, or ``prefix*``)."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def _patterns(config: ConsentConfig, granted: bool, allowed: frozenset[str]) -> list[str]:
    patterns: list[str] = []
    for category in config.categories:
        is_allowed = category.name == NECESSARY or category.name in allowed
        if is_allowed is granted:
            patterns += category.cookies
            for service in services_of(category):
                patterns += service.cookies
    return patterns


def _domain_matches(host: str | None, domain: str) -> bool:
    if host is None:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        return False
    name = name.rpartition(":")[0] if name.count(":") == 1 else name
    name = name.rstrip(".")
    return name == domain or name.endswith("." + domain)


def expired_cookie_headers(
    cookie_header: str | None, state: ConsentState, config: ConsentConfig, host: str | None
) -> list[str]:
    """``Set-Cookie`` values expiring the request's cookies of non-granted categories.

    ``cookie_header`` is the request's ``Cookie`` header, ``host`` its
    ``Host`` header. Each cookie is expired for ``Path=/`` on the host (no
    ``Domain``) and, when ``config.cleanup_parent_domain`` is set and the
    host lies within it, also with ``Domain=`` that parent domain. Cookies
    with the ``__Secure-`` or ``__Host-`` prefix get ``Secure`` (browsers
    ignore them otherwise); ``__Host-`` ones never get a ``Domain``.
    """
    return expired_cookie_headers_for(
        tuple(request_cookie_names(cookie_header)), state.granted, config, host
    )


def expired_cookie_headers_for(
    names: tuple[str, ...], granted: frozenset[str], config: ConsentConfig, host: str | None
) -> list[str]:
    """:func:`expired_cookie_headers` from the request's cookie names and granted categories.

    The answer depends on nothing else, so a caller may remember it by those.
    """
    if not names:
        return []
    refused = _patterns(config, False, granted)
    if not refused:
        return []
    kept = _patterns(config, True, granted)
    parent = config.cleanup_parent_domain
    domain = parent.lower().strip(".") if parent else None
    with_domain = domain is not None and _domain_matches(host, domain)
    headers: list[str] = []
    for name in names:
        if name == config.cookie_name:
            continue
        if not matches_cookie(name, refused) or matches_cookie(name, kept):
            continue
        lowered = name.lower()
        secure = "; Secure" if lowered.startswith(("__secure-", "__host-")) else ""
        headers.append(f"{name}=; {_EXPIRED}{secure}")
        if with_domain and not lowered.startswith("__host-"):
            headers.append(f"{name}=; {_EXPIRED}; Domain={domain}{secure}")
    return headers
