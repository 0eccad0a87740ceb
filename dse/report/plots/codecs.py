"""Codecs at the cut: the bytes each codec sends against the accuracy it keeps, per
cut (:class:`RateAccuracyInfo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from dse.report import fmt
from dse.report.plots.draw import DPI, FORMATS, log_if_wide, plain_log_ticks, save

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
    infos: RateAccuracyInfo | Sequence[RateAccuracyInfo],
    path: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: float = DPI,
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
        unit, div = fmt.unit_for("B", allb)
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
        if log_if_wide(ax, "x", allb / div, ratio=8.0):
            plain_log_ticks(ax, "x")
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
    return save(fig, path, formats=formats, dpi=dpi)
