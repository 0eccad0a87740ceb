"""The baselines section: each baseline's restricted space against the study's trials."""

from __future__ import annotations

from dse import vocab
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Bold, Doc, Inline
from dse.report.text import codec_text, exits_of
from dse.search import Candidate, verdicts


def baselines(data: ReportData, doc: Doc) -> None:
    """The comparison table, where a baseline does better, and each baseline's best point."""
    doc.h(1, "Against the baselines", "baselines")
    comparison = data.comparison
    reference = comparison.attrs.get("reference_accuracy", float("nan"))
    doc.p(
        "Each baseline is a restricted space of the same search, scored exhaustively on "
        "the same trained networks (its best possible) and measured with the same ruler. "
        "The joint row is what the study's own feasible trials found, not the grid. "
        "Matched accuracy: validation accuracy within 1 point of the dense server-only "
        f"network's ({fmt.human('accuracy', reference)}). Ratios are baseline / joint as "
        "measured: above 1 the study's trials are better, below 1 the baseline is. Test "
        "accuracy is that of the lowest-latency matched point."
    )
    if not len(data.grid.feasible()):
        doc.p(
            Bold("No candidate of the exhaustive grid is feasible"),
            ", so no baseline has anything to compare.",
        )
        return
    joint_hv = float(comparison.loc["joint", "hv"]) if "joint" in comparison.index else float("nan")
    rows: list[list[Inline]] = []
    for baseline, row in comparison.iterrows():
        rows.append(
            [
                str(baseline) if row["in_space"] else f"{baseline} (outside the space)",
                str(int(row["candidates"])),
                f"{row['hv']:.4f}",
                f"{100 * row['hv'] / joint_hv:.1f}%" if joint_hv > 0 else "-",
                str(int(row["matched"])),
                fmt.human("latency_mean", row["latency_s"]),
                fmt.human("accuracy", row["test_accuracy"]),
                fmt.ratio(row["latency_s_ratio"], decimals=2),
                fmt.human("bandwidth", row["bytes"]),
                fmt.ratio(row["bytes_ratio"], decimals=2),
                fmt.human("edge_energy", row["edge_energy_j"]),
                fmt.ratio(row["edge_energy_j_ratio"], decimals=2),
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
    said = verdicts(comparison)
    if said:
        doc.p(Bold("Where a baseline does better: "), " ".join(said))
    else:
        doc.p(
            "The study's trials match or beat every baseline on hypervolume and on each "
            "cost at matched accuracy."
        )
    if (comparison["bytes"] == 0).any():
        doc.p(
            "A ratio of ∞ or - in the bytes column: the joint search (or both) sends "
            "nothing at matched accuracy, so the ratio has no finite value."
        )
    _best_points(data, doc)


def _best_points(data: ReportData, doc: Doc) -> None:
    """Each baseline's feasible grid point closest to the ideal point."""
    if not data.baseline_bests:
        return
    doc.p(
        "Each baseline's feasible candidate closest to the ideal point on the "
        "ruler (the hollow markers of the front figure):"
    )
    coded = bool(data.spec.codecs)
    rows: list[list[Inline]] = []
    for baseline, row in data.baseline_bests.items():
        candidate = Candidate.from_row(row)
        rows.append(
            [
                baseline,
                vocab.network_name(*candidate.network),
                str(candidate.split),
                exits_of(data, candidate, short=True),
                *([codec_text(data, candidate, row)] if coded else []),
                *[fmt.human(m, row[m]) for m in data.names],
            ]
        )
    doc.table(
        [
            "baseline",
            "network",
            "cut",
            "exits @ threshold",
            *(["codec"] if coded else []),
            *data.names,
        ],
        rows,
    )
