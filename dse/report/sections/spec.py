"""The study spec section: the spec as stored with the study."""

from __future__ import annotations

from dse.report.doc import Code, Doc


class Spec:
    """The study spec section: the spec as stored with the study."""

    def _spec(self, doc: Doc) -> None:
        doc.h(1, "Study spec", "spec")
        where = self._spec_shown() if self.spec.path else "(stored with the study)"
        doc.p("As stored with the study; written at ", Code(where), ":")
        doc.code(self.spec.text)
