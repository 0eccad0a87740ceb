"""Figures of a study: compute the data first (``*_info(...) -> NamedTuple``), then render.

Every figure has a pure compute function returning a NamedTuple of plain numbers (which
trials are on the front, the best cut per bandwidth, ...), which tests check, and a
``render_*(info, path)`` that draws it with matplotlib and writes ``path`` as PNG and SVG.
Info tuples hold SI units (s, bytes, J, FLOP, fractions); renderers show human units
(ms, kB, mJ, %), picked per axis so that the numbers read well.

This is the only module of dse that imports matplotlib, and it never touches pyplot's
global state: figures are made with ``matplotlib.figure.Figure`` directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from dse.costmodel import CostTable, DeviceProfile, LayerGraph, LinkProfile, cost_table
from dse.search import Candidate, Ruler, knee, pareto_mask

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

BASELINE_STYLE: dict[str, tuple[str, str]] = {  # marker, colour
    "edge-only": ("s", "#2ca02c"),
    "server-only": ("D", "#9467bd"),
    "neurosurgeon": ("^", "#8c564b"),
    "edgent": ("v", "#e377c2"),
    "spinn": ("P", "#17becf"),
    "auto-split": ("*", "#bcbd22"),
    "joint": ("X", "#000000"),
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


# --------------------------------------------------------------------------------------
# Pareto front
# --------------------------------------------------------------------------------------


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
            [x[k]],
            [y[k]],
            marker="*",
            s=260,
            c="#ff7f0e",
            edgecolors="black",
            lw=0.7,
            label=f"recommended (knee): trial {info.trials[k]}",
            zorder=7,
        )
    for axis, col in (("x", i), ("y", j)):
        log, lo, hi = axes[col]
        if log:
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
            _plain_log_ticks(ax, axis)
        (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    ax.grid(True, alpha=0.3, which="both", lw=0.5)


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


def render_front(info: FrontInfo, path: str | Path) -> list[Path]:
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
        return _save(fig, path)
    if m == 2:
        fig = Figure(figsize=(10, 5.5))
        ax = fig.add_subplot()
        _front_panel(ax, info, 0, 1, divs, shown, line=True)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        fig.suptitle(f"{info.title}\n{note}", fontsize=10)
        return _save(fig, path)
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
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# per-layer profile
# --------------------------------------------------------------------------------------


class LayerProfileInfo(NamedTuple):
    """Per backbone layer: edge and server latency; per cut: bytes sent and cleanness."""

    title: str
    layers: tuple[str, ...]  # backbone node names, in order (layer i runs in cut >= i+1)
    kinds: tuple[str, ...]
    edge_s: np.ndarray  # [n] per layer on the edge device
    server_s: np.ndarray  # [n] per layer on the server
    cut_bytes: np.ndarray  # [n + 1] bytes sent at cut k (0: the input; n: nothing)
    clean: np.ndarray  # [n + 1] bool: exactly one tensor crosses cut k
    exits: tuple[tuple[str, int], ...]  # (exit name, cut position it hangs off)


def layer_profile_info(
    table: CostTable, *, exit_names: Sequence[str] = (), title: str | None = None
) -> LayerProfileInfo:
    g = table.graph
    nodes = g.backbone_nodes()
    names = tuple(exit_names) or tuple(e.site for e in g.exits)
    return LayerProfileInfo(
        title=title
        or (
            f"Per-layer cost of {g.model_name}: {table.edge.name} (edge) vs "
            f"{table.server.name} (server); cut sizes sent over {table.link.name}"
        ),
        layers=tuple(n.name for n in nodes),
        kinds=tuple(n.kind for n in nodes),
        edge_s=np.asarray(table.edge_layer_s, float),
        server_s=np.asarray(table.server_layer_s, float),
        cut_bytes=np.asarray(table.cut_bytes, float),
        clean=np.array([c.clean for c in g.cuts], dtype=bool),
        exits=tuple(
            (names[i] if i < len(names) else e.site, int(e.position)) for i, e in enumerate(g.exits)
        ),
    )


def _layer_ticks(ax: Any, labels: Sequence[str], positions: Sequence[float]) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / 60))
    ax.set_xticks([positions[i] for i in range(0, n, step)])
    ax.set_xticklabels(
        [labels[i] for i in range(0, n, step)], rotation=90, fontsize=7 if n > 30 else 8
    )


def render_layer_profile(info: LayerProfileInfo, path: str | Path) -> list[Path]:
    n = len(info.layers)
    fig = Figure(figsize=(min(26.0, max(9.0, 0.3 * n + 3.5)), 6.2))
    ax = fig.add_subplot()
    unit, div = unit_for("s", np.concatenate([info.edge_s, info.server_s]))
    x = np.arange(1, n + 1)
    ax.bar(
        x - 0.2,
        info.edge_s / div,
        width=0.4,
        color=EDGE_C,
        label=f"edge layer latency (sum {_fmt_s(info.edge_s.sum())})",
    )
    ax.bar(
        x + 0.2,
        info.server_s / div,
        width=0.4,
        color=SERVER_C,
        label=f"server layer latency (sum {_fmt_s(info.server_s.sum())})",
    )
    pos = np.concatenate([info.edge_s, info.server_s])
    pos = pos[pos > 0]
    if len(pos) and pos.max() / pos.min() > 20:
        ax.set_yscale("log")
        # at most four decades: a fused activation's few picoseconds would otherwise
        # stretch the axis so far that the layers that matter look alike
        low = max(pos.min(), pos.max() * 1e-4)
        ax.set_ylim(low / div / 2, pos.max() / div * 2)
        _plain_log_ticks(ax, "y")
    ax.set_ylabel(f"latency per layer ({unit})")
    ax.set_xlim(0, n + 1)
    _layer_ticks(ax, [f"{a} ({k})" for a, k in zip(info.layers, info.kinds, strict=True)], x)
    ax.grid(True, axis="y", alpha=0.3, which="both", lw=0.5)

    ax2 = ax.twinx()
    sent = info.cut_bytes[:n]  # cut n (edge-only) sends nothing: left out of the log line
    bunit, bdiv = unit_for("B", sent)
    cx = np.arange(n) + 0.5
    ax2.plot(cx, sent / bdiv, color=LINK_C, lw=1.5, zorder=5)
    cl = info.clean[:n]
    ax2.scatter(cx[cl], sent[cl] / bdiv, color=LINK_C, s=22, zorder=6)
    ax2.scatter(cx[~cl], sent[~cl] / bdiv, facecolors="white", edgecolors=LINK_C, s=22, zorder=6)
    positive = sent[sent > 0]
    if len(positive):
        ax2.set_yscale("log")
        ax2.set_ylim(positive.min() / bdiv / 3, positive.max() / bdiv * 3)
        _plain_log_ticks(ax2, "y")
    ax2.set_ylabel(f"bytes sent if cut here ({bunit}, log)", color=LINK_C)
    ax2.tick_params(axis="y", colors=LINK_C)
    for name, p in info.exits:
        ax.axvline(p + 0.5, color="#555555", ls=":", lw=1.2)
        ax.annotate(
            f"exit {name}",
            (p + 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="#333333",
        )
    ax2.annotate(
        "edge-only:\nnothing sent",
        (n + 0.5, 0.02),
        xycoords=("data", "axes fraction"),
        ha="right",
        fontsize=7,
        color="#555555",
    )
    handles = [
        *ax.get_legend_handles_labels()[0],
        Line2D(
            [],
            [],
            color=LINK_C,
            marker="o",
            lw=1.5,
            label="bytes sent at the cut after the layer (filled: clean cut)",
        ),
        Line2D(
            [],
            [],
            color=LINK_C,
            marker="o",
            markerfacecolor="white",
            lw=0,
            label="cut where several tensors cross",
        ),
    ]
    if info.exits:
        handles.append(Line2D([], [], color="#555555", ls=":", label="exit site"))
    if cl.all():
        handles.pop(-2 if info.exits else -1)
    ax.legend(
        handles=handles,
        fontsize=8,
        loc="lower center",
        ncol=2,
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    ax.set_title(info.title, fontsize=10, pad=48)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# split sweep
# --------------------------------------------------------------------------------------


class SplitSweepInfo(NamedTuple):
    """Latency per cut, edge / transfer / server, with no exit taken."""

    title: str
    cuts: np.ndarray  # [c] cut indices (all cuts of the graph)
    labels: tuple[str, ...]  # what each cut is after ("input" for 0)
    edge_s: np.ndarray
    transfer_s: np.ndarray
    server_s: np.ndarray
    total_s: np.ndarray
    bytes: np.ndarray
    allowed: np.ndarray  # bool: the cut is in the study's space
    best: int  # fastest allowed cut (no exit)
    chosen: int | None  # the recommended configuration's cut
    policy_s: np.ndarray | None  # expected latency per cut with the chosen exits/threshold


def split_sweep_info(
    table: CostTable,
    *,
    allowed: Sequence[int] | None = None,
    chosen: int | None = None,
    policy_s: Sequence[float] | None = None,
    title: str | None = None,
) -> SplitSweepInfo:
    n = table.n_cuts
    ok = np.zeros(n, dtype=bool)
    ok[list(range(n)) if allowed is None else list(allowed)] = True
    total = np.asarray(table.total_s, float)
    best = int(np.flatnonzero(ok)[np.argmin(total[ok])])
    labels = tuple(c.after for c in table.graph.cuts)
    return SplitSweepInfo(
        title=title
        or (
            f"Latency per cut of {table.graph.model_name} on {table.edge.name} -> "
            f"{table.link.name} -> {table.server.name}"
        ),
        cuts=np.arange(n),
        labels=labels,
        edge_s=np.asarray(table.edge_s, float),
        transfer_s=np.asarray(table.transfer_s, float),
        server_s=np.asarray(table.server_s, float),
        total_s=total,
        bytes=np.asarray(table.cut_bytes, float),
        allowed=ok,
        best=best,
        chosen=chosen,
        policy_s=None if policy_s is None else np.asarray(policy_s, float),
    )


def render_split_sweep(info: SplitSweepInfo, path: str | Path) -> list[Path]:
    n = len(info.cuts)
    fig = Figure(figsize=(min(26.0, max(9.0, 0.3 * n + 3.5)), 6.0))
    ax = fig.add_subplot()
    top = info.total_s if info.policy_s is None else np.maximum(info.total_s, info.policy_s)
    unit, div = unit_for("s", top)
    x = info.cuts
    e, t, s = info.edge_s / div, info.transfer_s / div, info.server_s / div
    alpha = np.where(info.allowed, 1.0, 0.35)
    for vals, bottom, colour, label in (
        (e, 0, EDGE_C, "edge compute"),
        (t, e, LINK_C, "transfer (uplink + RTT + result)"),
        (s, e + t, SERVER_C, "server compute"),
    ):
        bars = ax.bar(x, vals, bottom=bottom, color=colour, width=0.75, label=label)
        for b, a in zip(bars, alpha, strict=True):
            b.set_alpha(a)
    if info.policy_s is not None:
        ax.plot(
            x,
            info.policy_s / div,
            color="black",
            marker=".",
            lw=1.2,
            label="expected latency with the recommended exits and threshold",
        )
    ymax = top.max() / div
    ax.set_ylim(0, ymax * 1.25)
    last = n - 1
    notes: dict[int, list[str]] = {0: [f"server-only\n{_fmt_s(info.total_s[0])}"]}
    notes.setdefault(last, []).append(f"edge-only\n{_fmt_s(info.total_s[last])}")
    if info.best not in (0, last):
        notes.setdefault(info.best, []).append(f"fastest\n{_fmt_s(info.total_s[info.best])}")
    if info.chosen is not None:
        notes.setdefault(info.chosen, []).append("recommended")
    for k, lines in notes.items():
        bar_top = max(info.total_s[k], 0 if info.policy_s is None else info.policy_s[k]) / div
        chosen = info.chosen == k
        ax.annotate(
            "\n".join(lines),
            (k, bar_top),
            xytext=(k, ymax * 1.07),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#c55a00" if chosen else "black",
            fontweight="bold" if chosen else "normal",
            arrowprops={"arrowstyle": "->", "lw": 0.7, "color": "#c55a00" if chosen else "black"},
        )
    ax.set_xticks(x)
    ax.set_xticklabels(
        [f"{k}: {lab}" for k, lab in zip(x, info.labels, strict=True)],
        rotation=90,
        fontsize=7 if n > 30 else 8,
    )
    ax.set_xlabel("cut (the edge runs every layer up to and including the named one)")
    ax.set_ylabel(f"latency per inference, no early exit ({unit})")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    faded = "; faded cuts are outside the study's space" if not info.allowed.all() else ""
    ax.set_title(info.title + faded, fontsize=10)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# exits
# --------------------------------------------------------------------------------------


class ExitInfo(NamedTuple):
    """Per exit subset and threshold, at one cut of one network."""

    title: str
    split: int
    thresholds: np.ndarray  # [t]
    subsets: tuple[tuple[int, ...], ...]  # [s] exit indices
    labels: tuple[str, ...]  # [s]
    accuracy: np.ndarray  # [s, t] validation
    test_accuracy: np.ndarray  # [s, t]
    exit_rate: np.ndarray  # [s, t] fraction of validation samples leaving at an early exit
    latency_s: np.ndarray  # [s, t] expected latency
    final_accuracy: float  # no exit at all (validation)
    final_latency_s: float
    chosen: tuple[tuple[int, ...], float] | None  # the recommended (exits, threshold)


def exit_info(
    score: Callable[[Candidate], Any],
    candidate: Candidate,
    subsets: Sequence[tuple[int, ...]],
    thresholds: Sequence[float],
    *,
    exit_names: Sequence[str] = (),
    chosen: bool = True,
    title: str = "Early exits",
) -> ExitInfo:
    """Score every (subset, threshold) at the candidate's network and cut.

    ``score`` maps a Candidate to Metrics (``Scorer.score``).
    """
    subs = tuple(tuple(s) for s in subsets if len(s))
    th = np.asarray(thresholds, dtype=float)
    acc = np.zeros((len(subs), len(th)))
    tacc, rate, lat = np.zeros_like(acc), np.zeros_like(acc), np.zeros_like(acc)
    for i, s in enumerate(subs):
        for j, t in enumerate(th):
            m = score(replace(candidate, exits=s, threshold=float(t)))
            acc[i, j], tacc[i, j], lat[i, j] = m.accuracy, m.test_accuracy, m.latency_mean
            rate[i, j] = 1.0 - m.exit_rates[-1]
    base = score(replace(candidate, exits=()))

    def name(i: int) -> str:
        return exit_names[i] if i < len(exit_names) else f"exit {i}"

    return ExitInfo(
        title=title,
        split=candidate.split,
        thresholds=th,
        subsets=subs,
        labels=tuple(" + ".join(name(i) for i in s) for s in subs),
        accuracy=acc,
        test_accuracy=tacc,
        exit_rate=rate,
        latency_s=lat,
        final_accuracy=float(base.accuracy),
        final_latency_s=float(base.latency_mean),
        chosen=(tuple(candidate.exits), float(candidate.threshold))
        if chosen and candidate.exits
        else None,
    )


def render_exits(info: ExitInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(15, 4.8))
    axes = fig.subplots(1, 3)
    unit, div = unit_for("s", np.append(info.latency_s, info.final_latency_s))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]
    k = len(info.subsets)
    for i, lab in enumerate(info.labels):
        # earlier subsets drawn wider, so identical curves stay visible under later ones
        kw = {
            "color": f"C{i % 10}",
            "ls": styles[i % 4],
            "marker": markers[i % 6],
            "ms": 3 + 2.5 * (k - i) / k,
            "lw": 1 + 2.0 * (k - i) / k,
            "alpha": 0.85,
        }
        axes[0].plot(info.thresholds, 100 * info.accuracy[i], label=lab, **kw)
        axes[1].plot(info.thresholds, 100 * info.exit_rate[i], **kw)
        axes[2].plot(info.thresholds, info.latency_s[i] / div, **kw)
    axes[0].axhline(100 * info.final_accuracy, color="black", ls="--", lw=1, label="no early exit")
    axes[2].axhline(info.final_latency_s / div, color="black", ls="--", lw=1)
    if info.chosen is not None and info.chosen[0] in info.subsets:
        i = info.subsets.index(info.chosen[0])
        j = int(np.argmin(np.abs(info.thresholds - info.chosen[1])))
        for ax, arr in (
            (axes[0], 100 * info.accuracy),
            (axes[1], 100 * info.exit_rate),
            (axes[2], info.latency_s / div),
        ):
            ax.scatter(
                [info.thresholds[j]],
                [arr[i, j]],
                marker="*",
                s=220,
                c="#ff7f0e",
                edgecolors="black",
                zorder=5,
                label="recommended" if ax is axes[0] else None,
            )
    accs = 100 * np.append(info.accuracy.ravel(), info.final_accuracy)
    lo, hi = float(accs.min()), float(accs.max())
    pad = max(0.1 * (hi - lo), 0.5)
    axes[0].set_ylim(lo - pad, min(hi + pad, 100.5))
    axes[0].set_ylabel("validation accuracy (%)")
    axes[1].set_ylabel("samples leaving at an early exit (%)")
    axes[1].set_ylim(-3, 103)
    axes[2].set_ylabel(f"expected latency ({unit})")
    for ax in axes:
        ax.set_xlabel("confidence threshold (max softmax probability)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, title="exits used", title_fontsize=8)
    fig.suptitle(info.title, fontsize=11)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# bandwidth regime map
# --------------------------------------------------------------------------------------

REGIMES = ("server-only", "split", "edge-only")
REGIME_C = {"server-only": "#e8dff5", "split": "#fde9d9", "edge-only": "#ddefd9"}


class BandwidthInfo(NamedTuple):
    """The best cut and its latency as the uplink sweeps."""

    title: str
    uplink_bps: np.ndarray  # [b]
    cuts: np.ndarray  # [c] the allowed cuts
    latency_s: np.ndarray  # [b, c] expected latency per allowed cut
    best_cut: np.ndarray  # [b]
    best_s: np.ndarray  # [b]
    regime: tuple[str, ...]  # [b] "server-only" | "split" | "edge-only"
    last_cut: int  # the edge-only cut of the graph
    link_bps: float  # the link's own uplink


def bandwidth_info(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    cuts: Sequence[int] | None = None,
    bandwidths: Sequence[float] | None = None,
    score: Callable[[CostTable, Candidate], float] | None = None,
    candidate: Candidate | None = None,
    tail: bool = True,
    title: str | None = None,
) -> BandwidthInfo:
    """Sweep the uplink from 0.1 Mbit/s to 1 Gbit/s (default) with the cost model.

    The link's uplink is replaced, everything else (RTT, downlink, radio) is kept. With
    ``score`` and ``candidate`` the latency of a cut is ``score(table, candidate at that
    cut)`` (the exit policy's expected latency); without, the no-exit latency of the cut.
    """
    bw = np.asarray(np.logspace(5, 9, 81) if bandwidths is None else bandwidths, float)
    last = len(graph.cuts) - 1
    cs = np.asarray(range(last + 1) if cuts is None else sorted(cuts), dtype=int)
    lat = np.zeros((len(bw), len(cs)))
    for i, b in enumerate(bw):
        table = cost_table(graph, edge, server, replace(link, uplink_bps=float(b)), tail=tail)
        if score is None or candidate is None:
            lat[i] = table.total_s[cs]
        else:
            lat[i] = [score(table, replace(candidate, split=int(k))) for k in cs]
    # Ties go to edge-only: a cut whose samples all leave at an edge exit sends nothing and
    # costs what edge-only costs, and must not be called a split.
    tie = lat <= lat.min(axis=1, keepdims=True) * (1 + 1e-9)
    best_i = np.where(tie[:, -1] & (cs[-1] == last), len(cs) - 1, np.argmax(tie, axis=1))
    best = cs[best_i]
    regime = tuple("server-only" if k == 0 else "edge-only" if k == last else "split" for k in best)
    return BandwidthInfo(
        title=title
        or (
            f"Best cut of {graph.model_name} vs uplink bandwidth: {edge.name} -> "
            f"{server.name}, {link.name} RTT {link.rtt_s * 1e3:.3g} ms"
        ),
        uplink_bps=bw,
        cuts=cs,
        latency_s=lat,
        best_cut=best,
        best_s=lat[np.arange(len(bw)), best_i],
        regime=regime,
        last_cut=last,
        link_bps=float(link.uplink_bps),
    )


def regime_spans(info: BandwidthInfo) -> list[tuple[str, float, float]]:
    """Consecutive runs of one regime: (regime, lowest, highest uplink in bit/s)."""
    spans: list[tuple[str, float, float]] = []
    for r, b in zip(info.regime, info.uplink_bps, strict=True):
        if spans and spans[-1][0] == r:
            spans[-1] = (r, spans[-1][1], float(b))
        else:
            spans.append((r, float(b), float(b)))
    return spans


def render_bandwidth(info: BandwidthInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(10, 7.2))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1.2]})
    mbps = info.uplink_bps / 1e6
    unit, div = unit_for("s", info.best_s)
    # shade each regime over the geometric midpoints between samples
    edges = np.sqrt(mbps[1:] * mbps[:-1])
    left = np.concatenate([[mbps[0]], edges])
    right = np.concatenate([edges, [mbps[-1]]])
    for a in (ax, ax2):
        for i, r in enumerate(info.regime):
            a.axvspan(left[i], right[i], color=REGIME_C[r], lw=0, zorder=0)
    col = {int(k): i for i, k in enumerate(info.cuts)}
    ax.plot(mbps, info.best_s / div, color="black", lw=2.5, label="best cut", zorder=3)
    if 0 in col:
        ax.plot(
            mbps,
            info.latency_s[:, col[0]] / div,
            color="#9467bd",
            ls="--",
            lw=1.2,
            label="server-only",
        )
    if info.last_cut in col:
        ax.plot(
            mbps,
            info.latency_s[:, col[info.last_cut]] / div,
            color="#2ca02c",
            ls="--",
            lw=1.2,
            label="edge-only",
            zorder=4,
        )
    ax.set_xscale("log")
    ax.set_xlim(mbps[0], mbps[-1])
    spans = regime_spans(info)
    if len(spans) == 1:
        ax.text(
            0.5,
            0.5,
            f"{spans[0][0]} wins at every bandwidth shown",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=11,
            color="#333333",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#999999"},
        )
    _log_if_wide(ax, "y", info.latency_s / div, ratio=20)
    if ax.get_yscale() == "log":
        _plain_log_ticks(ax, "y")
    ax.set_ylabel(f"expected latency ({unit})")
    ax.grid(True, alpha=0.3, which="both", lw=0.5)
    link_mbps = info.link_bps / 1e6
    for a in (ax, ax2):
        a.axvline(link_mbps, color="#333333", lw=1, ls=":")
    ax.annotate(
        f"this link: {link_mbps:.3g} Mbit/s",
        (link_mbps, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        fontsize=8,
    )
    handles = ax.get_legend_handles_labels()[0] + [
        Patch(color=REGIME_C[r], label=f"{r} wins") for r in REGIMES if r in info.regime
    ]
    ax.legend(handles=handles, fontsize=8, loc="lower left", framealpha=0.9)
    ax2.step(mbps, info.best_cut, where="mid", color="black", lw=1.5)
    ax2.set_ylabel("best cut")
    ax2.set_ylim(-0.5, info.last_cut + 0.5)
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax2.set_xlabel("uplink bandwidth (Mbit/s, log)")
    ax2.xaxis.set_major_locator(LogLocator(base=10))
    _plain_log_ticks(ax2, "x")
    ax2.grid(True, alpha=0.3, which="both", lw=0.5)
    ax.set_title(_wrap(info.title, 100), fontsize=10)
    fig.subplots_adjust(hspace=0.08)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# density
# --------------------------------------------------------------------------------------


class DensityInfo(NamedTuple):
    """Per sparsity method, per density: accuracy, storage, FLOPs, edge-only latency."""

    title: str
    methods: tuple[str, ...]
    densities: dict[str, np.ndarray]  # method -> requested densities, descending (1.0 = dense)
    realised: dict[str, np.ndarray]  # weights kept over the dense network's: the x axis
    accuracy: dict[str, np.ndarray]  # validation, final classifier
    test_accuracy: dict[str, np.ndarray]
    stored_bytes: dict[str, np.ndarray]  # every layer and exit head, as stored
    flops: dict[str, np.ndarray]  # backbone FLOPs a sparse kernel would do
    edge_only_s: dict[str, np.ndarray]  # whole backbone on the edge device (cost model)


def density_info(
    networks: Mapping[tuple[str, float], Any],
    methods: Sequence[str],
    *,
    title: str = "Accuracy and cost against density",
) -> DensityInfo:
    """``networks`` maps (method, density) to a Scorer; ("dense", 1.0) joins every method."""
    out: dict[str, dict[str, list[float]]] = {}
    for method in methods:
        rows = sorted(
            ((d, s) for (m, d), s in networks.items() if m == method or m == "dense"),
            key=lambda r: -r[0],
        )
        acc, tacc, stored, flops, lat, dens, real = [], [], [], [], [], [], []
        for d, s in rows:
            g = s.graph
            dens.append(float(d))
            real.append(float(s.realised_density))
            acc.append(float(s.trained.accuracy("val")[-1]))
            tacc.append(float(s.trained.accuracy("test")[-1]))
            stored.append(float(sum(n.stored_bytes for n in g.nodes.values())))
            flops.append(float(sum(n.sparse_flops for n in g.backbone_nodes())))
            lat.append(float(s.table.total_s[-1]))
        out[method] = {"d": dens, "r": real, "a": acc, "t": tacc, "s": stored, "f": flops, "l": lat}

    def col(key: str) -> dict[str, np.ndarray]:
        return {m: np.asarray(v[key], float) for m, v in out.items()}

    return DensityInfo(
        title=title,
        methods=tuple(methods),
        densities=col("d"),
        realised=col("r"),
        accuracy=col("a"),
        test_accuracy=col("t"),
        stored_bytes=col("s"),
        flops=col("f"),
        edge_only_s=col("l"),
    )


def render_density(info: DensityInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(16, 4.6))
    axes = fig.subplots(1, 4)
    allb = np.concatenate([v for v in info.stored_bytes.values()] or [np.ones(1)])
    allf = np.concatenate([v for v in info.flops.values()] or [np.ones(1)])
    alll = np.concatenate([v for v in info.edge_only_s.values()] or [np.ones(1)])
    bunit, bdiv = unit_for("B", allb)
    funit, fdiv = unit_for("FLOP", allf)
    lunit, ldiv = unit_for("s", alll)
    # x is the realised density: a layer the requested one does not fit stays dense, and
    # two methods at one nominal density can keep very different fractions of the weights
    # (ticks at powers of two: the realised densities of two methods can sit too close to
    # label each one)
    real = [float(d) for v in info.realised.values() for d in v] or [1.0]
    dens = [2.0**-k for k in range(0, 1 + int(np.ceil(-np.log2(max(min(real), 1e-6)))))]
    for i, m in enumerate(info.methods):
        c = f"C{i}"
        d = info.realised[m]
        axes[0].plot(d, 100 * info.accuracy[m], marker="o", color=c, label=f"{m} (validation)")
        axes[0].plot(
            d, 100 * info.test_accuracy[m], marker="x", color=c, ls="--", label=f"{m} (test)"
        )
        axes[1].plot(d, info.stored_bytes[m] / bdiv, marker="o", color=c, label=m)
        axes[2].plot(d, info.flops[m] / fdiv, marker="o", color=c, label=m)
        axes[3].plot(d, info.edge_only_s[m] / ldiv, marker="o", color=c, label=m)
    labels = (
        "final-classifier accuracy (%)",
        f"stored size, all layers ({bunit})",
        f"backbone FLOPs with sparse kernels ({funit})",
        f"edge-only latency on the edge device ({lunit})",
    )
    for ax, lab in zip(axes, labels, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(dens)
        ax.set_xticklabels([f"1/{round(1 / d)}" if d < 1 else "1" for d in dens], fontsize=8)
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("realised density", fontsize=9)
        ax.set_ylabel(lab, fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in axes[1:]:
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=8)
    fig.suptitle(
        f"{info.title}\nx: realised density, the fraction of the dense network's weights kept",
        fontsize=11,
    )
    fig.subplots_adjust(wspace=0.35)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# hypervolume history and knob importance
# --------------------------------------------------------------------------------------


class HypervolumeInfo(NamedTuple):
    """Hypervolume of the feasible trials so far, after each complete trial."""

    title: str
    trials: np.ndarray  # [n] trial numbers, ascending
    hv: np.ndarray  # [n]
    grid_hv: float | None  # the exhaustive grid's hypervolume on the same ruler
    ruler_source: str  # "grid" or "trials"


def hypervolume_info(
    values: np.ndarray,
    trials: Sequence[int],
    feasible: np.ndarray,
    ruler: Ruler,
    *,
    grid_hv: float | None = None,
    ruler_source: str = "grid",
    title: str = "Hypervolume against trial number",
) -> HypervolumeInfo:
    from dse.search import hypervolume

    v = np.asarray(values, float).reshape(len(trials), len(ruler.names))
    order = np.argsort(np.asarray(trials), kind="stable")
    losses = ruler.loss(v[order])
    feas = np.asarray(feasible, bool)[order]
    hv = np.zeros(len(order))
    front = np.zeros((0, len(ruler.names)))
    current = 0.0
    for i in range(len(order)):
        if feas[i]:
            p = losses[i]
            dominated = bool(len(front)) and bool(np.any(np.all(front <= p, axis=1)))
            if not dominated:
                keep = ~np.all(p <= front, axis=1)
                front = np.vstack([front[keep], p])
                current = hypervolume(front)
        hv[i] = current
    return HypervolumeInfo(
        title=title,
        trials=np.asarray(trials)[order],
        hv=hv,
        grid_hv=grid_hv,
        ruler_source=ruler_source,
    )


def render_hypervolume(info: HypervolumeInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(9, 4.6))
    ax = fig.add_subplot()
    if info.grid_hv:
        ax.step(
            info.trials,
            100 * info.hv / info.grid_hv,
            where="post",
            color="#1f77b4",
            lw=1.8,
            label="study (feasible trials so far)",
        )
        ax.axhline(100, color="black", ls="--", lw=1, label="exhaustive grid = 100%")
        ax.set_ylabel("hypervolume, % of the exhaustive grid's")
        ax.set_ylim(0, 105)
    else:
        ax.step(
            info.trials,
            info.hv,
            where="post",
            color="#1f77b4",
            lw=1.8,
            label="study (feasible trials so far)",
        )
        ax.set_ylabel("hypervolume (scaled objectives)")
    ax.set_xlabel("trial number")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{info.title} (ruler: {info.ruler_source})", fontsize=10)
    return _save(fig, path)


class ImportanceInfo(NamedTuple):
    """fANOVA importance of each knob for each objective; NaN where it failed."""

    title: str
    objectives: tuple[str, ...]
    params: tuple[str, ...]
    importance: np.ndarray  # [objectives, params], each row sums to 1 where computed
    errors: dict[str, str]  # objective -> why its importances could not be computed


def importance_info(
    results: Mapping[str, Mapping[str, float] | str],
    *,
    title: str = "Knob importance (fANOVA) per objective",
) -> ImportanceInfo:
    """``results``: objective -> {param: importance} or the error message it raised."""
    objectives = tuple(results)
    params: list[str] = []
    for r in results.values():
        if not isinstance(r, str):
            params.extend(p for p in r if p not in params)
    imp = np.full((len(objectives), len(params)), np.nan)
    errors: dict[str, str] = {}
    for i, (o, r) in enumerate(results.items()):
        if isinstance(r, str):
            errors[o] = r
        else:
            for j, p in enumerate(params):
                imp[i, j] = float(r.get(p, 0.0))
    return ImportanceInfo(
        title=title, objectives=objectives, params=tuple(params), importance=imp, errors=errors
    )


def render_importance(info: ImportanceInfo, path: str | Path) -> list[Path]:
    k = max(1, len(info.objectives))
    fig = Figure(figsize=(4.2 * k + 0.8, 0.4 * max(4, len(info.params)) + 1.8))
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
    y = np.arange(len(info.params))
    for i, (ax, o) in enumerate(zip(axes, info.objectives, strict=False)):
        ax.set_title(METRIC_AXES.get(o, (o, ""))[0], fontsize=10)
        if o in info.errors:
            ax.text(
                0.5,
                0.5,
                "not computed:\n" + _wrap(info.errors[o], 40),
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
                color="#a00000",
            )
            ax.set_xticks([])
            continue
        vals = 100 * np.nan_to_num(info.importance[i])
        ax.barh(y, vals, color="#4c72b0")
        for yy, v in zip(y, vals, strict=True):
            ax.annotate(
                f"{v:.0f}%",
                (v, yy),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_xlim(0, 115)
        ax.set_xlabel("importance (%)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(info.params)
    axes[0].invert_yaxis()
    fig.suptitle(info.title, fontsize=11)
    return _save(fig, path)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])


# --------------------------------------------------------------------------------------
# one backbone for several tasks against one network per task
# --------------------------------------------------------------------------------------


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
        _plain_log_ticks(ax, "y")
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


def _with_unit(quantity: str, value: float) -> str:
    """One value in its own unit of ``quantity``'s ladder: 2.46 mJ, 12.4 J, 0 B."""
    if value == 0:
        return f"0 {_LADDERS[quantity][-1][1]}"
    unit, div = unit_for(quantity, [value])
    return f"{value / div:.3g} {unit}"


def _same_cuts(cuts: str) -> str:
    """ "27 each" for "27,27,27": long lists of cuts crowd the tick labels."""
    parts = cuts.split(",")
    return f"{parts[0]} each" if len(parts) > 1 and len(set(parts)) == 1 else cuts


def render_tasks(info: TasksInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(6 + 3.6 * len(info.placements), 4.8))
    n = len(info.placements)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [n, n, n, max(2, len(info.tasks))]})
    groups = [
        f"{_wrap(p, 14)}\nMTL cut {m}\nSTL cuts {_same_cuts(s)}"
        for p, m, s in zip(info.placements, *info.cuts, strict=True)
    ]
    for ax, values, quantity, label in (
        (axes[0], info.latency_s, "s", "mean latency"),
        (axes[1], info.edge_energy_j, "J", "edge energy per inference"),
        (axes[2], info.bytes_sent, "B", "bytes sent per inference"),
    ):
        unit, div = unit_for(quantity, values)
        shown = values / div
        log = bool(values.size and values.min() > 0 and values.max() / values.min() >= 30)
        texts = [[_with_unit(quantity, float(v)) for v in row] for row in values]
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
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# codecs at the cut: rate against accuracy
# --------------------------------------------------------------------------------------

REFERENCE_CODEC = "fp32"


class RateAccuracyInfo(NamedTuple):
    """One network, per cut that sends something and per codec of the space: the mean
    payload (bytes, header included) and the final classifier's accuracy with that codec's
    decoded tensors at that cut (mean over the tasks), on the validation and test splits.

    Arrays are indexed like ``cuts``; the reference codec (``fp32``) is one of ``codecs``.
    """

    title: str
    network: str  # "dense", "predefined@0.5", ...
    cuts: tuple[int, ...]  # cut indices that send something, ascending
    after: tuple[str, ...]  # per cut: the last edge layer ("input" for cut 0)
    raw_bytes: np.ndarray  # [cuts] float32 tensors as the layer graph counts them, no header
    codecs: tuple[str, ...]  # the space's codecs, in the spec's order
    bytes: dict[str, np.ndarray]  # codec -> [cuts] mean payload bytes, validation samples
    test_bytes: dict[str, np.ndarray]  # codec -> [cuts] mean payload bytes, test samples
    accuracy: dict[str, np.ndarray]  # codec -> [cuts] validation accuracy, final classifier
    test_accuracy: dict[str, np.ndarray]  # codec -> [cuts] test accuracy, final classifier
    reference: str = REFERENCE_CODEC

    def ratio(self, codec: str, *, split: str = "val") -> np.ndarray:
        """[cuts] the codec's payload over the reference codec's."""
        b = self.bytes if split == "val" else self.test_bytes
        return b[codec] / b[self.reference]

    def change(self, codec: str, *, split: str = "val") -> np.ndarray:
        """[cuts] the codec's accuracy minus the reference codec's, in points."""
        a = self.accuracy if split == "val" else self.test_accuracy
        return 100.0 * (a[codec] - a[self.reference])


def _final_accuracy(correct: np.ndarray) -> float:
    """Accuracy of the final classifier of a [tasks, outputs, N] correctness array, mean
    over the tasks."""
    return float(np.asarray(correct)[:, -1, :].mean(axis=-1).mean())


def rate_accuracy_info(
    scorer: Any, *, network: str = "dense", title: str | None = None
) -> RateAccuracyInfo:
    """The rate-accuracy numbers of one network from its scorer's codec views
    (``Scorer.codec_views``: codec -> cut -> (validation, test) ``CodecView``).

    Raises ValueError when the scorer has no codec views or none for the reference codec.
    """
    views = scorer.codec_views
    if not views:
        raise ValueError("the scorer has no codec outputs: the spec has no [space] codecs")
    if REFERENCE_CODEC not in views:
        raise ValueError(
            f"no {REFERENCE_CODEC} codec outputs to hold the others against "
            f"(codecs: {', '.join(views)})"
        )
    codecs = tuple(views)
    cuts = tuple(sorted(set.intersection(*(set(v) for v in views.values()))))
    g = scorer.graph

    def col(split: int, what: Callable[[Any], float]) -> dict[str, np.ndarray]:
        return {c: np.array([what(views[c][k][split]) for k in cuts], dtype=float) for c in codecs}

    return RateAccuracyInfo(
        title=title or f"Bytes sent against accuracy per codec at each cut ({network})",
        network=network,
        cuts=cuts,
        after=tuple(g.cuts[k].after for k in cuts),
        raw_bytes=np.array([float(scorer.table.cut_bytes[k]) for k in cuts], dtype=float),
        codecs=codecs,
        bytes=col(0, lambda v: float(np.mean(v.sizes))),
        test_bytes=col(1, lambda v: float(np.mean(v.sizes))),
        accuracy=col(0, lambda v: _final_accuracy(v.correct)),
        test_accuracy=col(1, lambda v: _final_accuracy(v.correct)),
    )


_CODEC_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def render_rate_accuracy(
    infos: RateAccuracyInfo | Sequence[RateAccuracyInfo], path: str | Path
) -> list[Path]:
    """One row per network: bytes sent against validation accuracy (each codec a series,
    each cut's codecs joined by a grey line), and each codec's accuracy change against
    fp32 per cut."""
    rows = [infos] if isinstance(infos, RateAccuracyInfo) else list(infos)
    if not rows:
        raise ValueError("no network to draw")
    fig = Figure(figsize=(14, 4.8 * len(rows)))
    axes = np.atleast_2d(fig.subplots(len(rows), 2, gridspec_kw={"width_ratios": [1.25, 1]}))
    for (ax, ax2), info in zip(axes, rows, strict=True):
        allb = np.concatenate([info.bytes[c] for c in info.codecs])
        unit, div = unit_for("B", allb)
        style = {
            c: (f"C{i % 10}", _CODEC_MARKERS[i % len(_CODEC_MARKERS)])
            for i, c in enumerate(info.codecs)
        }
        x = np.arange(len(info.cuts))
        for j in range(len(info.cuts)):  # one cut, every codec: that cut's trade-off
            pts = sorted((info.bytes[c][j], info.accuracy[c][j]) for c in info.codecs)
            ax.plot(
                [p[0] / div for p in pts],
                [100 * p[1] for p in pts],
                color="#bbbbbb",
                lw=0.8,
                zorder=1,
            )
        for c in info.codecs:
            colour, marker = style[c]
            ax.scatter(
                info.bytes[c] / div,
                100 * info.accuracy[c],
                color=colour,
                marker=marker,
                s=30,
                zorder=3,
                label=c,
            )
            if c != info.reference:
                ax2.plot(x, info.change(c), color=colour, marker=marker, ms=5, label=c)
        if _log_if_wide(ax, "x", allb / div, ratio=8.0):
            _plain_log_ticks(ax, "x")
        ax.set_xlabel(
            f"mean payload per inference, validation ({unit}; log)"
            if ax.get_xscale() == "log"
            else f"mean payload per inference, validation ({unit})",
            fontsize=9,
        )
        ax.set_ylabel("validation accuracy, final classifier (%)", fontsize=9)
        ax.set_title(
            f"{info.network}: bytes against accuracy (a grey line joins one cut's codecs)",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="codec", title_fontsize=8)
        ax2.axhline(0.0, color="#888", lw=0.8)
        ax2.set_xticks(x)
        ax2.set_xticklabels(
            [f"{k}: {a}" for k, a in zip(info.cuts, info.after, strict=True)],
            rotation=90,
            fontsize=7 if len(x) > 20 else 8,
        )
        ax2.set_xlabel("cut (the last edge layer)", fontsize=9)
        ax2.set_ylabel(f"validation accuracy change vs {info.reference} (points)", fontsize=9)
        ax2.set_title(f"{info.network}: what each codec costs in accuracy", fontsize=10)
        ax2.grid(True, alpha=0.3)
        if len(info.codecs) > 1:
            ax2.legend(fontsize=8, title="codec", title_fontsize=8)
    height = 4.8 * len(rows)
    fig.suptitle(rows[0].title, fontsize=11, y=1 - 0.15 / height)
    fig.subplots_adjust(wspace=0.25, hspace=0.55, top=1 - 0.7 / height)
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# deployment map: the best configuration per edge device and link
# --------------------------------------------------------------------------------------


class DeploymentMapInfo(NamedTuple):
    """Per edge device (rows) and link (columns): where the best configuration runs, its
    cut, latency, edge energy and accuracy (NaN, cut -1 and ``none``: nothing feasible)."""

    title: str
    edges: tuple[str, ...]
    links: tuple[str, ...]
    server: str
    where: tuple[tuple[str, ...], ...]  # [e][l] "edge-only" | "split" | "server-only" | "none"
    cut: np.ndarray  # [e, l]
    latency_s: np.ndarray  # [e, l]
    energy_j: np.ndarray  # [e, l]
    accuracy: np.ndarray  # [e, l]
    current: tuple[int, int] | None  # the study's own (edge, link) cell


def deployment_map_info(
    sweep: Any,
    *,
    server: str | None = None,
    current: tuple[str, str] | None = None,
    title: str = "Best configuration per edge device and link",
) -> DeploymentMapInfo:
    """The cells of a :class:`~dse.search.Sweep` on one server (default: its first)."""
    results = [r for r in sweep.results if server is None or r.server == server]
    if not results:
        raise ValueError(f"the sweep has no result on server {server!r}")
    server = results[0].server
    results = [r for r in results if r.server == server]
    edges = tuple(dict.fromkeys(r.edge for r in results))
    links = tuple(dict.fromkeys(r.link for r in results))
    shape = (len(edges), len(links))
    cut = np.full(shape, -1, dtype=int)
    lat, energy, acc = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    where = [["none"] * len(links) for _ in edges]
    for r in results:
        i, j = edges.index(r.edge), links.index(r.link)
        where[i][j] = r.where
        if r.best is not None:
            cut[i, j] = r.best.split
            lat[i, j] = r.best.metrics["latency_mean"]
            energy[i, j] = r.best.metrics["edge_energy"]
            acc[i, j] = r.best.metrics["accuracy"]
    here = None
    if current is not None and current[0] in edges and current[1] in links:
        here = (edges.index(current[0]), links.index(current[1]))
    return DeploymentMapInfo(
        title, edges, links, server, tuple(tuple(w) for w in where), cut, lat, energy, acc, here
    )


def render_deployment_map(info: DeploymentMapInfo, path: str | Path) -> list[Path]:
    colours = {**REGIME_C, "none": "#eeeeee"}
    n_e, n_l = len(info.edges), len(info.links)
    fig = Figure(figsize=(max(6.5, 1.9 * n_l + 2.5), max(2.8, 1.05 * n_e + 1.6)))
    ax = fig.add_subplot()
    for i in range(n_e):
        for j in range(n_l):
            w = info.where[i][j]
            y = n_e - 1 - i
            ax.add_patch(_cell(j, y, colours[w], here=info.current == (i, j)))
            if w == "none":
                text = "nothing\nfeasible"
            else:
                text = (
                    f"{'★ ' if w == 'split' else ''}{w}, cut {info.cut[i, j]}\n"
                    f"{_with_unit('s', info.latency_s[i, j])}, "
                    f"{_with_unit('J', info.energy_j[i, j])}\n"
                    f"acc {100 * info.accuracy[i, j]:.1f}%"
                )
            ax.text(
                j + 0.5,
                y + 0.5,
                text,
                ha="center",
                va="center",
                fontsize=8,
                weight="bold" if w == "split" else "normal",
            )
    ax.set_xlim(0, n_l)
    ax.set_ylim(0, n_e)
    ax.set_xticks(np.arange(n_l) + 0.5, info.links)
    ax.set_yticks(np.arange(n_e) + 0.5, list(reversed(info.edges)))
    ax.xaxis.tick_top()
    ax.set_xlabel(f"link (server: {info.server})")
    ax.set_ylabel("edge device")
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    handles = [
        Patch(color=colours[r], label=r)
        for r in (*REGIMES, "none")
        if any(r in row for row in info.where)
    ]
    if info.current is not None:
        handles.append(
            Patch(facecolor="none", edgecolor="black", lw=2, label="the study's own deployment")
        )
    ax.legend(
        handles=handles,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.04),
        ncol=len(handles),
        frameon=False,
    )
    ax.set_title(_wrap(info.title, 100), fontsize=10, pad=24)
    return _save(fig, path)


def _cell(x: float, y: float, colour: str, *, here: bool) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(
        (x + 0.03, y + 0.03),
        0.94,
        0.94,
        facecolor=colour,
        edgecolor="black" if here else "white",
        lw=2.0 if here else 0.5,
    )


# --------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------


class TrainingInfo(NamedTuple):
    """Per network: training loss and validation accuracy per epoch, the best validation
    epoch and the epoch whose weights were kept (epochs count from 1)."""

    title: str
    networks: tuple[str, ...]
    epochs: tuple[np.ndarray, ...]
    loss: tuple[np.ndarray, ...]
    val_accuracy: tuple[np.ndarray, ...]
    best_epoch: tuple[int, ...]  # highest validation accuracy (the first of ties)
    kept_epoch: tuple[int, ...]


def training_info(networks: Mapping[str, Any], *, title: str = "Training curves") -> TrainingInfo:
    """From trained networks (``history`` rows with epoch, loss and val_accuracy;
    ``epoch_kept``), by label; a network with no history is left out."""
    names, epochs, loss, acc, best, kept = [], [], [], [], [], []
    for label, t in networks.items():
        rows = list(t.history)
        if not rows:
            continue
        names.append(label)
        epochs.append(np.array([int(r["epoch"]) for r in rows]))
        loss.append(np.array([float(r["loss"]) for r in rows]))
        a = np.array([float(r["val_accuracy"]) for r in rows])
        acc.append(a)
        best.append(int(epochs[-1][int(np.argmax(a))]))
        kept.append(int(t.epoch_kept))
    return TrainingInfo(
        title, tuple(names), tuple(epochs), tuple(loss), tuple(acc), tuple(best), tuple(kept)
    )


def render_training(info: TrainingInfo, path: str | Path) -> list[Path]:
    fig = Figure(figsize=(11, 4.4))
    ax_l, ax_a = fig.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(info.networks))]
    for k, name in enumerate(info.networks):
        e, c = info.epochs[k], colours[k]
        ax_l.plot(e, info.loss[k], color=c, lw=1.5, label=name)
        ax_a.plot(e, 100 * info.val_accuracy[k], color=c, lw=1.5, label=name)
        b = info.best_epoch[k]
        ax_a.plot(
            [b],
            [100 * info.val_accuracy[k][list(e).index(b)]],
            "o",
            color=c,
            ms=7,
            mec="black",
            zorder=4,
        )
        kept = info.kept_epoch[k]
        if kept != b and kept in list(e):
            ax_a.plot(
                [kept],
                [100 * info.val_accuracy[k][list(e).index(kept)]],
                "s",
                color="white",
                mec=c,
                mew=1.5,
                ms=6,
                zorder=4,
            )
    _log_if_wide(ax_l, "y", np.concatenate(info.loss) if info.loss else np.ones(1), ratio=20)
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training loss (all outputs)")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("validation accuracy, final classifier (%)")
    for a in (ax_l, ax_a):
        a.grid(True, alpha=0.3)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_l.legend(fontsize=7, loc="upper right")
    ax_a.legend(
        handles=[
            Line2D(
                [], [], marker="o", ls="", color="grey", mec="black", label="best validation epoch"
            ),
            Line2D(
                [],
                [],
                marker="s",
                ls="",
                color="white",
                mec="grey",
                label="epoch kept (where it differs)",
            ),
        ],
        fontsize=7,
        loc="lower right",
    )
    fig.suptitle(_wrap(info.title, 110), fontsize=10)
    return _save(fig, path)
