"""Relative links and images of the README and docs/ point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_relative_links_resolve(document: Path) -> None:
    targets = [
        target
        for target in _LINK.findall(document.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:")
    ]
    missing = [t for t in targets if not (document.parent / t).exists()]
    assert not missing, f"{document.name} links to missing files: {missing}"


def test_the_readme_shows_the_banner_and_the_dashboard() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for image in ("docs/img/banner.png", "docs/img/dashboard.png"):
        assert f"]({image})" in readme
        assert (ROOT / image).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert (ROOT / image).stat().st_size < 200_000


def test_the_readme_links_to_every_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guides = sorted((ROOT / "docs").glob("*.md"))
    assert len(guides) >= 15
    unlinked = [g.name for g in guides if f"](docs/{g.name})" not in readme]
    assert not unlinked, f"README.md does not link to {unlinked}"
