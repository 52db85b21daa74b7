"""Pages that differ from one rewritten before only in a little text, rewritten by splicing.

Many pages change on every request in a few bytes only: a counter, the
visitor's name, a form token in a hidden input, the time. Such a page is
never the same twice, so :class:`~mypharm_consent.pagecache.PageCache` never
holds it, and gating it afresh reads all of it. A :class:`SpliceStore` keeps,
for each address and choice, the last page gated in full there (its *base*)
and the page gating made of it. A new page is compared with the base from
both ends (a ``memcmp``); when what differs lies inside one part of the page
that gating copies as it is, whatever it holds (text between tags, a
comment's content, a script's or a title's body, a quoted attribute value of
a tag gating has no business with: see
:func:`~mypharm_consent.gating.verbatim_spans`), and neither the old nor the
new characters there could change how the page is read, the new page's
gated bytes are the base's with that part changed, found without reading
the page.

Where that part lies in the gated page (gating inserts before it) is found
once per part, by gating the base with every character of the part changed
and comparing: the answer comes from gating itself, and a part where the two
pages would differ anywhere else is never spliced.

Anything else (no base yet, a change that spans a tag, a ``<`` in the new
text, a change in a script's attributes such as a nonce) is gated in full,
as before, and the page becomes the base when the old one was too different
to help. Bases are bounded in number and bytes, and forgotten after
``max_age`` seconds, as pages are (their placeholders carry a form token).
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Final, TypeVar, cast

from mypharm_consent import gating

__all__ = ["SpliceStore", "Spliced", "with_markup"]


_UNKNOWN: Final = -1
_NOT_VERBATIM: Final = -2
#: Every byte but ``x`` becomes ``x``, ``x`` becomes ``y``: a change of every character.
_CHANGE_ALL = bytes(0x79 if byte == 0x78 else 0x78 for byte in range(256))


def _affixes_py(
    old: bytes, new: bytes, old_start: int = 0, new_start: int = 0, suffix: bool = True
) -> tuple[int, int]:
    """``(prefix, suffix)`` shared by ``old[old_start:]`` and ``new[new_start:]``; the definition.

    The longest common start, then the longest common end of what the start
    left (``prefix + suffix`` is at most the shorter length; ``0`` without
    ``suffix``).
    ``mypharm_consent._gatescan.affixes`` gives the same answer.
    """
    if not (0 <= old_start <= len(old) and 0 <= new_start <= len(new)):
        raise ValueError("affixes() start out of range")
    old, new = old[old_start:], new[new_start:]
    shorter = min(len(old), len(new))
    low, high = 0, shorter
    while low < high:
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    prefix = low
    low, high = 0, shorter - prefix if suffix else 0
    while low < high:
        middle = (low + high + 1) // 2
        if old[len(old) - middle :] == new[len(new) - middle :]:
            low = middle
        else:
            high = middle - 1
    return prefix, low


_Definition = TypeVar("_Definition", bound=Callable[..., object])


def _compiled(name: str, definition: _Definition) -> _Definition:
    """``mypharm_consent._gatescan``'s ``name`` when built and allowed, else ``definition``.

    ``MYPHARM_CONSENT_SPEEDUPS=0`` keeps splicing on its Python definitions.
    """
    if os.environ.get("MYPHARM_CONSENT_SPEEDUPS", "1") == "0":
        return definition
    try:
        from mypharm_consent import _gatescan
    except ImportError:
        return definition
    return cast(_Definition, getattr(_gatescan, name))


_affixes = _compiled("affixes", _affixes_py)


#: What :func:`_plan_py` answers for a page that is not alike to its base, and for
#: one alike whose changes may not be spliced.
_PLAN_UNLIKE: Final = 0
_PLAN_UNSAFE: Final = 1


def _changes(
    old: bytes, new: bytes, limit: int, rounds: int
) -> Iterator[tuple[int, int, int, int] | None]:
    """Where ``new`` differs from ``old``, in order, then ``None`` if they are not alike.

    Each change is ``(old start, old end, new start, new end)``: ``new`` is
    ``old`` with each old range replaced by the new one. A change is taken to
    end before the next ``<`` of ``old`` when the tag there (its first 16
    bytes at most) is found again in ``new`` close enough; what the two then
    share at its end is left out of it. The pages are not alike when they
    differ in more than ``rounds`` places, or by more than ``limit`` bytes in
    one.
    """
    prefix, suffix = _affixes_py(old, new)
    if prefix == len(old) == len(new):
        return
    shared = suffix
    i = j = prefix
    for _ in range(rounds):
        old_end, new_end = len(old) - suffix, len(new) - suffix
        tag = old.find(b"<", i + 1, min(old_end, i + limit + 1))
        if tag == -1:
            if old_end - i > limit or new_end - j > limit:
                break
            yield i, old_end, j, new_end
            return
        closed = old.find(b">", tag, tag + 16)
        anchor = old[tag : tag + 16 if closed == -1 else closed + 1]
        found = new.find(anchor, j, j + limit + len(anchor))
        if found == -1:
            break
        _, tail = _affixes_py(old[i:tag], new[j:found])
        yield i, tag - tail, j, found - tail
        step, _ = _affixes_py(old, new, tag, found, False)
        i, j = tag + step, found + step
        # What the two share at their ends, within what is left of each.
        suffix = min(shared, len(old) - i, len(new) - j)
        if i == len(old) and j == len(new):
            return
    yield None


def _span_of(
    old: bytes,
    new: bytes,
    spans: tuple[list[int], list[int], list[bytes]],
    change: tuple[int, int, int, int],
) -> int | None:
    """The verbatim span a change lies in, if changing it keeps the page read the same.

    That is: no character of the span's forbidden ones in the old or the new
    text, with the character on each side that is still in the span.
    """
    starts, ends, forbidden = spans
    old_start, old_end, new_start, new_end = change
    index = bisect_right(starts, old_start) - 1
    if index < 0 or ends[index] < old_end:
        return None
    start, end, chars = starts[index], ends[index], forbidden[index]
    low = max(old_start - 1, start)
    before = old[low : min(old_end + 1, end)]
    after = new[new_start - (old_start - low) : new_end + min(1, end - old_end)]
    if before.translate(None, chars) != before or after.translate(None, chars) != after:
        return None
    return index


def _plan_py(
    old: bytes,
    new: bytes,
    limit: int,
    rounds: int,
    starts: list[int] | None,
    ends: list[int] | None,
    forbidden: list[bytes] | None,
) -> tuple[int, ...] | int:
    """How ``new`` is spliced from its base ``old``; the definition.

    A flat tuple of ``(old start, old end, new start, new end, span)`` per
    change (see :func:`_changes`), empty when the two are the same;
    :data:`_PLAN_UNLIKE` when they are not alike; :data:`_PLAN_UNSAFE` when a
    change, in order, does not lie in one of the verbatim spans ``starts``,
    ``ends`` and ``forbidden`` or could change how the page is read (see
    :func:`_span_of`). Without spans (``None``) no change is checked and each
    span is ``-1``. ``mypharm_consent._gatescan.splice_plan`` gives the same answer.
    """
    if starts is None or ends is None or forbidden is None:
        if (starts, ends, forbidden) != (None, None, None):
            raise TypeError("splice_plan() spans are three lists of the same length, or None")
        spans = None
    elif not len(starts) == len(ends) == len(forbidden):
        raise TypeError("splice_plan() spans are three lists of the same length, or None")
    else:
        spans = (starts, ends, forbidden)
    if limit < 0 or rounds < 1:
        raise ValueError("splice_plan() limits out of range")
    plan: list[int] = []
    for change in _changes(old, new, limit, rounds):
        if change is None:
            return _PLAN_UNLIKE
        index = -1
        if spans is not None:
            found = _span_of(old, new, spans, change)
            if found is None:
                return _PLAN_UNSAFE
            index = found
        plan += [*change, index]
    return tuple(plan)


_plan = _compiled("splice_plan", _plan_py)


def with_markup(
    pieces: list[bytes | memoryview], at: int, markup: bytes
) -> list[bytes | memoryview]:
    """``pieces`` with ``markup`` inserted ``at`` bytes from their start (cut, never copied)."""
    placed: list[bytes | memoryview] = []
    offset = 0
    for index, piece in enumerate(pieces):
        size = len(piece)
        if offset <= at <= offset + size:
            view = memoryview(piece)
            placed += [view[: at - offset], markup, view[at - offset :], *pieces[index + 1 :]]
            return placed
        placed.append(piece)
        offset += size
    raise ValueError(f"position {at} is past the pieces' {offset} bytes")


def _splice_join_py(
    gated: bytes, body: bytes, cuts: tuple[int, ...], at: int, markup: bytes | None
) -> bytes:
    """``gated`` with each ``(start, end, new start, new end)`` of ``cuts`` replaced by
    ``body[new start:new end]``, and ``markup`` put in ``at`` bytes from the result's
    start; the definition. ``mypharm_consent._gatescan.splice_join`` gives the same."""
    if len(cuts) % 4:
        raise ValueError("splice_join() cuts come four by four")
    pieces: list[bytes | memoryview] = []
    copied = 0
    for first in range(0, len(cuts), 4):
        start, end, new_start, new_end = cuts[first : first + 4]
        if not (copied <= start <= end <= len(gated) and 0 <= new_start <= new_end <= len(body)):
            raise ValueError("splice_join() cuts out of order or range")
        pieces += [gated[copied:start], body[new_start:new_end]]
        copied = end
    pieces.append(gated[copied:])
    if markup is not None:
        size = sum(len(piece) for piece in pieces)
        if not 0 <= at <= size:
            raise ValueError(f"position {at} is past the page's {size} bytes")
        pieces = with_markup(pieces, at, markup)
    return b"".join(pieces)


_splice_join = _compiled("splice_join", _splice_join_py)


class Spliced:
    """A page gated by splicing: its base's gated page with a few ranges replaced.

    ``at`` is where the banner goes in the page (``None``: a fragment, which
    gets none); :meth:`join` writes the page out, with a banner or without.
    """

    __slots__ = ("at", "body", "cuts", "gated")

    def __init__(self, gated: bytes, body: bytes, cuts: tuple[int, ...], at: int | None) -> None:
        self.gated = gated
        self.body = body
        #: ``(start, end, new start, new end)`` per change, flat: ``gated[start:end]``
        #: is replaced by ``body[new start:new end]``.
        self.cuts = cuts
        self.at = at

    @property
    def same(self) -> bool:
        """Whether the page is its base's very gated page (the page did not change)."""
        return not self.cuts

    def join(self, markup: bytes | None = None) -> bytes:
        """The gated page, with ``markup`` put in at :attr:`at` (when both are given)."""
        if markup is None or self.at is None:
            if not self.cuts:
                return self.gated
            return _splice_join(self.gated, self.body, self.cuts, 0, None)
        return _splice_join(self.gated, self.body, self.cuts, self.at, markup)


class _Base:
    """A page gated in full, and what splicing from it needs (worked out when first asked)."""

    __slots__ = (
        "body",
        "ends",
        "forbidden",
        "gated",
        "lock",
        "markup_at",
        "pieces",
        "rest",
        "shifts",
        "starts",
        "stored_at",
    )

    def __init__(self, body: bytes, pieces: list[str] | None, rest: int, stored_at: float) -> None:
        self.body = body
        self.pieces = pieces
        self.rest = rest
        self.stored_at = stored_at
        self.gated: bytes | None = None
        self.markup_at: int | None = None
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.forbidden: list[bytes] = []
        #: Per span index: how far gating moved it (``_UNKNOWN``, ``_NOT_VERBATIM``).
        self.shifts: list[int] = []
        self.lock = threading.Lock()

    def prepare(self, markup_position: Callable[[bytes], int | None]) -> bytes:
        """The gated page, its banner position and verbatim spans (once)."""
        with self.lock:
            if self.gated is None:
                body = self.body
                if self.pieces is None:
                    gated = body
                else:
                    gated = gating.join_raw([*self.pieces, memoryview(body)[self.rest :]])
                self.pieces = None
                spans = gating.verbatim_spans(body.decode("latin-1"), raw=True)
                self.starts = [start for start, _, _ in spans]
                self.ends = [end for _, end, _ in spans]
                self.forbidden = [forbidden.encode("latin-1") for _, _, forbidden in spans]
                self.shifts = [_UNKNOWN] * len(spans)
                self.markup_at = markup_position(gated)
                self.gated = gated
            return self.gated

    def shift(self, index: int, regate: Callable[[bytes], bytes]) -> int:
        """Where span ``index`` is in the gated page, less where it is in the page.

        Gating only inserts; how much it inserted before the span is told by
        gating the page with every character of the span changed and looking
        where the two gated pages differ: exactly there, or the span is not
        copied as it is (``_NOT_VERBATIM``).
        """
        known = self.shifts[index]
        if known != _UNKNOWN:
            return known
        assert self.gated is not None
        start, end = self.starts[index], self.ends[index]
        body, gated = self.body, self.gated
        changed = body[start:end].translate(_CHANGE_ALL)
        probed = regate(body[:start] + changed + body[end:])
        shift = _NOT_VERBATIM
        if len(probed) == len(gated):
            prefix, suffix = _affixes(gated, probed)
            size = end - start
            if (
                len(gated) - prefix - suffix == size
                and probed[prefix : prefix + size] == changed
                and gated[prefix : prefix + size] == body[start:end]
            ):
                shift = prefix - start
        self.shifts[index] = shift
        return shift


class _Entry:
    """The bases kept under one key, the latest first."""

    __slots__ = ("alike", "bases", "changing", "unsafe")

    def __init__(self) -> None:
        self.bases: list[_Base] = []
        #: Whether the last page asked for was spliced from a base it differs from.
        self.changing = False
        #: Whether the last page compared was alike to one of them (then none is added).
        self.alike = False
        #: Pages alike to a base but not spliced, in a row (see SpliceStore.splice).
        self.unsafe = 0


#: After this many pages in a row alike to a base but not spliced, only one
#: page in this many is compared with the bases of its key.
_UNSAFE_IN_A_ROW: Final = 8

#: What :meth:`SpliceStore._splice_from` answers when it cannot splice.
_UNLIKE: Final = "unlike"
_UNSAFE: Final = "unsafe"


class SpliceStore:
    """The last pages gated in full per key (address and choice), to splice the next ones from.

    ``max_per_key`` bases per key (a page may come in several versions, an
    A/B test's), ``max_bases`` in all, ``max_bytes`` of pages in all (a page
    and its gated page count), none larger than ``max_page_bytes``, each kept
    ``max_age`` seconds; a page is spliced from at most ``max_changes``
    changes of at most ``max_change`` bytes each. ``markup_position`` tells
    where the banner goes in a gated page (``None``: nowhere). Safe to share
    between threads.
    """

    def __init__(
        self,
        markup_position: Callable[[bytes], int | None],
        *,
        max_bases: int = 64,
        max_per_key: int = 4,
        max_bytes: int = 8 * 1024 * 1024,
        max_page_bytes: int = 256 * 1024,
        max_age: float = 300.0,
        max_change: int = 4096,
        max_changes: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bases < 1 or max_per_key < 1 or max_changes < 1:
            raise ValueError("max_bases, max_per_key and max_changes must be at least 1")
        if max_bytes < 0 or max_page_bytes < 0 or max_change < 0:
            raise ValueError("the sizes must not be negative")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self.markup_position = markup_position
        self.max_bases = max_bases
        self.max_per_key = max_per_key
        self.max_bytes = max_bytes
        self.max_page_bytes = max_page_bytes
        self.max_age = max_age
        self.max_change = max_change
        self.max_changes = max_changes
        self._clock = clock
        self._keys: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._count = 0
        self._bytes = 0
        self._lock = threading.Lock()
        #: Pages answered by splicing, and pages compared with a base but gated in full.
        self.spliced = 0
        self.missed = 0

    def __len__(self) -> int:
        """How many bases are kept (expired ones included until their key is asked for)."""
        return self._count

    def bases(self, key: Hashable) -> list[bytes]:
        """The pages kept under ``key``, the latest first."""
        entry = self._keys.get(key)
        return [] if entry is None else [base.body for base in entry.bases]

    def changing(self, key: Hashable) -> bool:
        """Whether the last page asked for under ``key`` was spliced from a base it differs
        from: pages there are then likely to differ on every request."""
        entry = self._keys.get(key)
        return entry is not None and entry.changing

    def _fresh(self, key: Hashable) -> tuple[_Entry | None, list[_Base]]:
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return None, []
            now, max_age = self._clock(), self.max_age
            for base in entry.bases:
                if not 0 <= now - base.stored_at < max_age:
                    for expired in [b for b in entry.bases if not 0 <= now - b.stored_at < max_age]:
                        self._drop(entry, expired)
                    break
            if not entry.bases:
                del self._keys[key]
                return None, []
            self._keys.move_to_end(key)
            return entry, list(entry.bases)

    def _drop(self, entry: _Entry, base: _Base) -> None:
        entry.bases.remove(base)
        self._count -= 1
        self._bytes -= 2 * len(base.body)

    def splice(
        self, key: Hashable, body: bytes, regate: Callable[[bytes], bytes]
    ) -> Spliced | None:
        """``body`` gated, spliced from a base kept under ``key``; ``None`` if it cannot be.

        ``regate`` gates a page as the bases were gated (same choice, language
        and configuration): it is called once per verbatim span of a base,
        the first time a change falls in it.
        """
        entry, bases = self._fresh(key)
        if entry is None:
            return None
        if entry.unsafe >= _UNSAFE_IN_A_ROW:
            # Pages here change where splicing cannot follow (until their bases
            # expire): only one in _UNSAFE_IN_A_ROW is still tried.
            entry.unsafe += 1
            if entry.unsafe % _UNSAFE_IN_A_ROW:
                self.missed += 1
                return None
        alike = False
        for base in bases:
            answer = self._splice_from(base, body, regate)
            if answer == _UNLIKE:
                continue
            alike = True
            if answer == _UNSAFE:
                entry.unsafe = max(entry.unsafe + 1, 1)
                break
            assert not isinstance(answer, str)
            entry.alike = True
            entry.unsafe = 0
            entry.changing = not answer.same
            if entry.bases and entry.bases[0] is not base:
                with self._lock:
                    if base in entry.bases:
                        entry.bases.remove(base)
                        entry.bases.insert(0, base)
            self.spliced += 1
            return answer
        entry.alike = alike
        entry.changing = False
        self.missed += 1
        return None

    def _splice_from(
        self, base: _Base, body: bytes, regate: Callable[[bytes], bytes]
    ) -> Spliced | str:
        """``body`` spliced from ``base``, or why not (:data:`_UNLIKE`, :data:`_UNSAFE`)."""
        old = base.body
        if len(body) > self.max_page_bytes or abs(len(body) - len(old)) > self.max_change:
            return _UNLIKE
        limits = (self.max_change, self.max_changes)
        if base.gated is None:
            # Read the base (once) only when a page alike is found.
            if _plan(old, body, *limits, None, None, None) == _PLAN_UNLIKE:
                return _UNLIKE
            base.prepare(self.markup_position)
        plan = _plan(old, body, *limits, base.starts, base.ends, base.forbidden)
        if not isinstance(plan, tuple):
            return _UNLIKE if plan == _PLAN_UNLIKE else _UNSAFE
        gated = base.gated
        assert gated is not None
        at = base.markup_at
        if not plan:
            return Spliced(gated, body, (), at)
        cuts: list[int] = []
        moved = 0
        for first in range(0, len(plan), 5):
            old_start, old_end, new_start, new_end, index = plan[first : first + 5]
            shift = base.shifts[index]
            if shift == _UNKNOWN:
                shift = base.shift(index, regate)
            if shift == _NOT_VERBATIM:
                return _UNSAFE
            cuts += [old_start + shift, old_end + shift, new_start, new_end]
            if at is not None and at >= old_end + shift:
                moved += (new_end - new_start) - (old_end - old_start)
        return Spliced(gated, body, tuple(cuts), None if at is None else at + moved)

    def offer(self, key: Hashable, body: bytes, pieces: list[str] | None, rest: int) -> None:
        """A page just gated in full (``gate_utf8_pieces``'s answer, ``None`` if unchanged).

        It is kept under ``key``, first, unless the last page compared there
        was alike to a base already kept (then this one was not spliced for
        what it holds, not for being another version). ``pieces`` must not
        change afterwards.
        """
        if len(body) > self.max_page_bytes or 2 * len(body) > self.max_bytes:
            return
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = _Entry()
            elif entry.alike and entry.bases:
                return
            entry.bases.insert(0, _Base(body, pieces, rest, self._clock()))
            self._count += 1
            self._bytes += 2 * len(body)
            self._keys.move_to_end(key)
            while len(entry.bases) > self.max_per_key:
                self._drop(entry, entry.bases[-1])
            while self._count > self.max_bases or self._bytes > self.max_bytes:
                oldest_key, oldest = next(iter(self._keys.items()))
                self._drop(oldest, oldest.bases[-1])
                if not oldest.bases:
                    del self._keys[oldest_key]
