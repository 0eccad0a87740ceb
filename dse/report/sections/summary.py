"""The summary section: trial counts, the recommendation in one line, the share of the
grid's hypervolume.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dse import vocab
from dse.report import fmt
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import candidate_of


class Summary:
    """The summary section: trial counts, the recommendation in one line, the share of the"""

    def _summary(self, doc: Doc) -> None:
        doc.h(1, "Summary", "summary")
        n = len(self.df)
        n_feas = int(self.df["feasible"].sum()) if n else 0
        states = ", ".join(f"{v} {k.lower()}" for k, v in sorted(self.counts.items())) or "none"
        items: list[Inline | Sequence[Inline]] = [
            f"Trials: {states}; {n_feas} of {n} complete trials feasible; "
            f"{len(self.front)} on the feasible Pareto front.",
        ]
        if self.rec is None:
            items.append(
                [
                    Bold("No trial is feasible: there is no recommended configuration. "),
                    f"The exhaustive grid has {len(self.grid.feasible())} feasible "
                    f"candidates of {len(self.grid.frame)}; "
                    + (
                        "the sampler missed them: run more trials."
                        if len(self.grid.feasible())
                        else "the constraints exclude the whole space: relax them."
                    ),
                ]
            )
        else:
            items.append([Bold("Recommended: "), self._one_line(self.rec)])
        if self.hv_grid > 0:
            items.append(
                f"The study's feasible front reaches "
                f"{100 * self.hv_study / self.hv_grid:.1f}% of the exhaustive grid's "
                f"hypervolume ({self.hv_study:.4f} of {self.hv_grid:.4f}, on the "
                f"{self.ruler_source} ruler)."
            )
        else:
            items.append(
                "The exhaustive grid has no feasible candidate, so there is no "
                "hypervolume to compare with."
            )
        doc.items(items)

    def _one_line(self, row: pd.Series) -> str:
        c = candidate_of(row)
        codec = f", codec {c.codec}" if c.codec is not None and self._sends(c, row) else ""
        return (
            f"trial {int(row['trial'])}: {vocab.network_name(*c.network)}, "
            f"{self._cut_text(c.split)}"
            f"{codec}, {self._exits(c)}; accuracy "
            f"{fmt.human('accuracy', row['accuracy'])}"
            f" (test {fmt.human('accuracy', row['test_accuracy'])})"
            + "".join(
                f"; {t} {fmt.human('accuracy', row.get(f'accuracy.{t}'))} (test "
                f"{fmt.human('accuracy', row.get(f'test_accuracy.{t}'))})"
                for t in self.tasks
            )
            + ", latency "
            f"{fmt.human('latency_mean', row['latency_mean'])}, sent "
            f"{fmt.human('bandwidth', row['bandwidth'])}, edge energy "
            f"{fmt.human('edge_energy', row['edge_energy'])}."
        )
