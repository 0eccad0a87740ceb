"""The search itself: the hypervolume of the feasible trials so far
(:class:`HypervolumeInfo`) and each knob's fANOVA importance per objective
(:class:`ImportanceInfo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse import vocab
from dse.report.plots.draw import DPI, FORMATS, save, wrap
from dse.search import Ruler


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
    """The hypervolume of the feasible trials so far, on ``ruler``, after each trial in
    the order of their numbers."""
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


def render_hypervolume(
    info: HypervolumeInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """The hypervolume against the trial number, as a share of the grid's where known."""
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
    return save(fig, path, formats=formats, dpi=dpi)


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


def render_importance(
    info: ImportanceInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """One panel per objective: each knob's importance as a bar (or why it could not
    be computed)."""
    k = max(1, len(info.objectives))
    fig = Figure(figsize=(4.2 * k + 0.8, 0.4 * max(4, len(info.params)) + 1.8))
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
    y = np.arange(len(info.params))
    for i, (ax, o) in enumerate(zip(axes, info.objectives, strict=False)):
        ax.set_title(vocab.axis_label(o), fontsize=10)
        if o in info.errors:
            ax.text(
                0.5,
                0.5,
                "not computed:\n" + wrap(info.errors[o], 40),
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
    return save(fig, path, formats=formats, dpi=dpi)
