"""One backbone for several tasks against one network per task, per placement
(:class:`TasksInfo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse.report import fmt
from dse.report.plots.draw import DPI, FORMATS, plain_log_ticks, save, wrap


class TasksInfo(NamedTuple):
    """One backbone (MTL) against one network per task (STL), per placement.

    Placements pair the comparison's designs in order (the i-th MTL design with the i-th
    STL one): each design's costs at its best cut, at MTL-Split's cut (the shared layers on
    the edge), all on the edge and all on the server (row 0 MTL, row 1 STL). Test accuracy is
    per task of the final heads: the same at every placement, shown once.
    """

    title: str
    tasks: tuple[str, ...]
    schedule: str  # how the single-task networks share the edge: sequential | parallel
    placements: tuple[str, ...]  # the MTL designs' names less "MTL, ": "best cut", ...
    cuts: tuple[tuple[str, ...], tuple[str, ...]]  # cut text per placement: MTL, STL
    latency_s: np.ndarray  # [2, placements] mean end-to-end latency
    edge_energy_j: np.ndarray  # [2, placements] per inference of every task
    bytes_sent: np.ndarray  # [2, placements]
    test_accuracy: np.ndarray  # [2, tasks] at the best cut(s)


def tasks_info(
    comparison: Any, *, title: str = "One backbone or one network per task"
) -> TasksInfo:
    """The figure's numbers from a :class:`dse.search.TaskComparison`."""
    by_kind = {k: [d for d in comparison.designs if d.kind == k] for k in ("mtl", "stl")}
    mtl, stl = by_kind["mtl"], by_kind["stl"]
    if not mtl or len(mtl) != len(stl):
        raise ValueError(f"{len(mtl)} MTL and {len(stl)} STL designs: they come in pairs")
    places = tuple(d.name.split(", ", 1)[-1].replace("best cuts", "best cut") for d in mtl)

    def rows(attr: str) -> np.ndarray:
        return np.array([[float(getattr(d, attr)) for d in ds] for ds in (mtl, stl)])

    return TasksInfo(
        title=title,
        tasks=tuple(comparison.tasks),
        schedule=str(comparison.schedule),
        placements=places,
        cuts=(
            tuple(",".join(map(str, d.cuts)) for d in mtl),
            tuple(",".join(map(str, d.cuts)) for d in stl),
        ),
        latency_s=rows("latency_mean"),
        edge_energy_j=rows("edge_energy"),
        bytes_sent=rows("bytes"),
        test_accuracy=np.array(
            [list(mtl[0].test_accuracy), list(stl[0].test_accuracy)], dtype=float
        ),
    )


MTL_C, STL_C = "#4c72b0", "#dd8452"


def _pair_bars(
    ax: Any,
    labels: Sequence[str],
    values: np.ndarray,
    texts: Sequence[Sequence[str]],
    *,
    log: bool = False,
    names: Sequence[str] = ("one backbone (MTL)", "one network per task (STL)"),
) -> None:
    """Two bars (MTL, STL) per group, each with its value written above it; on a log axis
    where ``log`` (values far apart: the small ones stay readable)."""
    x = np.arange(len(labels))
    w = 0.38
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 1.0
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
    for r, (name, colour) in enumerate(zip(names, (MTL_C, STL_C), strict=True)):
        bars = ax.bar(x + (r - 0.5) * w, values[r], w, color=colour, label=name)
        for b, t in zip(bars, texts[r], strict=True):
            ax.annotate(
                t,
                (b.get_x() + b.get_width() / 2, b.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=6.5,
            )
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    if log:
        ax.set_ylim(float(finite.min()) / 3, top * 4)
    else:
        ax.set_ylim(0, 1.18 * top if top > 0 else 1.0)
    ax.grid(True, axis="y", alpha=0.3)


def _same_cuts(cuts: str) -> str:
    """ "27 each" for "27,27,27": long lists of cuts crowd the tick labels."""
    parts = cuts.split(",")
    return f"{parts[0]} each" if len(parts) > 1 and len(set(parts)) == 1 else cuts


def render_tasks(
    info: TasksInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Latency, edge energy and bytes sent per placement, one backbone against one
    network per task, and each task's test accuracy."""
    fig = Figure(figsize=(6 + 3.6 * len(info.placements), 4.8))
    n = len(info.placements)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [n, n, n, max(2, len(info.tasks))]})
    groups = [
        f"{wrap(p, 14)}\nMTL cut {m}\nSTL cuts {_same_cuts(s)}"
        for p, m, s in zip(info.placements, *info.cuts, strict=True)
    ]
    for ax, values, quantity, label in (
        (axes[0], info.latency_s, "s", "mean latency"),
        (axes[1], info.edge_energy_j, "J", "edge energy per inference"),
        (axes[2], info.bytes_sent, "B", "bytes sent per inference"),
    ):
        unit, div = fmt.unit_for(quantity, values)
        shown = values / div
        log = bool(values.size and values.min() > 0 and values.max() / values.min() >= 30)
        texts = [[fmt.with_unit(quantity, float(v)) for v in row] for row in values]
        _pair_bars(ax, groups, shown, texts, log=log)
        ax.set_ylabel(f"{label} ({unit}{', log scale' if log else ''})", fontsize=9)
        ax.set_title(label + (f" (STL {info.schedule})" if quantity == "s" else ""), fontsize=10)
    acc = 100 * info.test_accuracy
    _pair_bars(axes[3], list(info.tasks), acc, [[f"{v:.1f}%" for v in row] for row in acc])
    axes[3].set_ylim(0, 110)
    axes[3].set_ylabel("test accuracy (%)", fontsize=9)
    axes[3].set_title("test accuracy per task (final heads)", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"{info.title}\ndense, no exit taken; STL cuts in task order; the single-task "
        "side's costs are sums over its networks",
        fontsize=11,
    )
    fig.subplots_adjust(wspace=0.3, top=0.8)
    return save(fig, path, formats=formats, dpi=dpi)
