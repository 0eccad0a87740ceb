"""The search stage stays readable: no module over 800 lines, no function over 100."""

from __future__ import annotations

import ast
from pathlib import Path

import dse.search

SEARCH = Path(dse.search.__file__).resolve().parent
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100


def test_no_module_of_the_search_is_over_800_lines() -> None:
    lines = {p.name: len(p.read_text().splitlines()) for p in SEARCH.glob("*.py")}
    long = {name: n for name, n in lines.items() if n > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_of_the_search_is_over_100_lines() -> None:
    long = {}
    for path in sorted(SEARCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if (n := node.end_lineno - first + 1) > MAX_FUNCTION_LINES:
                    long[f"{path.name}:{node.lineno} {node.name}"] = n
    assert long == {}
