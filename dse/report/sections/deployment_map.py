"""The deployment map section: the best configuration per edge device and link."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc, Inline
from dse.report.text import exits_of
from dse.search import Candidate


def deployment_map(data: ReportData, doc: Doc) -> None:
    """Where the best configuration runs on every edge device and link of the sweep."""
    doc.h(1, "Deployment map", "deployments")
    sweep = data.sweep
    if sweep is None:
        doc.p(data.sweep_note)
        return
    doc.p(
        "Which edge device and which link suit this model: the study's space (the same "
        "networks, cuts, exits and thresholds, no training) scored on every "
        "combination, ",
        data.sweep_note,
        ". Per combination, the best configuration "
        "is the knee of its feasible front, under the spec's constraints and the edge "
        "device's memory; a split wins where that knee cuts inside the network and "
        "sends, i.e. it beats the best edge-only and the best server-only "
        "configurations.",
    )
    data.figures.put(doc, "deployments")
    rows: list[list[Inline]] = []
    for result in sweep.results:
        best = result.best
        if best is None:
            rows.append([result.edge, result.link, result.server, "nothing feasible", *[""] * 5])
            continue
        candidate = Candidate.from_row({f"knob_{k}": v for k, v in best.knobs.items()})
        rows.append(
            [
                result.edge,
                result.link,
                result.server,
                f"{vocab.network_label(*candidate.network)}, cut {candidate.split}, "
                f"{exits_of(data, candidate, short=True)}",
                result.where + (" ★" if result.split_wins else ""),
                fmt.human("accuracy", best.metrics["accuracy"]),
                fmt.human("latency_mean", best.metrics["latency_mean"]),
                fmt.human("edge_energy", best.metrics["edge_energy"]),
                fmt.human("bandwidth", best.metrics["bandwidth"]),
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
