"""The fenced code blocks of the README and docs/, as the doc tests read them.

A Python block runs in the tests. By default it continues the program of the
blocks above it in the same document (one interpreter per document, one
shared namespace, read top to bottom like the page) and carries its own
``assert`` statements. A block that is a fragment of a bigger program (a
view's body, a ``wsgi.py``, a call that needs a site around it) is preceded
by a line ``<!-- test: NAME -->`` naming the harness of
``tests/docs/harnesses.py`` that supplies the rest and checks the outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DOCUMENTS", "ROOT", "CodeBlock", "code_blocks", "python_blocks"]

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
_MARK = re.compile(r"^<!-- test: (?P<harness>[a-z][a-z0-9-]*) -->$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a document."""

    document: Path
    #: The line of the opening fence (1-based); the code starts on the next one.
    line: int
    lang: str
    code: str
    #: The harness named by a ``<!-- test: NAME -->`` line right above, if any.
    harness: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(document: Path) -> list[CodeBlock]:
    """Every fenced block of ``document``, in order."""
    text = document.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        mark = _MARK.match(before)
        blocks.append(
            CodeBlock(
                document=document,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                code=match.group("code"),
                harness=mark.group("harness") if mark else None,
            )
        )
    return blocks


def python_blocks(document: Path) -> list[CodeBlock]:
    """The ```python blocks of ``document``."""
    return [block for block in code_blocks(document) if block.lang == "python"]
