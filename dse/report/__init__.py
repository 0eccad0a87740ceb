"""The report: figures (each computed as data, then drawn), the HTML and Markdown report of
a study, and the plain-text formatting the commands print.

Entry points: :func:`write_report`; :func:`front_summary` (what a front spans: its cuts,
exits and bandwidth regimes); the modules ``plots`` and ``fmt``.
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
    },
)
