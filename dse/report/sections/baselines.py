"""The baselines section: each baseline's restricted space against the study's trials."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.doc import Bold, Doc
from dse.report.text import candidate_of
from dse.search import verdicts


class Baselines:
    """The baselines section: each baseline's restricted space against the study's trials."""

    def _baselines(self, doc: Doc) -> None:
        doc.h(1, "Against the baselines", "baselines")
        cmp = self.comparison
        ref = cmp.attrs.get("reference_accuracy", float("nan"))
        doc.p(
            "Each baseline is a restricted space of the same search, scored exhaustively on "
            "the same trained networks (its best possible) and measured with the same ruler. "
            "The joint row is what the study's own feasible trials found, not the grid. "
            "Matched accuracy: validation accuracy within 1 point of the dense server-only "
            f"network's ({fmt.human('accuracy', ref)}). Ratios are baseline / joint as measured: "
            "above 1 the study's trials are better, below 1 the baseline is. Test accuracy "
            "is that of the lowest-latency matched point."
        )
        if not len(self.grid.feasible()):
            doc.p(
                Bold("No candidate of the exhaustive grid is feasible"),
                ", so no baseline has anything to compare.",
            )
            return
        joint_hv = float(cmp.loc["joint", "hv"]) if "joint" in cmp.index else float("nan")
        rows = []
        for b, r in cmp.iterrows():
            name = str(b) if r["in_space"] else f"{b} (outside the space)"
            rows.append(
                [
                    name,
                    str(int(r["candidates"])),
                    f"{r['hv']:.4f}",
                    f"{100 * r['hv'] / joint_hv:.1f}%" if joint_hv > 0 else "-",
                    str(int(r["matched"])),
                    fmt.human("latency_mean", r["latency_s"]),
                    fmt.human("accuracy", r["test_accuracy"]),
                    fmt.ratio(r["latency_s_ratio"], decimals=2),
                    fmt.human("bandwidth", r["bytes"]),
                    fmt.ratio(r["bytes_ratio"], decimals=2),
                    fmt.human("edge_energy", r["edge_energy_j"]),
                    fmt.ratio(r["edge_energy_j_ratio"], decimals=2),
                ]
            )
        doc.table(
            [
                "baseline",
                "candidates",
                "hypervolume",
                "% of joint",
                "matched",
                "best latency",
                "its test accuracy",
                "ratio",
                "fewest bytes",
                "ratio",
                "least edge energy",
                "ratio",
            ],
            rows,
        )
        said = verdicts(cmp)
        if said:
            doc.p(Bold("Where a baseline does better: "), " ".join(said))
        else:
            doc.p(
                "The study's trials match or beat every baseline on hypervolume and on each "
                "cost at matched accuracy."
            )
        if (cmp["bytes"] == 0).any():
            doc.p(
                "A ratio of ∞ or - in the bytes column: the joint search (or both) sends "
                "nothing at matched accuracy, so the ratio has no finite value."
            )
        if self.bests:
            doc.p(
                "Each baseline's feasible candidate closest to the ideal point on the "
                "ruler (the hollow markers of the front figure):"
            )
            rows = []
            coded = bool(self.spec.codecs)
            for b, r in self.bests.items():
                c = candidate_of(r)
                rows.append(
                    [
                        b,
                        vocab.network_name(*c.network),
                        str(c.split),
                        self._exits(c, short=True),
                        *([self._codec_text(c, r)] if coded else []),
                        *[fmt.human(m, r[m]) for m in self.names],
                    ]
                )
            doc.table(
                [
                    "baseline",
                    "network",
                    "cut",
                    "exits @ threshold",
                    *(["codec"] if coded else []),
                    *self.names,
                ],
                rows,
            )
