"""What a study's front spans, in a few numbers: which cuts it holds (server-only, inside the
network, edge-only), whether its points use early exits, what is recommended and which
regimes the bandwidth map of the answer shows. ``dse demo`` prints it, so a person sees at
once whether the cut mattered for this deployment; the numbers are those every view shows
(the same decision, front and bandwidth sweep).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from dse.report import plots
from dse.search import Decision, Explorer, load_study, place, recommend


class FrontSummary(NamedTuple):
    """The span of one study's front: the decision's distinct points (see
    :func:`dse.search.recommend`), as every view counts them."""

    study: str
    points: int  # distinct points on the front (above the learned floor)
    #: distinct cuts of the front's points, ascending; a point that sends nothing (every
    #: sample leaves at an edge exit before its cut) counts as edge-only, whatever its knob
    cuts: tuple[int, ...]
    last_cut: int  # the edge-only cut of the network (0 is server-only)
    exit_points: int  # front points whose configuration has an exit on its edge part
    knee_trial: int | None  # the recommended point's trial (None: the grid's, or none)
    #: the bandwidth map of the answer's configuration: (regime, lowest, highest uplink bit/s)
    regimes: tuple[tuple[str, float, float], ...]
    configurations: int = 0  # configurations on the front, equivalent ones counted
    recommended: str = ""  # the answer in one line ("" when nothing is recommended)
    below_floor: int = 0  # points under the learned floor, listed apart from the front

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
        below = f"; {self.below_floor} more below the learned floor" if self.below_floor else ""
        return [
            f"front of {self.study}: {self.points} distinct point(s) ({self.configurations} "
            f"configuration(s)){below}; cuts " + (", ".join(name(k) for k in self.cuts) or "none"),
            f"front points with an early exit on the edge: {self.exit_points}",
            f"recommended: {self.recommended or 'nothing'}",
            f"bandwidth map of the recommended configuration: {regimes or 'none'}",
            "the front spans the design space (>= 3 cuts, one inside the network, exits "
            f"used, >= 2 bandwidth regimes): {'yes' if self.spans_the_space else 'NO'}",
        ]


def front_summary(
    name: str,
    *,
    storage: str | None = None,
    explorer: Explorer | None = None,
    decision: Decision | None = None,
) -> FrontSummary:
    """Summarise the front of stored study ``name`` as the decision every view shows
    (``decision``, or :func:`dse.search.recommend`'s; its networks must be cached: they
    are loaded, never trained, unless the cache lacks them)."""
    study, spec = load_study(name, storage=storage)
    explorer = explorer or Explorer(spec, progress=False)
    decision = decision or recommend(study, spec, explorer)
    last = len(explorer.reference_graph.cuts) - 1
    positions = np.array([x.position for x in explorer.reference_graph.exits], dtype=int)
    front = decision.front
    exit_points = sum(any(positions[j] <= p.config.split for j in p.config.exits) for p in front)
    cuts = {p.config.split if float(p.row["bandwidth"]) > 0 else last for p in front}
    regimes: tuple[tuple[str, float, float], ...] = ()
    point = decision.recommended
    said = ""
    if point is not None:
        candidate = point.config
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
        tasks = spec.tasks if len(spec.tasks) > 1 else ()
        sends = float(point.row["bandwidth"]) > 0
        said = (
            f"{candidate.label(explorer.exit_names, tasks, sends=sends)} "
            f"({place(candidate.split, float(point.row['bandwidth']))}; {point.found_by()})"
        )
    return FrontSummary(
        name,
        len(front),
        tuple(sorted(cuts)),
        last,
        exit_points,
        point.trial if point is not None else None,
        regimes,
        decision.configurations,
        said,
        len(decision.below_floor),
    )
