"""The summary section: trial counts, the recommendation in one line, the share of the
grid's hypervolume the study reached."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dse import vocab
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import cut_text, exits_of, sends
from dse.search import Candidate


def summary(data: ReportData, doc: Doc) -> None:
    """Trials per state, the recommendation in one line, the hypervolume reached."""
    doc.h(1, "Summary", "summary")
    complete = len(data.trials)
    feasible = int(data.trials["feasible"].sum()) if complete else 0
    states = ", ".join(f"{v} {k.lower()}" for k, v in sorted(data.states.items())) or "none"
    items: list[Inline | Sequence[Inline]] = [
        f"Trials: {states}; {feasible} of {complete} complete trials feasible; "
        f"{len(data.front)} on the feasible Pareto front.",
    ]
    if data.recommended is None:
        items.append(
            [
                Bold("No trial is feasible: there is no recommended configuration. "),
                f"The exhaustive grid has {len(data.grid.feasible())} feasible "
                f"candidates of {len(data.grid.frame)}; "
                + (
                    "the sampler missed them: run more trials."
                    if len(data.grid.feasible())
                    else "the constraints exclude the whole space: relax them."
                ),
            ]
        )
    else:
        items.append([Bold("Recommended: "), one_line(data, data.recommended)])
    study_hv, grid_hv = data.study_hypervolume, data.grid_hypervolume
    if grid_hv > 0:
        items.append(
            f"The study's feasible front reaches "
            f"{100 * study_hv / grid_hv:.1f}% of the exhaustive grid's "
            f"hypervolume ({study_hv:.4f} of {grid_hv:.4f}, on the "
            f"{data.ruler_source} ruler)."
        )
    else:
        items.append(
            "The exhaustive grid has no feasible candidate, so there is no "
            "hypervolume to compare with."
        )
    doc.items(items)


def one_line(data: ReportData, row: pd.Series) -> str:
    """A trial in one line: its configuration and its main metrics."""
    candidate = Candidate.from_row(row)
    codec = (
        f", codec {candidate.codec}"
        if candidate.codec is not None and sends(data, candidate, row)
        else ""
    )
    return (
        f"trial {int(row['trial'])}: {vocab.network_name(*candidate.network)}, "
        f"{cut_text(data, candidate.split)}"
        f"{codec}, {exits_of(data, candidate)}; accuracy "
        f"{fmt.human('accuracy', row['accuracy'])}"
        f" (test {fmt.human('accuracy', row['test_accuracy'])})"
        + "".join(
            f"; {t} {fmt.human('accuracy', row.get(f'accuracy.{t}'))} (test "
            f"{fmt.human('accuracy', row.get(f'test_accuracy.{t}'))})"
            for t in data.tasks
        )
        + ", latency "
        f"{fmt.human('latency_mean', row['latency_mean'])}, sent "
        f"{fmt.human('bandwidth', row['bandwidth'])}, edge energy "
        f"{fmt.human('edge_energy', row['edge_energy'])}."
    )
