"""Every Python block of the README and docs/ compiles; those marked ``<!-- run -->`` run.

A block preceded by a ``<!-- run -->`` line is a complete program: it runs in
its own interpreter (a fresh process, so that framework settings made by one
block cannot leak into the next), from an empty directory, with warnings
turned into errors. The other blocks are fragments (a view's body, a call
needing a running server) and must at least compile.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
_RUN_MARK = "<!-- run -->"


@dataclass(frozen=True)
class CodeBlock:
    """One fenced Python block of a document."""

    document: Path
    line: int
    code: str
    run: bool

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def python_blocks(document: Path) -> list[CodeBlock]:
    """The ```python blocks of ``document``, with the line each starts on."""
    text = document.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group("lang") != "python":
            continue
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(CodeBlock(document, line, match.group("code"), before == _RUN_MARK))
    return blocks


BLOCKS = [block for document in DOCUMENTS for block in python_blocks(document)]


def test_the_docs_hold_python_blocks_and_runnable_ones() -> None:
    assert len(BLOCKS) >= 20
    runnable = {block.document.name for block in BLOCKS if block.run}
    assert {"getting-started.md", "integrations.md"} <= runnable


def test_a_run_mark_always_precedes_a_python_block() -> None:
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        marks = text.count(_RUN_MARK)
        marked = sum(block.run for block in python_blocks(document))
        assert marks == marked, f"{document.name}: a {_RUN_MARK} mark is not above a python block"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_the_block_compiles(block: CodeBlock) -> None:
    compile(block.code, block.name, "exec")


RUNNABLE = [block for block in BLOCKS if block.run]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_the_runnable_block_runs(block: CodeBlock, tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", block.code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{block.name} failed:\n{result.stderr}"
