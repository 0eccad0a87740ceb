"""The deployment map: the best configuration per edge device and link of a sweep
(:class:`DeploymentMapInfo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dse.report import fmt
from dse.report.plots.bandwidth import REGIME_C, REGIMES
from dse.report.plots.draw import DPI, FORMATS, save, wrap


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


def render_deployment_map(
    info: DeploymentMapInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """One cell per edge device and link, coloured by where the best configuration
    runs, with its cut, latency, edge energy and accuracy; the study's own cell outlined."""
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
                    f"{fmt.with_unit('s', info.latency_s[i, j])}, "
                    f"{fmt.with_unit('J', info.energy_j[i, j])}\n"
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
    ax.set_title(wrap(info.title, 100), fontsize=10, pad=24)
    return save(fig, path, formats=formats, dpi=dpi)


def _cell(x: float, y: float, colour: str, *, here: bool) -> Any:
    """The square of one cell of the map (outlined in black where ``here``)."""
    from matplotlib.patches import Rectangle

    return Rectangle(
        (x + 0.03, y + 0.03),
        0.94,
        0.94,
        facecolor=colour,
        edgecolor="black" if here else "white",
        lw=2.0 if here else 0.5,
    )
