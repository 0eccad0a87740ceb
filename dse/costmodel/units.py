"""Physical quantities in profiles: a bare number in the SI base unit, or "VALUE UNIT".

Profiles are written by people who copy figures from datasheets ("48 GFLOP/s",
"5.85 Mbit/s", "4 GiB"), so every numeric profile field accepts either a bare number,
already in the base unit of its dimension (FLOP/s, bit/s, B/s, s, W, J, B, W per Mbit/s,
plain ratio), or a string with a unit from :data:`UNITS`. Everything downstream sees
plain floats in base units; the conversion happens here, once, from one table.

Decimal prefixes are powers of ten (k = 1e3, M = 1e6, G = 1e9, ...); binary prefixes
are powers of two (Ki = 2**10, Mi = 2**20, Gi = 2**30, Ti = 2**40).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from dse.errors import InputError

Dimension = Literal[
    "flop_rate",
    "bit_rate",
    "byte_rate",
    "time",
    "power",
    "energy",
    "bytes",
    "power_per_rate",
    "ratio",
]

_DECIMAL: dict[str, float] = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY: dict[str, float] = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}
_SUB: dict[str, float] = {"": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12}


def _prefixed(
    symbols: tuple[str, ...], prefixes: dict[str, float], scale: float = 1.0
) -> dict[str, float]:
    """Every prefix joined to every symbol, e.g. ("B/s",) x {k, M} -> kB/s, MB/s."""
    return {p + s: f * scale for p, f in prefixes.items() for s in symbols}


#: Base unit of each dimension: what a bare number means.
BASE_UNITS: dict[str, str] = {
    "flop_rate": "FLOP/s",
    "bit_rate": "bit/s",
    "byte_rate": "B/s",
    "time": "s",
    "power": "W",
    "energy": "J",
    "bytes": "B",
    "power_per_rate": "W/Mbps",
    "ratio": "1 (plain number)",
}

#: dimension -> unit spelling -> factor to the base unit. Spellings are matched after
#: removing whitespace and writing the micro sign as "u"; case matters (b is bit, B byte).
UNITS: dict[str, dict[str, float]] = {
    # FLOP/s; TOPS/GOPS (integer op/s, as datasheets quote INT8) count as one op per FLOP.
    "flop_rate": _prefixed(("FLOP/s", "FLOPS", "op/s", "OPS"), _DECIMAL),
    # bit/s; byte rates are accepted and multiplied by 8.
    "bit_rate": {
        **_prefixed(("bit/s", "bps"), _DECIMAL),
        **_prefixed(("B/s",), _DECIMAL, 8.0),
    },
    "byte_rate": {**_prefixed(("B/s",), _DECIMAL), **_prefixed(("B/s",), _BINARY)},
    "time": {**_prefixed(("s",), _SUB), "min": 60.0},
    "power": {**_prefixed(("W",), _SUB), "kW": 1e3},
    "energy": {**_prefixed(("J",), _SUB), "kJ": 1e3},
    "bytes": {**_prefixed(("B",), _DECIMAL), **_prefixed(("B",), _BINARY)},
    # Radio power slope: watts per Mbit/s of throughput (Huang et al., MobiSys 2012).
    "power_per_rate": {
        "W/Mbps": 1.0,
        "mW/Mbps": 1e-3,
        "W/(Mbit/s)": 1.0,
        "mW/(Mbit/s)": 1e-3,
    },
    "ratio": {"": 1.0, "%": 0.01},
}

DIMENSIONS: tuple[str, ...] = tuple(UNITS)

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def known_units(dimension: str) -> str:
    """The fix text for a bad quantity: the accepted units and what a bare number means."""
    units = ", ".join(u for u in UNITS[dimension] if u)
    base = BASE_UNITS[dimension]
    if dimension == "ratio":
        return "give a plain number such as 0.3, or a percentage such as '30 %'"
    return f"write a bare number in {base} or a string 'VALUE UNIT' with UNIT one of: {units}"


def parse_quantity(
    value: object, dimension: Dimension | str, *, where: str | Path, field: str
) -> float:
    """Convert a profile value to a float in the base unit of ``dimension``.

    ``value`` is an int or float (taken as already in the base unit) or a string
    "VALUE UNIT". Raises :class:`InputError` naming ``where`` and ``field`` for a wrong
    type (bool, list, table), a malformed string, an unknown unit or a non-finite value.
    ``dimension`` must be one of :data:`DIMENSIONS` (a programming error otherwise).
    """
    if dimension not in UNITS:
        raise ValueError(f"unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}")
    table = UNITS[dimension]
    fix = known_units(dimension)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(
            where, field, f"expected a number or a 'VALUE UNIT' string, got {toml_type(value)}", fix
        )
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None:
            raise InputError(where, field, f"cannot read {value!r} as 'VALUE UNIT'", fix)
        number, unit = match.groups()
        unit = re.sub(r"\s+", "", unit).replace("µ", "u").replace("μ", "u")
        if unit not in table:
            reason = (
                f"{value!r} has no unit" if not unit else f"unknown unit {unit!r} for {dimension}"
            )
            raise InputError(where, field, reason, fix)
        # Exact decimal product, rounded once: "50 us" is exactly the float 5e-05.
        result = float(Decimal(number) * Decimal(repr(table[unit])))
    else:
        result = float(value)
    if not math.isfinite(result):
        raise InputError(where, field, f"{value!r} is not a finite number", fix)
    return result


def toml_type(value: object) -> str:
    """A TOML-minded name for a value's type, for error messages (a table, an array)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
