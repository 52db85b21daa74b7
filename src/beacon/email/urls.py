"""Destination URLs of tracked links: which are tracked, how they are redirected and labelled.

A link is tracked when its ``href`` is an absolute ``http``/``https`` URL. The
destination is kept exactly as the sender wrote it (after HTML unescaping and
the whitespace clean-up every browser applies), inside the signed click
token, so Unicode paths and IDN hosts survive untouched. Only the ``Location``
header of the redirect needs plain ASCII: :func:`location_header` converts the
IRI to the URI a browser would have requested itself.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from beacon.email.exceptions import InstrumentationError

__all__ = [
    "MAX_DESTINATION_BYTES",
    "REFUSED_SCHEMES",
    "link_label",
    "location_header",
    "tracked_destination",
]

#: The longest destination a click token carries (UTF-8 bytes). Longer links
#: are refused at instrumentation time: mail clients and proxies truncate
#: very long URLs, and the click link adds the signature on top.
MAX_DESTINATION_BYTES = 2048

#: Schemes that run code or embed content in the reader's mail client or
#: browser; a message linking to them is refused, never instrumented.
REFUSED_SCHEMES = frozenset({"javascript", "data", "vbscript"})

_TRACKED_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# Browsers drop leading/trailing C0 controls and spaces, and every tab/newline inside a URL.
_EDGE_JUNK = "".join(chr(c) for c in range(0x21))
_INNER_JUNK = str.maketrans("", "", "\t\n\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NETLOC_END = re.compile(r"[/?#\\]")


def tracked_destination(href: str) -> str | None:
    """The destination to put in a click token for ``href``, or ``None`` to leave the link alone.

    ``href`` is the attribute value after HTML unescaping. Relative links,
    anchors, protocol-relative links and other schemes (``mailto:``,
    ``tel:``, ...) are left alone; ``javascript:``, ``data:`` and
    ``vbscript:`` raise :class:`InstrumentationError`, as do control
    characters and destinations longer than :data:`MAX_DESTINATION_BYTES`.
    """
    url = href.strip(_EDGE_JUNK).translate(_INNER_JUNK)
    match = _SCHEME.match(url)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme in REFUSED_SCHEMES:
        raise InstrumentationError(
            f"refusing to send a {scheme}: link ({href[:40]!r}...): mail clients "
            "would run or embed it"
        )
    if scheme not in _TRACKED_SCHEMES or not url[match.end() :].startswith("//"):
        return None
    if _CONTROL.search(url):
        raise InstrumentationError(f"link {url[:60]!r} contains control characters")
    if len(url.encode("utf-8")) > MAX_DESTINATION_BYTES:
        raise InstrumentationError(
            f"link {url[:60]!r}... is longer than {MAX_DESTINATION_BYTES} bytes"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise InstrumentationError(f"link {url[:60]!r} is not a valid URL: {exc}") from exc
    if not parts.hostname:
        raise InstrumentationError(f"link {url[:60]!r} has no host")
    return url


def _ascii_host(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    userinfo = quote(userinfo, safe="%:!$&'()*+,;=-._~") if at else ""
    if hostport.startswith("["):
        return userinfo + at + hostport
    host, colon, port = hostport.partition(":")
    try:
        ascii_host = ".".join(
            label.encode("idna").decode("ascii") if not label.isascii() else label
            for label in host.split(".")
        )
    except UnicodeError:
        ascii_host = quote(host, safe="-._~")
    return userinfo + at + ascii_host + colon + port


def _encode_rest(rest: str) -> str:
    return "".join(
        char if "!" <= char <= "~" else quote(char, safe="", encoding="utf-8") for char in rest
    )


def location_header(destination: str) -> str:
    """The ``Location`` value (plain ASCII) that sends a browser to ``destination``.

    IDN host labels become their ``xn--`` form and every non-ASCII or space
    character of the rest is percent-encoded as UTF-8, which is exactly what a
    browser does when it follows the original link; ASCII characters are
    left as they are, so existing escapes and the query stay byte for byte.
    """
    scheme, sep, after = destination.partition("://")
    end = _NETLOC_END.search(after)
    netloc, rest = (after[: end.start()], after[end.start() :]) if end else (after, "")
    if not netloc.isascii():
        netloc = _encode_rest(_ascii_host(netloc))
    return scheme + sep + netloc + _encode_rest(rest)


def link_label(destination: str) -> str:
    """The link as stored with click events: scheme, host, port and path only.

    The query string and fragment are dropped because mailers put personal
    data there (subscriber ids, e-mail addresses, discount codes), and the
    user-info part for the same reason. The host is lower-cased; an empty
    path becomes ``/``.
    """
    parts = urlsplit(destination)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}"
