"""Why this cut: the dense network's costs per layer, the recommended network's latency per
cut, and where the uplink's bandwidth moves the best cut."""

from __future__ import annotations

from dse.report import fmt, plots
from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.report.text import cut_text


def why(data: ReportData, doc: Doc) -> None:
    """The cost of each cut, and the bandwidth regimes of the recommended configuration."""
    doc.h(1, "Why this cut", "why")
    table = data.dense.table
    link = data.explorer.link
    doc.p(
        f"The dense network has {len(data.graph.backbone_nodes())} backbone layers and "
        f"{len(table.cut_bytes)} cuts ({len(data.graph.clean_cuts())} clean). "
        f"Run whole on the edge it takes {fmt.seconds(table.total_s[-1])}; sent whole to the "
        f"server it takes {fmt.seconds(table.total_s[0])} (the input is "
        f"{fmt.nbytes(table.cut_bytes[0])}; the link's RTT alone is "
        f"{fmt.seconds(link.rtt_s)})."
    )
    data.figures.put(doc, "layers")
    data.figures.put(doc, "split")
    split = data.figures.info("split")
    if split is not None:
        doc.p(
            f"With no early exit the fastest allowed cut of the recommended network is "
            f"{cut_text(data, split.best)} at {fmt.seconds(split.total_s[split.best])}; "
            f"server-only takes {fmt.seconds(split.total_s[0])}, edge-only "
            f"{fmt.seconds(split.total_s[-1])}."
        )
    data.figures.put(doc, "bandwidth")
    bandwidth = data.figures.info("bandwidth")
    if bandwidth is None:
        return
    spans = plots.regime_spans(bandwidth)
    doc.items([f"{r} wins from {fmt.mbps(lo)} to {fmt.mbps(hi)}" for r, lo, hi in spans])
    if len(spans) == 1:
        rtt_decides = spans[0][0] == "edge-only" and link.rtt_s >= bandwidth.latency_s[-1, -1]
        doc.p(
            f"{spans[0][0]} wins at every uplink bandwidth from 0.1 Mbit/s to "
            "1 Gbit/s: the bandwidth is not what decides this cut"
            + (" — the link's RTT alone exceeds the edge-only latency." if rtt_decides else ".")
        )
