"""The first section, read in ten seconds: what to deploy (one sentence), the alternatives a
user would weigh (a small table, each decided by the same rule), why (the rule in one
sentence), what lies under the learned floor, and what would change the answer."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt, plots
from dse.report.answer import answer_sentence, below_floor_text, no_answer_sentence
from dse.report.data import ReportData
from dse.report.doc import Bold, Doc, Inline
from dse.search import Alternative, Point, alternatives, place


def what_to_do(data: ReportData, doc: Doc) -> None:
    """The answer, its alternatives, the rule, the points under the floor, what would
    change it; or why nothing is recommended."""
    doc.h(1, "What to do", "recommendation")
    decision = data.decision
    if decision is None or decision.recommended is None:
        _nothing(data, doc)
        return
    head, rest = answer_sentence(decision, data.explorer, data.spec, tasks=data.tasks)
    doc.p(Bold(head), rest)
    rows = [_alternative_row(data, a) for a in alternatives(decision)]
    doc.table(
        [
            "",
            "configuration",
            "runs",
            "accuracy ± s.e.",
            "test",
            "latency",
            "edge energy",
            *[vocab.metric(m).words for m in _other_objectives(data)],
            "found by",
        ],
        rows,
    )
    why: list[Inline] = [Bold("Why: "), decision.rule]
    if not data.grid_scored:
        why.append(" " + decision.grid_note)
    doc.p(*why)
    below = below_floor_text(decision)
    if below:
        doc.p(below)
    doc.p(Bold("What would change it: "), _would_change(data) + ".")


def _nothing(data: ReportData, doc: Doc) -> None:
    """No answer: nothing learned (every feasible point under the floor), or nothing
    feasible anywhere the decision looked."""
    decision = data.decision
    explorer = data.explorer
    if decision is not None and decision.reason.startswith("no configuration learned"):
        head, rest = no_answer_sentence(decision, data.spec)
        doc.p(Bold(head), rest)
        below = below_floor_text(decision)
        if below:
            doc.p(below)
        return
    feasible = len(data.grid.feasible())
    grid = (
        f"The exhaustive grid has {feasible} feasible candidates of "
        f"{len(data.grid.frame)} on {explorer.edge.name} -> {explorer.link.name} -> "
        f"{explorer.server.name}; "
        if data.grid_scored
        else "The exhaustive grid was not scored (the space is too large); "
    )
    doc.p(
        Bold("Nothing to deploy yet: no trial is feasible. "),
        grid
        + (
            "run more trials."
            if feasible
            else "the constraints ("
            + ", ".join(str(c) for c in data.spec.constraints)
            + ") exclude the whole space: relax them, or pick another device or "
            "link (see the deployment map)."
        )
        + _map_sentence(data),
    )


def _other_objectives(data: ReportData) -> list[str]:
    return [m for m in data.names if m not in ("accuracy", "latency_mean", "edge_energy")]


def found_text(point: Point) -> str:
    """Who found a point, in a table cell: ``trial 12``, ``grid``, ``grid (edge-only)``."""
    if point.source == "study":
        return f"trial {point.trial}"
    return "grid" if point.source == "grid" else f"grid ({point.source})"


def _alternative_row(data: ReportData, alternative: Alternative) -> list[Inline]:
    label = ", ".join(alternative.labels)
    point = alternative.point
    if point is None:
        return [label, alternative.why, *[""] * (6 + len(_other_objectives(data)))]
    row = point.row
    sends = float(row.get("bandwidth", 1.0)) > 0
    se = data.standard_error(float(row["accuracy"]))
    return [
        Bold(label) if "recommended" in alternative.labels else label,
        point.config.label(data.exit_names, data.tasks, sends=sends),
        place(point.config.split, float(row["bandwidth"])),
        fmt.accuracy_pm(float(row["accuracy"]), se),
        fmt.human("accuracy", row.get("test_accuracy")),
        fmt.human("latency_mean", row["latency_mean"]),
        fmt.human("edge_energy", row["edge_energy"]),
        *[fmt.human(m, row.get(m)) for m in _other_objectives(data)],
        found_text(point),
    ]


def _would_change(data: ReportData) -> str:
    """What would move the recommendation: the link's bandwidth, another device or
    link, and the constraints."""
    out = []
    bandwidth = data.figures.info("bandwidth")
    if bandwidth is not None:
        out.append(_uplink_sentence(bandwidth))
    out.append(_map_sentence(data).strip().rstrip(".") or "another device or link (run dse sweep)")
    binding = []
    grid_frame = data.grid.frame
    for constraint in data.spec.constraints:
        if constraint.metric in grid_frame and len(grid_frame):
            cut = int(sum(constraint.violation(v) > 0 for v in grid_frame[constraint.metric]))
            if cut:
                binding.append(
                    f"{constraint} (it excludes {100 * cut / len(grid_frame):.0f}% of the space)"
                )
    if binding:
        out.append("relaxing " + ", ".join(binding))
    return "; ".join(x for x in out if x)


def _uplink_sentence(info: plots.BandwidthInfo) -> str:
    """Which uplinks would make another regime the fastest (the bandwidth map)."""
    spans = plots.regime_spans(info)
    here = next(
        (
            regime
            for regime, lo, hi in spans
            if lo <= info.link_bps * 1.0001 and info.link_bps <= hi * 1.0001
        ),
        None,
    )
    other = [
        f"{regime} below {fmt.mbps(hi)}"
        if lo <= info.uplink_bps[0]
        else f"{regime} above {fmt.mbps(lo)}"
        if hi >= info.uplink_bps[-1]
        else f"{regime} from {fmt.mbps(lo)} to {fmt.mbps(hi)}"
        for regime, lo, hi in spans
        if regime != here
    ]
    if other:
        return (
            "the uplink: with this configuration the fastest place to run is "
            + ", ".join(other)
            + " (bandwidth map)"
        )
    return (
        f"not the uplink alone: {spans[0][0]} is fastest from "
        f"{fmt.mbps(info.uplink_bps[0])} to {fmt.mbps(info.uplink_bps[-1])}"
    )


def _map_sentence(data: ReportData) -> str:
    """What the deployment map says in a sentence (empty without one)."""
    sweep = data.sweep
    if sweep is None:
        return ""
    own = data.own_deployment()
    mine = own.where if own is not None else None
    others = [r for r in sweep.results if r is not own and r.where != mine]
    wins = [r for r in sweep.results if r.split_wins]
    text = (
        f" the answer is a split on {len(wins)} of the {len(sweep.results)} deployments of "
        "the deployment map"
    )
    if not others and mine is not None:
        return (
            f" no edge device or link of the deployment map ({len(sweep.edges)} x "
            f"{len(sweep.links)}) changes where it runs: {mine} on every one."
        )
    if others:
        text += (
            " (elsewhere: "
            + ", ".join(
                f"{r.edge} over {r.link}: {r.where}"
                + (f" at cut {r.best.split}" if r.best is not None else "")
                for r in others[:3]
            )
            + (", ..." if len(others) > 3 else "")
            + ")"
        )
    return text + "."
