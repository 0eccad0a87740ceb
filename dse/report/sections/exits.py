"""The early exits section: what the recommended exits and threshold buy at its cut."""

from __future__ import annotations

from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.report.text import exits_of


def exits(data: ReportData, doc: Doc) -> None:
    """The exit figure, and the recommended network at its cut with and without exits."""
    doc.h(1, "Early exits", "exits")
    data.figures.put(doc, "exits")
    info = data.figures.info("exits")
    candidate, row = data.configuration, data.recommended
    if info is None or candidate is None or row is None:
        return
    if info.split != candidate.split:
        doc.p(
            f"Drawn at cut {info.split}, the first cut where every exit runs on the edge: "
            f"the recommended configuration cuts at {candidate.split}, where "
            + (
                "its exits would run on the server and save the edge nothing."
                if candidate.exits
                else "it uses no exit."
            )
            + f" At cut {info.split}, the recommended network without any exit is "
            f"{fmt.human('accuracy', info.final_accuracy)} accurate in "
            f"{fmt.seconds(info.final_latency_s)}."
        )
        return
    if not candidate.exits:
        return
    doc.p(
        f"At its cut, the recommended network without any exit is "
        f"{fmt.human('accuracy', info.final_accuracy)} accurate in "
        f"{fmt.seconds(info.final_latency_s)}; with "
        f"{exits_of(data, candidate)} it is "
        f"{fmt.human('accuracy', row['accuracy'])} accurate in "
        f"{fmt.seconds(row['latency_mean'])}."
    )
