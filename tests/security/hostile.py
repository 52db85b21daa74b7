"""Hostile values shared by the security tests."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = [
    "ATTRIBUTE_BREAK",
    "OFF_SITE",
    "PERSONAL_DATA",
    "SCRIPT",
    "VISITOR_EMAIL",
    "VISITOR_IP",
    "VISITOR_IPV6",
    "VISITOR_USER_AGENT",
    "assert_escaped",
    "assert_same_site",
]

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

#: A visitor's personal data, distinctive so that the privacy scan can look for it.
VISITOR_IP = "203.0.113.195"
VISITOR_IPV6 = "2001:db8:5ec::7"
VISITOR_EMAIL = "jeanne.martin-scan@patients.example"
VISITOR_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/PRIVACYSCAN) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
#: What no ClickHouse table and no log line of the test run may contain
#: (case-insensitive substrings): the documentation address ranges the tests
#: use for visitors, the recipients' addresses of the tests, and the parts
#: every full browser User-Agent has but no parsed family, version or device has.
PERSONAL_DATA = (
    "192.0.2.",
    "198.51.100.",
    "203.0.113.",
    "2001:db8:",
    VISITOR_EMAIL,
    "alice@example.org",
    "bob@example.org",
    "carol@example.org",
    "alice@xn--exmple-cua.org",
    "a@b.fr",
    "c@d.fr",
    "e@f.fr",
    "x@y.fr",
    "Mozilla/5.0 (",
    "AppleWebKit/",
    "(KHTML, like Gecko)",
    "Googlebot/2.1 (+http",
    "PRIVACYSCAN",
)
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
