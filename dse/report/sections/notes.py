"""The notes section: where the numbers come from and where they saturate."""

from __future__ import annotations

import numpy as np

from dse.costmodel import FREE_KINDS
from dse.report import fmt
from dse.report.doc import Doc
from dse.search import hypervolume


class Notes:
    """The notes section: where the numbers come from and where they saturate."""

    def _notes(self, doc: Doc) -> None:
        notes = self.notes()
        if notes:
            doc.h(1, "Read the numbers with care", "notes")
            doc.items(notes)

    def notes(self) -> list[str]:
        """Plain warnings about where the numbers come from and where they saturate."""
        out = []
        ex, tbl = self.ex, self.dense.table
        n_val = self.dense.correct["val"].shape[-1]
        n_test = self.dense.correct["test"].shape[-1]
        out.append(
            f"Accuracy is measured on {n_val} validation and {n_test} test samples: one "
            f"sample is {100 / max(n_val, 1):.2g} points, so smaller differences are "
            "noise."
        )
        if len(self.df) and "accuracy" in self.df and float(self.df["accuracy"].max()) >= 1.0:
            out.append(
                "Some trials reach 100% validation accuracy: accuracy saturates, so the "
                "front trades the other objectives among equally accurate points."
            )
        edge_only = float(tbl.total_s[-1])
        # layers that pay the overhead: not views, not fused into their producer's kernel
        n_layers = int(
            sum(
                1
                for x in ex.reference_graph.backbone_nodes()
                if x.kind not in FREE_KINDS and not x.fused
            )
        )
        overhead = n_layers * ex.edge.overhead_s
        if edge_only > 0 and overhead / edge_only > 0.3:
            src = ex.edge.sources.get("compute.overhead", "")
            out.append(
                f"{100 * overhead / edge_only:.0f}% of the dense edge-only latency "
                f"({fmt.seconds(edge_only)}) is the per-layer overhead of "
                f"{ex.edge.name} ({fmt.seconds(ex.edge.overhead_s)} x {n_layers} "
                f"layers{'; ' + src.split(':')[0] + ' in its sources' if src else ''}): "
                "the cut is decided by that estimate more than by FLOPs."
            )
        if ex.link.rtt_s >= edge_only:
            out.append(
                f"The link's RTT ({fmt.seconds(ex.link.rtt_s)}) alone exceeds the "
                f"dense edge-only latency ({fmt.seconds(edge_only)}): offloading cannot "
                "be faster at any bandwidth."
            )
        if tbl.cut_bytes[0] > 0:
            air = 8.0 * tbl.cut_bytes[0] / ex.link.uplink_bps
            wait = float(tbl.transfer_s[0] + tbl.server_s[0])
            out.append(
                f"Offloading is not free for the edge: server-only (dense) spends "
                f"{fmt.joules(tbl.radio_j[0])} on the radio ("
                f"{fmt.joules(tbl.radio_up_j[0])} sending in {fmt.seconds(air)}, "
                f"{fmt.joules(tbl.radio_down_j[0])} receiving the result, "
                f"{fmt.joules(tbl.radio_wait_j[0])} connected through the RTT and the "
                f"server, {fmt.joules(tbl.radio_tail_j[0])} tail) "
                f"and {fmt.joules(tbl.wait_j[0])} idling ({ex.edge.idle_power_w:g} W) "
                f"through the {fmt.seconds(wait)} it waits for the link and the server; "
                "the idle power is the profile's whole-board figure, so a device that "
                "sleeps while it waits spends less."
            )
        out.extend(self._exit_notes())
        out.extend(self._knee_notes())
        if not self.spec.tail_energy:
            out.append(
                "The radio's tail energy is not charged (tail_energy = false: "
                "back-to-back inferences); an isolated request would pay "
                f"{fmt.joules(ex.link.tail_energy_j)} more whenever it sends."
            )
        return out

    def _exit_notes(self) -> list[str]:
        spec, ex = self.spec, self.ex
        sc = self.rec_scorer or self.dense
        conf = sc.confidence["val"][spec.criterion]
        lowest = min(spec.thresholds)
        out = []
        for j in ex.space.allowed_exits:
            # [tasks, outputs, N]: a sample leaves when every task is confident (with a
            # per-task policy, when one is): the tasks' highest confidences decide
            tops = conf[:, j].max(axis=1) if conf.shape[-1] else np.zeros(1)
            top = float(tops.max() if "per_task" in ex.space.policies else tops.min())
            if top < lowest:
                name = ex.exit_names[j] if j < len(ex.exit_names) else str(j)
                out.append(
                    f"Exit {name} is never taken at any threshold of the space: its "
                    f"highest validation confidence ({spec.criterion}) is {top:.3g}, "
                    f"below the lowest threshold {lowest:g}. Using it only adds its "
                    "head's cost; the space could start lower, or the head needs "
                    "more training weight."
                )
        return out

    def _knee_notes(self) -> list[str]:
        out: list[str] = []
        if self.rec is None:
            return out
        names, rec = self.names, self.rec
        if "accuracy" in names and len(self.front) > 1:
            top = self.front.iloc[0]
            if float(top["accuracy"]) > float(rec["accuracy"]):
                i = names.index("accuracy")
                lo, hi = self.ruler.lo[i], self.ruler.hi[i]
                n_val = self.dense.correct["val"].shape[-1]
                lost = float(top["accuracy"]) - float(rec["accuracy"])
                others = ", ".join(
                    f"{m} {fmt.human(m, top[m])} -> {fmt.human(m, rec[m])}"
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
        if self.hv_grid > 0:
            alone = hypervolume(self.ruler.loss(rec[names].to_numpy(dtype=float)))
            share = alone / self.hv_grid
            if share > 0.9:
                out.append(
                    f"The recommended point alone covers {100 * share:.0f}% of the "
                    "grid's hypervolume: on this ruler every fraction (the sampler's, "
                    "the baselines') sits near 100% and says little; compare the fronts "
                    "and the matched-accuracy columns instead."
                )
        return out
