"""What a study's front spans, in a few numbers: which cuts it holds (server-only, inside the
network, edge-only), whether its points use early exits, and which regimes the bandwidth map
of its recommended configuration shows. ``dse demo`` prints it, so a person sees at once
whether the cut mattered for this deployment; the numbers are those the report shows (the
same front, knee and bandwidth sweep).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from dse.report import plots
from dse.search import Candidate, Explorer, load_study, study_ruler, trials_frame


class FrontSummary(NamedTuple):
    """The span of one study's feasible front."""

    study: str
    points: int  # trials on the feasible front
    #: distinct cuts of the front's points, ascending; a point that sends nothing (every
    #: sample leaves at an edge exit before its cut) counts as edge-only, whatever its knob
    cuts: tuple[int, ...]
    last_cut: int  # the edge-only cut of the network (0 is server-only)
    exit_points: int  # front trials that carry at least one exit on their edge part
    knee_trial: int | None  # the recommended (knee) trial, None when nothing is feasible
    #: the bandwidth map of the knee's configuration: (regime, lowest, highest uplink bit/s)
    regimes: tuple[tuple[str, float, float], ...]
    distinct: int = 0  # distinct objective vectors among the front's trials

    @property
    def mid_cuts(self) -> tuple[int, ...]:
        """Cuts on the front inside the network: neither server-only nor edge-only."""
        return tuple(k for k in self.cuts if 0 < k < self.last_cut)

    @property
    def spans_the_space(self) -> bool:
        """At least three cuts, one inside the network, exits used, two bandwidth regimes."""
        return (
            len(self.cuts) >= 3
            and bool(self.mid_cuts)
            and self.exit_points > 0
            and len({r for r, _, _ in self.regimes}) >= 2
        )

    def lines(self) -> list[str]:
        """The summary as lines of plain text."""

        def name(k: int) -> str:
            return (
                "0 (server-only)"
                if k == 0
                else f"{k} (edge-only)"
                if k == self.last_cut
                else f"{k} (inside the network)"
            )

        regimes = "; ".join(
            f"{r} {lo / 1e6:.3g}-{hi / 1e6:.3g} Mbit/s" for r, lo, hi in self.regimes
        )
        return [
            f"front of {self.study}: {self.points} trial(s), {self.distinct} distinct "
            "point(s); cuts " + (", ".join(name(k) for k in self.cuts) or "none"),
            f"front trials with an early exit on the edge: {self.exit_points}",
            f"bandwidth map of the recommended trial ({self.knee_trial}): {regimes or 'none'}",
            "the front spans the design space (>= 3 cuts, one inside the network, exits "
            f"used, >= 2 bandwidth regimes): {'yes' if self.spans_the_space else 'NO'}",
        ]


def front_summary(
    name: str, *, storage: str | None = None, explorer: Explorer | None = None
) -> FrontSummary:
    """Summarise the feasible front of stored study ``name`` (its networks must be cached:
    they are loaded, never trained, unless the cache lacks them)."""
    study, spec = load_study(name, storage=storage)
    explorer = explorer or Explorer(spec, progress=False)
    names = list(spec.objectives)
    trials = trials_frame(study)
    last = len(explorer.reference_graph.cuts) - 1
    if trials.empty:
        return FrontSummary(name, 0, (), last, 0, None, ())
    trials = trials.sort_values("trial").reset_index(drop=True)
    ruler, _ = study_ruler(study, spec)
    info = plots.front_info(
        trials[names].to_numpy(dtype=float),
        names,
        spec.directions,
        feasible=trials["feasible"].to_numpy(dtype=bool),
        trials=trials["trial"].to_numpy(dtype=int),
        ruler=ruler,
    )
    front = trials[info.on_front]
    positions = np.array([x.position for x in explorer.reference_graph.exits], dtype=int)
    candidates = [Candidate.from_row(row) for _, row in front.iterrows()]
    exit_points = sum(any(positions[j] <= c.split for j in c.exits) for c in candidates)
    regimes: tuple[tuple[str, float, float], ...] = ()
    knee = None
    if info.knee is not None:
        row = trials.iloc[info.knee]
        knee = int(row["trial"])
        candidate = Candidate.from_row(row)
        scorer = explorer.scorer(candidate.method, candidate.density)
        bandwidth = plots.bandwidth_info(
            scorer.graph,
            explorer.edge,
            explorer.server,
            explorer.link,
            cuts=explorer.space.cuts,
            score=lambda table, c: replace(scorer, table=table).score(c).latency_mean,
            candidate=candidate,
            tail=spec.tail_energy,
        )
        regimes = tuple(plots.regime_spans(bandwidth))
    cuts = {
        c.split if sent > 0 else last
        for c, sent in zip(candidates, front["bandwidth"], strict=True)
    }
    distinct = len(np.unique(front[names].to_numpy(dtype=float), axis=0))
    return FrontSummary(
        name, len(front), tuple(sorted(cuts)), last, exit_points, knee, regimes, distinct
    )
