"""The reproduce section: the commands that make this report again."""

from __future__ import annotations

from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.report.text import spec_shown


def reproduce(data: ReportData, doc: Doc) -> None:
    """The commands, in order, that make this study and its report again."""
    doc.h(1, "Reproduce", "reproduce")
    name = data.spec.name
    shown = spec_shown(data.spec)
    doc.code(
        "\n".join(
            [
                f"dse study run {shown}      # the study (resumes where it stopped)",
                f"dse study grid {name}      # the exhaustive grid: the reference front",
                f"dse compare {name}         # the baselines table",
                f"dse verify {name}          # retrain the top front configurations alone",
                f"dse report {name}          # this report",
            ]
        )
    )
