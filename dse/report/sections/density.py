"""The sparsity section: accuracy and costs per density, and how devices run sparse layers."""

from __future__ import annotations

from dse import vocab
from dse.costmodel import execution
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Doc


def density(data: ReportData, doc: Doc) -> None:
    """The density figure, its numbers per network, how each network was trained, and
    how the devices run sparse layers."""
    doc.h(1, "Sparsity", "sparsity")
    data.figures.put(doc, "density")
    info = data.figures.info("density")
    if info is None:
        return
    rows = []
    for method in info.methods:
        for i, d in enumerate(info.densities[method]):
            rows.append(
                [
                    method if d < 1 else "dense",
                    f"{d:g}",
                    f"{info.realised[method][i]:.3g}",
                    fmt.percent(info.accuracy[method][i]),
                    fmt.percent(info.test_accuracy[method][i]),
                    fmt.nbytes(info.stored_bytes[method][i]),
                    fmt.count(info.flops[method][i]),
                    fmt.seconds(info.edge_only_s[method][i]),
                ]
            )
    seen: set[tuple[str, ...]] = set()
    unique = [r for r in rows if not (tuple(r) in seen or seen.add(tuple(r)))]
    doc.table(
        [
            "method",
            "density",
            "realised density",
            "accuracy (val)",
            "accuracy (test)",
            "stored",
            "backbone FLOP (sparse kernels)",
            "edge-only latency",
        ],
        unique,
    )
    explorer = data.explorer
    trained = [
        (network, explorer.scorer(*network).trained)
        for network in explorer.space.networks()
        if explorer.cache.path(explorer.network_spec(*network).key).exists()
    ]
    doc.p(
        f"Training: {explorer.train_config.describe()}; ",
        "; ".join(f"{vocab.network_label(*n)} {t.epochs_text()}" for n, t in trained) + ".",
    )
    for line in sparse_notes(data):
        doc.p(line)


def sparse_notes(data: ReportData) -> list[str]:
    """How each device runs the sparse layers: which patterns its kernels accelerate,
    which layers of the recommended (or a sparse) network got one, and what the edge
    holds when it has none."""
    out = []
    edge, server = data.explorer.edge, data.explorer.server
    for device in (edge, server):
        kernels = "; ".join(
            f"{pattern} for {', '.join(kinds)}"
            for pattern, kinds in device.sparse_efficiency.items()
        )
        out.append(
            f"{device.name} ({device.kind}): "
            + (
                f"sparse kernels for {kernels} only."
                if kernels
                else "no sparse kernels in its profile."
            )
        )
    out.append(
        f"Without a kernel for a layer's pattern, the edge ({edge.name}) holds "
        "its weights compressed (values + indices) and expands each sparse layer "
        "into a dense buffer just before running it: edge memory counts the "
        "compressed weights plus the largest expanded layer, and latency and "
        "energy pay each expansion (reading the compressed bytes, writing the "
        "dense ones). The server holds its weights dense. Channel pruning shrinks "
        "the layers themselves."
    )
    candidate, scorer = data.configuration, data.recommended_scorer
    if candidate is None or candidate.density >= 1 or scorer is None:
        return out
    for side, device, expand in (("edge", edge, True), ("server", server, False)):
        sparse = [n for n in scorer.graph.nodes.values() if n.pattern != "dense"]
        kernels = [
            f"{n.name} ({execution(n, device, expand=expand).kernel})"
            for n in sparse
            if execution(n, device, expand=expand).kernel not in ("dense", "expand")
        ]
        out.append(
            f"Recommended network on the {side}: "
            + (
                f"sparse kernels for {', '.join(kernels)}"
                if kernels
                else "no layer gets a sparse kernel"
            )
            + f" (of {len(sparse)} sparse layers)."
        )
    return out
