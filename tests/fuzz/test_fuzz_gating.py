"""Fuzzing the gating rewriter with generated HTML.

Pages are built from a small alphabet: ``<script>``, ``<iframe>``, ``<img>``
and ``<link>`` tags pointing at declared and undeclared hosts, with or
without ``data-consent``, attribute values double-quoted, single-quoted or
unquoted, names in any case, among neutral markup, text and comments. Every
tag to check carries an ``id`` so it can be found again in the output,
which is re-read with :mod:`html.parser` (an independent tokenizer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from mypharm_consent.gating import gate_html, gate_utf8
from tests.consent.gating_pages import EVERYTHING, NOTHING, gating_config
from tests.fuzz.conftest import FUZZ

WITH_CONSENT_MODE = gating_config()
WITHOUT_CONSENT_MODE = gating_config(consent_mode=False)
#: URLs and whether they point at a host a declared service loads from.
URLS = (
    ("https://x.adpartner.example/t.js", True),
    ("//www.youtube.com/embed/abc", True),
    ("HTTPS://CONNECT.FACEBOOK.NET/en_US/fbevents.js", True),
    ("https://www.google-analytics.com/g/collect?v=2", True),
    ("http://youtu.be/abc", True),
    # Spellings a browser still takes to the host.
    ("https:///x.adpartner.example/t.js", True),
    ("https:/x.adpartner.example/t.js", True),
    ("https:\\\\x.adpartner.example/t.js", True),
    ("/\\x.adpartner.example/t.js", True),
    ("&sol;&sol;x.adpartner.example/t.js", True),
    ("https://cdn.example/lib.js", False),
    ("/static/app.js", False),
    ("img/photo.png", False),
)
#: ``data-consent`` values and whether they ask for a category not granted by default.
CONSENTS = (
    ("marketing", True),
    ("analytics", True),
    ("analytics marketing", True),
    ("necessary", False),
    ("undeclared", True),
)
LOADING = ("src", "href", "srcset", "imagesrcset", "poster", "srcdoc")
WORDS = st.sampled_from(["Pharmacie", "a &amp; b", "x > y", "é", " ", "\n", "1"])


@dataclass(frozen=True)
class Element:
    """One generated tag that may load something, and whether it must be gated when undecided."""

    markup: str
    gated: bool


def _attribute(name: str, value: str, quoting: str) -> str:
    if quoting == "unquoted" and not any(c in value for c in " \"'=<>`"):
        return f"{name}={value}"
    if quoting == "single":
        return f"{name}='{value}'"
    return f'{name}="{value}"'


@st.composite
def elements(draw: st.DrawFn, number: int) -> Element:
    """A script, iframe, img or link tag, tagged ``id=g<number>``."""
    tag = draw(st.sampled_from(["script", "iframe", "img", "link"]))
    written = draw(st.sampled_from([tag, tag.upper(), tag.capitalize()]))
    url, declared = draw(st.sampled_from(URLS))
    url_name = {"link": "href"}.get(tag, "src")
    if tag == "img" and draw(st.booleans()):
        url_name = "srcset"
        url = f"{url} 1x, /local.png 2x"
    quoting = st.sampled_from(["double", "single", "unquoted"])
    attributes = [
        _attribute("id", f"g{number}", draw(quoting)),
        _attribute(draw(st.sampled_from([url_name, url_name.upper()])), url, draw(quoting)),
    ]
    gated = declared
    if draw(st.booleans()):
        value, asks = draw(st.sampled_from(CONSENTS))
        name = draw(
            st.sampled_from(["data-consent", "DATA-CONSENT", "Data-Consent", "data-Consent"])
        )
        attributes.append(_attribute(name, value, draw(quoting)))
        gated = asks
    if tag == "script" and draw(st.booleans()):
        attributes.append(
            _attribute("type", draw(st.sampled_from(["module", "text/javascript"])), draw(quoting))
        )
    if tag == "link":
        attributes.append(_attribute("rel", "stylesheet", draw(quoting)))
    attributes = draw(st.permutations(attributes))
    spacing = draw(st.sampled_from([" ", "  ", "\n", "\t"]))
    markup = f"<{written}{spacing}{spacing.join(attributes)}>"
    if tag == "script":
        markup += draw(st.sampled_from(["", "var a = 1 < 2;", "f('<p>')"])) + f"</{written}>"
    elif tag == "iframe":
        markup += draw(st.sampled_from(["", "fallback"])) + f"</{written}>"
    return Element(markup, gated)


@st.composite
def pages(draw: st.DrawFn) -> tuple[str, dict[str, bool]]:
    """A page and, for each tagged element's id, whether it must be gated."""
    parts: list[str] = []
    expected: dict[str, bool] = {}
    for number in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["element", "element", "text", "neutral", "comment"]))
        if kind == "element":
            element = draw(elements(number))
            expected[f"g{number}"] = element.gated
            parts.append(element.markup)
        elif kind == "text":
            parts.append(draw(WORDS))
        elif kind == "neutral":
            parts.append(draw(st.sampled_from(["<p>", "</p>", "<div class=x>", "</div>", "<br/>"])))
        else:
            hidden = draw(st.sampled_from(["", "<script src=https://x.adpartner.example/c.js>"]))
            parts.append(f"<!-- {hidden} -->")
    body = "".join(parts)
    if draw(st.booleans()):
        body = f"<!doctype html><html><head><title>T</title></head><body>{body}</body></html>"
    return body, expected


class _Tags(HTMLParser):
    """Every start tag carrying an ``id``, with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        identifier = attributes.get("id")
        if identifier:
            self.found.append((identifier, tag, attributes))


_TOKEN = re.compile(r'data-csrf="[^"]*"')


def _tags(html: str) -> list[tuple[str, str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.found


@FUZZ
@given(pages(), st.booleans())
def test_nothing_gated_survives_undecided_and_granted_pages_stay(
    page: tuple[str, dict[str, bool]], consent_mode: bool
) -> None:
    html, expected = page
    config = WITH_CONSENT_MODE if consent_mode else WITHOUT_CONSENT_MODE
    output = gate_html(html, NOTHING, config)
    found = _tags(output)
    # Every generated tag is still there, once, in the same order.
    assert [identifier for identifier, _, _ in found if identifier in expected] == list(expected)
    before = {identifier: attributes for identifier, _, attributes in _tags(html)}
    for identifier, tag, attributes in found:
        if identifier not in expected:
            continue
        if not expected[identifier]:
            # Tags that need no consent keep every attribute as written.
            assert attributes == before[identifier], (identifier, output)
            continue
        active = [name for name in LOADING if name in attributes]
        assert not active, (identifier, tag, attributes, output)
        if tag == "script":
            assert attributes.get("type") == "text/plain", (identifier, attributes, output)
    # With every declared category granted, the page comes back byte for byte
    # (a category the site does not declare is never granted).
    if "undeclared" not in html:
        assert gate_html(html, EVERYTHING, WITHOUT_CONSENT_MODE) == html
    # The middleware's reading of the same page as UTF-8 bytes gives the same page
    # (the placeholders' form token aside, renewed every minute).
    as_bytes = gate_utf8(html.encode(), NOTHING, config).decode()
    assert _TOKEN.sub("", as_bytes) == _TOKEN.sub("", output)
