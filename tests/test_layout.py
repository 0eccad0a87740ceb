"""The package's layout: stages import only the stages below them, through entry points.

Order: the ground floor (errors, locks, lazy) < costmodel < nets < search < report, deploy
< cli; report and deploy never import each other. Another stage is reached only through
its package (``from dse.costmodel import build_graph``) and only for names in its
``__all__``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import dse
from dse.cli import build_parser

PACKAGE = Path(dse.__file__).resolve().parent
RANK = {
    "errors": 0,
    "locks": 0,
    "lazy": 0,
    "vocab": 0,
    "__init__": 0,
    "costmodel": 1,
    "nets": 2,
    "search": 3,
    "report": 4,
    "deploy": 4,
    "cli": 5,
}
STAGES = ("costmodel", "nets", "search", "report", "deploy")


def _stage(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").parts[0]


def _imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every absolute ``dse`` import, nested ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] == "dse":
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "dse"
            ]
    return sorted(found)


def layout_violations(root: Path = PACKAGE) -> list[str]:
    """One line per import against the layout: the file, the line and the import."""
    exported = {s: set(importlib.import_module(f"dse.{s}").__all__) for s in STAGES}
    bad = []
    for path in sorted(root.rglob("*.py")):
        me = _stage(path, root)
        where = path.relative_to(root.parent)
        for line, module, names in _imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if len(parts) == 1:  # from dse import X
                targets = [(n, [n]) for n in names]
            else:
                targets = [(parts[1], parts)]
            for target, _ in targets:
                if target not in RANK:
                    bad.append(f"{where}:{line}: {module} {names}: no such stage")
                    continue
                if target == me:
                    continue
                if RANK[target] > RANK[me] or {me, target} == {"report", "deploy"}:
                    bad.append(
                        f"{where}:{line}: imports {module} {names} against the order "
                        "errors, locks < costmodel < nets < search < report, deploy < cli"
                    )
                    continue
                if target in STAGES:
                    if len(parts) > 2 or not names:
                        bad.append(
                            f"{where}:{line}: imports {module} {names}: reach another "
                            f"stage through its package (from dse.{target} import ...)"
                        )
                        continue
                    hidden = [n for n in names if n not in exported[target]]
                    if hidden:
                        bad.append(
                            f"{where}:{line}: imports {hidden} from dse.{target}, "
                            f"not among its entry points (__all__)"
                        )
    return bad


def test_every_import_in_dse_follows_the_stage_order():
    assert layout_violations() == []


def test_the_checker_names_the_file_and_the_import(tmp_path: Path):
    (tmp_path / "dse" / "costmodel").mkdir(parents=True)
    (tmp_path / "dse" / "report").mkdir()
    (tmp_path / "dse" / "costmodel" / "graph.py").write_text("from dse.search import Candidate\n")
    (tmp_path / "dse" / "report" / "plots.py").write_text(
        "def f():\n    from dse.deploy import x\n"
        "from dse.nets.training import _train\n"
        "from dse.nets import no_such_entry\n"
    )
    bad = layout_violations(tmp_path / "dse")
    assert len(bad) == 4
    assert bad[0].startswith("dse/costmodel/graph.py:1: imports dse.search ['Candidate']")
    assert bad[1].startswith("dse/report/plots.py:2: imports dse.deploy")
    assert "dse/report/plots.py:3" in bad[2] and "through its package" in bad[2]
    assert "dse/report/plots.py:4" in bad[3] and "no_such_entry" in bad[3]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_is_and_its_entry_points_resolve(stage: str):
    package = importlib.import_module(f"dse.{stage}")
    assert package.__doc__ and len(package.__doc__.split()) >= 10
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_top_level_help_is_plain_text():
    text = build_parser().format_help()
    assert "edge device and a server" in text
    for markup in ("``", ":class:", ":func:", ":mod:"):
        assert markup not in text


TESTS = Path(__file__).resolve().parent
#: Test modules that still import the tests folder as a package (``from tests.x import``),
#: to move to ``from helpers import ...``; none may be added.
NOT_YET_CONVERTED = {"report/test_tasks_report.py", "report/test_codec_report.py"}


def test_tests_import_what_they_share_one_way():
    """Shared test code is imported as ``from helpers import ...`` (tests/ is on the path),
    never through the tests folder as a package: two names would load it twice."""
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        if rel in NOT_YET_CONVERTED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            bad += [f"{rel}:{node.lineno}: {m}" for m in modules if m.split(".")[0] == "tests"]
    assert bad == []


def test_test_helpers_use_only_entry_points_of_dse():
    """tests/helpers reach dse through its packages' ``__all__`` (or the ground floor and
    the CLI's ``main``), so that modules moving inside a stage do not break them."""
    exported = {s: set(importlib.import_module(f"dse.{s}").__all__) for s in STAGES}
    bad = []
    for path in sorted((TESTS / "helpers").rglob("*.py")):
        for line, module, names in _imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            stage = parts[1] if len(parts) > 1 else ""
            if stage in STAGES:
                ok = len(parts) == 2 and names and set(names) <= exported[stage]
            else:
                ok = RANK.get(stage) == 0 or (module == "dse.cli" and names == ["main"])
            if not ok:
                bad.append(f"{path.name}:{line}: {module} {names}")
    assert bad == []
