"""The notes section: where the numbers come from and where they saturate."""

from __future__ import annotations

import numpy as np

from dse.costmodel import FREE_KINDS
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.search import exit_label, hypervolume


def notes(data: ReportData, doc: Doc) -> None:
    """Plain warnings about the numbers, as a list (no section when there is none)."""
    said = warnings_about_the_numbers(data)
    if said:
        doc.h(1, "Read the numbers with care", "notes")
        doc.items(said)


def warnings_about_the_numbers(data: ReportData) -> list[str]:
    """Plain warnings about where the numbers come from and where they saturate."""
    out = []
    explorer, table = data.explorer, data.dense.table
    edge, link = explorer.edge, explorer.link
    n_val = data.dense.correct["val"].shape[-1]
    n_test = data.dense.correct["test"].shape[-1]
    out.append(
        f"Accuracy is measured on {n_val} validation and {n_test} test samples: one "
        f"sample is {100 / max(n_val, 1):.2g} points, so smaller differences are "
        "noise."
    )
    trials = data.trials
    if len(trials) and "accuracy" in trials and float(trials["accuracy"].max()) >= 1.0:
        out.append(
            "Some trials reach 100% validation accuracy: accuracy saturates, so the "
            "front trades the other objectives among equally accurate points."
        )
    edge_only = float(table.total_s[-1])
    # layers that pay the overhead: not views, not fused into their producer's kernel
    layers = int(
        sum(1 for x in data.graph.backbone_nodes() if x.kind not in FREE_KINDS and not x.fused)
    )
    overhead = layers * edge.overhead_s
    if edge_only > 0 and overhead / edge_only > 0.3:
        source = edge.sources.get("compute.overhead", "")
        out.append(
            f"{100 * overhead / edge_only:.0f}% of the dense edge-only latency "
            f"({fmt.seconds(edge_only)}) is the per-layer overhead of "
            f"{edge.name} ({fmt.seconds(edge.overhead_s)} x {layers} "
            f"layers{'; ' + source.split(':')[0] + ' in its sources' if source else ''}): "
            "the cut is decided by that estimate more than by FLOPs."
        )
    if link.rtt_s >= edge_only:
        out.append(
            f"The link's RTT ({fmt.seconds(link.rtt_s)}) alone exceeds the "
            f"dense edge-only latency ({fmt.seconds(edge_only)}): offloading cannot "
            "be faster at any bandwidth."
        )
    if table.cut_bytes[0] > 0:
        air = 8.0 * table.cut_bytes[0] / link.uplink_bps
        wait = float(table.transfer_s[0] + table.server_s[0])
        out.append(
            f"Offloading is not free for the edge: server-only (dense) spends "
            f"{fmt.joules(table.radio_j[0])} on the radio ("
            f"{fmt.joules(table.radio_up_j[0])} sending in {fmt.seconds(air)}, "
            f"{fmt.joules(table.radio_down_j[0])} receiving the result, "
            f"{fmt.joules(table.radio_wait_j[0])} connected through the RTT and the "
            f"server, {fmt.joules(table.radio_tail_j[0])} tail) "
            f"and {fmt.joules(table.wait_j[0])} idling ({edge.idle_power_w:g} W) "
            f"through the {fmt.seconds(wait)} it waits for the link and the server; "
            "the idle power is the profile's whole-board figure, so a device that "
            "sleeps while it waits spends less."
        )
    out.extend(_exit_notes(data))
    out.extend(_knee_notes(data))
    if not data.spec.tail_energy:
        out.append(
            "The radio's tail energy is not charged (tail_energy = false: "
            "back-to-back inferences); an isolated request would pay "
            f"{fmt.joules(link.tail_energy_j)} more whenever it sends."
        )
    return out


def _exit_notes(data: ReportData) -> list[str]:
    """The exits no threshold of the space ever lets a sample leave at."""
    spec, space = data.spec, data.explorer.space
    scorer = data.recommended_scorer or data.dense
    confidence = scorer.confidence["val"][spec.criterion]
    lowest = min(spec.thresholds)
    out = []
    for j in space.allowed_exits:
        # [tasks, outputs, N]: a sample leaves when every task is confident (with a
        # per-task policy, when one is): the tasks' highest confidences decide
        tops = confidence[:, j].max(axis=1) if confidence.shape[-1] else np.zeros(1)
        top = float(tops.max() if "per_task" in space.policies else tops.min())
        if top < lowest:
            out.append(
                f"Exit {exit_label(data.exit_names, j)} is never taken at any threshold of "
                f"the space: its highest validation confidence ({spec.criterion}) is "
                f"{top:.3g}, below the lowest threshold {lowest:g}. Using it only adds its "
                "head's cost; the space could start lower, or the head needs "
                "more training weight."
            )
    return out


def _knee_notes(data: ReportData) -> list[str]:
    """What the knee gives up against the most accurate front trial, and whether the
    ruler leaves the hypervolumes anything to say."""
    out: list[str] = []
    knee = data.recommended
    if knee is None:
        return out
    names, front, ruler = data.names, data.front, data.ruler
    if "accuracy" in names and len(front) > 1:
        top = front.iloc[0]
        if float(top["accuracy"]) > float(knee["accuracy"]):
            i = names.index("accuracy")
            lo, hi = ruler.lo[i], ruler.hi[i]
            n_val = data.dense.correct["val"].shape[-1]
            lost = float(top["accuracy"]) - float(knee["accuracy"])
            others = ", ".join(
                f"{m} {fmt.human(m, top[m])} -> {fmt.human(m, knee[m])}"
                for m in names
                if m != "accuracy"
            )
            out.append(
                f"The knee gives up {100 * lost:.2g} points of validation accuracy "
                f"({round(lost * n_val)} of {n_val} samples) against trial "
                f"{int(top['trial'])}, the most accurate front trial, for {others}. "
                f"The ruler scales accuracy over {fmt.percent(lo)} to "
                f"{fmt.percent(hi)}, so such a loss weighs little; if it matters, "
                "pick that trial from the front table."
            )
    if data.grid_hypervolume > 0:
        alone = hypervolume(ruler.loss(knee[names].to_numpy(dtype=float)))
        share = alone / data.grid_hypervolume
        if share > 0.9:
            out.append(
                f"The recommended point alone covers {100 * share:.0f}% of the "
                "grid's hypervolume: on this ruler every fraction (the sampler's, "
                "the baselines') sits near 100% and says little; compare the fronts "
                "and the matched-accuracy columns instead."
            )
    return out
