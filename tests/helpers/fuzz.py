"""Hypothesis strategies the hostile-input tests share: any TOML value, and a valid document
with a few of its fields replaced, removed or added (written as TOML by
:func:`helpers.toml.inline_text`)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Examples per property in the plain run (``pytest``, ``make test``): a short search.
#: ``make test-all`` (and so CI) sets DSE_FUZZ_EXAMPLES to search ten times longer.
EXAMPLES = 25

#: Deterministic and without a deadline: every loader here reads files. Set
#: DSE_FUZZ_EXAMPLES (and DSE_FUZZ_RANDOM=1 for fresh draws) to search longer by hand.
FUZZ = settings(
    max_examples=int(os.environ.get("DSE_FUZZ_EXAMPLES", str(EXAMPLES))),
    deadline=None,
    derandomize=os.environ.get("DSE_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

UNITS = [
    "",
    "W",
    "mW",
    "uW",
    "kW",
    "J",
    "s",
    "ms",
    "us",
    "min",
    "B",
    "GiB",
    "kB",
    "B/s",
    "GB/s",
    "bit/s",
    "Mbit/s",
    "Gbps",
    "FLOP/s",
    "GFLOP/s",
    "TOPS",
    "W/Mbps",
    "%",
    "µs",
    "furlongs",
    "GFLOP/s/s",
]
NUMBERS = [
    "0",
    "-0",
    "1",
    "-1",
    "1e308",
    "1e-300",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "1e3",
    "0.5",
    "3",
    "12345678901234567890",
    ".5",
    "5.",
    "0x10",
    "1_000",
    "",
]

quantity = st.builds(
    lambda n, u: f"{n} {u}".strip(), st.sampled_from(NUMBERS), st.sampled_from(UNITS)
)
scalar = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 64, 2**31, 10**18]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e308, -1e308, 1e-300, 0.5, 1.5, math.inf, math.nan]),
    st.booleans(),
    st.text(max_size=12),
    quantity,
)
value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, v in doc.items():
        out.append((*prefix, key))
        if isinstance(v, dict):
            out += _paths(v, (*prefix, key))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    """``base`` (deep-copied) with one to three fields replaced, removed or added: the
    replacement a value of the field's own kind now and then, of any kind otherwise."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(value)
        elif op == "delete":
            del parent[path[-1]]
        else:
            name = draw(st.sampled_from(keys) if keys else st.text(max_size=8))
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            target[name] = draw(value)
    return doc


number = st.one_of(
    quantity, st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30)
)


@st.composite
def renumbered(draw: st.DrawFn, base: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``base`` with one to four of its number or 'VALUE UNIT' fields given another number
    (tables named in ``skip`` left alone): deep into the checks of figures."""
    doc = json.loads(json.dumps(base))
    leaves = [
        p
        for p in _paths(doc)
        if p[0] not in skip
        and not isinstance(_at(doc, p), dict)
        and (
            isinstance(_at(doc, p), int | float)
            and not isinstance(_at(doc, p), bool)
            or isinstance(_at(doc, p), str)
            and _at(doc, p)[:1].isdigit()
        )
    ]
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=4)) if leaves else []:
        _at(doc, path[:-1])[path[-1]] = draw(number)
    return doc


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc
