"""The deployment map section: the best configuration per edge device and link."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.doc import Doc
from dse.search import Candidate


class DeploymentMap:
    """The deployment map section: the best configuration per edge device and link."""

    # ---- deployment map and training ------------------------------------------------

    def _deployment_map(self, doc: Doc) -> None:
        doc.h(1, "Deployment map", "deployments")
        sw = self.sweep
        if sw is None:
            doc.p(self.sweep_note)
            return
        doc.p(
            "Which edge device and which link suit this model: the study's space (the same "
            "networks, cuts, exits and thresholds, no training) scored on every "
            "combination, ",
            self.sweep_note,
            ". Per combination, the best configuration "
            "is the knee of its feasible front, under the spec's constraints and the edge "
            "device's memory; a split wins where that knee cuts inside the network and "
            "sends, i.e. it beats the best edge-only and the best server-only "
            "configurations.",
        )
        self.fig.put(doc, "deployments")
        rows = []
        for r in sw.results:
            b = r.best
            if b is None:
                rows.append([r.edge, r.link, r.server, "nothing feasible", "", "", "", "", ""])
                continue
            c = Candidate.from_row({f"knob_{k}": v for k, v in b.knobs.items()})
            rows.append(
                [
                    r.edge,
                    r.link,
                    r.server,
                    f"{vocab.network_label(*c.network)}, cut {c.split}, "
                    f"{self._exits(c, short=True)}",
                    r.where + (" ★" if r.split_wins else ""),
                    fmt.human("accuracy", b.metrics["accuracy"]),
                    fmt.human("latency_mean", b.metrics["latency_mean"]),
                    fmt.human("edge_energy", b.metrics["edge_energy"]),
                    fmt.human("bandwidth", b.metrics["bandwidth"]),
                ]
            )
        doc.table(
            [
                "edge",
                "link",
                "server",
                "best configuration",
                "where",
                "accuracy",
                "latency",
                "edge energy",
                "sent",
            ],
            rows,
        )
