"""The reproduce section: the commands that make this report again."""

from __future__ import annotations

from dse.report.doc import Doc


class Reproduce:
    """The reproduce section: the commands that make this report again."""

    def _reproduce(self, doc: Doc) -> None:
        doc.h(1, "Reproduce", "reproduce")
        name = self.spec.name
        shown = self._spec_shown()
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
