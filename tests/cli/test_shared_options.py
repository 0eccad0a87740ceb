"""Options several commands share are declared once (argparse parent parsers in
``dse.cli.options``), and the command line stays in small modules and functions."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import dse.cli
from dse.cli import build_parser, options

CLI = Path(dse.cli.__file__).resolve().parent
DATA = ("--data", "--data-root", "--data-seed", "--size", "--n", "--noise", "--channels")
SHARED = ("--storage", "--quiet", "--json", "--edge", "--server", "--link", *DATA)
#: Options spelled like a shared one that mean something else, so are declared apart:
#: the database ``dse storage serve`` fronts (required), the lists of profiles ``dse sweep``
#: scores, and the spec, running server and pacing link of ``dse run-split``.
APART = {
    ("dse storage serve", "--storage"),
    ("dse sweep", "--edge"),
    ("dse sweep", "--link"),
    ("dse sweep", "--server"),
    ("dse run-split", "--data"),
    ("dse run-split", "--server"),
    ("dse run-split", "--link"),
}


def _commands(
    parser: argparse.ArgumentParser, path: str = "dse"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command of the parser (its path, its parser), subcommands included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def _actions(flag: str) -> dict[str, argparse.Action]:
    """Each command's action for ``flag``, by command path."""
    found = {}
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if flag in action.option_strings:
                found[path] = action
    return found


def _declarations(flag: str) -> list[str]:
    """``module:line`` of every ``add_argument(flag, ...)`` in dse/cli."""
    where = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == flag
            ):
                where.append(f"{path.name}:{node.lineno}")
    return where


@pytest.mark.parametrize("flag", SHARED)
def test_each_shared_option_is_declared_once_in_the_options_module(flag: str) -> None:
    apart = sum(1 for _, f in APART if f == flag)
    found = _declarations(flag)
    assert len([w for w in found if w.startswith("options.py:")]) == 1, found
    assert len(found) == 1 + apart, found


@pytest.mark.parametrize("flag", SHARED)
def test_every_command_takes_a_shared_option_from_its_parent_parser(flag: str) -> None:
    actions = {path: a for path, a in _actions(flag).items() if (path, flag) not in APART}
    declared = {id(a) for p in options.parents() for a in p._actions}
    assert actions, f"no command takes {flag}"
    for path, action in actions.items():
        assert id(action) in declared, f"{path} declares {flag} itself"


def test_the_storage_option_is_one_action_on_every_command_that_reads_a_study() -> None:
    actions = _actions("--storage")
    del actions["dse storage serve"]
    assert set(actions) == {
        "dse study run",
        "dse study resume",
        "dse study worker",
        "dse study status",
        "dse study grid",
        "dse front",
        "dse recommend",
        "dse verify",
        "dse compare",
        "dse report",
        "dse export",
    }
    (storage,) = options.storage()._actions
    assert all(a is storage for a in actions.values())
    assert storage.default is None and storage.help == options.STORAGE_HELP


def test_train_modes_takes_the_device_options_of_profile_with_its_own_edge() -> None:
    parser = build_parser()
    profile = parser.parse_args(["profile", "mlp"])
    modes = parser.parse_args(["train-modes", "mlp"])
    assert (profile.edge, profile.server, profile.link) == ("raspberry-pi-4", "a100", "lte")
    assert (modes.edge, modes.server, modes.link) == ("jetson-nano", "a100", "lte")
    given = parser.parse_args(["train-modes", "mlp", "--edge", "esp32-s3", "--link", "3g"])
    assert (given.edge, given.link) == ("esp32-s3", "3g")
    for flag in ("--edge", "--server", "--link"):
        p, m = _actions(flag)["dse profile"], _actions(flag)["dse train-modes"]
        assert p.help == m.help and p.option_strings == m.option_strings
    assert _actions("--server")["dse profile"] is _actions("--server")["dse train-modes"]


def test_the_same_parent_is_handed_out_each_time() -> None:
    assert options.storage() is options.storage()
    assert options.quiet() is options.quiet(options.QUIET_HELP)
    assert options.quiet("no progress bar") is not options.quiet()
    assert options.devices() is options.devices(edge=options.DEFAULT_EDGE)
    assert options.devices(edge="jetson-nano") is not options.devices()


def test_no_module_over_800_lines_and_no_function_over_100() -> None:
    long = []
    for path in sorted(CLI.glob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 800:
            long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > 100:
                    long.append(f"{path.name}:{node.lineno} {node.name}: {n} lines")
    assert not long, long
