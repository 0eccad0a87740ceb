"""The report's sections, one module each: a function ``(data, doc)`` that adds its part of
the report to ``doc`` from :class:`~dse.report.data.ReportData` alone, so that each can be
laid out (and tested) without running a study. :data:`SECTIONS` holds them in the order the
report shows them: what to do first, then the front, then the details.
"""

from __future__ import annotations

from collections.abc import Callable

from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.report.sections.baselines import baselines
from dse.report.sections.codecs import codecs
from dse.report.sections.density import density
from dse.report.sections.deployment import deployment
from dse.report.sections.deployment_map import deployment_map
from dse.report.sections.exits import exits
from dse.report.sections.front import front
from dse.report.sections.notes import notes
from dse.report.sections.recommended import recommended
from dse.report.sections.reproduce import reproduce
from dse.report.sections.search import search
from dse.report.sections.spec import spec
from dse.report.sections.study import study
from dse.report.sections.summary import summary
from dse.report.sections.tasks import tasks
from dse.report.sections.training import training
from dse.report.sections.verification import verification
from dse.report.sections.warnings import warnings
from dse.report.sections.what_to_do import what_to_do
from dse.report.sections.why import why

Section = Callable[[ReportData, Doc], None]

SECTIONS: tuple[Section, ...] = (
    what_to_do,
    warnings,
    front,
    study,
    summary,
    recommended,
    deployment_map,
    training,
    baselines,
    tasks,
    why,
    exits,
    codecs,
    density,
    search,
    verification,
    notes,
    deployment,
    spec,
    reproduce,
)


def document(data: ReportData) -> Doc:
    """The whole report of ``data``: every section, in order."""
    doc = Doc(f"dse report: {data.spec.name}")
    for section in SECTIONS:
        section(data, doc)
    return doc
