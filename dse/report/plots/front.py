"""The Pareto front: every trial, the front's distinct points and the answer
(:class:`FrontInfo`, from the decision every view shows: :class:`Decided`), drawn as a
scatter or a matrix of pairwise projections. Points under the learned floor are drawn
apart, never as front points.
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


class Decided(NamedTuple):
    """What the decision (:func:`dse.search.recommend`) says of the figure's points."""

    on_front: np.ndarray  # [n] bool: trials that scored one of the front's points
    below: np.ndarray  # [n] bool: trials under the learned floor
    points: np.ndarray  # [k, m] the front's distinct points
    by_grid: np.ndarray  # [k] bool: points the study's trials did not reach
    configurations: int  # configurations on the front, equivalent ones counted
    star: np.ndarray | None  # [m] the answer; None: nothing recommended
    star_label: str  # the answer's legend entry


class FrontInfo(NamedTuple):
    """Every complete trial's objective values, which of them are on the front, the
    front's distinct points and the answer."""

    title: str
    names: tuple[str, ...]  # objective metrics, in study order
    directions: tuple[str, ...]
    values: np.ndarray  # [n, m], SI units
    trials: np.ndarray  # [n] trial numbers
    feasible: np.ndarray  # [n] bool
    on_front: np.ndarray  # [n] bool: trials that scored a front point
    knee: int | None  # row of the answer's trial; None: not a trial, or nothing recommended
    baselines: dict[str, np.ndarray]  # label -> best point's values [m]
    reference: np.ndarray  # [k, m] the exhaustive grid's front ([0, m] if not given)
    below: np.ndarray | None = None  # [n] bool: trials under the learned floor
    points: np.ndarray | None = None  # [p, m] the front's distinct points
    by_grid: np.ndarray | None = None  # [p] bool: points only the exhaustive grid reached
    configurations: int = 0  # configurations on the front
    star: np.ndarray | None = None  # [m] the answer's values
    star_label: str = ""


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
    decided: Decided | None = None,
) -> FrontInfo:
    """Which trials are on the (feasible) front, its distinct points and the answer.

    ``decided``: what the decision says (the report's figure); without it the front is
    the feasible trials' and the answer their knee on ``ruler`` (fitted to the feasible
    values when None). Baselines with identical points are merged into one label
    ("edge-only = neurosurgeon").
    """
    m = len(names)
    v = np.asarray(values, dtype=float).reshape(-1, m)
    n = len(v)
    feas = np.ones(n, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    numbers = np.asarray(trials if trials is not None else np.arange(n), dtype=int)
    merged: dict[str, np.ndarray] = {}
    for label, point in (baselines or {}).items():
        p = np.asarray(point, dtype=float)
        same = next((k for k, q in merged.items() if np.allclose(q, p, rtol=1e-12, atol=0)), None)
        if same is None:
            merged[label] = p
        else:
            merged[f"{same} = {label}"] = merged.pop(same)
    ref = np.zeros((0, m)) if reference is None else np.asarray(reference, float).reshape(-1, m)
    if decided is None:
        on = front_mask(v, directions, feas)
        if ruler is None:
            ruler = Ruler.fit(
                dict(zip(names, directions, strict=True)), v[feas] if feas.any() else v
            )
        k = knee_row(v, on, ruler)
        points = np.unique(v[on], axis=0) if on.any() else np.zeros((0, m))
        decided = Decided(
            on,
            np.zeros(n, dtype=bool),
            points,
            np.zeros(len(points), dtype=bool),
            int(on.sum()),
            None if k is None else v[k],
            "recommended (knee)" if k is None else f"recommended (knee): trial {numbers[k]}",
        )
    star = decided.star
    knee = None
    if star is not None:
        hit = np.flatnonzero(decided.on_front & np.all(np.isclose(v, star, rtol=1e-9), axis=1))
        knee = int(hit[0]) if len(hit) else None
    return FrontInfo(
        title=title,
        names=tuple(names),
        directions=tuple(directions),
        values=v,
        trials=numbers,
        feasible=feas,
        on_front=np.asarray(decided.on_front, dtype=bool),
        knee=knee,
        baselines=merged,
        reference=ref,
        below=np.asarray(decided.below, dtype=bool),
        points=np.asarray(decided.points, dtype=float).reshape(-1, m),
        by_grid=np.asarray(decided.by_grid, dtype=bool),
        configurations=decided.configurations,
        star=star,
        star_label=decided.star_label,
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
    below = _below(info)
    bad = ~info.feasible
    dom = info.feasible & ~info.on_front & ~below
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
    if (below & info.feasible).any():
        under = below & info.feasible
        ax.scatter(
            x[under],
            y[under],
            marker="v",
            s=18,
            facecolors="none",
            edgecolors="#8c564b",
            alpha=0.6,
            lw=0.8,
            label="below the learned floor (not a candidate)",
            zorder=2,
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
    points = _points(info)
    if len(points):
        fx, fy = points[:, i] / divs[i], points[:, j] / divs[j]
        grid = info.by_grid if info.by_grid is not None else np.zeros(len(points), dtype=bool)
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
        if (~grid).any():
            ax.scatter(
                fx[~grid],
                fy[~grid],
                s=34,
                c="#1f77b4",
                edgecolors="black",
                lw=0.5,
                label="Pareto front: a point the study found",
                zorder=5,
            )
        if grid.any():
            ax.scatter(
                fx[grid],
                fy[grid],
                s=34,
                facecolors="white",
                edgecolors="#1f77b4",
                lw=1.2,
                label="Pareto front: a point only the exhaustive grid found",
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
            # a baseline's restricted front decided by the answer's rule; edge-only and
            # server-only baselines carry no exit, unlike the answer's edge-only alternative
            label=f"baseline {label}'s pick"
            + (" (no exit)" if first in ("edge-only", "server-only") else ""),
            zorder=6,
        )
    if info.star is not None:
        ax.scatter(
            [info.star[i] / divs[i]],
            [info.star[j] / divs[j]],
            marker="*",
            s=260,
            c="#ff7f0e",
            edgecolors="black",
            lw=0.7,
            label=info.star_label or "recommended",
            zorder=7,
        )


def _below(info: FrontInfo) -> np.ndarray:
    """Trials under the learned floor (none where the info does not say)."""
    return (
        np.asarray(info.below, dtype=bool)
        if info.below is not None
        else np.zeros(len(info.values), dtype=bool)
    )


def _points(info: FrontInfo) -> np.ndarray:
    """The front's distinct points (the on-front trials' where the info has none)."""
    if info.points is not None:
        return info.points
    return np.unique(info.values[info.on_front], axis=0) if info.on_front.any() else info.points


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
    m = len(info.names)
    extra = [
        np.asarray(p, dtype=float).reshape(-1, m)
        for p in (info.points, info.star)
        if p is not None and len(p)
    ]
    core = [info.values, *extra, *[p.reshape(1, -1) for p in info.baselines.values()]]
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


def front_note(info: FrontInfo) -> str:
    """The figure's second title line: trials, feasible ones, the front's distinct points
    and configurations (as every view counts them), who found them, and the trials under
    the learned floor."""
    n_feas = int(info.feasible.sum())
    points = _points(info)
    k = len(points) if points is not None else 0
    if not n_feas:
        return f"{len(info.values)} trials, NONE feasible: no front, nothing recommended"
    grid = int(np.sum(info.by_grid)) if info.by_grid is not None else 0
    under = int((_below(info) & info.feasible).sum())
    note = (
        f"{len(info.values)} trials, {n_feas} feasible; front: {k} distinct "
        f"point{'s' if k != 1 else ''} ({info.configurations} configuration"
        f"{'s' if info.configurations != 1 else ''})"
    )
    if grid:
        note += f", {grid} found only by the exhaustive grid"
    if under:
        note += f"; {under} feasible trial{'s' if under != 1 else ''} below the learned floor"
    if info.star is None:
        note += "; nothing above the learned floor: nothing recommended"
    return note


def render_front(
    info: FrontInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Scatter (2 objectives: with the front line) or a matrix of pairwise projections."""
    m = len(info.names)
    extra = [
        np.asarray(p, dtype=float).reshape(-1, m)
        for p in (info.points, info.star)
        if p is not None and len(p)
    ]
    allv = (
        np.vstack([info.values, info.reference, *extra, *info.baselines.values()])
        if (len(info.values) or len(info.reference))
        else np.zeros((0, m))
    )
    axes_text = [
        metric_axis(nm, allv[:, c] if len(allv) else [1.0]) for c, nm in enumerate(info.names)
    ]
    labels, divs = [a[0] for a in axes_text], [a[1] for a in axes_text]
    shown, outside = _front_axes(info, divs)
    note = front_note(info)
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
                label=info.star_label or "recommended",
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
