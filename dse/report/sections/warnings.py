"""Warnings at the top: reasons to distrust the study's dense network (it has not learned)."""

from __future__ import annotations

from dse.report.data import ReportData
from dse.report.doc import Bold, Doc


def warnings(data: ReportData, doc: Doc) -> None:
    """One paragraph per reason to distrust the dense network, right after what to do."""
    for line in data.learning_warnings:
        doc.p(Bold("Warning: "), line[0].upper() + line[1:] + ".")
