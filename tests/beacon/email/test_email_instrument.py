"""Instrumenting HTML: what is rewritten, what stays byte for byte, what is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon.email.exceptions import InstrumentationError
from beacon.email.instrument import pixel_tag
from beacon.email.tracker import EmailTracker
from beacon.email.urls import location_header

NEWSLETTER = (Path(__file__).parent / "newsletter.html").read_text(encoding="utf-8")
BASE = "https://mypharm.fr/b"
CAMPAIGN = "2026-12-newsletter"
RECIPIENT = "alice@example.org"
TRACKED = re.compile(r"https://mypharm\.fr/b/c/([A-Za-z0-9_\-.]+)")


@pytest.fixture
def email() -> EmailTracker:
    return EmailTracker(BASE, ["k" * 32], "mypharm.fr")


def _instrument(email: EmailTracker, text: str) -> str:
    return email.instrument(text, campaign=CAMPAIGN, recipient=RECIPIENT)


def _destinations(email: EmailTracker, text: str) -> list[tuple[int, str]]:
    return [
        (token.link, token.url)
        for token in (email.verify("click", t) for t in TRACKED.findall(text))
    ]


def test_newsletter_links_are_tracked_in_document_order(email: EmailTracker) -> None:
    out = _instrument(email, NEWSLETTER)
    assert _destinations(email, out) == [
        (0, "https://mypharm.fr/?utm_source=newsletter&utm_medium=email"),
        (1, "https://mypharm.fr/promo/noël-2026?code=XMAS&email=alice%40example.org"),
        (2, "https://mypharm.fr/boutique"),  # the Outlook VML button
        (3, "https://mypharm.fr/boutique"),
        (4, "https://xn--pharmacie-dtable-hqb.fr/"),
        (5, "https://pharmacie-étoile.fr/chemin/é?q=ü"),
    ]


def test_everything_else_stays_byte_for_byte(email: EmailTracker) -> None:
    out = _instrument(email, NEWSLETTER)
    unsubscribe = email.unsubscribe_url(CAMPAIGN, RECIPIENT)
    pixel = re.search(r'<img src="https://mypharm\.fr/b/o/[^"]+" [^>]*>', out)
    assert pixel is not None
    restored = TRACKED.sub("@TRACKED@", out.replace(pixel.group(0), ""))
    expected = NEWSLETTER.replace(" data-no-track", "")
    tracked_href = (
        r"""((?:href|HREF)=["']?)https://(?:mypharm\.fr/(?!preferences)|xn--|pharmacie-)"""
        r"""[^"' >]*"""
    )
    expected = re.sub(tracked_href, r"\1@TRACKED@", expected)
    expected = expected.replace(
        'href="https://mypharm.fr/preferences" data-unsubscribe', f'href="{unsubscribe}"'
    )
    assert restored == expected
    assert restored.count("@TRACKED@") == 6


def test_untracked_links_are_left_alone(email: EmailTracker) -> None:
    out = _instrument(email, NEWSLETTER)
    for untouched in (
        'href="mailto:conseil@mypharm.fr"',
        'href="tel:+33100000000"',
        'href="#top"',
        'href="/relative/page"',
        '<a href="https://partner.example/terms">',
        '<a href="https://style.example/">',
        '<a href="https://comment.example/">',
    ):
        assert untouched in out
    assert "data-no-track" not in out
    assert "data-unsubscribe" not in out


def test_pixel_goes_before_body_end(email: EmailTracker) -> None:
    out = _instrument(email, NEWSLETTER)
    pixel_url = email.pixel_url(CAMPAIGN, RECIPIENT)
    assert out.count("/b/o/") == 1
    assert (
        f'<img src="{pixel_url}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0"></body>'
    ) in out
    assert email.verify("open", pixel_url.rsplit("/", 1)[1].removesuffix(".gif")).campaign == (
        CAMPAIGN
    )


@pytest.mark.parametrize(
    ("source", "expected_tail"),
    [
        ("<p>Bonjour</p>", "</p><img"),
        ("<html><p>Bonjour</p></html>", "</p><img"),
        ("", "<img"),
        ("<p>Bonjour</p><!-- </body> -->", "--><img"),
    ],
    ids=["fragment", "no-body", "empty", "body-in-comment"],
)
def test_html_without_body(email: EmailTracker, source: str, expected_tail: str) -> None:
    out = _instrument(email, source)
    assert out.count("<img") == 1
    assert expected_tail in out
    assert out.startswith(source.split("</html>")[0])


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " java\tscript:alert(1)",
        "&#106;avascript:alert(1)",
        "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;",
        "vbscript:msgbox(1)",
    ],
    ids=["plain", "mixed-case", "tab-obfuscated", "entity-obfuscated", "data", "vbscript"],
)
def test_dangerous_schemes_are_refused(email: EmailTracker, href: str) -> None:
    """``href`` is the raw attribute text: entities are decoded as a browser would."""
    with pytest.raises(InstrumentationError, match="refusing"):
        _instrument(email, f'<p><a href="{href}">x</a></p>')


@pytest.mark.parametrize(
    ("href", "message"),
    [
        ("https://a.example/" + "x" * 3000, "longer than"),
        ("https:///no-host", "no host"),
        ("https://a.example:99999/", "not a valid URL"),
        ("https://a.example:٨٠/", "not a valid URL"),
        ("https://a.example/a\x01b", "control"),
    ],
    ids=["too-long", "no-host", "bad-port", "non-ascii-port", "control-char"],
)
def test_unusable_links_are_refused(email: EmailTracker, href: str, message: str) -> None:
    with pytest.raises(InstrumentationError, match=message):
        _instrument(email, f'<a href="{href}">x</a>')


def test_quoting_styles_and_entities(email: EmailTracker) -> None:
    out = _instrument(
        email,
        "<a href=https://a.example/x?a=1>u</a><a href='https://a.example/y?a=1&amp;b=2'>s</a>"
        '<a class="b" href = "https://a.example/z">d</a><a href>empty</a><a name="n">n</a>',
    )
    assert [url for _, url in _destinations(email, out)] == [
        "https://a.example/x?a=1",
        "https://a.example/y?a=1&b=2",
        "https://a.example/z",
    ]
    assert '<a href>empty</a><a name="n">n</a>' in out
    assert '<a class="b" href = "https://mypharm.fr/b/c/' in out
    assert "<a href='https://mypharm.fr/b/c/" in out


def test_recipient_address_never_appears(email: EmailTracker) -> None:
    out = _instrument(email, "<p>Hello</p>")
    headers = email.headers(CAMPAIGN, RECIPIENT)
    for text in (out, *headers.values()):
        assert "alice" not in text.lower()


def test_headers_rfc_8058(email: EmailTracker) -> None:
    headers = email.headers(CAMPAIGN, RECIPIENT)
    unsubscribe = email.unsubscribe_url(CAMPAIGN, RECIPIENT)
    assert headers == {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    token = email.verify("unsubscribe", unsubscribe.rsplit("/", 1)[1])
    assert (token.campaign, token.recipient) == (CAMPAIGN, email.ref(RECIPIENT))


def test_headers_with_mailto() -> None:
    email = EmailTracker(BASE, ["k" * 32], unsubscribe_mailto="unsubscribe@mypharm.fr")
    value = email.headers(CAMPAIGN, RECIPIENT)["List-Unsubscribe"]
    https, mailto = value.split(", ")
    assert https == f"<{email.unsubscribe_url(CAMPAIGN, RECIPIENT)}>"
    token = https.rsplit("/", 1)[1].rstrip(">")
    assert mailto == f"<mailto:unsubscribe@mypharm.fr?subject=unsubscribe%20{token}>"


@pytest.mark.parametrize(
    "base_url",
    ["mypharm.fr/b", "ftp://mypharm.fr/b", "https://mypharm.fr/b?x=1", 'https://a"b.fr'],
    ids=["no-scheme", "ftp", "query", "quote"],
)
def test_bad_base_url_refused_at_construction(base_url: str) -> None:
    with pytest.raises(InstrumentationError, match="base_url"):
        EmailTracker(base_url, ["k" * 32], "mypharm.fr")


def test_tracker_without_base_url_cannot_build_links() -> None:
    email = EmailTracker("", ["k" * 32], "mypharm.fr")
    with pytest.raises(InstrumentationError, match="base_url"):
        _instrument(email, "<p>x</p>")


def test_base_url_trailing_slash() -> None:
    email = EmailTracker(BASE + "/", ["k" * 32], "mypharm.fr")
    assert email.pixel_url(CAMPAIGN, RECIPIENT).startswith(BASE + "/o/")


_FRAGMENTS = [
    "<a href=",
    '"https://a.example/x"',
    "'https://b.example/é'",
    "https://c.example/?q=1&amp;r=2",
    "javascript:alert(1)",
    "mailto:x@y.fr",
    " data-no-track",
    " data-unsubscribe",
    ">",
    "</a>",
    "<!--",
    "-->",
    "<!--[if mso]>",
    "<![endif]-->",
    "<script>",
    "</script>",
    "</body>",
    "<body>",
    "<v:roundrect href=",
    "<AREA HREF=",
    "texte é ü",
    " ",
    '"',
    "'",
    "<",
    "=",
]


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join))
@settings(max_examples=300, deadline=None)
def test_any_markup_is_instrumented_or_refused(text: str) -> None:
    email = EmailTracker(BASE, ["k" * 32], "mypharm.fr")
    refused = ""
    try:
        out = _instrument(email, text)
    except InstrumentationError as error:
        refused = str(error)
    if refused:
        assert "javascript" in refused
        return
    assert out.count(email.pixel_url(CAMPAIGN, RECIPIENT)) == 1
    for link, url in _destinations(email, out):
        assert url.startswith(("https://a.example", "https://b.example", "https://c.example"))
        assert link >= 0
    without_pixel = out.replace(pixel_tag(email.pixel_url(CAMPAIGN, RECIPIENT)), "", 1)
    if "href" not in text.lower():
        assert without_pixel == text


@pytest.mark.parametrize(
    "destination",
    [
        "https://ü:ß@exämple.fr/é",
        "https://[::1]:8080/é",
        "https://" + "é" * 70 + ".fr/",
    ],
    ids=["unicode-userinfo", "ipv6", "over-long-idn-label"],
)
def test_location_is_always_ascii(email: EmailTracker, destination: str) -> None:
    url = email.click_url(CAMPAIGN, RECIPIENT, destination)
    token = email.verify("click", url.rsplit("/", 1)[1])
    assert token.url == destination
    assert location_header(token.url).isascii()
