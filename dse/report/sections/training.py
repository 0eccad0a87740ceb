"""The training curves section: the figure and, per network, the epochs run and kept."""

from __future__ import annotations

from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc


def training(data: ReportData, doc: Doc) -> None:
    """The training curves, and per network its epochs run, best and kept."""
    doc.h(1, "Training curves", "training")
    data.figures.put(doc, "training")
    info = data.figures.info("training")
    if info is None:
        return
    rows = []
    for i, network in enumerate(info.networks):
        epochs = list(info.epochs[i])
        kept = info.kept_epoch[i]
        rows.append(
            [
                network,
                str(len(epochs)),
                str(info.best_epoch[i]),
                str(kept),
                fmt.percent(float(info.val_accuracy[i][epochs.index(kept)]))
                if kept in epochs
                else "-",
                f"{float(info.loss[i][-1]):.4g}",
            ]
        )
    doc.table(
        [
            "network",
            "epochs run",
            "best validation epoch",
            "epoch kept",
            "validation accuracy there",
            "final training loss",
        ],
        rows,
    )
