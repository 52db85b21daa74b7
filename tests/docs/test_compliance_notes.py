"""Every test docs/cnil.md names as proof exists, so the compliance notes cannot rot."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "docs" / "cnil.md"
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def defined_tests(path: Path) -> set[str]:
    """Names of the module-level test functions of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_named_proof_is_a_real_test() -> None:
    references = _REFERENCE.findall(NOTES.read_text(encoding="utf-8"))
    assert len(references) >= 30
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / file).is_file() or name not in defined_tests(ROOT / file)
    ]
    assert not missing, f"docs/cnil.md names tests that do not exist: {missing}"
