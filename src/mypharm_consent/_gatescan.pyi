from collections.abc import Callable
from typing import Any

def landmarks(html: str, limit: int, /) -> list[int] | None: ...
def mentions(html: str, hosts: bool, /) -> tuple[list[int], set[str] | None]: ...
def occurrences(html: str, text: str, positions: list[int], /) -> None: ...
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
