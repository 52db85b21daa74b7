"""The public names of the receipt packages are exactly those the guide documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import beacon.receipts
import beacon.receipts.stats
import mypharm_consent.history
import mypharm_consent.receipts

GUIDE = (Path(__file__).resolve().parents[3] / "docs" / "receipts.md").read_text("utf-8")


@pytest.mark.parametrize(
    "module",
    [beacon.receipts, beacon.receipts.stats, mypharm_consent.receipts, mypharm_consent.history],
    ids=lambda module: module.__name__,
)
def test_every_public_name_is_documented(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names
    for name in names:
        assert hasattr(module, name)
        assert re.search(rf"`{re.escape(name)}[`(]", GUIDE), f"{name} is not in docs/receipts.md"
