"""The verification section: the front configurations retrained alone."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.doc import Code, Doc
from dse.report.text import candidate_of


class Verification:
    """The verification section: the front configurations retrained alone."""

    def _verification(self, doc: Doc) -> None:
        doc.h(1, "Verification", "verification")
        v = self.verify
        if not v:
            doc.p(
                "Every trial was scored from one network per (method, density) trained with "
                "all exits attached. Not verified yet: ",
                Code(f"dse verify {self.spec.name}"),
                " retrains the top front "
                "configurations with only their own exits and measures their test accuracy "
                "again; run it and then this report again.",
            )
            return
        doc.p(
            "The top front configurations retrained alone, with only their own exits (test split):"
        )
        rows = []
        for r in v:
            try:
                c = candidate_of({f"knob_{k}": x for k, x in r.get("knobs", {}).items()})
                what = (
                    f"{vocab.network_name(*c.network)}, cut {c.split}, {self._exits(c, short=True)}"
                )
            except (KeyError, TypeError, ValueError):
                what = "-"
            rows.append(
                [
                    str(r.get("trial")),
                    what,
                    fmt.human("accuracy", r.get("old_test_accuracy")),
                    fmt.human("accuracy", r.get("new_test_accuracy")),
                    f"{100 * float(r.get('delta', float('nan'))):+.1f} points",
                    fmt.human("latency_mean", r.get("old_latency_mean")),
                    fmt.human("latency_mean", r.get("new_latency_mean")),
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
