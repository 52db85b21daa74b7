"""Pages spliced from a page gated before (``mypharm_consent.splice``) against gating them afresh.

A spliced page must be, byte for byte, the page gating gives (and its banner
in the same place), whatever the base page and whatever the change: pages
made of the fragments the gating tests use, changed anywhere by text holding
the characters that change how a page is read. Splicing must also really
happen where it is meant to (a counter, a name, a form token), and never
across a tag, a ``<`` or an attribute gating reads.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mypharm_consent import ConsentState, gating, splice
from mypharm_consent.engine import ConsentEngine, _markup_byte_position
from mypharm_consent.splice import SpliceStore, with_markup

from .gating_pages import ANALYTICS, EVERYTHING, GPC, NOTHING, TRACKER, gating_config
from .test_gating import FRAGMENTS, SKIM_FRAGMENTS

try:
    from mypharm_consent import _gatescan
except ImportError:  # built without a C compiler: only the fallback is tested
    if os.environ.get("CI"):
        raise
    _gatescan = None  # type: ignore[assignment]

CONFIG = gating_config()
TOKEN = re.compile(rb'data-csrf="[^"]*"')
STATES = [NOTHING, ANALYTICS, EVERYTHING, GPC]
HTML = [(b"content-type", b"text/html; charset=utf-8")]

#: A product page: a tracker in the head, a gated video, a counter in a comment.
PAGE = (
    '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
    '<meta name="csrf-token" content="{meta}">'
    "<title>Pharmacie {title}</title>"
    f'<script async nonce="{{nonce}}" src="https://{TRACKER}/tag.js"></script>'
    '<script>window.cart = {{"items": {items}}};</script>'
    "<style>.x {{ color: red }}</style></head>\n<body>"
    '<p class="hello">Bonjour {name}, il est {time}.</p>'
    f'<iframe src="https://{TRACKER}/player"></iframe>'
    '<form method="post"><input type="hidden" name="token" value="{token}"></form>'
    f'<img src="https://{TRACKER}/p.gif" alt="pixel">'
    "<footer><!-- {count} --></footer>\n</body></html>"
)


def page(**values: object) -> bytes:
    fields: dict[str, object] = {
        "meta": "aB3+/x==",
        "nonce": "n0nce",
        "title": "du Marché",
        "items": 0,
        "token": "aB3+/x==",
        "name": "Zoé",
        "time": "10:42",
        "count": 1,
    }
    fields.update(values)
    return PAGE.format(**fields).encode()


def gated(body: bytes, state: ConsentState = NOTHING) -> bytes:
    return gating.gate_utf8(body, state, CONFIG)


def regate_for(state: ConsentState) -> Callable[[bytes], bytes]:
    return lambda body: gated(body, state)


def offer(store: SpliceStore, body: bytes, state: ConsentState = NOTHING) -> None:
    """Offer ``body`` with the pieces gating gave, as the engine does."""
    pieces = gating.gate_utf8_pieces(body, state, CONFIG)
    store.offer(
        "k", body, None if pieces is None else pieces[0], 0 if pieces is None else pieces[1]
    )


def store_with(base: bytes, state: ConsentState = NOTHING, **limits: int) -> SpliceStore:
    store = SpliceStore(_markup_byte_position, **limits)
    offer(store, base, state)
    return store


def spliced(store: SpliceStore, body: bytes, state: ConsentState = NOTHING) -> bytes | None:
    """The spliced page, checked against gating afresh (and its banner's place), if spliced."""
    answer = store.splice("k", body, lambda changed: gated(changed, state))
    if answer is None:
        return None
    joined, at = answer.join(), answer.at
    if at is not None:
        # The banner goes where gating's page would have it, and nowhere else.
        marked = answer.join(b"<aside>banner</aside>")
        assert marked == joined[:at] + b"<aside>banner</aside>" + joined[at:]
    fresh = gated(body, state)
    assert TOKEN.sub(b"", joined) == TOKEN.sub(b"", fresh)
    assert at == _markup_byte_position(joined)
    return joined


# -- affixes -----------------------------------------------------------------


def _check_affixes(old: bytes, new: bytes, prefix: int, suffix: int) -> None:
    assert prefix + suffix <= min(len(old), len(new))
    assert new == new[:prefix] + new[prefix : len(new) - suffix] + old[len(old) - suffix :]
    assert old[:prefix] == new[:prefix]
    # The longest: one more byte at either end differs (or there is none).
    assert prefix == min(len(old), len(new)) or old[prefix] != new[prefix]
    room = min(len(old), len(new)) - prefix
    assert suffix == room or old[len(old) - suffix - 1] != new[len(new) - suffix - 1]


BYTES = st.binary(max_size=700) | st.lists(
    st.sampled_from([b"a", b"b", b"ab" * 150]), max_size=8
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(BYTES, BYTES, st.integers(min_value=0, max_value=600))
@example(b"aXa", b"aXXa", 0)
@example(b"", b"", 0)
def test_affixes_are_the_longest_shared_start_and_end(old: bytes, new: bytes, grow: int) -> None:
    # Long shared runs, so that the compiled search's blocks are crossed.
    old, new = b"s" * grow + old + b"e" * grow, b"s" * grow + new + b"e" * grow
    answer = splice._affixes_py(old, new)
    _check_affixes(old, new, *answer)
    if _gatescan is not None:
        assert _gatescan.affixes(old, new) == answer


@pytest.mark.skipif(_gatescan is None, reason="mypharm_consent._gatescan is not built")
def test_affixes_refuses_what_is_not_two_bytes() -> None:
    for arguments in [
        ("a", b"b"),
        (b"a", bytearray(b"b")),
        (b"a",),
        (b"a", b"b", b"c"),
        (None, b""),
    ]:
        with pytest.raises(TypeError):
            _gatescan.affixes(*arguments)  # type: ignore[arg-type]
    assert splice._affixes is _gatescan.affixes


# -- verbatim spans ------------------------------------------------------------


def test_verbatim_spans_of_a_page() -> None:
    html = page().decode("latin-1")
    found = [(html[start:end], forbidden) for start, end, forbidden in gating.verbatim_spans(html)]
    assert found == [
        ("fr", '"<>'),
        ("utf-8", '"<>'),
        ("csrf-token", '"<>'),
        ("aB3+/x==", '"<>'),
        ("Pharmacie du MarchÃ©", "<"),
        ("n0nce", '"<>'),
        ('window.cart = {"items": 0};', "<>-!"),
        (".x { color: red }", "<"),
        ("\n", "<"),
        ("hello", '"<>'),
        ("Bonjour ZoÃ©, il est 10:42.", "<"),
        ("post", '"<>'),
        ("hidden", '"<>'),
        ("token", '"<>'),
        ("aB3+/x==", '"<>'),
        ("pixel", '"<>'),  # gating never reads an alt
        (" 1 ", "<>-!"),
        ("\n", "<"),
    ]
    # The tracker's tags, the iframe and its body, <head>: none of them.
    assert all(TRACKER not in text for text, _ in found)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a<!-- b", ["a"]),  # an unterminated comment: nothing after it
        ("<p>a<b x='1", ["a"]),  # an unterminated tag
        ("<p>a<plaintext>b", ["a"]),
        ("<p>a<script>b", ["a"]),  # a script never closed
        ("<p>a<textarea>b</textarea>c", ["a", "b", "c"]),
        ("<p>a<noscript>b</noscript>c", ["a", "c"]),  # noscript holds markup: not copied
        ("<p>a<iframe>b</iframe>c", ["a", "c"]),  # an iframe may become a placeholder
        ("<p>a< b<!x>c<?y>d</ z>e<2", ["a", "b", "c", "d", "e"]),
        ("<p>a<</p>b<<<c", ["a", "b"]),  # the "<" after a "<" is read again
        ("<p>a<!---->b<!-->c<!-- d --!>e", ["a", "b", "c", " d ", "e"]),
        ("<IMG ALT='x' SRC='s'><DIV TITLE='y'>z", ["x", "y", "z"]),  # not a loading tag's src
        ("<img style='a' width='1' type='t' data-consent='c'>", []),
        ("<video><p title='t' x=y>v</video>", ["t", "v"]),
        ("text first<p>b", ["ext first", "b"]),  # not where the document starts
        ("<!-- lead -->\n<!doctype html>\n<p>b", ["b"]),
        ("<p>a<bc<d>e", ["a", "e"]),  # a tag named "bc<d"
        ("<p>a<bc<d", ["a"]),  # unterminated
    ],
)
def test_verbatim_spans_stop_where_gating_cannot_read_through(
    html: str, expected: list[str]
) -> None:
    assert [html[start:end] for start, end, _ in gating.verbatim_spans(html)] == expected


# -- splicing ------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES, ids=["nothing", "analytics", "everything", "gpc"])
@pytest.mark.parametrize(
    "change",
    [
        {"count": 2},
        {"count": 123456},
        {"name": "Jean-Pierre"},
        {"name": "Ørjan & Co"},
        {"time": "10:43"},
        {"token": "zz9-_AbCdEfGhIjKlMnOpQrStUv="},
        {"token": ""},
    ],
)
def test_a_page_changed_in_text_is_spliced(state: ConsentState, change: dict[str, object]) -> None:
    store = store_with(page(), state)
    assert spliced(store, page(**change), state) is not None
    assert store.spliced == 1
    assert store.missed == 0


def test_changes_in_several_places_are_spliced() -> None:
    store = store_with(page())
    # Name and time in one paragraph; then the title, the tokens, the script, the counter.
    assert spliced(store, page(name="Zu", time="11:00")) is not None
    assert spliced(store, page(name="Zu", title="Zu")) is not None
    everything = {"meta": "m", "title": "T", "nonce": "n", "items": 1, "token": "t", "count": 7}
    assert spliced(store, page(**everything)) is not None
    assert store.spliced == 3
    # More changes than a store allows: gated in full.
    store = store_with(page(), max_changes=5)
    assert spliced(store, page(**everything)) is None
    assert spliced(store, page(**{**everything, "count": 1})) is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Bonjour", b"Bonjour <b>"),  # a tag written into text
        (b"Bonjour", b"Bonjour &lt;"),  # fine: an entity
        (f"https://{TRACKER}/p.gif".encode(), b"https://cdn.example/p.gif"),  # a gated URL
        (b'alt="pixel"', b'alt="pixel" width="1"'),  # an attribute added to a tag that loads
        (b"<!-- 1 -->", b"<!-- 1 -- -->"),  # dashes in a comment
        (b'{"items": 0}', b'{"items": "-->"}'),  # in a script: could end it
        (b"hidden", b'hidden" data-consent="marketing'),  # a quote ends the value
        (b"</p>", b"</p><!--"),  # across a tag
    ],
)
def test_what_could_change_how_the_page_is_read_is_gated_afresh(old: bytes, new: bytes) -> None:
    store = store_with(page())
    body = page().replace(old, new, 1)
    assert body != page()
    answer = spliced(store, body)
    if new == b"Bonjour &lt;":
        assert answer is not None
    else:
        assert answer is None
        assert store.missed == 1


def test_the_very_page_spliced_from_is_its_gated_page() -> None:
    store = store_with(page())
    assert spliced(store, page()) == gated(page())


def test_a_page_without_body_or_banner_place_is_spliced() -> None:
    fragment = b"<div><p>Hello Ann</p><!-- 7 --></div>"
    store = store_with(fragment)
    assert spliced(store, fragment.replace(b"Ann", b"Bob")) is not None
    no_end = b"<html><body><p>Hello Ann</p>"
    store = store_with(no_end)
    result = spliced(store, no_end.replace(b"Ann", b"Roberta"))
    assert result is not None
    assert _markup_byte_position(result) == len(result)


def test_where_gating_does_not_copy_a_span_as_it_is_nothing_is_spliced() -> None:
    store = store_with(page())
    body = page(count=2)
    base = store._keys["k"].bases[0]
    base.prepare(_markup_byte_position)
    # A regate that writes somewhere else too: the span's place is not told.
    assert store.splice("k", body, lambda changed: gated(changed) + b"!") is None
    assert splice._NOT_VERBATIM in base.shifts
    # Decided once per span: the next page changed there is not spliced either.
    assert store.splice("k", page(count=3), regate_for(NOTHING)) is None


def test_a_page_unlike_the_bases_becomes_one_and_a_page_alike_does_not() -> None:
    store = store_with(page(), max_change=64, max_per_key=2)
    other = page() + b"<p>" + b"x" * 200 + b"</p>"
    assert spliced(store, other) is None
    offer(store, other)
    assert store.bases("k") == [other, page()]
    # Both versions are spliced from now on, each from its own base.
    assert spliced(store, other.replace("Zoé".encode(), b"Zu")) is not None
    assert spliced(store, page(name="Zu")) is not None
    assert store.bases("k") == [page(), other]
    # A page alike to a base but not safe to splice: gated in full, and not kept.
    unsafe = other.replace("Zoé".encode(), b"<b>")
    assert store.splice("k", unsafe, regate_for(NOTHING)) is None
    offer(store, unsafe)
    assert store.bases("k") == [page(), other]
    # A third version pushes out the version least recently spliced from.
    third = page() + b"<footer>" + b"y" * 300 + b"</footer>"
    assert spliced(store, third) is None
    offer(store, third)
    assert store.bases("k") == [third, page()]


def test_bases_are_bounded_and_expire() -> None:
    now = [0.0]
    store = SpliceStore(
        _markup_byte_position, max_bases=2, max_bytes=10_000, max_age=60, clock=lambda: now[0]
    )
    for key in "abc":
        store.offer(key, b"<p>" + key.encode() * 10 + b"</p>", None, 0)
    assert [store.bases(key) != [] for key in "abc"] == [False, True, True]
    store.offer("big", b"x" * 4_000, None, 0)
    assert [store.bases(key) != [] for key in ("b", "c", "big")] == [False, True, True]
    store.offer("huge", b"x" * 6_000, None, 0)  # twice that is over max_bytes
    assert store.bases("huge") == []
    assert store.splice("c", b"<p>cccccccccd</p>", regate_for(NOTHING)) is not None
    now[0] = 61.0
    assert store.splice("c", b"<p>cccccccccd</p>", regate_for(NOTHING)) is None
    assert len(store) == 1
    for bad in ({"max_bases": 0}, {"max_per_key": 0}, {"max_changes": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            SpliceStore(_markup_byte_position, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        SpliceStore(_markup_byte_position, max_change=-1)
    with pytest.raises(ValueError, match="max_age"):
        SpliceStore(_markup_byte_position, max_age=0)


def test_with_markup_places_the_banner_anywhere() -> None:
    parts: list[bytes | memoryview] = [b"abc", memoryview(b"defg"), b"h"]
    for at in range(9):
        assert b"".join(with_markup(parts, at, b"|")) == b"abcdefgh"[:at] + b"|" + b"abcdefgh"[at:]
    with pytest.raises(ValueError, match="past"):
        with_markup(parts, 9, b"|")


def test_threads_splicing_from_one_base_agree() -> None:
    store = store_with(page())
    expected = {count: TOKEN.sub(b"", gated(page(count=count))) for count in range(40)}
    failures: list[int] = []

    def work(offset: int) -> None:
        for count in range(offset, 40, 4):
            answer = store.splice("k", page(count=count), regate_for(NOTHING))
            if answer is None or TOKEN.sub(b"", answer.join()) != expected[count]:
                failures.append(count)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.spliced == 40


#: Text for a change: what changes how a page is read, and plain words.
CHANGES = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "-",
            "!",
            '"',
            "'",
            "=",
            "/",
            "&",
            " ",
            "\n",
            "a",
            "Zoé",
            "42",
            "data-consent",
            f"//{TRACKER}",
            "script",
            "</script>",
            "-->",
            "<!--",
            "é",
        ]
    ),
    max_size=5,
).map("".join)

DOCUMENTS = st.sampled_from(["", "<!doctype html><html><head><title>t</title></head><body>"])


@settings(max_examples=400, deadline=None)
@given(
    DOCUMENTS,
    st.lists(
        FRAGMENTS
        | st.sampled_from(SKIM_FRAGMENTS)
        | st.sampled_from(
            [
                "Zoé",
                "x y",
                "</body>",
                "<<",
                "<-",
                f'<script nonce="q1" id=\'i\' src="https://{TRACKER}/n.js">',
                f"<iframe title='t' src=https://{TRACKER}/f>",
                "<img alt=u src=/x.png>",
            ]
        ),
        max_size=25,
    ),
    st.sampled_from(STATES),
    st.data(),
)
def test_any_change_of_any_page_is_spliced_right_or_not_at_all(
    document: str, fragments: list[str], state: ConsentState, data: st.DataObject
) -> None:
    base = (document + "".join(fragments)).encode()
    store = store_with(base, state)
    spans = gating.verbatim_spans(base.decode("latin-1"), raw=True)
    for _ in range(3):
        spliced(store, changed(base, spans, data, anywhere=True), state)


def changed(
    base: bytes, spans: list[tuple[int, int, str]], data: st.DataObject, *, anywhere: bool
) -> bytes:
    """``base`` with one to three changes drawn by ``data``, most in verbatim spans."""
    ranges: list[tuple[int, int]] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        if spans and not (anywhere and data.draw(st.booleans())):
            # Changes inside spans: those are the ones spliced.
            start, end, _ = data.draw(st.sampled_from(spans))
        else:
            start, end = 0, len(base)
        low = data.draw(st.integers(min_value=start, max_value=end))
        ranges.append((low, data.draw(st.integers(min_value=low, max_value=end))))
    body = base
    done = len(base) + 1
    # From the last to the first, each only where no later one was.
    for low, high in sorted(ranges, reverse=True):
        if high < done:
            body = body[:low] + data.draw(CHANGES).encode() + body[high:]
            done = low
    return body


PAGE_FRAGMENTS = st.lists(
    FRAGMENTS
    | st.sampled_from(SKIM_FRAGMENTS)
    | st.sampled_from(["Zoé", "x y", "</body>", "<<", "<-", "<p title='a>b'>", "<!-- 7 -->"]),
    max_size=25,
)


def _spans_of(base: bytes) -> tuple[list[int], list[int], list[bytes]]:
    """A base's verbatim spans as splicing reads them (``_Base.prepare``)."""
    spans = gating.verbatim_spans(base.decode("latin-1"), raw=True)
    return (
        [start for start, _, _ in spans],
        [end for _, end, _ in spans],
        [chars.encode("latin-1") for _, _, chars in spans],
    )


@pytest.mark.skipif(_gatescan is None, reason="mypharm_consent._gatescan is not built")
@settings(max_examples=600, deadline=None)
@given(
    DOCUMENTS,
    PAGE_FRAGMENTS,
    st.sampled_from([0, 1, 3, 12, 40, 4096]),
    st.integers(min_value=1, max_value=4) | st.just(16),
    st.booleans(),
    st.data(),
)
@example("", [], 4096, 16, True, None)
def test_the_splice_plan_is_worked_out_in_c_as_defined(
    document: str,
    fragments: list[str],
    limit: int,
    rounds: int,
    read: bool,
    data: st.DataObject | None,
) -> None:
    base = (document + "".join(fragments)).encode()
    spans = gating.verbatim_spans(base.decode("latin-1"), raw=True)
    arguments = _spans_of(base) if read else (None, None, None)
    pages = [base] if data is None else [changed(base, spans, data, anywhere=True)]
    for new in pages:
        expected = splice._plan_py(base, new, limit, rounds, *arguments)
        assert _gatescan.splice_plan(base, new, limit, rounds, *arguments) == expected
        if isinstance(expected, tuple):
            # The changes rebuild the new page from the base, in order, each in its span.
            rebuilt, copied = b"", 0
            for first in range(0, len(expected), 5):
                old_start, old_end, new_start, new_end, index = expected[first : first + 5]
                assert copied <= old_start <= old_end
                assert new_end - new_start <= limit
                rebuilt += base[copied:old_start] + new[new_start:new_end]
                copied = old_end
                if read:
                    starts, ends, _ = arguments
                    assert starts[index] <= old_start <= old_end <= ends[index]  # type: ignore[index]
                else:
                    assert index == -1
            assert rebuilt + base[copied:] == new
            assert len(expected) <= 5 * rounds


@pytest.mark.skipif(_gatescan is None, reason="mypharm_consent._gatescan is not built")
@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40),
    st.binary(max_size=40),
    st.lists(st.integers(min_value=0, max_value=45), max_size=12),
    st.integers(min_value=-2, max_value=90),
    st.none() | st.binary(max_size=5),
)
@example(b"abcdef", b"XY", [1, 3, 0, 2], 1, b"|")  # the banner where a change starts
@example(b"abcdef", b"XY", [1, 3, 0, 2], 3, b"|")  # and where it ends
@example(b"abcdef", b"XY", [1, 1, 0, 2], 1, b"|")  # an insertion
def test_a_spliced_page_is_written_in_c_as_defined(
    gated_page: bytes, body: bytes, cuts: list[int], at: int, markup: bytes | None
) -> None:
    # Cuts drawn at random are mostly out of order: both must refuse them alike.
    arguments = (gated_page, body, tuple(cuts), at, markup)
    try:
        expected: bytes | type[Exception] = splice._splice_join_py(*arguments)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError, match=r"cuts|past"):
            _gatescan.splice_join(*arguments)
    else:
        assert _gatescan.splice_join(*arguments) == expected


def test_a_spliced_page_is_its_base_with_the_changes_and_the_banner() -> None:
    for join in filter(None, (splice._splice_join_py, getattr(_gatescan, "splice_join", None))):
        assert join(b"abcdefgh", b"XYZ", (2, 4, 0, 3), 0, None) == b"abXYZefgh"
        assert join(b"abcdefgh", b"XYZ", (2, 4, 0, 3, 6, 6, 1, 2), 8, b"|") == b"abXYZefY|gh"
        assert join(b"abcdefgh", b"XYZ", (), 8, b"|") == b"abcdefgh|"
        for bad in [(4, 2, 0, 1), (2, 4, 0, 9), (2, 4, 0), (2, 4, 0, 1, 1, 5, 0, 1)]:
            with pytest.raises(ValueError, match="cuts"):
                join(b"abcdefgh", b"XYZ", bad, 0, None)
        with pytest.raises(ValueError, match="past"):
            join(b"abcdefgh", b"XYZ", (), 9, b"|")
    if _gatescan is not None:
        for arguments in [
            (b"a", b"b", [0, 1, 0, 1], 0, None),
            (b"a", b"b", (0, 1, 0, 1.0), 0, None),
            (b"a", b"b", (), 0, "x"),
            (b"a", b"b", ()),
        ]:
            with pytest.raises(TypeError):
                _gatescan.splice_join(*arguments)  # type: ignore[arg-type]
        assert splice._splice_join is _gatescan.splice_join


@pytest.mark.skipif(_gatescan is None, reason="mypharm_consent._gatescan is not built")
def test_the_splice_plan_refuses_bad_arguments() -> None:
    base = page()
    starts, ends, forbidden = _spans_of(base)
    for plan in (_gatescan.splice_plan, splice._plan_py):
        for arguments, error in [
            ((base, base, 10, 0, None, None, None), ValueError),
            ((base, base, -1, 1, None, None, None), ValueError),
            ((base, base, 10, 1, starts, None, None), TypeError),
            ((base, base, 10, 1, starts, ends[:-1], forbidden), TypeError),
        ]:
            with pytest.raises(error):
                plan(*arguments)  # type: ignore[operator]
        assert plan(base, base, 10, 1, starts, ends, forbidden) == ()
    for arguments in [
        ("a", b"b", 1, 1, None, None, None),
        (b"a", b"b", 1, 1, None, None),
        (b"a", b"b", 1.0, 1, None, None, None),
        (base, page(count=2), 10, 1, [1.5] * len(starts), ends, forbidden),
        (base, page(count=2), 10, 1, starts, ends, ["x"] * len(starts)),
    ]:
        with pytest.raises(TypeError):
            _gatescan.splice_plan(*arguments)  # type: ignore[arg-type]
    assert splice._plan is _gatescan.splice_plan


def test_the_engine_splices_a_page_that_differs_on_every_request() -> None:
    engine = ConsentEngine(CONFIG)
    fresh = ConsentEngine(CONFIG)
    fresh.csrf = engine.csrf  # the same banner token
    for count in range(6):
        body = page(count=count)
        answer = engine.rewrite_page(NOTHING, HTML, body, target="/produit?id=3")
        fresh.splices = SpliceStore(_markup_byte_position)  # gated afresh every time
        expected = fresh.rewrite_page(NOTHING, HTML, body, target="/produit?id=3")
        assert answer is not None
        assert expected is not None
        assert TOKEN.sub(b"", answer[1]) == TOKEN.sub(b"", expected[1])
        assert answer[0] == expected[0]
        assert b'id="mypharm-consent-banner"' in answer[1] or b"mypharm" in answer[1]
    assert engine.splices.spliced == 5
    # Another query of the same path splices from the same base; a decided visitor has its own.
    engine.rewrite_page(NOTHING, HTML, page(count=9), target="/produit?id=4")
    assert engine.splices.spliced == 6
    engine.rewrite_page(ANALYTICS, HTML, page(count=9), target="/produit?id=4")
    assert engine.splices.spliced == 6
    assert len(engine.splices) == 2


def test_a_page_that_repeats_is_still_kept_whole() -> None:
    engine = ConsentEngine(CONFIG)
    first = engine.rewrite_page(NOTHING, HTML, page(), target="/")
    for _ in range(3):
        again = engine.rewrite_page(NOTHING, HTML, page(), target="/")
        assert again == first
    # The page repeats: it was kept, then answered whole (not spliced every time).
    assert len(engine.pages) == 1
    assert engine.splices.spliced == 1


def test_pages_that_change_then_repeat_are_answered_right_either_way() -> None:
    """Where pages changed lately, splicing is tried before the kept pages: a page
    that then repeats is still answered as gating it afresh would, and kept."""
    engine = ConsentEngine(CONFIG)
    fresh = ConsentEngine(CONFIG)
    fresh.csrf = engine.csrf
    key = ("/produit", NOTHING.granted, NOTHING.gpc, "fr")
    changing = []
    for count in [1, 2, 3, 1, 1, 1, 4, 4, 5, 2]:
        body = page(count=count)
        answer = engine.rewrite_page(NOTHING, HTML, body, target="/produit")
        fresh.splices = SpliceStore(_markup_byte_position)
        expected = fresh.rewrite_page(NOTHING, HTML, body, target="/produit")
        assert answer is not None
        assert expected is not None
        assert answer[0] == expected[0]
        assert TOKEN.sub(b"", answer[1]) == TOKEN.sub(b"", expected[1])
        changing.append(engine.splices.changing(key))
    # The base is the first page: the others differ from it, the repeats of it do not.
    assert changing == [False, True, True, False, False, False, True, True, True, True]
    # The base, seen four times, was kept whole after its second time.
    assert engine.pages.lookup((page(count=1), "utf-8", False, NOTHING.granted, False, "fr"))
    assert not engine.splices.changing(("/ailleurs", NOTHING.granted, NOTHING.gpc, "fr"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(STATES), st.data())
def test_any_change_of_a_product_page_is_spliced_right_or_not_at_all(
    state: ConsentState, data: st.DataObject
) -> None:
    base = page()
    store = store_with(base, state)
    spans = gating.verbatim_spans(base.decode("latin-1"), raw=True)
    for _ in range(4):
        spliced(store, changed(base, spans, data, anywhere=False), state)
    assert store.spliced + store.missed == 4


def test_a_path_whose_pages_cannot_be_spliced_is_seldom_compared() -> None:
    store = store_with(page())
    for number in range(8):
        # Alike, but a tag written into the text: gated in full every time.
        assert store.splice("k", page(name=f"<b>{number}"), regate_for(NOTHING)) is None
    # Then only one page in eight is compared; a splice puts an end to it.
    for _ in range(7):
        assert store.splice("k", page(count=2), regate_for(NOTHING)) is None
    assert spliced(store, page(count=3)) is not None
    assert spliced(store, page(count=4)) is not None
    assert store.spliced == 2
    assert store.missed == 15
