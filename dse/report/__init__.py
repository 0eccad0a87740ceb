"""The report: figures (each computed as data, then drawn), the HTML and Markdown report of
a study, and the plain-text formatting the commands print.

Entry points: :func:`write_report`; :func:`front_summary` (what a front spans: its cuts,
exits and bandwidth regimes); the modules ``plots`` (one module per figure family) and
``fmt`` (every unit and ratio); :class:`ReportData` (everything a report shows, computed
once) with :func:`gather`.

Inside, by job: ``data`` computes the report's numbers once, ``figures`` draws them,
``sections`` lays out one section per module from the data alone, ``doc`` renders the
document as Markdown and HTML, ``text`` holds the words sections share, and ``write``
orchestrates them into a folder, whole or not at all.
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "write_report": "write",
        "plots": "plots",
        "fmt": "fmt",
        "FrontSummary": "summary",
        "front_summary": "summary",
        "ReportData": "data",
        "gather": "data",
    },
)
