"""Every Python block of the README and docs/ runs, and checks what its page says.

The blocks of one document run in order in one fresh interpreter, from an
empty directory (where the embedded ClickHouse store lands, under ``.data/``)
with warnings turned into errors, like a reader following the page. A block
marked ``<!-- test: NAME -->`` runs inside the harness ``NAME`` of
``tests/docs/harnesses.py``, which supplies what the fragment takes for
granted and checks the outcome; harnesses that need a process of their own
(Django's settings are set once per process) get one. The interpreters run
two at a time.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.docs.blocks import DOCUMENTS, ROOT, CodeBlock, python_blocks
from tests.docs.harnesses import HARNESSES

BLOCKS = [block for document in DOCUMENTS for block in python_blocks(document)]
_BOOT = "from tests.docs.run_session import main; main()"


def sessions() -> list[list[CodeBlock]]:
    """The blocks grouped by the interpreter they share."""
    grouped: dict[Path, list[CodeBlock]] = {}
    alone: list[list[CodeBlock]] = []
    for block in BLOCKS:
        if HARNESSES[block.harness or "continuation"].own_process:
            alone.append([block])
        else:
            grouped.setdefault(block.document, []).append(block)
    return [*alone, *grouped.values()]


def run_session(blocks: list[CodeBlock], workdir: Path) -> dict[str, str | None]:
    """Run ``blocks`` in a fresh interpreter under ``workdir``; each block's outcome."""
    workdir.mkdir(parents=True)
    result = workdir / "outcomes.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    lines = [str(block.line) for block in blocks]
    command = [sys.executable, "-W", "error", "-c", _BOOT, str(result), str(blocks[0].document)]
    try:
        process = subprocess.run(
            [*command, *lines],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        ending = f"status {process.returncode}:\n{process.stderr}"
    except subprocess.TimeoutExpired as timeout:
        ending = f"no answer within {timeout.timeout} s:\n{timeout.stderr!r}"
    outcomes: dict[str, str | None] = (
        json.loads(result.read_text(encoding="utf-8")) if result.exists() else {}
    )
    for block in blocks:
        if str(block.line) not in outcomes:
            outcomes[str(block.line)] = f"the interpreter stopped before this block ran, {ending}"
    return {f"{blocks[0].document}:{line}": error for line, error in outcomes.items()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Every block's outcome: ``None`` when it ran and its checks held, else the traceback."""
    base = tmp_path_factory.mktemp("doc-sessions")
    found: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(run_session, blocks, base / f"session-{index}")
            for index, blocks in enumerate(sessions())
        ]
        for run in runs:
            found.update(run.result())
    return found


def test_the_docs_hold_python_blocks_in_every_guide() -> None:
    assert len(BLOCKS) >= 28
    with_blocks = {block.document.name for block in BLOCKS}
    assert {"README.md", "getting-started.md", "integrations.md", "email.md"} <= with_blocks


def test_a_test_mark_names_a_harness_and_precedes_a_python_block() -> None:
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        marked = [block for block in python_blocks(document) if block.harness]
        assert text.count("<!-- test: ") == len(marked), (
            f"{document.name}: a <!-- test: --> mark is not right above a python block"
        )
        unknown = [block.name for block in marked if block.harness not in HARNESSES]
        assert not unknown, f"unknown harness for {unknown}"


SELF_CHECKED = [b for b in BLOCKS if b.harness in (None, "continuation", "own-process")]


@pytest.mark.parametrize("block", SELF_CHECKED, ids=[block.name for block in SELF_CHECKED])
def test_a_block_without_a_checking_harness_asserts_what_it_shows(block: CodeBlock) -> None:
    tree = ast.parse(block.code, block.name)
    assert any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
        f"{block.name}: a block without a harness must assert what the page says it does"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_the_block_runs(block: CodeBlock, outcomes: dict[str, str | None]) -> None:
    error = outcomes[f"{block.document}:{block.line}"]
    assert error is None, f"{block.name} failed:\n{error}"
