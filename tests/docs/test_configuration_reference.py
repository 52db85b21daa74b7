"""docs/configuration.md documents every option of the configuration classes, and no other."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from beacon import Beacon
from beacon.dashboard import create_dashboard
from beacon.email import EmailTracker
from mypharm_consent import Category, ConsentConfig, Service

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_ROW = re.compile(r"^\| `([a-z_]+)` \|", re.MULTILINE)
# A row whose default column is one literal in backticks: | `name` | type | `default` | ...
_DEFAULT = re.compile(r"^\| `([a-z_]+)` \| [^|]+ \| (`[^`|]+`) \|", re.MULTILINE)


def section_text(section: str) -> str:
    """The text under ``## {section}`` in the reference."""
    text = REFERENCE.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    bodies = [part for part in parts if part.split("\n", 1)[0].strip() == section]
    assert len(bodies) == 1, f"docs/configuration.md needs exactly one '## {section}' section"
    return bodies[0]


def documented(section: str) -> list[str]:
    """The option names of the table under ``## {section}``, in order."""
    return _ROW.findall(section_text(section))


def dataclass_options(cls: type) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def arguments(function: object) -> list[str]:
    """The parameter names of ``function`` (a constructor: without ``self``)."""
    parameters = inspect.signature(function).parameters
    return [name for name in parameters if name != "self"]


#: The documented callables whose keyword arguments are configuration.
CALLABLES: dict[str, object] = {
    "Beacon": Beacon.__init__,
    "EmailTracker": EmailTracker.__init__,
    "create_dashboard": create_dashboard,
}


@pytest.mark.parametrize(
    ("section", "options"),
    [
        ("ConsentConfig", dataclass_options(ConsentConfig)),
        ("Category", dataclass_options(Category)),
        ("Service", dataclass_options(Service)),
        *((name, arguments(function)) for name, function in CALLABLES.items()),
    ],
    ids=["ConsentConfig", "Category", "Service", *CALLABLES],
)
def test_every_option_is_documented_once_and_in_order(section: str, options: list[str]) -> None:
    rows = documented(section)
    missing = [name for name in options if name not in rows]
    unknown = [name for name in rows if name not in options]
    assert not missing, f"undocumented in docs/configuration.md ({section}): {missing}"
    assert not unknown, f"documented but not an option of {section}: {unknown}"
    assert rows == options, f"{section}: document the options once each, in declaration order"


def real_defaults(section: str) -> dict[str, object]:
    """The default of each option that has one, read from the class itself."""
    if section in CALLABLES:
        parameters = inspect.signature(CALLABLES[section]).parameters.values()
        return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    cls = {"ConsentConfig": ConsentConfig, "Category": Category, "Service": Service}[section]
    defaults: dict[str, object] = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


@pytest.mark.parametrize("section", ["ConsentConfig", "Category", "Service", *CALLABLES])
def test_literal_defaults_in_the_reference_are_the_real_ones(section: str) -> None:
    defaults = real_defaults(section)
    checked = 0
    for name, written in _DEFAULT.findall(section_text(section)):
        if name not in defaults:
            continue
        literal = written.strip("`")
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):  # a path, written as it prints
            assert str(defaults[name]) == literal, name
        else:
            assert value == defaults[name], f"{name}: documented {literal}, is {defaults[name]!r}"
        checked += 1
    assert checked >= 2


def test_defaults_written_in_words_are_the_real_ones() -> None:
    config = ConsentConfig(secret_keys=["a-long-enough-secret-key"])
    text = section_text("ConsentConfig")
    assert config.consent_max_age.days == 182
    assert "| `consent_max_age` | `timedelta` | 182 days |" in text
    assert config.html_size_cap == 2 * 1024 * 1024
    assert "| `html_size_cap` | `int` ≥ 1024 | 2 MiB |" in text
    assert config.max_form_bytes == 8 * 1024
    assert "| `max_form_bytes` | `int` ≥ 512 | 8 KiB |" in text
    beacon = real_defaults("Beacon")
    assert beacon["spool_max_bytes"] == 1024**3
    assert "| `spool_max_bytes` | `int` ≥ 16 MiB | 1 GiB |" in section_text("Beacon")
