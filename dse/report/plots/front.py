"""The Pareto front: which trials are on the feasible front and the knee
(:class:`FrontInfo`), drawn as a scatter or a matrix of pairwise projections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse.report.plots.draw import DPI, FORMATS, metric_axis, plain_log_ticks, save
from dse.search import Ruler, knee, pareto_mask

BASELINE_STYLE: dict[str, tuple[str, str]] = {  # marker, colour
    "edge-only": ("s", "#2ca02c"),
    "server-only": ("D", "#9467bd"),
    "neurosurgeon": ("^", "#8c564b"),
    "edgent": ("v", "#e377c2"),
    "spinn": ("P", "#17becf"),
    "auto-split": ("*", "#bcbd22"),
    "joint": ("X", "#000000"),
}


class FrontInfo(NamedTuple):
    """Every complete trial's objective values and which of them are on the front."""

    title: str
    names: tuple[str, ...]  # objective metrics, in study order
    directions: tuple[str, ...]
    values: np.ndarray  # [n, m], SI units
    trials: np.ndarray  # [n] trial numbers
    feasible: np.ndarray  # [n] bool
    on_front: np.ndarray  # [n] bool: non-dominated among the feasible trials
    knee: int | None  # row of the knee trial (closest to ideal on the ruler); None: none feasible
    baselines: dict[str, np.ndarray]  # label -> best point's values [m]
    reference: np.ndarray  # [k, m] the exhaustive grid's front ([0, m] if not given)


def front_mask(
    values: np.ndarray, directions: Sequence[str], feasible: np.ndarray | None = None
) -> np.ndarray:
    """Non-dominated rows among the feasible ones, on the raw values (no clipping)."""
    v = np.asarray(values, dtype=float).reshape(len(values), len(directions))
    feas = np.ones(len(v), dtype=bool) if feasible is None else np.asarray(feasible, bool)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    out = np.zeros(len(v), dtype=bool)
    idx = np.flatnonzero(feas & np.isfinite(v).all(axis=1))
    if len(idx):
        out[idx[pareto_mask(v[idx] * sign)]] = True
    return out


def knee_row(values: np.ndarray, on_front: np.ndarray, ruler: Ruler) -> int | None:
    """The front row closest to the ideal point on ``ruler`` (pareto.knee); None if empty."""
    idx = np.flatnonzero(on_front)
    if not len(idx):
        return None
    return int(idx[knee(ruler.loss(np.asarray(values)[idx]))])


def front_info(
    values: np.ndarray,
    names: Sequence[str],
    directions: Sequence[str],
    *,
    feasible: np.ndarray | None = None,
    trials: Sequence[int] | None = None,
    ruler: Ruler | None = None,
    baselines: Mapping[str, Sequence[float]] | None = None,
    reference: np.ndarray | None = None,
    title: str = "Pareto front",
) -> FrontInfo:
    """Which trials are on the (feasible) front, and the knee on ``ruler``.

    Without a ruler one is fitted to the feasible values. Baselines with identical best
    points are merged into one label ("edge-only = neurosurgeon").
    """
    m = len(names)
    v = np.asarray(values, dtype=float).reshape(-1, m)
    n = len(v)
    feas = np.ones(n, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    on = front_mask(v, directions, feas)
    if ruler is None:
        ruler = Ruler.fit(dict(zip(names, directions, strict=True)), v[feas] if feas.any() else v)
    merged: dict[str, np.ndarray] = {}
    for label, point in (baselines or {}).items():
        p = np.asarray(point, dtype=float)
        same = next((k for k, q in merged.items() if np.allclose(q, p, rtol=1e-12, atol=0)), None)
        if same is None:
            merged[label] = p
        else:
            merged[f"{same} = {label}"] = merged.pop(same)
    ref = np.zeros((0, m)) if reference is None else np.asarray(reference, float).reshape(-1, m)
    return FrontInfo(
        title=title,
        names=tuple(names),
        directions=tuple(directions),
        values=v,
        trials=np.asarray(trials if trials is not None else np.arange(n), dtype=int),
        feasible=feas,
        on_front=on,
        knee=knee_row(v, on, ruler),
        baselines=merged,
        reference=ref,
    )


def _front_panel(
    ax: Any,
    info: FrontInfo,
    i: int,
    j: int,
    divs: list[float],
    axes: list[tuple[bool, float, float]],
    *,
    line: bool,
) -> None:
    """Objective ``i`` on x, ``j`` on y; ``axes``: per objective (log, lo, hi) shown."""
    v = info.values
    x, y = v[:, i] / divs[i], v[:, j] / divs[j]
    bad = ~info.feasible
    dom = info.feasible & ~info.on_front
    if bad.any():
        ax.scatter(
            x[bad],
            y[bad],
            marker="x",
            s=14,
            c="#d62728",
            alpha=0.35,
            lw=0.8,
            label="infeasible trial",
            zorder=1,
        )
    if dom.any():
        ax.scatter(
            x[dom], y[dom], s=12, c="#9e9e9e", alpha=0.4, lw=0, label="dominated trial", zorder=2
        )
    if len(info.reference):
        r = info.reference
        ax.scatter(
            r[:, i] / divs[i],
            r[:, j] / divs[j],
            marker="+",
            s=40,
            c="#000000",
            alpha=0.6,
            lw=0.9,
            label="exhaustive grid front",
            zorder=3,
        )
    if info.on_front.any():
        fx, fy = x[info.on_front], y[info.on_front]
        if line:
            order = np.lexsort((fy, fx))
            ax.plot(
                fx[order],
                fy[order],
                drawstyle="steps-post",
                c="#1f77b4",
                lw=1.2,
                alpha=0.8,
                zorder=4,
            )
        ax.scatter(
            fx,
            fy,
            s=34,
            c="#1f77b4",
            edgecolors="black",
            lw=0.5,
            label="Pareto front (study)",
            zorder=5,
        )
    _best_points(ax, info, i, j, divs)
    _scales(ax, axes, i, j)
    ax.grid(True, alpha=0.3, which="both", lw=0.5)


def _best_points(ax: Any, info: FrontInfo, i: int, j: int, divs: list[float]) -> None:
    """Each baseline's best point (hollow) and the knee (a star) on objectives ``i``, ``j``."""
    for label, p in info.baselines.items():
        first = label.split(" = ")[0]
        marker, colour = BASELINE_STYLE.get(first, ("o", "#7f7f7f"))
        ax.scatter(
            [p[i] / divs[i]],
            [p[j] / divs[j]],
            marker=marker,
            s=90,
            facecolors="none",
            edgecolors=colour,
            lw=1.6,
            label=f"best of {label}",
            zorder=6,
        )
    if info.knee is not None:
        k = info.knee
        ax.scatter(
            [info.values[k, i] / divs[i]],
            [info.values[k, j] / divs[j]],
            marker="*",
            s=260,
            c="#ff7f0e",
            edgecolors="black",
            lw=0.7,
            label=f"recommended (knee): trial {info.trials[k]}",
            zorder=7,
        )


def _scales(ax: Any, axes: list[tuple[bool, float, float]], i: int, j: int) -> None:
    """Objective ``i``'s scale and range on x, ``j``'s on y."""
    for axis, col in (("x", i), ("y", j)):
        log, lo, hi = axes[col]
        if log:
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
            plain_log_ticks(ax, axis)
        (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)


def _front_axes(info: FrontInfo, divs: list[float]) -> tuple[list[tuple[bool, float, float]], int]:
    """Per objective: log scale?, shown range; from the trials and baselines (the grid's
    front may reach further: the count of its points left outside is returned too)."""
    core = [info.values, *[p.reshape(1, -1) for p in info.baselines.values()]]
    v = np.vstack(core) if len(info.values) or info.baselines else info.reference
    out = []
    for c, name in enumerate(info.names):
        col = v[:, c] / divs[c]
        col = col[np.isfinite(col)]
        if not len(col):
            out.append((False, 0.0, 1.0))
            continue
        lo, hi = float(col.min()), float(col.max())
        log = name not in ("accuracy", "test_accuracy") and lo > 0 and hi / lo >= 30
        if log:
            pad = (hi / lo) ** 0.06
            out.append((True, lo / pad, hi * pad))
        else:
            pad = (hi - lo) * 0.06 or (abs(hi) * 0.05 or 1.0)
            out.append((False, lo - pad, hi + pad))
    outside = 0
    for p in info.reference:
        shown = [lo <= p[c] / divs[c] <= hi for c, (_, lo, hi) in enumerate(out)]
        outside += not all(shown)
    return out, outside


def render_front(
    info: FrontInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Scatter (2 objectives: with the front line) or a matrix of pairwise projections."""
    m = len(info.names)
    allv = (
        np.vstack([info.values, info.reference, *info.baselines.values()])
        if (len(info.values) or len(info.reference))
        else np.zeros((0, m))
    )
    axes_text = [
        metric_axis(nm, allv[:, c] if len(allv) else [1.0]) for c, nm in enumerate(info.names)
    ]
    labels, divs = [a[0] for a in axes_text], [a[1] for a in axes_text]
    shown, outside = _front_axes(info, divs)
    n_feas = int(info.feasible.sum())
    distinct = len(np.unique(info.values[info.on_front], axis=0)) if info.on_front.any() else 0
    note = (
        f"{len(info.values)} trials, {n_feas} feasible, {int(info.on_front.sum())} on the "
        f"front ({distinct} distinct point{'s' if distinct != 1 else ''})"
        if n_feas
        else f"{len(info.values)} trials, NONE feasible: no front, nothing recommended"
    )
    if outside:
        note += f"; {outside} exhaustive-grid front points lie outside the axes"
    if m == 1:
        fig = Figure(figsize=(8, 4.5))
        ax = fig.add_subplot()
        v = info.values[:, 0] / divs[0]
        ax.scatter(info.trials, v, s=12, c=np.where(info.feasible, "#1f77b4", "#d62728"))
        if info.knee is not None:
            ax.scatter(
                [info.trials[info.knee]],
                [v[info.knee]],
                marker="*",
                s=260,
                c="#ff7f0e",
                edgecolors="black",
                label="best feasible trial",
            )
            ax.legend(fontsize=8)
        ax.set_xlabel("trial")
        ax.set_ylabel(labels[0])
        ax.grid(True, alpha=0.3)
        fig.suptitle(f"{info.title}\n{note}", fontsize=10)
        return save(fig, path, formats=formats, dpi=dpi)
    if m == 2:
        fig = Figure(figsize=(10, 5.5))
        ax = fig.add_subplot()
        _front_panel(ax, info, 0, 1, divs, shown, line=True)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        fig.suptitle(f"{info.title}\n{note}", fontsize=10)
        return save(fig, path, formats=formats, dpi=dpi)
    k = m - 1
    fig = Figure(figsize=(3.9 * k + 0.8, 3.5 * k + 0.8))
    grid = fig.add_gridspec(k, k, hspace=0.12, wspace=0.12)
    handles: dict[str, Any] = {}
    for r in range(k):
        for c in range(r + 1):
            ax = fig.add_subplot(grid[r, c])
            _front_panel(ax, info, c, r + 1, divs, shown, line=False)
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
            ax.set_xlabel(labels[c] if r == k - 1 else "", fontsize=9)
            ax.set_ylabel(labels[r + 1] if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8, labelbottom=r == k - 1, labelleft=c == 0)
    legend_ax = fig.add_subplot(grid[0, k - 1])
    legend_ax.axis("off")
    legend_ax.legend(
        list(handles.values()), list(handles), loc="upper right", fontsize=8, frameon=False
    )
    fig.suptitle(f"{info.title}\n{note}", fontsize=11)
    return save(fig, path, formats=formats, dpi=dpi)
