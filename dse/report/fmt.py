"""Human units for tables and reports: seconds as ms, bytes as kB, joules as mJ."""

from __future__ import annotations

import math


def _scaled(value: float, units: list[tuple[float, str]], digits: int = 3) -> str:
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
    return _scaled(s, [(1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")])


def nbytes(b: float) -> str:
    return _scaled(b, [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")])


def joules(j: float) -> str:
    return _scaled(j, [(1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ")])


def count(n: float) -> str:
    return _scaled(n, [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]).strip()


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def ratio(x: float | None, digits: int = 3) -> str:
    """A ratio as ``2.5x``; ``-`` when it is missing and ``∞`` when its denominator was
    zero (never ``infx``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}g}x"


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
