"""The cache of rewritten pages: bounded, expiring, never confusing two pages."""

from __future__ import annotations

import pytest

from mypharm_consent.pagecache import PageCache, PageKey, RewrittenPage

from .conftest import FakeClock

UNDECIDED = frozenset({"necessary"})


def key(body: bytes, *, granted: frozenset[str] = UNDECIDED, language: str = "fr") -> PageKey:
    return (body, "utf-8", False, granted, False, language)


def page(text: str) -> RewrittenPage:
    return RewrittenPage(text.encode(), b"</body></html>")


def test_a_stored_page_comes_back_with_the_markup_in_its_place() -> None:
    cache = PageCache()
    body = b"<html><body><p>Bonjour</p></body></html>"
    cache.put(key(body), RewrittenPage(b"<html><body><p>Bonjour</p>", b"</body></html>"))
    found = cache.get(key(bytes(bytearray(body))))
    assert found is not None
    assert found.with_markup(b"<aside>banner</aside>") == (
        b"<html><body><p>Bonjour</p><aside>banner</aside></body></html>"
    )


def test_a_fragment_gets_no_markup() -> None:
    assert RewrittenPage(b"<p>fragment</p>", None).with_markup(b"<aside>") == b"<p>fragment</p>"


@pytest.mark.parametrize(
    "other",
    [
        key(b"<p>page</p>", granted=frozenset({"necessary", "analytics"})),
        key(b"<p>page</p>", language="en"),
        (b"<p>page</p>", "iso8859-1", False, UNDECIDED, False, "fr"),
        (b"<p>page</p>", "utf-8", True, UNDECIDED, False, "fr"),
        (b"<p>page</p>", "utf-8", False, UNDECIDED, True, "fr"),
        key(b"<p>page!</p>"),
    ],
    ids=["granted", "language", "charset", "decided", "gpc", "body"],
)
def test_every_part_of_the_key_matters(other: PageKey) -> None:
    cache = PageCache()
    cache.put(key(b"<p>page</p>"), page("one"))
    assert cache.get(other) is None
    assert cache.get(key(b"<p>page</p>")) == page("one")


def test_pages_sharing_a_fingerprint_are_told_apart_by_their_whole_body() -> None:
    # Same length, same last bytes, same sampled bytes: only byte 1 differs.
    first = b"a" + b"x" * 500
    second = b"ab" + b"x" * 499
    assert len(first) == len(second)
    assert first[::97] == second[::97]
    cache = PageCache()
    cache.put(key(first), page("first"))
    cache.put(key(second), page("second"))
    assert cache.get(key(first)) == page("first")
    assert cache.get(key(second)) == page("second")
    assert len(cache) == 2


def test_the_cache_cannot_grow_past_its_bound() -> None:
    cache = PageCache(max_pages=4)
    bodies = [f"<p>page {index}</p>".encode() for index in range(20)]
    for index, body in enumerate(bodies):
        cache.put(key(body), page(str(index)))
        assert len(cache) <= 4
    assert len(cache) == 4
    assert [cache.get(key(body)) is not None for body in bodies] == [False] * 16 + [True] * 4


def test_the_least_recently_used_page_goes_first() -> None:
    cache = PageCache(max_pages=2)
    cache.put(key(b"<p>a</p>"), page("a"))
    cache.put(key(b"<p>b</p>"), page("b"))
    assert cache.get(key(b"<p>a</p>")) is not None
    cache.put(key(b"<p>c</p>"), page("c"))
    assert cache.get(key(b"<p>a</p>")) == page("a")
    assert cache.get(key(b"<p>b</p>")) is None
    assert cache.get(key(b"<p>c</p>")) == page("c")


def test_storing_the_same_page_again_replaces_it() -> None:
    cache = PageCache(max_pages=2)
    cache.put(key(b"<p>a</p>"), page("old"))
    cache.put(key(b"<p>a</p>"), page("new"))
    assert len(cache) == 1
    assert cache.get(key(b"<p>a</p>")) == page("new")


def test_a_page_expires_and_is_forgotten() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(max_age=300, clock=clock)
    cache.put(key(b"<p>a</p>"), page("a"))
    clock.advance(299)
    assert cache.get(key(b"<p>a</p>")) == page("a")
    clock.advance(1)
    assert cache.get(key(b"<p>a</p>")) is None
    assert len(cache) == 0


def test_a_clock_going_back_does_not_keep_a_page_forever() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(clock=clock)
    cache.put(key(b"<p>a</p>"), page("a"))
    clock.advance(-1)
    assert cache.get(key(b"<p>a</p>")) is None


def test_a_page_is_admitted_the_second_time_it_is_seen() -> None:
    cache = PageCache()
    assert cache.admits(key(b"<p>a</p>")) is False
    assert cache.admits(key(b"<p>b</p>")) is False
    assert cache.admits(key(b"<p>a</p>")) is True
    assert cache.admits(key(b"<p>a</p>", language="en")) is False


def test_pages_seen_once_are_forgotten_past_a_bound() -> None:
    cache = PageCache(max_pages=2)
    assert cache.admits(key(b"<p>first</p>")) is False
    for index in range(8):
        assert cache.admits(key(f"<p>{index}</p>".encode())) is False
    # Eight pages seen once since: the first one has been forgotten.
    assert cache.admits(key(b"<p>first</p>")) is False
    assert cache.admits(key(b"<p>7</p>")) is True


def test_large_pages_are_never_kept() -> None:
    cache = PageCache(max_page_bytes=100)
    small, large = b"x" * 100, b"x" * 101
    assert cache.keeps(small)
    assert not cache.keeps(large)
    assert not cache.admits(key(large))
    assert not cache.admits(key(large))
    cache.put(key(large), page("large"))
    assert len(cache) == 0
    assert cache.get(key(large)) is None


@pytest.mark.parametrize(
    "arguments",
    [{"max_pages": 0}, {"max_page_bytes": -1}, {"max_age": 0}],
    ids=["no-pages", "negative-size", "no-age"],
)
def test_nonsense_bounds_are_refused(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="max_pages"):
        PageCache(**arguments)  # type: ignore[arg-type]


def test_the_same_markup_gives_back_the_same_body_and_other_markup_its_own() -> None:
    kept = RewrittenPage(b"<html><body><p>Bonjour</p>", b"</body></html>")
    first = kept.with_markup(b"<aside>token-1</aside>")
    assert kept.with_markup(b"<aside>token-1</aside>") is first
    assert kept.with_markup(b"<aside>token-2</aside>") == (
        b"<html><body><p>Bonjour</p><aside>token-2</aside></body></html>"
    )
    assert kept.with_markup(b"<aside>token-1</aside>") == first
    assert kept == RewrittenPage(b"<html><body><p>Bonjour</p>", b"</body></html>")


HEADERS = ((b"content-type", b"text/html"), (b"content-length", b"9"))


def test_an_answer_kept_comes_back_for_the_same_key_and_body() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(clock=clock)
    original = b"<p>page</p>"
    cache.keep_answer(("k",), original, HEADERS, b"answered", 1300.0)
    found = cache.answer(("k",), bytes(bytearray(original)))
    assert found == (list(HEADERS), b"answered")
    assert cache.answers() == 1
    assert cache.answer(("other",), original) is None


def test_an_answer_is_never_given_for_another_body_under_the_same_key() -> None:
    cache = PageCache(clock=FakeClock(1000.0))
    cache.keep_answer(("k",), b"<p>page-a</p>", HEADERS, b"answer a", 1300.0)
    # Same length, same key: only the bytes tell them apart.
    assert cache.answer(("k",), b"<p>page-b</p>") is None
    assert cache.answer(("k",), b"<p>page-a</p>") == (list(HEADERS), b"answer a")


def test_the_headers_of_an_answer_are_a_new_list_each_time() -> None:
    cache = PageCache(clock=FakeClock(1000.0))
    cache.keep_answer(("k",), b"<p>a</p>", HEADERS, b"answer", 1300.0)
    first = cache.answer(("k",), b"<p>a</p>")
    assert first is not None
    first[0].append((b"x-added", b"by another middleware"))
    assert cache.answer(("k",), b"<p>a</p>") == (list(HEADERS), b"answer")


def test_an_answer_goes_stale_with_its_page() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(max_age=300, clock=clock)
    cache.keep_answer(("k",), b"<p>a</p>", HEADERS, b"answer", 1300.0)
    clock.advance(299)
    assert cache.answer(("k",), b"<p>a</p>") is not None
    clock.advance(1)
    assert cache.answer(("k",), b"<p>a</p>") is None
    assert cache.answers() == 0
    assert cache.answer_bytes() == 0


def test_a_clock_going_back_does_not_keep_an_answer_forever() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(max_age=300, clock=clock)
    # Stored at 1000 (stale at 1300): a clock back before 1000 forgets it.
    cache.keep_answer(("k",), b"<p>a</p>", HEADERS, b"answer", 1300.0)
    clock.advance(-1)
    assert cache.answer(("k",), b"<p>a</p>") is None


def test_answers_are_bounded_in_number_and_in_bytes() -> None:
    cache = PageCache(max_answers=3, max_answer_bytes=100, clock=FakeClock(1000.0))
    for index in range(10):
        cache.keep_answer((index,), b"<p>a</p>", HEADERS, b"x" * 10, 1300.0)
        assert cache.answers() <= 3
        assert cache.answer_bytes() == 10 * cache.answers()
    # Kept again under the same key: counted once.
    cache.keep_answer((9,), b"<p>a</p>", HEADERS, b"x" * 20, 1300.0)
    assert cache.answer_bytes() == 10 * cache.answers() + 10
    assert cache.answer((9,), b"<p>a</p>") is not None
    cache.keep_answer(("big",), b"<p>a</p>", HEADERS, b"x" * 60, 1300.0)
    cache.keep_answer(("bigger",), b"<p>a</p>", HEADERS, b"x" * 60, 1300.0)
    # 120 bytes would not fit: the others were forgotten to make room.
    assert cache.answers() == 1
    assert cache.answer_bytes() == 60
    assert cache.answer(("big",), b"<p>a</p>") is None
    assert cache.answer(("bigger",), b"<p>a</p>") is not None
    cache.keep_answer(("huge",), b"<p>a</p>", HEADERS, b"x" * 101, 1300.0)
    assert cache.answer(("huge",), b"<p>a</p>") is None
    assert cache.answer(("bigger",), b"<p>a</p>") is not None


def test_no_answer_is_kept_when_answers_are_turned_off() -> None:
    cache = PageCache(max_answers=0, clock=FakeClock(1000.0))
    cache.keep_answer(("k",), b"<p>a</p>", HEADERS, b"answer", 1300.0)
    assert cache.answers() == 0
    assert cache.answer(("k",), b"<p>a</p>") is None


def test_a_key_that_cannot_be_hashed_is_refused_with_type_error() -> None:
    cache = PageCache()
    with pytest.raises(TypeError):
        cache.answer(([b"content-type", b"text/html"],), b"<p>a</p>")
    with pytest.raises(TypeError):
        cache.keep_answer(([b"a"],), b"<p>a</p>", HEADERS, b"answer", 1.0)


def test_lookup_gives_the_kept_body_and_when_the_page_goes_stale() -> None:
    clock = FakeClock(1000.0)
    cache = PageCache(max_age=300, clock=clock)
    original = b"<p>a</p>"
    cache.put(key(original), page("a"))
    found = cache.lookup(key(bytes(bytearray(original))))
    assert found is not None
    kept, found_page, stale_at = found
    assert kept is original
    assert found_page == page("a")
    assert stale_at == 1300.0


def test_answer_bounds_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_answers"):
        PageCache(max_answers=-1)
    with pytest.raises(ValueError, match="max_answer_bytes"):
        PageCache(max_answer_bytes=-1)
