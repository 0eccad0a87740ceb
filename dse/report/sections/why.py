"""Why this cut, and the early exits: per-layer costs, the split sweep, the bandwidth map."""

from __future__ import annotations

from dse.report import fmt, plots
from dse.report.doc import Doc


class Why:
    """Why this cut, and the early exits: per-layer costs, the split sweep, the bandwidth map."""

    def _why(self, doc: Doc) -> None:
        doc.h(1, "Why this cut", "why")
        tbl = self.dense.table
        nodes = self.ex.reference_graph.backbone_nodes()
        doc.p(
            f"The dense network has {len(nodes)} backbone layers and "
            f"{len(tbl.cut_bytes)} cuts ({len(self.ex.reference_graph.clean_cuts())} clean). "
            f"Run whole on the edge it takes {fmt.seconds(tbl.total_s[-1])}; sent whole to the "
            f"server it takes {fmt.seconds(tbl.total_s[0])} (the input is "
            f"{fmt.nbytes(tbl.cut_bytes[0])}; the link's RTT alone is "
            f"{fmt.seconds(self.ex.link.rtt_s)})."
        )
        self.fig.put(doc, "layers")
        self.fig.put(doc, "split")
        sp = self.fig.infos.get("split")
        if sp is not None:
            doc.p(
                f"With no early exit the fastest allowed cut of the recommended network is "
                f"{self._cut_text(sp.best)} at {fmt.seconds(sp.total_s[sp.best])}; "
                f"server-only takes {fmt.seconds(sp.total_s[0])}, edge-only "
                f"{fmt.seconds(sp.total_s[-1])}."
            )
        self.fig.put(doc, "bandwidth")
        bw = self.fig.infos.get("bandwidth")
        if bw is not None:
            spans = plots.regime_spans(bw)
            doc.items([f"{r} wins from {fmt.mbps(lo)} to {fmt.mbps(hi)}" for r, lo, hi in spans])
            if len(spans) == 1:
                doc.p(
                    f"{spans[0][0]} wins at every uplink bandwidth from 0.1 Mbit/s to "
                    "1 Gbit/s: the bandwidth is not what decides this cut"
                    + (
                        " — the link's RTT alone exceeds the edge-only latency."
                        if spans[0][0] == "edge-only" and self.ex.link.rtt_s >= bw.latency_s[-1, -1]
                        else "."
                    )
                )
        doc.h(1, "Early exits", "exits")
        self.fig.put(doc, "exits")
        ei = self.fig.infos.get("exits")
        if ei is not None and self.rec_cand is not None and self.rec_cand.exits:
            doc.p(
                f"At its cut, the recommended network without any exit is "
                f"{fmt.human('accuracy', ei.final_accuracy)} accurate in "
                f"{fmt.seconds(ei.final_latency_s)}; with "
                f"{self._exits(self.rec_cand)} it is "
                f"{fmt.human('accuracy', self.rec['accuracy'])} accurate in "
                f"{fmt.seconds(self.rec['latency_mean'])}."
            )
