"""The report's sections, one module each, in the order the report shows them."""

from __future__ import annotations

from datetime import UTC, datetime

from dse import vocab
from dse.report.doc import Bold, Code, Doc
from dse.report.sections.baselines import Baselines
from dse.report.sections.codecs import Codecs
from dse.report.sections.density import Density
from dse.report.sections.deployment import Deployment
from dse.report.sections.deployment_map import DeploymentMap
from dse.report.sections.front import Front
from dse.report.sections.notes import Notes
from dse.report.sections.recommended import Recommended
from dse.report.sections.reproduce import Reproduce
from dse.report.sections.search import Search
from dse.report.sections.spec import Spec
from dse.report.sections.summary import Summary
from dse.report.sections.tasks import Tasks
from dse.report.sections.training import Training
from dse.report.sections.verification import Verification
from dse.report.sections.what_to_do import WhatToDo
from dse.report.sections.why import Why


class Document(
    WhatToDo,
    DeploymentMap,
    Training,
    Summary,
    Recommended,
    Front,
    Baselines,
    Tasks,
    Why,
    Codecs,
    Density,
    Search,
    Verification,
    Notes,
    Deployment,
    Spec,
    Reproduce,
):
    """Every section of the report, laid out in order by ``document``."""

    # ---- the document ---------------------------------------------------------------

    def document(self) -> Doc:
        spec, ex = self.spec, self.ex
        doc = Doc(f"dse report: {spec.name}")
        self._what_to_do(doc)
        for line in self.learning:
            doc.p(Bold("Warning: "), line[0].upper() + line[1:] + ".")
        self._front(doc)
        doc.h(1, "The study", "study")
        if spec.description:
            doc.p(spec.description)
        doc.p(
            f"Model {spec.model} on {spec.data['name']}; edge {ex.edge.name}, server "
            f"{ex.server.name}, link {ex.link.name}. Constraints: ",
            ", ".join(str(c) for c in spec.constraints) or "none",
            f". Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Objectives:",
        )
        doc.items(
            [
                [Code(m), f" ({d}): {vocab.metric(m).description}"]
                for m, d in spec.objectives.items()
            ]
        )
        self._summary(doc)
        self._recommended(doc)
        self._deployment_map(doc)
        self._training(doc)
        self._baselines(doc)
        self._tasks_section(doc)
        self._why(doc)
        self._codecs(doc)
        self._density(doc)
        self._search(doc)
        self._verification(doc)
        self._notes(doc)
        self._deployment(doc)
        self._spec(doc)
        self._reproduce(doc)
        return doc
