"""The search section: the sampler, the grid, the hypervolume, the ruler and knob importance."""

from __future__ import annotations

from dse.report import fmt
from dse.report.doc import Doc


class Search:
    """The search section: the sampler, the grid, the hypervolume, the ruler and knob importance."""

    def _search(self, doc: Doc) -> None:
        doc.h(1, "The search", "search")
        g = self.grid
        on_front = int(g.frame["pareto"].sum()) if "pareto" in g.frame else 0
        doc.p(
            f"Sampler {self.spec.sampler} (seed {self.spec.seed}); the exhaustive grid "
            f"scored {len(g.frame)} candidates in {g.seconds:.1f} s "
            f"({len(g.feasible())} feasible, {on_front} on its front)."
        )
        if self.hv_grid > 0:
            doc.p(
                f"Hypervolume of the study's feasible trials: {self.hv_study:.4f}, "
                f"{100 * self.hv_study / self.hv_grid:.1f}% of the grid's {self.hv_grid:.4f} "
                f"(on the {self.ruler_source} ruler; reference point 1.1 in every scaled "
                "objective)."
            )
        r = self.ruler
        doc.p(
            "The ruler: every objective scaled to [0, 1] between these bounds (fitted to "
            + (
                "the exhaustive grid's feasible candidates"
                if self.ruler_source == "grid"
                else "the study's own trials"
            )
            + "), 0 best:"
        )
        doc.table(
            ["objective", "direction", "best end", "worst end"],
            [
                [
                    m,
                    d,
                    fmt.human(m, r.hi[i] if d == "maximize" else r.lo[i]),
                    fmt.human(m, r.lo[i] if d == "maximize" else r.hi[i]),
                ]
                for i, (m, d) in enumerate(zip(r.names, r.directions, strict=True))
            ],
        )
        self.fig.put(doc, "hypervolume")
        self.fig.put(doc, "importance")
        imp = getattr(self, "importance", None)
        if imp:
            failed = {k: v for k, v in imp.items() if isinstance(v, str)}
            for k, v in failed.items():
                doc.p(f"Importance for {k} could not be computed: {v}")
