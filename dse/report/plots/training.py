"""Training curves: loss and validation accuracy per epoch, with the best and the
kept epochs (:class:`TrainingInfo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from dse.report.plots.draw import DPI, FORMATS, log_if_wide, save, wrap


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


def render_training(
    info: TrainingInfo,
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
) -> list[Path]:
    """Training loss (left) and validation accuracy (right) per epoch, one line per
    network, the best validation epoch dotted and the kept one squared."""
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
    log_if_wide(ax_l, "y", np.concatenate(info.loss) if info.loss else np.ones(1), ratio=20)
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
    fig.suptitle(wrap(info.title, 110), fontsize=10)
    return save(fig, path, formats=formats, dpi=dpi)
