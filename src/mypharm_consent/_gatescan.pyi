from collections.abc import Callable
from typing import Any

def landmarks(html: str, limit: int, /) -> list[int] | None: ...
def mentions(html: str, hosts: bool, /) -> tuple[list[int], set[str] | None]: ...
def occurrences(html: str, text: str, positions: list[int], /) -> None: ...
def occurrences_all(html: str, texts: list[str], positions: list[int], /) -> None: ...
def skip(html: str, position: int, end: int, triggers: list[int] | None = None, /) -> int: ...
def skim(
    html: str,
    limit: int,
    triggers: list[int],
    verdicts: dict[Any, Any],
    granted: frozenset[str],
    raw: bool,
    placeholder: Callable[[Any, Any], tuple[str, str]],
    wants_placeholder: Callable[[Any], bool],
    /,
) -> tuple[list[str], int, int | None, int | None, bool, bool, int, int] | None: ...
def digest(data: bytes, /) -> int: ...
def join_raw(pieces: list[str | bytes | memoryview], /) -> bytes: ...
def affixes(
    old: bytes, new: bytes, old_start: int = 0, new_start: int = 0, suffix: bool = True, /
) -> tuple[int, int]: ...
def verbatim_spans(
    html: str, floor: int, kinds: tuple[str, str, str, str, str, str], /
) -> list[tuple[int, int, str]] | None: ...
def splice_plan(
    old: bytes,
    new: bytes,
    max_change: int,
    max_changes: int,
    starts: list[int] | None,
    ends: list[int] | None,
    forbidden: list[bytes] | None,
    /,
) -> tuple[int, ...] | int: ...
def splice_join(
    gated: bytes, body: bytes, cuts: tuple[int, ...], at: int, markup: bytes | None, /
) -> bytes: ...
