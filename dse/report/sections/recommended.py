"""The recommended configuration section: its knobs and every metric, validation and test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse import vocab
from dse.report import fmt
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import _tuple, candidate_of
from dse.search import Candidate


class Recommended:
    """The recommended configuration section: its knobs and every metric, validation and test."""

    def _recommended(self, doc: Doc) -> None:
        doc.h(1, "Recommended configuration", "recommended")
        if self.rec is None:
            doc.p(
                Bold("No trial is feasible"),
                ", so nothing is recommended. Constraints: ",
                ", ".join(str(c) for c in self.spec.constraints) or "none",
                ".",
            )
            return
        row, c, ex = self.rec, self.rec_cand, self.ex
        assert c is not None
        doc.p(
            "The knee of the feasible front: the front trial closest to the ideal point "
            f"when every objective is scaled to [0, 1] on the study's ruler "
            f"({self.ruler_source})."
        )
        exits = [ex.exit_names[j] if j < len(ex.exit_names) else str(j) for j in c.exits]
        doc.table(
            ["knob", "value"],
            [
                ["trial", str(int(row["trial"]))],
                ["network", vocab.network_name(*c.network)],
                ["cut", self._cut_text(c.split)],
                ["exits used", ", ".join(exits) or "none"],
                *self._threshold_rows(c),
                *(
                    [["codec at the cut", self._codec_text(c, row, long=True)]]
                    if c.codec is not None
                    else []
                ),
            ],
        )
        cap = ex.edge.mem_capacity_bytes
        rows = [
            [
                "accuracy" + (", mean over the tasks" if self.tasks else ""),
                fmt.human("accuracy", row["accuracy"]),
                fmt.human("accuracy", row["test_accuracy"]),
            ],
            *[
                [
                    f"· accuracy, {t}",
                    fmt.human("accuracy", row.get(f"accuracy.{t}")),
                    fmt.human("accuracy", row.get(f"test_accuracy.{t}")),
                ]
                for t in self.tasks
            ],
            [
                "latency, mean",
                fmt.human("latency_mean", row["latency_mean"]),
                fmt.human("latency_mean", row["test_latency_mean"]),
            ],
            ["· edge compute", fmt.human("edge_s", row["edge_s"]), ""],
            ["· transfer", fmt.human("transfer_s", row["transfer_s"]), ""],
            ["· server compute", fmt.human("server_s", row["server_s"]), ""],
            [
                "latency, p95",
                fmt.human("latency_p95", row["latency_p95"]),
                fmt.human("latency_p95", row["test_latency_p95"]),
            ],
            [
                "bytes sent per inference",
                fmt.human("bandwidth", row["bandwidth"]),
                fmt.human("bandwidth", row["test_bandwidth"]),
            ],
            [
                "edge energy per inference",
                fmt.human("edge_energy", row["edge_energy"]),
                fmt.human("edge_energy", row["test_edge_energy"]),
            ],
            ["· compute", fmt.human("edge_energy", row["compute_energy"]), ""],
            ["· radio (whole exchange)", fmt.human("edge_energy", row["radio_energy"]), ""],
            *[
                [f"  · radio, {label}", fmt.human("edge_energy", row[key]), ""]
                for key, label in (
                    ("radio_up_energy", "sending"),
                    ("radio_down_energy", "receiving the result"),
                    ("radio_wait_energy", "connected through RTT and server"),
                    ("radio_tail_energy", "tail"),
                )
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
                + f" ({100 * row['edge_memory'] / cap:.2g}% of {fmt.nbytes(cap)})",
                "",
            ],
            ["storage (edge and server parts)", fmt.human("storage", row["storage"]), ""],
        ]
        rates, trates = _tuple(row["exit_rates"]), _tuple(row["test_exit_rates"])
        labels = [f"leave at exit {e}" for e in exits] + ["run to the final classifier"]
        for lab, v, t in zip(labels, rates, trates, strict=False):
            rows.append([lab, fmt.percent(v), fmt.percent(t)])
        doc.table(["metric", "validation", "test"], rows)
        better = self.grid_better()
        if better is not None:
            c2 = candidate_of(better)
            vals = ", ".join(
                f"{m} {fmt.human(m, better[m])} (vs {fmt.human(m, row[m])})" for m in self.names
            )
            doc.p(
                Bold("The exhaustive grid has better: "),
                "the study did not find "
                f"{vocab.network_name(*c2.network)}, {self._cut_text(c2.split)}, "
                f"{self._exits(c2)}, which dominates the recommendation: "
                f"{vals}. Run more trials, or deploy that candidate.",
            )
        if self.rescored is not None:
            drift = abs(self.rescored.accuracy - float(row["accuracy"])) + abs(
                self.rescored.latency_mean - float(row["latency_mean"])
            ) / max(float(row["latency_mean"]), 1e-12)
            if drift > 1e-6:
                doc.p(
                    Bold("Warning: "),
                    "scoring this configuration again now gives accuracy "
                    f"{fmt.human('accuracy', self.rescored.accuracy)} and latency "
                    f"{fmt.human('latency_mean', self.rescored.latency_mean)}: the cached "
                    "networks or the profiles changed since the study ran.",
                )

    def _threshold_rows(self, c: Candidate) -> list[list[Inline]]:
        """The threshold row of the knob table; with several tasks, one per task and the
        exit policy."""
        if not c.exits:
            return [["threshold", "- (no exit)"]]
        if not self.tasks:
            return [["threshold", f"{c.threshold:g} ({c.criterion})"]]
        per = c.thresholds(len(self.tasks))
        return [
            *[
                [f"threshold, {t}", f"{x:g} ({c.criterion})"]
                for t, x in zip(self.tasks, per, strict=True)
            ],
            [
                "exit policy",
                c.policy
                + (
                    " (a sample leaves where every task is confident)"
                    if c.policy == "all"
                    else " (each task answered at its first confident exit)"
                ),
            ],
        ]

    def grid_better(self) -> pd.Series | None:
        """The feasible candidate of the study's own space closest to ideal among those
        that dominate the recommendation (None if nothing does). The edgent right-sizing
        points lie outside the space the sampler draws from, so they are not counted."""
        if self.rec is None:
            return None
        feas = self.grid.feasible()
        feas = feas[feas.source == "space"]
        if not len(feas):
            return None
        sign = np.array([-1.0 if d == "maximize" else 1.0 for d in self.spec.directions])
        g = feas[self.names].to_numpy(dtype=float) * sign
        r = self.rec[self.names].to_numpy(dtype=float) * sign
        dom = np.all(g <= r + 1e-15, axis=1) & np.any(g < r - 1e-12 * np.abs(r), axis=1)
        if not dom.any():
            return None
        sub = feas[dom]
        losses = self.ruler.loss(sub[self.names].to_numpy(dtype=float))
        return sub.iloc[int(np.argmin(np.linalg.norm(losses, axis=1)))]
