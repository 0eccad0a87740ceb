"""The bandwidth regime map: the fastest cut and its latency as the uplink sweeps
(:class:`BandwidthInfo`), and the runs of one regime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, MaxNLocator

from dse.costmodel import CostTable, DeviceProfile, LayerGraph, LinkProfile, cost_table
from dse.report import fmt
from dse.report.plots.draw import DPI, FORMATS, log_if_wide, plain_log_ticks, save, wrap
from dse.search import Candidate

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
    uplinks = np.asarray(np.logspace(5, 9, 81) if bandwidths is None else bandwidths, float)
    last = len(graph.cuts) - 1
    allowed = np.asarray(range(last + 1) if cuts is None else sorted(cuts), dtype=int)
    latency = np.zeros((len(uplinks), len(allowed)))
    for i, b in enumerate(uplinks):
        table = cost_table(graph, edge, server, replace(link, uplink_bps=float(b)), tail=tail)
        if score is None or candidate is None:
            latency[i] = table.total_s[allowed]
        else:
            latency[i] = [score(table, replace(candidate, split=int(k))) for k in allowed]
    # Ties go to edge-only: a cut whose samples all leave at an edge exit sends nothing and
    # costs what edge-only costs, and must not be called a split.
    tie = latency <= latency.min(axis=1, keepdims=True) * (1 + 1e-9)
    best_i = np.where(tie[:, -1] & (allowed[-1] == last), len(allowed) - 1, np.argmax(tie, axis=1))
    best = allowed[best_i]
    regime = tuple("server-only" if k == 0 else "edge-only" if k == last else "split" for k in best)
    return BandwidthInfo(
        title=title
        or (
            f"Best cut of {graph.model_name} vs uplink bandwidth: {edge.name} -> "
            f"{server.name}, {link.name} RTT {link.rtt_s * 1e3:.3g} ms"
        ),
        uplink_bps=uplinks,
        cuts=allowed,
        latency_s=latency,
        best_cut=best,
        best_s=latency[np.arange(len(uplinks)), best_i],
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


def render_bandwidth(
    info: BandwidthInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """The fastest cut's latency against the uplink over the regimes it falls in (top),
    and the fastest cut itself (bottom); the link's own uplink marked."""
    fig = Figure(figsize=(10, 7.2))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1.2]})
    mbps = info.uplink_bps / 1e6
    unit, div = fmt.unit_for("s", info.best_s)
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
    log_if_wide(ax, "y", info.latency_s / div, ratio=20)
    if ax.get_yscale() == "log":
        plain_log_ticks(ax, "y")
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
    plain_log_ticks(ax2, "x")
    ax2.grid(True, alpha=0.3, which="both", lw=0.5)
    ax.set_title(wrap(info.title, 100), fontsize=10)
    fig.subplots_adjust(hspace=0.08)
    return save(fig, path, formats=formats, dpi=dpi)
