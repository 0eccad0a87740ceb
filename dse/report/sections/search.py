"""The search section: the sampler, the grid, the hypervolume, the ruler and knob importance."""

from __future__ import annotations

from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc


def search(data: ReportData, doc: Doc) -> None:
    """How the search went against the exhaustive grid, on which ruler, and what each
    knob explains."""
    doc.h(1, "The search", "search")
    grid = data.grid
    on_front = int(grid.frame["pareto"].sum()) if "pareto" in grid.frame else 0
    doc.p(
        f"Sampler {data.spec.sampler} (seed {data.spec.seed}); the exhaustive grid "
        f"scored {len(grid.frame)} candidates in {grid.seconds:.1f} s "
        f"({len(grid.feasible())} feasible, {on_front} on its front)."
    )
    study_hv, grid_hv = data.study_hypervolume, data.grid_hypervolume
    if grid_hv > 0:
        doc.p(
            f"Hypervolume of the study's feasible trials: {study_hv:.4f}, "
            f"{100 * study_hv / grid_hv:.1f}% of the grid's {grid_hv:.4f} "
            f"(on the {data.ruler_source} ruler; reference point 1.1 in every scaled "
            "objective)."
        )
    ruler = data.ruler
    doc.p(
        "The ruler: every objective scaled to [0, 1] between these bounds (fitted to "
        + (
            "the exhaustive grid's feasible candidates"
            if data.ruler_source == "grid"
            else "the study's own trials"
        )
        + "), 0 best:"
    )
    doc.table(
        ["objective", "direction", "best end", "worst end"],
        [
            [
                name,
                direction,
                fmt.human(name, ruler.hi[i] if direction == "maximize" else ruler.lo[i]),
                fmt.human(name, ruler.lo[i] if direction == "maximize" else ruler.hi[i]),
            ]
            for i, (name, direction) in enumerate(zip(ruler.names, ruler.directions, strict=True))
        ],
    )
    data.figures.put(doc, "hypervolume")
    data.figures.put(doc, "importance")
    for name, result in (data.importance or {}).items():
        if isinstance(result, str):
            doc.p(f"Importance for {name} could not be computed: {result}")
