"""Study specs built from Python dicts: the tiny study's defaults, overridden by nested
dicts, written as TOML. No test edits spec text.

``spec("name", space={"densities": [1.0]})`` is the tiny study (the MLP on 8x8 digits,
one epoch, densities 1 and 0.5) with its ``[space]`` densities replaced and every other
key kept. An override merges into the default table of the same name, key by key; a value
that is not a dict replaces; :data:`DROP` removes a key or a table; :func:`only` replaces a
whole table instead of merging into it; ``base=`` starts from another document (``{}``
for a spec with nothing but what the call gives).

Keep the tiny study's network settings as they are: every module that trains them shares
the session's training cache (see conftest), so they are trained once per session.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpers.toml import toml_text


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: An override value that removes the key (or the whole table) from the spec.
DROP: Any = _Drop()


class only(dict):  # noqa: N801 - reads as a word in a call: objectives=only({...})
    """A table that replaces the default one whole instead of merging into it."""


#: The objectives of the tiny study.
OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "latency_mean": "minimize",
    "edge_energy": "minimize",
}

#: The tiny study: the MLP on 8x8 digits, one epoch, densities 1 and 0.5, thresholds
#: 0.5, 0.75 and 1, three objectives, no constraint but the edge's memory.
TINY: dict[str, Any] = {
    "name": "tiny",
    "n_trials": 20,
    "sampler": "nsga2",
    "seed": 0,
    "model": {"name": "mlp"},
    "data": {"name": "digits", "seed": 0},
    "training": {"epochs": 1, "seed": 0},
    "space": {
        "densities": [1.0, 0.5],
        "methods": ["predefined"],
        "thresholds": {"low": 0.5, "high": 1.0, "step": 0.25},
    },
    "objectives": OBJECTIVES,
    "constraints": {},
}

#: The tiny multi-task data (two hues of shapes3d, 300 images at 16x16): a [data] table.
HUE_TASKS = ("wall_hue", "floor_hue")
HUE: dict[str, Any] = {
    "name": "shapes3d",
    "n": 300,
    "size": 16,
    "seed": 0,
    "tasks": list(HUE_TASKS),
}


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (deep-copied) with ``overrides`` merged in, by the rules of this module."""
    out = copy.deepcopy(dict(base))
    for k, v in overrides.items():
        if v is DROP:
            out.pop(k, None)
        elif isinstance(v, only):
            out[k] = merged({}, v)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merged(out[k], v)
        else:  # a new table too may hold DROP or only()
            out[k] = merged({}, v) if isinstance(v, Mapping) else copy.deepcopy(v)
    return out


def spec_dict(
    name: str | None = None, /, *, base: Mapping[str, Any] = TINY, **overrides: Any
) -> dict[str, Any]:
    """The spec as a document: ``base`` with ``overrides`` merged in, named ``name`` (by
    default the base's own name)."""
    return merged(base, overrides if name is None else {"name": name, **overrides})


def spec(name: str | None = None, /, *, base: Mapping[str, Any] = TINY, **overrides: Any) -> str:
    """The spec as TOML text (see the module's docstring for the overrides)."""
    return toml_text(spec_dict(name, base=base, **overrides))


def write_spec(
    path: Path, name: str | None = None, /, *, base: Mapping[str, Any] = TINY, **overrides: Any
) -> Path:
    """Write the spec to ``path`` (its folder created) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec(name, base=base, **overrides))
    return path
