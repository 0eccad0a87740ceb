"""The study spec section: the spec as stored with the study."""

from __future__ import annotations

from dse.report.data import ReportData
from dse.report.doc import Code, Doc
from dse.report.text import spec_shown


def spec(data: ReportData, doc: Doc) -> None:
    """The spec's text, and where it was written."""
    doc.h(1, "Study spec", "spec")
    where = spec_shown(data.spec) if data.spec.path else "(stored with the study)"
    doc.p("As stored with the study; written at ", Code(where), ":")
    doc.code(data.spec.text)
