"""The compiled searches of gating (``mypharm_consent._gatescan``) against their definitions.

``gating._landmarks_py``, ``_mentions_py``, ``_occurrences_py`` and
``_occurrences_all_py`` are the regular expressions and string searches that
define what gating looks for; the extension must give the very same answers on
any text: the three
string widths of CPython (Latin-1, BMP, astral), positions cut anywhere,
and text made of the characters and words the searches stop on. Without
the extension (or with ``MYPHARM_CONSENT_SPEEDUPS=0``) gating runs on the
definitions, checked in subprocesses.
"""

from __future__ import annotations

import os
import re
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mypharm_consent import ConsentState, gating, pagecache

from .conftest import run_with_debug_log
from .gating_pages import ANALYTICS, EVERYTHING, GPC, NOTHING, TRACKER, gating_config

try:
    from mypharm_consent import _gatescan
except ImportError:  # built without a C compiler: only the fallback is tested
    if os.environ.get("CI"):
        raise  # CI builds it: a missing extension there is a failed build
    _gatescan = None  # type: ignore[assignment]

compiled_only = pytest.mark.skipif(
    _gatescan is None, reason="mypharm_consent._gatescan is not built"
)

#: Words and characters the searches stop on, with the near misses around them.
PIECES = st.sampled_from(
    [
        "<",
        ">",
        "=",
        '"',
        "'",
        "-",
        "&",
        "#",
        ":",
        "/",
        "\\",
        "\t",
        "\n",
        "\r",
        "\f",
        " ",
        "!",
        "?",
        "x",
        "X",
        "0",
        "9",
        "a",
        "Z",
        "é",
        "–",
        "😀",
        "<!--",
        "<!-",
        "-->",
        "<script",
        "<script ",
        "<script>",
        "</script>",
        "<scriptx",
        "<Script ",
        "<SCRIPT>",
        "<style ",
        "<textarea>",
        "<title/",
        "<xmp>",
        "<iframe ",
        "<noembed>",
        "<noframes>",
        "<noscript>",
        "<plaintext>",
        "<head>",
        "<header>",
        "<video ",
        "</video>",
        "<audio>",
        "</audio ",
        "<picture>",
        "</picture/",
        "<videox",
        "</Video>",
        "<a href=",
        "<img src=",
        '="a>b"',
        "='a>b'",
        '= "x"',
        "=\t'y>'",
        "data-consent",
        "DATA-CONSENT",
        "Data-Consent",
        "data-consen",
        "-consent",
        "ata-consent",
        "&#47;",
        "&#047;",
        "&#0047;",
        "&#92;",
        "&#58;",
        "&#9;",
        "&#09;",
        "&#10;",
        "&#13;",
        "&#470;",
        "&#x2f;",
        "&#X2F;",
        "&#x02F;",
        "&#x5c;",
        "&#x3A;",
        "&#x9;",
        "&#xa;",
        "&#xD;",
        "&#x2fa;",
        "&sol;",
        "&bsol;",
        "&colon;",
        "&Tab;",
        "&NewLine;",
        "&Sol;",
        "&soll;",
        "&sol",
        "https://",
        "http:",
        "https:\\\\",
        "//",
        "///",
        "/\t/",
        "/\\",
        "\\\\",
        "www.adpartner.example",
        "cdn.example",
        "user@host:8080",
        "&amp;",
    ]
)
_SPACES = st.sampled_from(["", " ", "\t", "\n", "/", " / "])
_VALUES = st.sampled_from(
    ['"x>y"', "'a>'", "b", 'b="c>d"', "b='c'", '"unclosed', "'", "=x", "b/c", "", ">", "é–"]
)
#: Tags with attributes spelt every way the standard allows (and some it does not).
TAGS = st.builds(
    lambda opening, name, attributes, close: opening + name + "".join(attributes) + close,
    st.sampled_from(["<", "</"]),
    st.sampled_from(
        ["p", "a", "img", "link", "source", "track", "video", "script", "Div", "aB", "x-y", "é"]
    ),
    st.lists(
        st.builds(
            lambda space, name, equals, value: space + name + equals + value,
            _SPACES,
            st.sampled_from(["a", "data-consent", "src", "=", '"q', "B"]),
            st.sampled_from(["", "=", " = ", "\t="]),
            _VALUES,
        ),
        max_size=4,
    ),
    st.sampled_from([">", "/>", " >", ""]),
)
PAGES = st.lists(PIECES | TAGS | st.text(max_size=3), max_size=40).map("".join)


def _widths(page: str) -> list[str]:
    """The page, and the same with a character that makes CPython store it wider."""
    return [page, page + "–", page + "😀"]


@compiled_only
@settings(max_examples=400, deadline=None)
@given(PAGES, st.integers(min_value=-3, max_value=200))
@example('<a title="x>y">', 20)
@example("<!-", 3)
@example("<video", 6)
@example("<video>", 6)
@example("<abcdefghijklmnopqrstuvwxyzZ>", 40)
@example("<abcdefghijklmnopqrstuvwxyz> <b", 40)
@example("<videoé> <title{> <abcdefghijklmnoP", 40)
@example("</picture" + " " * 20, 40)
def test_landmarks_agree(page: str, limit: int) -> None:
    for text in _widths(page):
        for end in (limit, len(text), len(text) + 5):
            assert _gatescan.landmarks(text, end) == gating._landmarks_py(text, end), (text, end)


@compiled_only
@settings(max_examples=400, deadline=None)
@given(PAGES, st.booleans())
@example("data-consent&#47;//host", True)
@example("a:b:c//d//e", True)
@example("//\\host /\\x \\\\y", True)
def test_mentions_agree(page: str, hosts: bool) -> None:
    for text in _widths(page):
        assert _gatescan.mentions(text, hosts) == gating._mentions_py(text, hosts), text


@compiled_only
@settings(max_examples=300, deadline=None)
@given(PAGES, PIECES | st.text(min_size=1, max_size=4))
@example("aaaa", "aa")
@example("x–y–", "–")
@example("😀😀😀", "😀😀")
def test_occurrences_agree(page: str, text: str) -> None:
    for html in _widths(page):
        compiled: list[int] = [7]
        defined: list[int] = [7]
        _gatescan.occurrences(html, text, compiled)
        gating._occurrences_py(html, text, defined)
        assert compiled == defined, (html, text)


#: Texts looked for together: hosts sharing their first two characters, overlapping
#: ones, and texts that make the search go one text at a time (one character long,
#: not ASCII, or a fifth pair of leading characters).
_HOSTS = st.sampled_from(
    [
        "www.adpartner.example",
        "www.a",
        "ww",
        "www",
        "cdn.example",
        "cd",
        "co",
        "connect.x",
        "aa",
        "xX",
        "a",
        "é",
        "–x",
        "😀😀",
    ]
)


@compiled_only
@settings(max_examples=300, deadline=None)
@given(
    st.lists(PAGES | _HOSTS, max_size=6).map("".join),
    st.lists(_HOSTS | PIECES | st.text(min_size=1, max_size=3), max_size=6),
)
@example("wwwww", ["ww", "www", "ww"])
@example("aXa cdco www.a", ["aa", "xX", "cd", "co", "www.a"])
@example("ab ac ad ae af", ["ab", "ac", "ad", "ae", "af"])
@example("éé aa", ["é", "aa"])
@example("x", ["xX"])
@example("aa", [])
def test_occurrences_of_several_texts_agree(page: str, texts: list[str]) -> None:
    for html in _widths(page):
        one_by_one: list[int] = []
        for text in texts:
            gating._occurrences_py(html, text, one_by_one)
        compiled: list[int] = [7]
        defined: list[int] = [7]
        _gatescan.occurrences_all(html, texts, compiled)
        gating._occurrences_all_py(html, texts, defined)
        assert compiled == defined == [7, *sorted(one_by_one)], (html, texts)


@compiled_only
def test_the_searches_refuse_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        _gatescan.landmarks(b"<head>", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _gatescan.mentions("x", True, 1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="empty"):
        _gatescan.occurrences("abc", "", [])
    with pytest.raises(TypeError):
        _gatescan.occurrences("abc", "a", ())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        _gatescan.occurrences_all("abc", ["ab", ""], [])
    with pytest.raises(TypeError):
        _gatescan.occurrences_all("abc", ("ab",), [])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _gatescan.occurrences_all("abc", ["ab", b"c"], [])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _gatescan.occurrences_all("abc", ["ab"], None)  # type: ignore[arg-type]


@compiled_only
def test_gating_uses_the_extension_when_built() -> None:
    assert gating.SPEEDUPS
    assert gating._landmarks is _gatescan.landmarks
    assert gating._skim is _gatescan.skim
    assert pagecache._digest is _gatescan.digest
    assert gating.join_raw is _gatescan.join_raw


_FALLBACK = """
import sys
{prelude}
from mypharm_consent import ConsentState, gating, pagecache
from tests.consent.gating_pages import NOTHING, TRACKER, gating_config
page = f'<p>x</p><script src="https://{{TRACKER}}/a.js"></script>'
out = gating.gate_html(page, NOTHING, gating_config(consent_mode=False))
print(gating.SPEEDUPS, 'type="text/plain"' in out, f'data-src="https://{{TRACKER}}/a.js"' in out)
from mypharm_consent import pagecache
print(pagecache._digest is None, gating._skim is None, gating.join_raw is gating._join_raw_py)
print(gating.gate_utf8(page.encode(), NOTHING, gating_config()).count(b'data-src='))
from mypharm_consent import splice
print(splice._affixes is splice._affixes_py, splice._affixes(b"abXcd", b"abYYcd"))
plan = splice._plan(b"<p>1</p>", b"<p>22</p>", 9, 1, None, None, None)
print(splice._plan is splice._plan_py, plan, splice._splice_join is splice._splice_join_py)
"""


@pytest.mark.parametrize(
    ("prelude", "environment", "logged"),
    [
        ("", {"MYPHARM_CONSENT_SPEEDUPS": "0"}, "MYPHARM_CONSENT_SPEEDUPS=0"),
        (
            "sys.modules['mypharm_consent._gatescan'] = None",
            {},
            "mypharm_consent._gatescan is not built",
        ),
    ],
    ids=["disabled", "missing"],
)
def test_without_the_extension_gating_searches_in_python(
    prelude: str, environment: dict[str, str], logged: str
) -> None:
    stdout, stderr = run_with_debug_log(_FALLBACK.format(prelude=prelude), environment)
    assert stdout.split() == [
        "False",
        "True",
        "True",
        "True",
        "True",
        "True",
        "1",
        "True",
        "(2,",
        "2)",
        "True",
        "(3,",
        "4,",
        "3,",
        "5,",
        "-1)",
        "True",
    ]
    assert logged in stderr


@compiled_only
@settings(max_examples=500, deadline=None)
@given(
    PAGES,
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=300),
    st.none() | st.lists(st.integers(min_value=0, max_value=300), unique=True).map(sorted),
)
@example("<a b='c>d'>x", 0, 12, None)
@example("<!-- a --!><p>", 0, 14, None)
@example("<!---->", 0, 7, None)
@example('<p a="x></p>', 0, 20, None)
@example("<p =x>", 0, 6, None)
@example("</video >", 0, 9, None)
@example("<aB>", 0, 4, None)
@example('<p a=b="c>d">', 0, 14, None)
@example('<img src="x"><link href=y><p>', 0, 40, [])
@example('<img src="x"><link href=y><p>', 0, 40, [5])
@example('<img src="x"><link href=y><p>', 0, 40, [13])
@example("<img src=x", 0, 40, [])
def test_skip_agrees(page: str, position: int, end: int, triggers: list[int] | None) -> None:
    for html in _widths(page):
        for stop in (end, len(html)):
            start = min(position, stop, len(html))
            compiled = _gatescan.skip(html, start, stop, triggers)
            assert compiled == gating._skip_py(html, start, stop, triggers), (
                html,
                start,
                stop,
                triggers,
            )
            if triggers is None:
                assert _gatescan.skip(html, start, stop) == compiled


@compiled_only
def test_skip_refuses_triggers_that_are_not_positions() -> None:
    with pytest.raises(TypeError):
        _gatescan.skip("<img src=x>", 0, 11, ["1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _gatescan.skip("<img src=x>", 0, 11, (1,))  # type: ignore[arg-type]


#: What the quick read acts on, with the constructs it leaves to the full read.
_GATED_PIECES = st.sampled_from(
    [
        "<head>",
        "<!doctype html>",
        "<html>",
        f'<script src="https://{TRACKER}/a.js"></script>',
        f"<script src=//{TRACKER}/b.js async></script>",
        '<script data-consent="analytics" src="/g.js"></script>',
        "<script data-consent=marketing>var a = '</scr' + 'ipt>';</script>",
        '<script type="module" data-consent="marketing" src="/m.js"></script>',
        '<script type="text/plain" data-consent="analytics" data-src="/p.js"></script>',
        "<script>if (a <!-- b) {}</script>",
        "<script><!--<script>--></script>",
        f'<img src="https://{TRACKER}/p.gif" alt="">',
        f'<img srcset="https://{TRACKER}/1.gif 1x, /2.gif 2x">',
        '<img data-consent="marketing" src="/m.gif">',
        f'<link rel="preconnect" href="https://{TRACKER}">',
        '<iframe src="https://www.youtube-nocookie.com/embed/x" width="560"></iframe>',
        f'<iframe src="https://{TRACKER}/f" width="1" height="1"></iframe>',
        f'<iframe data-consent="marketing" src="https://{TRACKER}/v" hidden></iframe>',
        f"<iframe src=https://{TRACKER}/u>",
        "</iframe>",
        "<video data-consent='marketing'><source src=/s.mp4></video>",
        "<video src=/v.mp4></video>",
        "<picture><img src=/p.png></picture>",
        f"<noscript><img src=https://{TRACKER}/n.gif></noscript>",
        "<!-- <script src=https://www.googletagmanager.com/gtag/js></script> -->",
        "<style>a > b { content: '<script>' }</style>",
        "<title>x</title>",
        "<textarea><img src=//x.adpartner.example/t.gif></textarea>",
        "<a href='https://www.youtube.com/c'>YouTube</a>",
        '<p class="x">l\'ordonnance</p>',
        "<plaintext>",
        "</video>",
        "<!-->",
        "<?x>",
        "</ x>",
        "<p>",
        "text ",
    ]
)

_SKIM_STATES = st.sampled_from([NOTHING, ANALYTICS, EVERYTHING, GPC])
_FORM_TOKEN = re.compile(r'data-csrf="[^"]+"')
CONFIG = gating_config()
#: A page as sites write them: every tag the quick read can take.
USUAL_PAGE = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Pharmacie</title>
<script src="/static/site.js"></script>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>
<script data-consent="analytics">window.dataLayer = [];</script>
</head><body><!-- a comment -->
<img src="https://{TRACKER}/p.gif" alt="">
<iframe src="https://www.youtube-nocookie.com/embed/u" width="560" title="Vidéo"></iframe>
<a href="https://www.youtube.com/@pharmacie">YouTube</a>
</body></html>
"""


def _gated(page: str, state: ConsentState, gate: gating._Gate, *, raw: bool) -> str:
    output = gating._gate(page, state.granted, state.gpc, gate, CONFIG.default_language, raw=raw)
    return _FORM_TOKEN.sub("", output)


@compiled_only
@settings(max_examples=400, deadline=None)
@given(st.lists(_GATED_PIECES | PIECES | TAGS, max_size=30), _SKIM_STATES)
@example(
    [
        '<iframe src="https://www.youtube-nocookie.com/embed/x" width="560"></iframe>',
        f'<img src="https://{TRACKER}/never-seen-before.gif">',
    ],
    NOTHING,
)
@example(["<script><!--><script></script>", f"<img src=//{TRACKER}/i.gif></script>"], NOTHING)
@example([f"<!x //{TRACKER}/ >", f"<img src=//{TRACKER}/i.gif>"], NOTHING)
def test_the_compiled_quick_read_agrees(pieces: list[str], state: ConsentState) -> None:
    # The compiled read runs on a page whose tags were all decided on an
    # earlier page: so each page is read a first time, then again by the
    # compiled read and by the definition, with what the first reading kept.
    page = "".join(pieces)
    readings = [(page, False), (page.encode().decode("latin-1"), True)]
    readings += [(wide, False) for wide in _widths(page)[1:]]
    for html, raw in readings:
        gate = gating._Gate(CONFIG)
        first = _gated(html, state, gate, raw=raw)
        compiled = _gated(html, state, gate, raw=raw)
        with patch.object(gating, "_skim", None):
            defined = _gated(html, state, gate, raw=raw)
        assert compiled == defined == first, (html, raw)


@compiled_only
def test_the_compiled_quick_read_reads_the_usual_page() -> None:
    # Not a page the definition must read: every tag decided, no <noscript>.
    page = USUAL_PAGE
    gate = gating._Gate(CONFIG)
    first = _gated(page, NOTHING, gate, raw=False)
    taken: list[object] = []

    def counted(*arguments: Any) -> object:
        answer = _gatescan.skim(*arguments)
        taken.append(answer)
        return answer

    with patch.object(gating, "_skim", counted):
        again = _gated(page, NOTHING, gate, raw=False)
    assert again == first
    assert len(taken) == 1
    assert taken[0] is not None
    assert 'data-src="https://www.youtube-nocookie.com/embed/u"' in again
    assert 'id="mypharm-gate-1"' in again


@compiled_only
def test_skim_refuses_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        _gatescan.skim("<p>", 3, (), {}, frozenset(), False, print, print)  # type: ignore[arg-type]
    page = f"<img src=//{TRACKER}/x.gif>"
    verdicts = {(page, frozenset(), False): "not a verdict"}
    with pytest.raises(TypeError, match="verdict"):
        _gatescan.skim(page, len(page), [10], verdicts, frozenset(), False, print, print)


@compiled_only
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The reference implementation's answers (python-xxhash, xxh64_intdigest).
        (b"", 0xEF46DB3751D8E999),
        (b"a", 0xD24EC4F1A98C6E5B),
        (b"abc", 0x44BC2CF5AD770999),
        (b"0123456789abcdef0123456789abcdef0", 0xE87684F08D6D0816),
        (bytes(range(256)) * 5, 0xAFC184AD7938A354),
    ],
    ids=["empty", "one", "three", "two-stripes-and-one", "1280"],
)
def test_digest_is_xxh64(data: bytes, expected: int) -> None:
    assert _gatescan.digest(data) == expected


@compiled_only
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_digest_tells_bodies_apart(first: bytes, second: bytes) -> None:
    assert _gatescan.digest(first) == _gatescan.digest(bytes(bytearray(first)))
    if first != second:
        assert _gatescan.digest(first) != _gatescan.digest(second)


@compiled_only
def test_digest_takes_bytes_only() -> None:
    with pytest.raises(TypeError, match="bytes"):
        _gatescan.digest("text")  # type: ignore[arg-type]


#: Pieces of a UTF-8 page read byte for byte, and the bytes around them.
RAW_PIECES = st.lists(
    st.text(st.characters(max_codepoint=0xFF), max_size=40)
    | st.binary(max_size=40)
    | st.tuples(st.binary(max_size=40), st.integers(0, 40), st.integers(0, 40)).map(
        lambda cut: memoryview(cut[0])[cut[1] : cut[2]]
    ),
    max_size=8,
)


@compiled_only
@settings(max_examples=300, deadline=None)
@given(RAW_PIECES)
def test_join_raw_agrees(pieces: list[str | bytes | memoryview]) -> None:
    expected = b"".join(
        piece.encode("latin-1") if isinstance(piece, str) else bytes(piece) for piece in pieces
    )
    assert gating._join_raw_py(pieces) == expected
    assert _gatescan.join_raw(pieces) == expected


@compiled_only
@pytest.mark.parametrize(
    ("pieces", "error"),
    [
        (["ab", "€"], UnicodeEncodeError),
        (["ab", "😀"], UnicodeEncodeError),
        ([b"a", 1], TypeError),
        ([bytearray(b"a")], TypeError),
        ([b"a", None], TypeError),
        (("a", b"b"), TypeError),
        ("ab", TypeError),
    ],
    ids=["ucs2", "astral", "int", "bytearray", "none", "tuple", "str"],
)
def test_join_raw_refuses_what_is_not_a_raw_piece(pieces: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        gating._join_raw_py(pieces)
    with pytest.raises(error):
        _gatescan.join_raw(pieces)


@compiled_only
def test_join_raw_refuses_a_released_view() -> None:
    view = memoryview(b"abc")
    view.release()
    with pytest.raises(ValueError, match="released"):
        _gatescan.join_raw([b"x", view])


#: More of what decides where a verbatim span ends: comment ends, script escapes,
#: attribute names gating never reads, raw text ends in any case.
_SPAN_PIECES = st.sampled_from(
    [
        "<!-->",
        "<!--->",
        "<!---->",
        "--!>",
        "--!",
        "<!--<script>",
        "</script ",
        "</SCRIPT>",
        "<script>",
        "</title>",
        "</TITLE ",
        "</textarea/",
        "</style>",
        "</iframe>",
        "</noscript>",
        ' nonce="n"',
        " NONCE='n'",
        ' alt="a b"',
        " class=c",
        ' id=""',
        ' src="s"',
        "<<",
        "< ",
        "<2",
        "</ ",
        "<!x>",
        "<?y>",
        "<!doctype html>",
        "<html lang='fr'>",
    ]
)


@compiled_only
@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES | TAGS | _SPAN_PIECES | st.text(max_size=3), max_size=40).map("".join))
@example("<p>a<</p>b<<<c")
@example('<div x="abc y>')
def test_verbatim_spans_are_read_in_c_as_defined(page: str) -> None:
    for raw in (False, True):
        text = page.encode().decode("latin-1") if raw else page
        start = (gating._DOCUMENT_START_RAW if raw else gating._DOCUMENT_START).match(text)
        assert start is not None
        compiled = _gatescan.verbatim_spans(text, start.end() + 1, gating._SPAN_KINDS)
        if text.isascii() or max(map(ord, text)) <= 0xFF:
            assert compiled == gating._verbatim_spans_py(text, raw=raw)
            assert gating.verbatim_spans(text, raw=raw) == compiled
        else:
            # Wider than one byte a character: the definition reads it.
            assert compiled is None
            assert gating.verbatim_spans(text, raw=raw) == gating._verbatim_spans_py(text, raw=raw)


@compiled_only
def test_verbatim_spans_refuses_bad_arguments() -> None:
    kinds = gating._SPAN_KINDS
    for arguments in [(b"<p>", 0, kinds), ("<p>", "0", kinds), ("<p>", 0, kinds[:5]), ("<p>", 0)]:
        with pytest.raises(TypeError):
            _gatescan.verbatim_spans(*arguments)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        _gatescan.verbatim_spans("<p>", 2**70, kinds)
    assert gating._verbatim_spans_c is _gatescan.verbatim_spans
