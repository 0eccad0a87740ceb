"""The recommended configuration section: its knobs and every metric, validation and test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dse import vocab
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import as_tuple, codec_text, cut_text, exits_of
from dse.search import Candidate, exit_label

#: The parts of the radio's energy a row may hold: (column, what it is spent on).
RADIO_PARTS = (
    ("radio_up_energy", "sending"),
    ("radio_down_energy", "receiving the result"),
    ("radio_wait_energy", "connected through RTT and server"),
    ("radio_tail_energy", "tail"),
)


def recommended(data: ReportData, doc: Doc) -> None:
    """The knee's knobs, its metrics on both splits, and whether anything beats it."""
    doc.h(1, "Recommended configuration", "recommended")
    row, candidate = data.recommended, data.configuration
    if row is None or candidate is None:
        doc.p(
            Bold("No trial is feasible"),
            ", so nothing is recommended. Constraints: ",
            ", ".join(str(c) for c in data.spec.constraints) or "none",
            ".",
        )
        return
    doc.p(
        "The knee of the feasible front: the front trial closest to the ideal point "
        f"when every objective is scaled to [0, 1] on the study's ruler "
        f"({data.ruler_source})."
    )
    exits = [exit_label(data.exit_names, j) for j in candidate.exits]
    doc.table(
        ["knob", "value"],
        [
            ["trial", str(int(row["trial"]))],
            ["network", vocab.network_name(*candidate.network)],
            ["cut", cut_text(data, candidate.split)],
            ["exits used", ", ".join(exits) or "none"],
            *_threshold_rows(data, candidate),
            *(
                [["codec at the cut", codec_text(data, candidate, row, long=True)]]
                if candidate.codec is not None
                else []
            ),
        ],
    )
    doc.table(["metric", "validation", "test"], _metric_rows(data, row, exits))
    better = grid_better(data)
    if better is not None:
        dominant = Candidate.from_row(better)
        values = ", ".join(
            f"{m} {fmt.human(m, better[m])} (vs {fmt.human(m, row[m])})" for m in data.names
        )
        doc.p(
            Bold("The exhaustive grid has better: "),
            "the study did not find "
            f"{vocab.network_name(*dominant.network)}, {cut_text(data, dominant.split)}, "
            f"{exits_of(data, dominant)}, which dominates the recommendation: "
            f"{values}. Run more trials, or deploy that candidate.",
        )
    again = data.rescored
    if again is not None:
        drift = abs(again.accuracy - float(row["accuracy"])) + abs(
            again.latency_mean - float(row["latency_mean"])
        ) / max(float(row["latency_mean"]), 1e-12)
        if drift > 1e-6:
            doc.p(
                Bold("Warning: "),
                "scoring this configuration again now gives accuracy "
                f"{fmt.human('accuracy', again.accuracy)} and latency "
                f"{fmt.human('latency_mean', again.latency_mean)}: the cached "
                "networks or the profiles changed since the study ran.",
            )


def _metric_rows(data: ReportData, row: pd.Series, exits: Sequence[str]) -> list[list[Inline]]:
    """Every metric of the knee on validation and test, costs broken into their parts,
    and the share of samples leaving at each exit."""
    capacity = data.explorer.edge.mem_capacity_bytes

    def both(label: str, name: str) -> list[Inline]:
        return [label, fmt.human(name, row[name]), fmt.human(name, row[f"test_{name}"])]

    rows: list[list[Inline]] = [
        both("accuracy" + (", mean over the tasks" if data.tasks else ""), "accuracy"),
        *[
            [
                f"· accuracy, {t}",
                fmt.human("accuracy", row.get(f"accuracy.{t}")),
                fmt.human("accuracy", row.get(f"test_accuracy.{t}")),
            ]
            for t in data.tasks
        ],
        both("latency, mean", "latency_mean"),
        ["· edge compute", fmt.human("edge_s", row["edge_s"]), ""],
        ["· transfer", fmt.human("transfer_s", row["transfer_s"]), ""],
        ["· server compute", fmt.human("server_s", row["server_s"]), ""],
        both("latency, p95", "latency_p95"),
        both("bytes sent per inference", "bandwidth"),
        both("edge energy per inference", "edge_energy"),
        ["· compute", fmt.human("edge_energy", row["compute_energy"]), ""],
        ["· radio (whole exchange)", fmt.human("edge_energy", row["radio_energy"]), ""],
        *[
            [f"  · radio, {label}", fmt.human("edge_energy", row[key]), ""]
            for key, label in RADIO_PARTS
            if key in row and row[key] == row[key]
        ],
        [
            "· idle while waiting for the link and the server",
            fmt.human("edge_energy", row.get("idle_energy", float("nan"))),
            "",
        ],
        [
            "edge memory (weights + peak activations)",
            fmt.human("edge_memory", row["edge_memory"])
            + f" ({100 * row['edge_memory'] / capacity:.2g}% of {fmt.nbytes(capacity)})",
            "",
        ],
        ["storage (edge and server parts)", fmt.human("storage", row["storage"]), ""],
    ]
    rates, test_rates = as_tuple(row["exit_rates"]), as_tuple(row["test_exit_rates"])
    labels = [f"leave at exit {e}" for e in exits] + ["run to the final classifier"]
    for label, rate, test_rate in zip(labels, rates, test_rates, strict=False):
        rows.append([label, fmt.percent(rate), fmt.percent(test_rate)])
    return rows


def _threshold_rows(data: ReportData, candidate: Candidate) -> list[list[Inline]]:
    """The threshold row of the knob table; with several tasks, one per task and the
    exit policy."""
    if not candidate.exits:
        return [["threshold", "- (no exit)"]]
    if not data.tasks:
        return [["threshold", f"{candidate.threshold:g} ({candidate.criterion})"]]
    per = candidate.thresholds(len(data.tasks))
    return [
        *[
            [f"threshold, {t}", f"{x:g} ({candidate.criterion})"]
            for t, x in zip(data.tasks, per, strict=True)
        ],
        [
            "exit policy",
            candidate.policy
            + (
                " (a sample leaves where every task is confident)"
                if candidate.policy == "all"
                else " (each task answered at its first confident exit)"
            ),
        ],
    ]


def grid_better(data: ReportData) -> pd.Series | None:
    """The feasible candidate of the study's own space closest to ideal among those
    that dominate the recommendation (None if nothing does). The edgent right-sizing
    points lie outside the space the sampler draws from, so they are not counted."""
    if data.recommended is None:
        return None
    feasible = data.grid.feasible()
    feasible = feasible[feasible.source == "space"]
    if not len(feasible):
        return None
    names = data.names
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in data.spec.directions])
    grid_losses = feasible[names].to_numpy(dtype=float) * sign
    mine = data.recommended[names].to_numpy(dtype=float) * sign
    dominates = np.all(grid_losses <= mine + 1e-15, axis=1) & np.any(
        grid_losses < mine - 1e-12 * np.abs(mine), axis=1
    )
    if not dominates.any():
        return None
    sub = feasible[dominates]
    losses = data.ruler.loss(sub[names].to_numpy(dtype=float))
    return sub.iloc[int(np.argmin(np.linalg.norm(losses, axis=1)))]
