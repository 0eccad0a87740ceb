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
    if info is None or candidate is None or row is None or not candidate.exits:
        return
    doc.p(
        f"At its cut, the recommended network without any exit is "
        f"{fmt.human('accuracy', info.final_accuracy)} accurate in "
        f"{fmt.seconds(info.final_latency_s)}; with "
        f"{exits_of(data, candidate)} it is "
        f"{fmt.human('accuracy', row['accuracy'])} accurate in "
        f"{fmt.seconds(row['latency_mean'])}."
    )
