"""Every command and option of ``dse`` says what it is for, in plain text."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dse.cli import build_parser


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("dse",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def test_every_command_and_option_has_a_help_text() -> None:
    missing = []
    for path, parser in _walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                missing += [
                    f"{' '.join(path)} {name}" for name in action.choices if not helps.get(name)
                ]
                continue
            if not (action.help or "").strip():
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "no help text: " + "; ".join(missing)


def test_every_command_is_walked() -> None:
    paths = {" ".join(p) for p, _ in _walk(build_parser())}
    assert {"dse sweep", "dse study run", "dse devices show", "dse report"} <= paths


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["study", "run", "--help"]])
def test_help_is_plain_text(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dse.cli", *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={
            "PATH": "/usr/bin:/bin",
            "FORCE_COLOR": "1",
            "TERM": "xterm",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
    ).stdout
    assert out.startswith("usage: dse")
    assert out.isascii() and "\x1b" not in out  # no colour codes, nothing but ASCII
    if argv == ["--help"]:
        assert "sweep" in out and "Exit codes" in out
