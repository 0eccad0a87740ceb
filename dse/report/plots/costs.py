"""Costs along the network: per-layer latency on the edge and the server with the
bytes each cut sends (:class:`LayerProfileInfo`), and the latency of each cut split into
edge, transfer and server (:class:`SplitSweepInfo`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dse.costmodel import CostTable
from dse.report import fmt
from dse.report.plots.draw import (
    DPI,
    EDGE_C,
    FORMATS,
    LINK_C,
    SERVER_C,
    plain_log_ticks,
    save,
)


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
    """Per backbone layer of ``table``'s graph: its latency on the edge and the server;
    per cut: the bytes it sends and whether one tensor crosses it; where the exits hang."""
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
    """At most 60 layer names under the x axis."""
    n = len(labels)
    step = max(1, math.ceil(n / 60))
    ax.set_xticks([positions[i] for i in range(0, n, step)])
    ax.set_xticklabels(
        [labels[i] for i in range(0, n, step)], rotation=90, fontsize=7 if n > 30 else 8
    )


def render_layer_profile(
    info: LayerProfileInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Per-layer latency on the edge and the server as bars, the bytes each cut sends as a
    line on a log axis of its own, and the exit sites."""
    n = len(info.layers)
    fig = Figure(figsize=(min(26.0, max(9.0, 0.3 * n + 3.5)), 6.2))
    ax = fig.add_subplot()
    unit, div = fmt.unit_for("s", np.concatenate([info.edge_s, info.server_s]))
    x = np.arange(1, n + 1)
    ax.bar(
        x - 0.2,
        info.edge_s / div,
        width=0.4,
        color=EDGE_C,
        label=f"edge layer latency (sum {fmt.with_unit('s', info.edge_s.sum())})",
    )
    ax.bar(
        x + 0.2,
        info.server_s / div,
        width=0.4,
        color=SERVER_C,
        label=f"server layer latency (sum {fmt.with_unit('s', info.server_s.sum())})",
    )
    pos = np.concatenate([info.edge_s, info.server_s])
    pos = pos[pos > 0]
    if len(pos) and pos.max() / pos.min() > 20:
        ax.set_yscale("log")
        # at most four decades: a fused activation's few picoseconds would otherwise
        # stretch the axis so far that the layers that matter look alike
        low = max(pos.min(), pos.max() * 1e-4)
        ax.set_ylim(low / div / 2, pos.max() / div * 2)
        plain_log_ticks(ax, "y")
    ax.set_ylabel(f"latency per layer ({unit})")
    ax.set_xlim(0, n + 1)
    _layer_ticks(ax, [f"{a} ({k})" for a, k in zip(info.layers, info.kinds, strict=True)], x)
    ax.grid(True, axis="y", alpha=0.3, which="both", lw=0.5)

    clean = _cut_bytes(ax, info)
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
    if clean.all():
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
    return save(fig, path, formats=formats, dpi=dpi)


def _cut_bytes(ax: Any, info: LayerProfileInfo) -> np.ndarray:
    """The bytes each cut sends, on a log axis to the right of ``ax``; returns which of
    the cuts drawn are clean."""
    n = len(info.layers)
    right = ax.twinx()
    sent = info.cut_bytes[:n]  # cut n (edge-only) sends nothing: left out of the log line
    unit, div = fmt.unit_for("B", sent)
    centres = np.arange(n) + 0.5
    right.plot(centres, sent / div, color=LINK_C, lw=1.5, zorder=5)
    clean = info.clean[:n]
    right.scatter(centres[clean], sent[clean] / div, color=LINK_C, s=22, zorder=6)
    right.scatter(
        centres[~clean], sent[~clean] / div, facecolors="white", edgecolors=LINK_C, s=22, zorder=6
    )
    positive = sent[sent > 0]
    if len(positive):
        right.set_yscale("log")
        right.set_ylim(positive.min() / div / 3, positive.max() / div * 3)
        plain_log_ticks(right, "y")
    right.set_ylabel(f"bytes sent if cut here ({unit}, log)", color=LINK_C)
    right.tick_params(axis="y", colors=LINK_C)
    right.annotate(
        "edge-only:\nnothing sent",
        (n + 0.5, 0.02),
        xycoords=("data", "axes fraction"),
        ha="right",
        fontsize=7,
        color="#555555",
    )
    return clean


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
    """The latency of every cut of ``table`` with no exit taken, split into edge,
    transfer and server; the fastest of the ``allowed`` cuts, the ``chosen`` one, and
    ``policy_s`` (the expected latency per cut with the chosen exits) when given."""
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


def render_split_sweep(
    info: SplitSweepInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Latency per cut as stacked bars (edge, transfer, server), cuts outside the space
    faded, server-only, edge-only, the fastest and the recommended cut annotated."""
    n = len(info.cuts)
    fig = Figure(figsize=(min(26.0, max(9.0, 0.3 * n + 3.5)), 6.0))
    ax = fig.add_subplot()
    top = info.total_s if info.policy_s is None else np.maximum(info.total_s, info.policy_s)
    unit, div = fmt.unit_for("s", top)
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
    notes: dict[int, list[str]] = {0: [f"server-only\n{fmt.with_unit('s', info.total_s[0])}"]}
    notes.setdefault(last, []).append(f"edge-only\n{fmt.with_unit('s', info.total_s[last])}")
    if info.best not in (0, last):
        notes.setdefault(info.best, []).append(
            f"fastest\n{fmt.with_unit('s', info.total_s[info.best])}"
        )
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
    return save(fig, path, formats=formats, dpi=dpi)
