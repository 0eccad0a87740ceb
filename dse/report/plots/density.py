"""Density: accuracy, stored size, FLOPs and edge-only latency per sparsity
method and density (:class:`DensityInfo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse.report import fmt
from dse.report.plots.draw import DPI, FORMATS, save


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


def render_density(
    info: DensityInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Accuracy, stored size, FLOPs and edge-only latency against the realised density,
    one line per sparsity method."""
    fig = Figure(figsize=(16, 4.6))
    axes = fig.subplots(1, 4)
    allb = np.concatenate([v for v in info.stored_bytes.values()] or [np.ones(1)])
    allf = np.concatenate([v for v in info.flops.values()] or [np.ones(1)])
    alll = np.concatenate([v for v in info.edge_only_s.values()] or [np.ones(1)])
    bunit, bdiv = fmt.unit_for("B", allb)
    funit, fdiv = fmt.unit_for("FLOP", allf)
    lunit, ldiv = fmt.unit_for("s", alll)
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
    return save(fig, path, formats=formats, dpi=dpi)
