"""Lazy entry points for a stage's package: a name is imported from its module on first use.

Each stage's ``__init__.py`` maps its public names to the module that defines them, so
``from dse.costmodel import build_graph`` works without importing torch for a command that
only reads a profile. The name is looked up on every access (never cached on the package),
so a module attribute replaced at run time is what callers get.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, table: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package`` from ``{name: module}``.

    A name whose module is itself (``{"storage": "storage"}``) stands for the module.
    """

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod = importlib.import_module(f"{package}.{module}")
        return mod if module == name else getattr(mod, name)

    return sorted(table), getattr_
