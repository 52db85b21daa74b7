from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any

from starlette.types import Message, Send

DONE: Awaitable[None]

def rewrites(status: object, headers: object, /) -> bool | None: ...
def request_headers(
    definition: Callable[[Any], tuple[bytes | None, bytes | None, bytes | None]],
    headers: object,
    /,
) -> tuple[bytes | None, bytes | None, bytes | None]: ...

class Responder:
    engine: Any
    parts: tuple[str, str, bytes | None, bytes, Iterable[tuple[bytes, bytes]]]
    state: Any
    downstream: Send
    start: Message | None
    chunks: list[bytes]
    size: int
    passing: bool
    def __init__(self, engine: Any, parts: Any, state: Any, send: Send) -> None: ...
    def send(self, message: Message) -> Awaitable[None]: ...
    def __call__(self, message: Message, /) -> Awaitable[None]: ...

class PageAnswer:
    def __await__(self) -> Generator[Any, Any]: ...
    def send(self, value: Any, /) -> Any: ...
    def throw(self, *args: Any) -> Any: ...
    def close(self) -> None: ...

class Front:
    app: Any
    engine: Any
    _prefix: str
    _owned_prefix: str
    _excludes: bool

def fasten_call(cls: type[Front], /) -> None: ...
def configure(
    responder: type[Responder], subresources: frozenset[bytes], remembered_chars: int, /
) -> None: ...
