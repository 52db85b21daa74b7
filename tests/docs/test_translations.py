"""The translations guide's list of places holding languages is complete and true."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path

import pytest

from beacon.dashboard import i18n
from beacon.email import pages
from mypharm_consent import config, gating, history, services, texts

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "translations.md"
_ROW = re.compile(r"^\| `(?P<module>[\w/]+)\.py` \| (?P<what>.+) \|$", re.MULTILINE)


def places() -> list[tuple[str, list[str]]]:
    """(module, names) of each row of the guide's "Adding a language" table."""
    section = GUIDE.read_text(encoding="utf-8").split("## Adding a language", 1)[1]
    return [
        (row["module"].replace("/", "."), re.findall(r"`(\w+)`", row["what"]))
        for row in _ROW.finditer(section)
    ]


@pytest.mark.parametrize(("module", "names"), places(), ids=[m for m, _ in places()])
def test_every_name_the_guide_lists_exists(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    assert names, f"{module}: the guide names nothing to change"
    missing = [name for name in names if not hasattr(loaded, name)]
    assert not missing, f"{module} has no {missing}"


def test_the_guide_lists_every_module_that_holds_languages() -> None:
    listed = {module for module, _ in places()}
    holders = {
        config.__name__,
        texts.__name__,
        history.__name__,
        gating.__name__,
        services.__name__,
        pages.__name__,
        i18n.__name__,
    }
    assert listed == holders


def test_every_place_speaks_the_same_languages() -> None:
    languages = set(typing.get_args(config.Language))
    assert set(texts.LANGUAGES) == languages
    assert set(texts.DEFAULT_TEXTS) == languages
    assert set(history.HISTORY_TEXTS) == languages
    assert set(gating.PLACEHOLDER_TEXTS) == languages
    assert set(typing.get_args(pages.PageLanguage)) == languages
    assert set(pages._TEXTS) == languages
    assert set(i18n.LANGUAGES) == languages
    assert set(typing.get_args(i18n.Language)) == languages
    untranslated = [key for key, words in i18n.MESSAGES.items() if set(words) != languages]
    assert not untranslated, f"dashboard texts without every language: {untranslated}"
    for service in services.REGISTRY.values():
        assert set(service.description) == languages, service.name
