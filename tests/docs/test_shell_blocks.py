"""The shell commands of the README and docs/ exist, with the options they are shown with.

Every ``beacon`` command line of a shell block (```sh or a bare fence) is
checked against the real argument parser: its sub-commands must exist and
every option it uses must belong to the sub-command, so renaming an option
fails here. ``make`` targets must exist in the Makefile, and the extras of
``pip install`` lines in ``pyproject.toml``. The documented
``beacon init-db ... --print`` lines, which touch no store, are run for real.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from beacon.cli import build_parser
from tests.docs.blocks import DOCUMENTS, ROOT, code_blocks

_SEPARATORS = re.compile(r"\s(?:\|\||&&|\||;)\s")
_REDIRECT = re.compile(r"^\d?[<>]")


@dataclass(frozen=True)
class Command:
    """One command of a shell block: where it is written and its words."""

    where: str
    words: tuple[str, ...]


def _lines(code: str) -> list[str]:
    """The block's logical lines: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    lines = []
    for line in joined.splitlines():
        text = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        text = re.sub(r"\s\(.*\)$", "", text)  # "(or - to read ...)" asides of the guides
        if text:
            lines.append(text)
    return lines


def commands(program: str) -> list[Command]:
    """Every command of the docs' shell blocks that runs ``program``."""
    found = []
    for document in DOCUMENTS:
        for block in code_blocks(document):
            if block.lang not in ("", "sh", "shell", "bash"):
                continue
            for line in _lines(block.code):
                for part in _SEPARATORS.split(line):
                    words = shlex.split(part.replace("[", " ").replace("]", " "))
                    while words and re.match(r"^[A-Z_]+=", words[0]):
                        words.pop(0)  # VARIABLE=value prefixes
                    if words and words[0].rsplit("/", 1)[-1] == program:
                        kept = []
                        for word in words[1:]:
                            if _REDIRECT.match(word):
                                break
                            kept.append(word)
                        found.append(Command(block.name, tuple(kept)))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(words: tuple[str, ...]) -> tuple[list[str], argparse.ArgumentParser, list[str]]:
    """(sub-command path, its parser, the option names used) of a ``beacon`` command."""
    parser = build_parser()
    path: list[str] = []
    options: list[str] = []
    for word in words:
        if word.startswith("-") and word != "-":
            options.append(word.split("=", 1)[0])
            continue
        children = _subcommands(parser)
        if children and not options:
            assert word in children, f"beacon {' '.join(path)}: no sub-command {word!r}"
            parser = children[word]
            path.append(word)
    return path, parser, options


BEACON = commands("beacon")
MAKE = commands("make")


def test_the_docs_show_the_command_line() -> None:
    assert len(BEACON) >= 30
    assert {"init-db", "ingest", "stats", "email", "consent", "users"} <= {
        c.words[0] for c in BEACON if c.words
    }
    assert {("demo",), ("test",)} <= {c.words for c in MAKE}


@pytest.mark.parametrize(
    "command", BEACON, ids=[f"{c.where}:{' '.join(c.words)[:60]}" for c in BEACON]
)
def test_every_beacon_command_and_option_exists(command: Command) -> None:
    path, parser, options = resolve(command.words)
    assert path, f"{command.where}: 'beacon' without a sub-command"
    assert not _subcommands(parser), f"{command.where}: beacon {' '.join(path)} needs more"
    known = {name for action in parser._actions for name in action.option_strings}
    known |= {"-v", "--verbose"}
    unknown = [option for option in options if option not in known]
    assert not unknown, f"{command.where}: beacon {' '.join(path)} has no {unknown}"


@pytest.mark.parametrize("command", MAKE, ids=[f"{c.where}:{' '.join(c.words)}" for c in MAKE])
def test_every_make_target_exists(command: Command) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in command.words:
        if "=" not in target:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target


PRINTED = [c for c in BEACON if c.words[:1] == ("init-db",) and "--print" in c.words]


@pytest.mark.parametrize("command", PRINTED, ids=[" ".join(c.words) for c in PRINTED])
def test_the_documented_schema_review_runs(command: Command, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "beacon"), *command.words],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE IF NOT EXISTS" in done.stdout
    if "--cluster" in command.words:
        cluster = command.words[command.words.index("--cluster") + 1]
        assert f"ON CLUSTER `{cluster}`" in done.stdout
        assert "ReplicatedMergeTree" in done.stdout
        assert "Distributed(" in done.stdout
    assert not any(tmp_path.iterdir()), "printing the schema touched a store"


def test_the_documented_extras_exist() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        extras = set(tomllib.load(file)["project"]["optional-dependencies"])
    shown = {
        name.strip()
        for document in DOCUMENTS
        for block in code_blocks(document)
        if block.lang in ("", "sh")
        for group in re.findall(r"pip install [^\n]*?\.\[([\w,-]+)\]", block.code)
        for name in group.split(",")
    }
    assert shown, "no pip install line with extras in the docs"
    assert shown <= extras, f"unknown extras: {shown - extras}"
