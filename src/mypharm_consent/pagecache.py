"""Pages already rewritten, kept so that the next visitor with the same choice costs a lookup.

Most HTML pages are the same, byte for byte, for every visitor who made the
same choice in the same language: gating them again, and decoding and
encoding 30 KB of text around the banner, would cost far more than the
page's own rendering. A :class:`PageCache` keeps the last few rewritten
pages as the encoded bytes before and after the point where the banner (or
the decided visitor's footer) goes, so that answering again is one
dictionary lookup and one concatenation; only the banner itself, which holds
the per-request form token and return path, is rendered per request.

Looking a page up must cost much less than rewriting it: hashing a whole
30 KB body costs as much as the rest of the lookup, so pages are filed under
a fingerprint (length, a sample of every 1021st byte, the last 64 bytes) and
the body is then compared in full (a ``memcmp``). Pages sharing a
fingerprint share its bucket, so two pages that differ only between samples
both stay cached.

A page is only kept the second time it is seen (:meth:`PageCache.admits`):
pages that differ on every request (a per-request nonce or form token) would
otherwise push out the pages that do repeat, and gain nothing themselves.

The cache is bounded three ways: a number of pages, a size above which a
page is never kept, and an age after which a page is rewritten afresh (a
gated page carries a signed form token of its own, valid for days, renewed
that way). It is safe to share between threads.

A page kept there is then answered whole: the same page, asked for at the
same address by visitors with the same choice, language, form token and
cookie names, gets the very same headers and body. The cache also keeps the
last such answers (:meth:`PageCache.answer`), under a key of everything the
answer depends on besides the body, so that a page served again costs one
lookup and one comparison of its body. Answers live no longer than the page
they were made from, and are bounded in number and in bytes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

__all__ = ["Answer", "PageCache", "PageKey", "RewrittenPage"]

logger = logging.getLogger("mypharm_consent")


def _load_digest() -> Callable[[bytes], int] | None:
    """XXH64 of a body from ``mypharm_consent._gatescan`` when built and allowed, else ``None``.

    Telling whether a page was seen before hashes it whole; ``hash()`` of
    30 KB costs about 9 µs, XXH64 about 4. Without the extension (or with
    ``MYPHARM_CONSENT_SPEEDUPS=0``) the key is hashed as it is: the same
    answers, a little slower.
    """
    if os.environ.get("MYPHARM_CONSENT_SPEEDUPS", "1") == "0":
        return None
    try:
        from mypharm_consent._gatescan import digest
    except ImportError:
        logger.debug("mypharm_consent._gatescan is not built: pages seen are told by hash()")
        return None
    return digest


_digest = _load_digest()

#: What a rewritten page depends on besides the configuration: the original
#: body (compared in full on a hit), its charset, whether the visitor decided,
#: the granted categories, Global Privacy Control, and the language.
PageKey = tuple[bytes, str, bool, frozenset[str], bool, str]


#: A rewritten page's headers and body, as the middleware sends them.
Answer = tuple[list[tuple[bytes, bytes]], bytes]


class RewrittenPage:
    """An HTML page after gating, split where the per-request markup goes.

    ``after`` is ``None`` for a page that gets no markup (a fragment):
    ``before`` is then the whole rewritten body. Equal when both parts are.
    """

    __slots__ = ("_joined", "after", "before")

    def __init__(self, before: bytes, after: bytes | None) -> None:
        self.before = before
        self.after = after
        #: The last markup asked for and the body it gave: the banner only
        #: changes with its form token (once a minute) and its return path,
        #: so most answers are the very same bytes.
        self._joined: tuple[bytes, bytes] | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RewrittenPage):
            return NotImplemented
        return (self.before, self.after) == (other.before, other.after)

    def __hash__(self) -> int:
        return hash((self.before, self.after))

    def __repr__(self) -> str:
        return f"RewrittenPage(before={self.before!r}, after={self.after!r})"

    def with_markup(self, markup: bytes) -> bytes:
        """The complete body with ``markup`` at its place (nothing for a fragment)."""
        if self.after is None:
            return self.before
        joined = self._joined
        if joined is not None and joined[0] == markup:
            return joined[1]
        body = b"".join((self.before, markup, self.after))
        # One tuple, swapped whole: a concurrent reader sees the old or the new pair.
        self._joined = (markup, body)
        return body


#: A page's fingerprint and the rest of its key: what a bucket is filed under.
_BucketKey = tuple[int, bytes, bytes, str, bool, frozenset[str], bool, str]
_SAMPLE_STEP = 1021
_TAIL_BYTES = 64


@dataclass(slots=True)
class _Entry:
    body: bytes
    stored_at: float
    page: RewrittenPage


#: A kept answer: the original body (the page's, shared), the headers and
#: body to send, and when (cache clock) it must no longer be given.
_KeptAnswer = tuple[bytes, tuple[tuple[bytes, bytes], ...], bytes, float]


class PageCache:
    """A bounded, expiring, thread-safe map from :data:`PageKey` to :class:`RewrittenPage`.

    ``max_pages`` pages at most are kept (the least recently used bucket
    loses its oldest page first), pages whose original body is larger than
    ``max_page_bytes`` are never kept (looking them up costs nothing), and a
    page is forgotten ``max_age`` seconds after it was stored. ``clock``
    (monotonic seconds) is for tests.
    """

    def __init__(
        self,
        *,
        max_pages: int = 32,
        max_page_bytes: int = 256 * 1024,
        max_age: float = 300.0,
        max_answers: int = 128,
        max_answer_bytes: int = 8 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_pages < 1 or max_page_bytes < 0 or max_age <= 0:
            raise ValueError("max_pages must be at least 1, max_page_bytes and max_age positive")
        if max_answers < 0 or max_answer_bytes < 0:
            raise ValueError("max_answers and max_answer_bytes must not be negative")
        self.max_pages = max_pages
        self.max_page_bytes = max_page_bytes
        self.max_age = max_age
        self.max_answers = max_answers
        self.max_answer_bytes = max_answer_bytes
        self._clock = clock
        self._buckets: OrderedDict[_BucketKey, list[_Entry]] = OrderedDict()
        self._count = 0
        #: Hashes of the keys of pages seen once, most recent last (a few
        #: times ``max_pages``). Only a miss pays for hashing a whole body.
        self._seen: OrderedDict[int, None] = OrderedDict()
        #: Whole answers to pages kept here (see :meth:`answer`), and their bytes.
        self._answers: dict[Hashable, _KeptAnswer] = {}
        self._answer_bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many pages are kept (expired ones included until looked up or pushed out)."""
        return self._count

    def keeps(self, body: bytes) -> bool:
        """Whether a page with this original body may be kept at all."""
        return len(body) <= self.max_page_bytes

    def admits(self, key: PageKey) -> bool:
        """Whether a page missing from the cache is worth storing now.

        ``True`` when a page with the same fingerprint was seen recently (the
        page repeats), ``False`` the first time, which is remembered.
        """
        if not self.keeps(key[0]):
            return False
        digest = hash(key) if _digest is None else hash((_digest(key[0]), key[1:]))
        with self._lock:
            if digest in self._seen:
                del self._seen[digest]
                return True
            self._seen[digest] = None
            while len(self._seen) > 4 * self.max_pages:
                self._seen.popitem(last=False)
            return False

    def get(self, key: PageKey) -> RewrittenPage | None:
        """The page stored under ``key`` if it is still fresh, else ``None``."""
        found = self.lookup(key)
        return None if found is None else found[1]

    def lookup(self, key: PageKey) -> tuple[bytes, RewrittenPage, float] | None:
        """The page stored under ``key`` if it is still fresh, else ``None``.

        With the page come the original body it was stored under (equal to
        ``key[0]``) and the time, on the cache's clock, from which it is stale.
        """
        body = key[0]
        if len(body) > self.max_page_bytes:
            return None
        bucket_key = _bucket_key(key)
        with self._lock:
            bucket = self._buckets.get(bucket_key)
            if bucket is None:
                return None
            for index, entry in enumerate(bucket):
                if entry.body == body:
                    if not 0 <= self._clock() - entry.stored_at < self.max_age:
                        self._drop(bucket_key, bucket, index)
                        return None
                    self._buckets.move_to_end(bucket_key)
                    return entry.body, entry.page, entry.stored_at + self.max_age
            return None

    def answer(self, key: Hashable, body: bytes) -> Answer | None:
        """The answer kept under ``key`` for the original ``body``, if still fresh.

        ``key`` holds everything the answer depends on but the body, which is
        compared in full. The headers come as a new list (the caller may
        change it). Raises :class:`TypeError` for a key that cannot be hashed.
        """
        kept = self._answers.get(key)
        if kept is None:
            return None
        original, headers, answer_body, stale_at = kept
        if original != body:
            return None
        now = self._clock()
        if not stale_at - self.max_age <= now < stale_at:
            with self._lock:
                if self._answers.get(key) is kept:
                    del self._answers[key]
                    self._answer_bytes -= len(answer_body)
            return None
        return list(headers), answer_body

    def keep_answer(
        self,
        key: Hashable,
        original: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        stale_at: float,
    ) -> None:
        """Keep the answer ``headers`` and ``body`` to ``original`` under ``key``.

        ``original`` and ``stale_at`` are those :meth:`lookup` gave with the
        page the answer was made from. When the answers kept would exceed
        :attr:`max_answers` or :attr:`max_answer_bytes`, all are forgotten
        first. Raises :class:`TypeError` for a key that cannot be hashed.
        """
        if self.max_answers == 0 or len(body) > self.max_answer_bytes:
            return
        kept = (original, tuple(headers), body, stale_at)
        with self._lock:
            previous = self._answers.pop(key, None)
            if previous is not None:
                self._answer_bytes -= len(previous[2])
            if (
                len(self._answers) >= self.max_answers
                or self._answer_bytes + len(body) > self.max_answer_bytes
            ):
                self._answers.clear()
                self._answer_bytes = 0
            self._answers[key] = kept
            self._answer_bytes += len(body)

    def answers(self) -> int:
        """How many whole answers are kept (stale ones included until asked for)."""
        return len(self._answers)

    def answer_bytes(self) -> int:
        """The bytes of the answers' bodies kept, counted against :attr:`max_answer_bytes`."""
        return self._answer_bytes

    def put(self, key: PageKey, page: RewrittenPage) -> None:
        """Keep ``page`` under ``key`` (ignored for a body over ``max_page_bytes``)."""
        body = key[0]
        if not self.keeps(body):
            return
        bucket_key = _bucket_key(key)
        entry = _Entry(body, self._clock(), page)
        with self._lock:
            bucket = self._buckets.setdefault(bucket_key, [])
            self._buckets.move_to_end(bucket_key)
            for index, stored in enumerate(bucket):
                if stored.body == body:
                    bucket[index] = entry
                    return
            bucket.append(entry)
            self._count += 1
            while self._count > self.max_pages:
                oldest_key, oldest = next(iter(self._buckets.items()))
                self._drop(oldest_key, oldest, 0)

    def _drop(self, bucket_key: _BucketKey, bucket: list[_Entry], index: int) -> None:
        del bucket[index]
        self._count -= 1
        if not bucket:
            del self._buckets[bucket_key]


def _bucket_key(key: PageKey) -> _BucketKey:
    body, codec, decided, granted, gpc, language = key
    return (
        len(body),
        body[::_SAMPLE_STEP],
        body[-_TAIL_BYTES:],
        codec,
        decided,
        granted,
        gpc,
        language,
    )
