"""The first section: what to deploy, why, what it gives up and what would change it."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt, plots
from dse.report.data import ReportData
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import exits_of, sends


def what_to_do(data: ReportData, doc: Doc) -> None:
    """One paragraph: the recommendation, why, what it gives up, what would change it."""
    doc.h(1, "What to do", "recommendation")
    explorer = data.explorer
    row, candidate = data.recommended, data.configuration
    if row is None or candidate is None:
        feasible = len(data.grid.feasible())
        doc.p(
            Bold("Nothing to deploy yet: no trial is feasible. "),
            f"The exhaustive grid has {feasible} feasible candidates of "
            f"{len(data.grid.frame)} on {explorer.edge.name} -> {explorer.link.name} -> "
            f"{explorer.server.name}; "
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
        return
    k = candidate.split
    if k == 0:
        where = (
            f"run it all on the server ({explorer.server.name}): {explorer.edge.name} sends "
            f"its input over {explorer.link.name} ({fmt.human('bandwidth', row['bandwidth'])})"
        )
    elif not sends(data, candidate, row):
        where = (
            f"run it all on {explorer.edge.name} ("
            + (
                "edge-only"
                if k == data.last_cut
                else "every sample is answered by an exit on the edge"
            )
            + ": nothing is sent)"
        )
    else:
        where = (
            f"split it at cut {k} (after {data.graph.cuts[k].after}): "
            f"{explorer.edge.name} runs the first part and sends "
            f"{fmt.human('bandwidth', row['bandwidth'])} per inference over "
            f"{explorer.link.name} to {explorer.server.name}"
        )
    parts: list[Inline] = [
        Bold(f"Deploy {vocab.network_name(*candidate.network)} with {exits_of(data, candidate)}"),
        f" and {where}. ",
        f"Expected per inference: accuracy {fmt.human('accuracy', row['accuracy'])} "
        f"(test {fmt.human('accuracy', row['test_accuracy'])}), latency "
        f"{fmt.human('latency_mean', row['latency_mean'])}, edge energy "
        f"{fmt.human('edge_energy', row['edge_energy'])}. ",
        f"Why: of the {len(data.front)} feasible front trials it is the closest to the "
        "ideal point with every objective scaled to [0, 1] (the knee)" + _ends_text(data) + ". ",
        "It gives up " + _gives_up(data) + ". ",
        "What would change it: " + _would_change(data) + ".",
    ]
    doc.p(*parts)


def _ends_text(data: ReportData) -> str:
    """How the recommendation compares with the best edge-only and server-only
    configurations on the study's own deployment (from the deployment sweep)."""
    own = data.own_deployment()
    if own is None:
        return ""
    out = []
    mine = data.configuration.as_dict() if data.configuration is not None else None
    for label, end in (("edge-only", own.edge_only), ("server-only", own.server_only)):
        if end is None:
            out.append(f"no {label} configuration is feasible")
        elif end.knobs == mine:
            out.append(f"it is itself the best {label} configuration")
        else:
            metrics = end.metrics
            out.append(
                f"the best {label} one has accuracy "
                f"{fmt.human('accuracy', metrics['accuracy'])}"
                f", latency {fmt.human('latency_mean', metrics['latency_mean'])} and edge "
                f"energy {fmt.human('edge_energy', metrics['edge_energy'])}"
            )
    return "; " + "; ".join(out)


def _gives_up(data: ReportData) -> str:
    """Per objective, how far the recommendation is from the front's best on it."""
    row, front = data.recommended, data.front
    assert row is not None
    out = []
    for name, direction in data.spec.objectives.items():
        if name not in front or not len(front):
            continue
        i = front[name].idxmax() if direction == "maximize" else front[name].idxmin()
        best, mine = float(front.loc[i, name]), float(row[name])
        trial = int(front.loc[i, "trial"])
        words = vocab.metric(name).words
        if direction == "maximize" and best > mine + 1e-12:
            gap = (
                f"{100 * (best - mine):.2g} points"
                if vocab.metric(name).quantity == "%"
                else fmt.human(name, best - mine)
            )
            out.append(f"{gap} of {words} (trial {trial} reaches {fmt.human(name, best)})")
        elif direction == "minimize" and mine > best * (1 + 1e-9) + 1e-300:
            ratio = mine / best if best > 0 else float("inf")
            out.append(
                f"{words}: {fmt.ratio(ratio)} that of trial {trial} ({fmt.human(name, best)})"
            )
    return (
        "; ".join(out) + " (each the best of the feasible front on that objective)"
        if out
        else "nothing: no feasible trial does better on any objective"
    )


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
        if constraint.metric in grid_frame:
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
            "the uplink: with these exits the fastest is " + ", ".join(other) + " (bandwidth map)"
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
        f" a split wins on {len(wins)} of the {len(sweep.results)} deployments of the "
        "deployment map"
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
