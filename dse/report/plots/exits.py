"""Early exits: accuracy, exit rate and expected latency per exit subset and
threshold at one cut of one network (:class:`ExitInfo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse.report import fmt
from dse.report.plots.draw import DPI, FORMATS, save
from dse.search import Candidate, exit_label


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
    return ExitInfo(
        title=title,
        split=candidate.split,
        thresholds=th,
        subsets=subs,
        labels=tuple(" + ".join(exit_label(exit_names, i) for i in s) for s in subs),
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


def render_exits(
    info: ExitInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Accuracy, early-exit rate and expected latency against the threshold, one line
    per exit subset, the no-exit network dashed and the recommendation starred."""
    fig = Figure(figsize=(15, 4.8))
    axes = fig.subplots(1, 3)
    unit, div = fmt.unit_for("s", np.append(info.latency_s, info.final_latency_s))
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
    return save(fig, path, formats=formats, dpi=dpi)
