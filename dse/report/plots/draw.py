"""What every figure shares: axis labels and units, colours, log axes, wrapped
titles, and writing a figure as PNG and SVG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

# --------------------------------------------------------------------------------------
# units and labels
# --------------------------------------------------------------------------------------

#: metric -> (axis label, quantity): quantity picks the unit ladder below.
METRIC_AXES: dict[str, tuple[str, str]] = {
    "accuracy": ("validation accuracy", "%"),
    "test_accuracy": ("test accuracy", "%"),
    "latency_mean": ("mean latency", "s"),
    "latency_p95": ("p95 latency", "s"),
    "bandwidth": ("data sent per inference", "B"),
    "edge_energy": ("edge energy per inference", "J"),
    "edge_memory": ("edge memory", "B"),
    "storage": ("stored network size", "B"),
}

_LADDERS: dict[str, list[tuple[float, str]]] = {
    "s": [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs")],
    "B": [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")],
    "J": [(1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")],
    "FLOP": [(1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP"), (1.0, "FLOP")],
}


EDGE_C, LINK_C, SERVER_C = "#4c72b0", "#dd8452", "#55a868"


def unit_for(quantity: str, values: Any) -> tuple[str, float]:
    """(unit, divisor) for showing ``values`` of ``quantity`` ("s", "B", "J", "FLOP", "%").

    The unit is the largest of the ladder in which the largest value is at least 1.
    """
    if quantity == "%":
        return "%", 0.01
    ladder = _LADDERS[quantity]
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v)]
    top = float(v.max()) if len(v) else 0.0
    for scale, unit in ladder:
        if top >= scale:
            return unit, scale
    return ladder[-1][1], ladder[-1][0]


def _metric_axis_text(metric: str) -> tuple[str, str]:
    """(label, quantity) of a metric, a task's accuracy (``accuracy.TASK``) included."""
    if metric in METRIC_AXES:
        return METRIC_AXES[metric]
    for prefix, label in (
        ("accuracy.", "validation accuracy"),
        ("test_accuracy.", "test accuracy"),
    ):
        if metric.startswith(prefix):
            return f"{label}, {metric[len(prefix) :]}", "%"
    if metric in ("accuracy_min", "test_accuracy_min"):
        split = "test" if metric.startswith("test") else "validation"
        return f"lowest task's {split} accuracy", "%"
    return metric, ""


def metric_axis(metric: str, values: Any) -> tuple[str, float]:
    """(axis label with unit, divisor) for a metric of :data:`METRIC_AXES` or a task's
    accuracy (``accuracy.TASK``, ``accuracy_min``)."""
    label, quantity = _metric_axis_text(metric)
    if not quantity:
        return label, 1.0
    unit, div = unit_for(quantity, values)
    return f"{label} ({unit})", div


def _save(fig: Figure, path: str | Path) -> list[Path]:
    """Write ``path`` with suffixes .png and .svg; return both paths."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".png", ".svg") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, kw in ((".png", {"dpi": 130}), (".svg", {})):
        p = base.parent / (base.name + ext)
        fig.savefig(p, bbox_inches="tight", **kw)
        out.append(p)
    return out


def _fmt_s(seconds: float) -> str:
    unit, div = unit_for("s", [seconds])
    return f"{seconds / div:.3g} {unit}"


def _log_if_wide(ax: Any, axis: str, values: np.ndarray, ratio: float = 30.0) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and v.min() > 0 and v.max() / v.min() >= ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return True
    return False


def _plain_log_ticks(ax: Any, axis: str) -> None:
    """Plain numbers (0.1, 1, 10, ...) instead of 10^k on a log axis."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])


def _with_unit(quantity: str, value: float) -> str:
    """One value in its own unit of ``quantity``'s ladder: 2.46 mJ, 12.4 J, 0 B."""
    if value == 0:
        return f"0 {_LADDERS[quantity][-1][1]}"
    unit, div = unit_for(quantity, [value])
    return f"{value / div:.3g} {unit}"
