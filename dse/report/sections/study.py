"""The study section: what was searched, on which devices, under which constraints."""

from __future__ import annotations

from datetime import UTC, datetime

from dse import vocab
from dse.report.data import ReportData
from dse.report.doc import Code, Doc


def study(data: ReportData, doc: Doc) -> None:
    """The spec's description, model, data, devices, constraints and objectives."""
    spec, explorer = data.spec, data.explorer
    doc.h(1, "The study", "study")
    if spec.description:
        doc.p(spec.description)
    doc.p(
        f"Model {spec.model} on {spec.data['name']}; edge {explorer.edge.name}, server "
        f"{explorer.server.name}, link {explorer.link.name}. Constraints: ",
        ", ".join(str(c) for c in spec.constraints) or "none",
        f". Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Objectives:",
    )
    doc.items(
        [
            [Code(name), f" ({direction}): {vocab.metric(name).description}"]
            for name, direction in spec.objectives.items()
        ]
    )
