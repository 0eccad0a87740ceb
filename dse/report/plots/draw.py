"""What every figure shares: axis labels (from :mod:`dse.vocab`, units from
:mod:`dse.report.fmt`), colours, log axes, wrapped titles, and writing a figure as PNG and
SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from dse import vocab
from dse.report import fmt

#: What a figure is written as, by default: a PNG to show (at :data:`DPI` dots per inch)
#: and an SVG to zoom into. Tests write PNG alone at a low resolution, far faster.
FORMATS: tuple[str, ...] = ("png", "svg")
DPI = 130
EDGE_C, LINK_C, SERVER_C = "#4c72b0", "#dd8452", "#55a868"


def metric_axis(metric: str, values: Any) -> tuple[str, float]:
    """(axis label with unit, divisor) for any metric dse writes: its label and quantity
    from :mod:`dse.vocab`, its unit from the values (:func:`dse.report.fmt.unit_for`)."""
    quantity = vocab.metric(metric).quantity
    label = vocab.axis_label(metric)
    if not quantity:
        return label, 1.0
    unit, div = fmt.unit_for(quantity, values)
    return f"{label} ({unit})", div


def save(
    fig: Figure, path: str | Path, *, formats: Sequence[str] = FORMATS, dpi: float = DPI
) -> list[Path]:
    """Write ``path`` in each of ``formats`` (``png``: at ``dpi`` dots per inch; ``svg``);
    return the paths written."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"figure formats {list(formats)}: give one or more of {list(FORMATS)}")
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".png", ".svg") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, kw in ((".png", {"dpi": dpi}), (".svg", {})):
        if ext[1:] not in formats:
            continue
        p = base.parent / (base.name + ext)
        fig.savefig(p, bbox_inches="tight", **kw)
        out.append(p)
    return out


def log_if_wide(ax: Any, axis: str, values: np.ndarray, ratio: float = 30.0) -> bool:
    """A log scale on ``axis`` where the positive ``values`` span ``ratio`` or more;
    whether it was set."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and v.min() > 0 and v.max() / v.min() >= ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return True
    return False


def plain_log_ticks(ax: Any, axis: str) -> None:
    """Plain numbers (0.1, 1, 10, ...) instead of 10^k on a log axis."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


def wrap(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters (six lines at most), for titles."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])
