"""The verification section: the front configurations retrained alone."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Code, Doc
from dse.report.text import exits_of
from dse.search import Candidate


def verification(data: ReportData, doc: Doc) -> None:
    """What ``dse verify`` measured when it retrained the top front configurations, or the
    command to run it."""
    doc.h(1, "Verification", "verification")
    records = data.verified
    if not records:
        doc.p(
            "Every trial was scored from one network per (method, density) trained with "
            "all exits attached. Not verified yet: ",
            Code(f"dse verify {data.spec.name}"),
            " retrains the top front "
            "configurations with only their own exits and measures their test accuracy "
            "again; run it and then this report again.",
        )
        return
    doc.p("The top front configurations retrained alone, with only their own exits (test split):")
    rows = []
    for record in records:
        try:
            knobs = record.get("knobs", {})
            candidate = Candidate.from_row({f"knob_{k}": x for k, x in knobs.items()})
            what = (
                f"{vocab.network_name(*candidate.network)}, cut {candidate.split}, "
                f"{exits_of(data, candidate, short=True)}"
            )
        except (KeyError, TypeError, ValueError):
            what = "-"
        rows.append(
            [
                str(record.get("trial")),
                what,
                fmt.human("accuracy", record.get("old_test_accuracy")),
                fmt.human("accuracy", record.get("new_test_accuracy")),
                f"{100 * float(record.get('delta', float('nan'))):+.1f} points",
                fmt.human("latency_mean", record.get("old_latency_mean")),
                fmt.human("latency_mean", record.get("new_latency_mean")),
            ]
        )
    doc.table(
        [
            "trial",
            "configuration",
            "test accuracy (study)",
            "test accuracy (retrained)",
            "change",
            "latency (study)",
            "latency (retrained)",
        ],
        rows,
    )
