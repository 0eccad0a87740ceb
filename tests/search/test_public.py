"""dse.search's entry points: each one resolves to what its module defines, and they are
the names other stages and the benchmarks import from the package."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import dse.search

ROOT = Path(__file__).resolve().parents[2]


def test_every_exported_name_resolves_to_a_definition_not_a_module() -> None:
    """A submodule, once imported, is an attribute of the package under its own name, so
    a function named like its module (status in a status.py) would read as the module."""
    for module in ("study_status", "verification", "frames", "explorer", "study"):
        importlib.import_module(f"dse.search.{module}")
    for name in dse.search.__all__:
        value = getattr(dse.search, name)
        assert not inspect.ismodule(value), name
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("dse.search."), name
    assert inspect.isfunction(dse.search.status) and inspect.isfunction(dse.search.verify)


def test_the_benchmarks_import_only_entry_points_from_the_package() -> None:
    """What dse/ imports is checked by tests/test_layout.py; the benchmarks, outside the
    package, are held to the same entry points."""
    imported = set()
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "dse.search":
                imported |= {a.name for a in node.names}
    assert imported and imported <= set(dse.search.__all__)
