"""Pages served again are answered whole from memory, and exactly as if rewritten afresh."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mypharm_consent import ConsentState
from mypharm_consent.csrf import TOKEN_REUSE_SECONDS
from mypharm_consent.engine import ConsentEngine
from mypharm_consent.pagecache import PageCache

from .conftest import FakeClock
from .gating_pages import gating_config

CONFIG = gating_config()
VIDEO = (
    "<!doctype html><html lang='fr'><head><title>Conseils</title></head><body>"
    "<h1>Bien prendre son traitement é</h1>"
    '<iframe src="https://www.youtube.com/embed/abc" width="560" height="315"></iframe>'
    "</body></html>"
).encode()
#: The same length as VIDEO, one byte apart: only a full comparison tells them apart.
VIDEO_TWIN = VIDEO.replace(b"abc", b"abd")
PLAIN = "<html><body><p>Pharmacie du Marché</p></body></html>".encode()
FRAGMENT = b"<p>Un fragment</p>"
STATES = [
    ConsentState.undecided(),
    ConsentState.undecided(gpc=True),
    ConsentState(decided=True, granted=frozenset({"necessary", "analytics"})),
    ConsentState(decided=True, granted=frozenset({"necessary", "analytics", "marketing"})),
]
HEADERS = [
    [(b"content-type", b"text/html; charset=utf-8")],
    [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"123")],
    [(b"Content-Type", b"text/html"), (b"Vary", b"Accept-Encoding"), (b"etag", b'"v1"')],
    [(b"content-type", b"text/html; charset=utf-8"), (b"set-cookie", b"session=1; Path=/")],
]
COOKIES = [None, "", "session=1", "stats_id=1; session=2", "ap_x=1; _ga=GA1.2.3; stats_a=1"]


def _engines() -> tuple[ConsentEngine, ConsentEngine, FakeClock]:
    """An engine, and one sharing its form tokens that never answers from memory."""
    clock = FakeClock()
    engine = ConsentEngine(CONFIG, clock=clock)
    engine.pages = PageCache(clock=clock)
    reference = ConsentEngine(CONFIG, clock=clock)
    reference.csrf = engine.csrf
    reference.pages = PageCache(max_answers=0, clock=clock)
    return engine, reference, clock


def _rewrite(engine: ConsentEngine, request: dict[str, Any]) -> Any:
    return engine.rewrite_page(
        request["state"],
        list(request["headers"]),
        bytes(bytearray(request["body"])),  # a new object, as every response body is
        target=request["target"],
        accept_language=request["language"],
        cookie_header=request["cookie"],
        host=request["host"],
    )


REQUESTS = st.fixed_dictionaries(
    {
        "body": st.sampled_from([VIDEO, VIDEO_TWIN, PLAIN, FRAGMENT]),
        "state": st.sampled_from(STATES),
        "headers": st.sampled_from(HEADERS),
        "target": st.sampled_from(["/page", "/page?x=1", "/autre"]),
        "language": st.sampled_from([None, "fr", "en-GB,en;q=0.9", "de"]),
        "cookie": st.sampled_from(COOKIES),
        "host": st.sampled_from([None, "www.example.fr", "example.fr"]),
        "wait": st.sampled_from([0, 0, 0, 20, TOKEN_REUSE_SECONDS, 301]),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(REQUESTS, min_size=1, max_size=30))
def test_an_answer_from_memory_is_the_answer_rewritten_afresh(
    requests: list[dict[str, Any]],
) -> None:
    engine, reference, clock = _engines()
    for request in requests:
        clock.advance(request["wait"])
        # Asked three times: the third is answered from memory when the page is kept.
        for _ in range(3):
            assert _rewrite(engine, request) == _rewrite(reference, request)
    assert reference.pages.answers() == 0


def _video_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "body": VIDEO,
        "state": STATES[0],
        "headers": HEADERS[1],
        "target": "/page",
        "language": "fr",
        "cookie": None,
        "host": "www.example.fr",
    }
    request.update(changes)
    return request


def test_a_page_asked_for_again_is_answered_from_memory() -> None:
    engine, _, _ = _engines()
    request = _video_request()
    first = _rewrite(engine, request)
    assert engine.pages.answers() == 0
    second = _rewrite(engine, request)  # kept as a page: gated once more, then remembered
    third = _rewrite(engine, request)
    assert engine.pages.answers() == 1
    assert first == second == third
    assert third[1] is _rewrite(engine, request)[1]
    # The headers are a new list every time: a middleware further out may change them.
    third[0].append((b"x-added", b"1"))
    assert (b"x-added", b"1") not in _rewrite(engine, request)[0]


def test_what_the_answer_depends_on_gives_another_answer() -> None:
    engine, reference, _ = _engines()
    changes: list[dict[str, Any]] = [
        {},
        {"body": VIDEO_TWIN},
        {"target": "/autre"},
        {"language": "en"},
        {"state": STATES[1]},
        {"state": STATES[3]},
        {"cookie": "stats_id=1"},
        {"headers": HEADERS[2]},
    ]
    bodies = set()
    for change in changes:
        request = _video_request(**change)
        for _ in range(3):
            answer = _rewrite(engine, request)
            assert answer == _rewrite(reference, request)
        bodies.add((tuple(answer[0]), answer[1]))
    assert len(bodies) == len(changes)
    # The twin page is kept under the same key as the first (the body is not part of
    # it, only compared): it took the first one's place.
    assert engine.pages.answers() == len(changes) - 1
    assert _rewrite(engine, _video_request()) == _rewrite(reference, _video_request())


def test_a_new_form_token_and_a_stale_page_are_not_answered_from_memory() -> None:
    engine, _, clock = _engines()
    request = _video_request()
    for _ in range(3):
        before = _rewrite(engine, request)
    clock.advance(TOKEN_REUSE_SECONDS)
    after = _rewrite(engine, request)
    assert after != before
    assert engine.csrf.token() in after[1].decode()
    clock.advance(engine.pages.max_age)
    # The page itself is stale: rewritten afresh (kept again the second time).
    assert _rewrite(engine, request)[1] is not _rewrite(engine, request)[1]


def test_header_pairs_given_as_lists_are_rewritten_and_not_remembered() -> None:
    engine, reference, _ = _engines()
    request = _video_request(headers=[[b"content-type", b"text/html; charset=utf-8"]])
    for _ in range(3):
        assert _rewrite(engine, request) == _rewrite(reference, request)
    assert engine.pages.answers() == 0
    assert len(engine.pages) == 1


def test_answers_shared_between_threads_stay_right() -> None:
    engine, reference, clock = _engines()
    # Few answers kept: threads keep forgetting them while others read them.
    engine.pages = PageCache(max_answers=3, clock=clock)
    variants = [
        _video_request(**change)
        for change in (
            {},
            {"target": "/autre"},
            {"language": "en"},
            {"state": STATES[3]},
            {"body": PLAIN},
            {"cookie": "stats_id=1"},
        )
    ]
    expected = [_rewrite(reference, request) for request in variants]
    failures: list[int] = []

    def work(seed: int) -> None:
        for step in range(300):
            index = (seed * 7 + step * 5) % len(variants)
            if _rewrite(engine, variants[index]) != expected[index]:
                failures.append(index)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert engine.pages.answers() <= 3
    kept = [_rewrite(engine, request) for request in variants]
    assert kept == expected
    assert 0 < engine.pages.answer_bytes() <= sum(len(body) for _, body in expected)
