"""Human units, in one place: seconds as ms, bytes as kB, joules as mJ, ratios, bit rates
and each metric's value by its quantity (for tables, reports and commands), and the unit
of a figure's axis (:func:`unit_for`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The units of a figure's axis per quantity, largest first (``µ``: figures are images,
#: never read in a terminal).
AXIS_UNITS: dict[str, list[tuple[float, str]]] = {
    "s": [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs")],
    "B": [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")],
    "J": [(1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")],
    "FLOP": [(1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP"), (1.0, "FLOP")],
}


def _scaled(value: float, units: list[tuple[float, str]], digits: int = 3) -> str:
    """``value`` in the largest of ``units`` it reaches, ``digits`` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return f"0 {units[-1][1]}"
    for scale, unit in units:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {unit}"
    scale, unit = units[-1]
    return f"{value / scale:.{digits}g} {unit}"


def seconds(s: float) -> str:
    """Seconds in s, ms, us or ns."""
    return _scaled(s, [(1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")])


def nbytes(b: float) -> str:
    """Bytes in GB, MB, kB or B."""
    return _scaled(b, [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")])


def joules(j: float) -> str:
    """Joules in J, mJ, uJ or nJ."""
    return _scaled(j, [(1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ")])


def count(n: float) -> str:
    """A count with G, M or k."""
    return _scaled(n, [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]).strip()


def flop(n: float) -> str:
    """FLOPs in human units: 0 FLOP, 640 FLOP, 5.05 MFLOP."""
    text = count(n)
    return f"{text}FLOP" if text[-1:].isalpha() else f"{text} FLOP"


def percent(x: float) -> str:
    """A fraction as a percent, one decimal."""
    return f"{100 * x:.1f}%"


def ratio(x: float | None, digits: int = 3, *, decimals: int | None = None) -> str:
    """A ratio as ``2.5x`` (``digits`` significant digits, or ``decimals`` after the point:
    ``2.50x``); ``-`` when it is missing and ``∞`` when its denominator was zero (never
    ``infx``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{decimals}f}x" if decimals is not None else f"{x:.{digits}g}x"


def mbps(bps: float) -> str:
    """A bit rate in Mbit/s, or Gbit/s from 1 Gbit/s."""
    if bps >= 1e9:
        return f"{bps / 1e9:.3g} Gbit/s"
    return f"{bps / 1e6:.3g} Mbit/s"


def human(metric: str, value: object) -> str:
    """One metric's value in human units, by its quantity in :mod:`dse.vocab`; ``-`` for a
    missing one."""
    from dse import vocab

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    quantity = vocab.metric(metric).quantity
    if quantity == "%":
        return percent(float(value))  # type: ignore[arg-type]
    if quantity and float(value) == 0:  # type: ignore[arg-type]
        return f"0 {quantity}"
    show = {"s": seconds, "B": nbytes, "J": joules}.get(quantity)
    if show is not None:
        return show(float(value))  # type: ignore[arg-type]
    return f"{value:g}" if isinstance(value, float) else str(value)


def unit_for(quantity: str, values: Any) -> tuple[str, float]:
    """(unit, divisor) for showing ``values`` of ``quantity`` ("s", "B", "J", "FLOP", "%")
    on a figure's axis.

    The unit is the largest of :data:`AXIS_UNITS` in which the largest value is at least 1.
    """
    if quantity == "%":
        return "%", 0.01
    ladder = AXIS_UNITS[quantity]
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v)]
    top = float(v.max()) if len(v) else 0.0
    for scale, unit in ladder:
        if top >= scale:
            return unit, scale
    return ladder[-1][1], ladder[-1][0]


def with_unit(quantity: str, value: float) -> str:
    """One value in its own unit of a figure's axis (:func:`unit_for`): 2.46 mJ, 12.4 J,
    0 B."""
    if value == 0:
        return f"0 {AXIS_UNITS[quantity][-1][1]}"
    unit, div = unit_for(quantity, [value])
    return f"{value / div:.3g} {unit}"
