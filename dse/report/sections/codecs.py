"""The codecs section: what each codec at the cut sends and the accuracy it keeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dse.report import fmt, plots
from dse.report.data import ReportData
from dse.report.doc import Doc, Inline
from dse.report.text import cut_text
from dse.search import restrict


def codecs(data: ReportData, doc: Doc) -> None:
    """The rate-accuracy figure, the dense network's codecs per cut, and what they change
    (a spec with codecs only)."""
    if not data.spec.codecs:
        return
    doc.h(1, "The tensor at the cut: codecs", "codecs")
    doc.p(
        "Codecs of the space: ",
        ", ".join(data.spec.codecs),
        ". A codec changes no "
        "weight: at each cut, the server part of each trained network ran once on the "
        "decoded tensors of every validation and test sample, and each sample's payload "
        "is the length of its real encoding (header, scales and CRC included, batch "
        "size one). Edge exits read the tensors before coding. The edge-only cut sends "
        "nothing and is left out.",
    )
    data.figures.put(doc, "codecs")
    infos = data.figures.info("codecs")
    if not infos:
        return
    info = infos[0]
    reference = info.reference
    others = [c for c in info.codecs if c != reference]
    doc.p(
        f"Per cut of the {info.network} network: the {reference} payload (validation mean), "
        f"the final classifier's accuracy with it, and for each other codec its payload "
        f"as a share of {reference}'s and its accuracy change in points (each cell: "
        "validation; test). The fastest codec at a cut is the one with the lowest mean "
        "latency, with no exit, among those within 1 point of the dense server-only "
        "network's validation accuracy (the matched accuracy of the baselines)."
    )
    doc.table(
        [
            "cut",
            "fastest codec (latency)",
            f"{reference} bytes",
            f"{reference} accuracy (val; test)",
            *[
                h
                for c in others
                for h in (f"{c}: bytes / {reference}", f"{c}: accuracy change (points)")
            ],
        ],
        _cut_rows(info, others, _fastest_codecs(data, info.cuts)),
    )
    said = _codec_verdict(data)
    if said:
        doc.p(said)
    big = info.raw_bytes >= 4000
    for codec in others:
        if not big.any():
            break
        lo, hi = (fmt.ratio(float(f((1 / info.ratio(codec))[big]))) for f in (np.min, np.max))
        doc.p(
            f"{codec}: at the cuts whose float32 tensors take at least 4 kB, its payload is "
            + (lo if lo == hi else f"{lo} to {hi}")
            + f" smaller than {reference}'s; its "
            f"worst accuracy change over all cuts is {info.change(codec).min():+.1f} "
            f"points on validation, {info.change(codec, split='test').min():+.1f} on test."
        )
    if len(infos) > 1:
        doc.p(
            "The figure also shows the front's other networks (",
            ", ".join(i.network for i in infos[1:]),
            "); the table is the dense network's.",
        )


def _cut_rows(
    info: plots.RateAccuracyInfo, others: Sequence[str], fastest: dict[int, str]
) -> list[list[Inline]]:
    """Per cut: the fastest codec, the reference's payload and accuracy, and each other
    codec's payload share and accuracy change (validation; test)."""
    reference = info.reference
    rows: list[list[Inline]] = []
    for j, k in enumerate(info.cuts):
        rows.append(
            [
                f"{k} (after {info.after[j]})" if k else "0 (input)",
                fastest.get(k, "-"),
                fmt.nbytes(info.bytes[reference][j]),
                f"{fmt.percent(info.accuracy[reference][j])}; "
                f"{fmt.percent(info.test_accuracy[reference][j])}",
                *[
                    cell
                    for c in others
                    for cell in (
                        f"{fmt.ratio(info.ratio(c)[j])}; "
                        f"{fmt.ratio(info.ratio(c, split='test')[j])}",
                        f"{info.change(c)[j]:+.1f}; {info.change(c, split='test')[j]:+.1f}",
                    )
                ],
            ]
        )
    return rows


def _matched(data: ReportData) -> pd.DataFrame:
    """The dense, no-exit grid rows with a codec (auto-split's), at matched accuracy."""
    rows = restrict(data.grid.frame, "auto-split")
    reference = float(data.comparison.attrs.get("reference_accuracy", float("nan")))
    return rows[rows.accuracy >= reference - 0.01] if reference == reference else rows.iloc[:0]


def _fastest_codecs(data: ReportData, cuts: Sequence[int]) -> dict[int, str]:
    """Per cut: the codec of the dense network with no exit that is fastest at matched
    accuracy, and its mean latency."""
    matched = _matched(data)
    out = {}
    for k in cuts:
        sub = matched[matched.knob_split == k]
        if len(sub):
            best = sub.loc[sub.latency_mean.idxmin()]
            out[k] = f"{best.knob_codec} ({fmt.human('latency_mean', best.latency_mean)})"
    return out


def _codec_verdict(data: ReportData) -> str:
    """Whether a codec moves the fastest feasible cut of the dense network with no exit
    at matched accuracy (fp32 only, against every codec of the space)."""
    matched = _matched(data)
    matched = matched[matched.feasible.astype(bool)]
    plain = matched[(matched.knob_codec == "fp32") | (matched.bandwidth == 0)]
    if not len(matched) or not len(plain):
        return ""
    fp32 = plain.loc[plain.latency_mean.idxmin()]
    best = matched.loc[matched.latency_mean.idxmin()]
    fp32_cut, best_cut = int(fp32.knob_split), int(best.knob_split)
    head = "Dense, with no exit, feasible and at matched accuracy: the fastest cut "
    if best.latency_mean >= fp32.latency_mean or (
        fp32_cut == best_cut and best.knob_codec == fp32.knob_codec
    ):
        return (
            head + f"with float32 is {cut_text(data, fp32_cut)}, at "
            f"{fmt.human('latency_mean', fp32.latency_mean)}, and no codec beats it."
        )
    return (
        head + f"with float32 is {cut_text(data, fp32_cut)}, at "
        f"{fmt.human('latency_mean', fp32.latency_mean)}; with the codecs it is "
        f"{cut_text(data, best_cut)} with {best.knob_codec}, at "
        f"{fmt.human('latency_mean', best.latency_mean)} sending "
        f"{fmt.human('bandwidth', best.bandwidth)}: the codec made that cut the best."
    )
