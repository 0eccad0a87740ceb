"""The training curves section: the figure and, per network, the epochs run and kept."""

from __future__ import annotations

from dse.report import fmt
from dse.report.doc import Doc


class Training:
    """The training curves section: the figure and, per network, the epochs run and kept."""

    def _training(self, doc: Doc) -> None:
        doc.h(1, "Training curves", "training")
        self.fig.put(doc, "training")
        info = self.fig.infos.get("training")
        if info is None:
            return
        doc.table(
            [
                "network",
                "epochs run",
                "best validation epoch",
                "epoch kept",
                "validation accuracy there",
                "final training loss",
            ],
            [
                [
                    n,
                    str(len(info.epochs[i])),
                    str(info.best_epoch[i]),
                    str(info.kept_epoch[i]),
                    fmt.percent(
                        float(info.val_accuracy[i][list(info.epochs[i]).index(info.kept_epoch[i])])
                    )
                    if info.kept_epoch[i] in list(info.epochs[i])
                    else "-",
                    f"{float(info.loss[i][-1]):.4g}",
                ]
                for i, n in enumerate(info.networks)
            ],
        )
