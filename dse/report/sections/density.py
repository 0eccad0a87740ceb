"""The sparsity section: accuracy and costs per density, and how devices run sparse layers."""

from __future__ import annotations

from dse.report import fmt
from dse.report.doc import Doc


class Density:
    """The sparsity section: accuracy and costs per density, and how devices run sparse layers."""

    def _density(self, doc: Doc) -> None:
        doc.h(1, "Sparsity", "sparsity")
        self.fig.put(doc, "density")
        info = self.fig.infos.get("density")
        if info is None:
            return
        rows = []
        for m in info.methods:
            for i, d in enumerate(info.densities[m]):
                rows.append(
                    [
                        m if d < 1 else "dense",
                        f"{d:g}",
                        f"{info.realised[m][i]:.3g}",
                        fmt.percent(info.accuracy[m][i]),
                        fmt.percent(info.test_accuracy[m][i]),
                        fmt.nbytes(info.stored_bytes[m][i]),
                        fmt.count(info.flops[m][i]),
                        fmt.seconds(info.edge_only_s[m][i]),
                    ]
                )
        seen: set[tuple[str, ...]] = set()
        uniq = [r for r in rows if not (tuple(r) in seen or seen.add(tuple(r)))]
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
            uniq,
        )
        ex = self.ex
        trained = [
            (n, ex.scorer(*n).trained)
            for n in ex.space.networks()
            if ex.cache.path(ex.network_spec(*n).key).exists()
        ]
        doc.p(
            f"Training: {ex.train_config.describe()}; ",
            "; ".join(
                f"{'dense' if d >= 1 else f'{m}@{d:g}'} {t.epochs_text()}" for (m, d), t in trained
            )
            + ".",
        )
        for line in self.sparse_notes():
            doc.p(line)

    def sparse_notes(self) -> list[str]:
        """How each device runs the sparse layers: which patterns its kernels accelerate,
        which layers of the recommended (or a sparse) network got one, and what the edge
        holds when it has none."""
        out = []
        ex = self.ex
        for dev in (ex.edge, ex.server):
            kernels = "; ".join(
                f"{pat} for {', '.join(t)}" for pat, t in dev.sparse_efficiency.items()
            )
            out.append(
                f"{dev.name} ({dev.kind}): "
                + (
                    f"sparse kernels for {kernels} only."
                    if kernels
                    else "no sparse kernels in its profile."
                )
            )
        out.append(
            f"Without a kernel for a layer's pattern, the edge ({ex.edge.name}) holds "
            "its weights compressed (values + indices) and expands each sparse layer "
            "into a dense buffer just before running it: edge memory counts the "
            "compressed weights plus the largest expanded layer, and latency and "
            "energy pay each expansion (reading the compressed bytes, writing the "
            "dense ones). The server holds its weights dense. Channel pruning shrinks "
            "the layers themselves."
        )
        sc = self.rec_scorer if (self.rec_cand is not None and self.rec_cand.density < 1) else None
        if sc is not None:
            from dse.costmodel import execution

            for side, dev, expand in (("edge", ex.edge, True), ("server", ex.server, False)):
                sparse = [n for n in sc.graph.nodes.values() if n.pattern != "dense"]
                got = [
                    f"{n.name} ({execution(n, dev, expand=expand).kernel})"
                    for n in sparse
                    if execution(n, dev, expand=expand).kernel not in ("dense", "expand")
                ]
                out.append(
                    f"Recommended network on the {side}: "
                    + (
                        f"sparse kernels for {', '.join(got)}"
                        if got
                        else "no layer gets a sparse kernel"
                    )
                    + f" (of {len(sparse)} sparse layers)."
                )
        return out
