"""Hostile values shared by the security tests."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["ATTRIBUTE_BREAK", "OFF_SITE", "SCRIPT", "assert_escaped", "assert_same_site"]

#: Redirect targets that would leave the site if followed as given.
OFF_SITE = (
    "https://evil.example/",
    "http://evil.example",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    " //evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
    "/ok\r\nSet-Cookie: injected=1",
    "/ok%0d%0aSet-Cookie:%20injected=1",
    "/ok%0aLocation:%20https://evil.example",
    "/\x00/evil.example",
)
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAK = '"><img src=x onerror=alert(1)>'


def assert_same_site(location: str, root: str = "") -> None:
    """``location`` is a path on this site (below ``root``), raw and percent-decoded."""
    for form in (location, unquote(location)):
        assert form.startswith(root + "/"), location
        assert not form.startswith("//"), location
        assert "\\" not in form, location
        assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in form), location
    parts = urlsplit(location)
    assert not parts.scheme, location
    assert not parts.netloc, location


def assert_escaped(html: str) -> None:
    """Neither hostile value appears in ``html`` as markup."""
    lowered = html.lower()
    assert "<script>alert(1)" not in lowered
    assert "<img src=x onerror" not in lowered
    assert '"><img' not in lowered
