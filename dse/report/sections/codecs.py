"""The codecs section: what each codec at the cut sends and the accuracy it keeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dse.report import fmt
from dse.report.doc import Doc
from dse.search import restrict


class Codecs:
    """The codecs section: what each codec at the cut sends and the accuracy it keeps."""

    def _codecs(self, doc: Doc) -> None:
        if not self.spec.codecs:
            return
        doc.h(1, "The tensor at the cut: codecs", "codecs")
        doc.p(
            "Codecs of the space: ",
            ", ".join(self.spec.codecs),
            ". A codec changes no "
            "weight: at each cut, the server part of each trained network ran once on the "
            "decoded tensors of every validation and test sample, and each sample's payload "
            "is the length of its real encoding (header, scales and CRC included, batch "
            "size one). Edge exits read the tensors before coding. The edge-only cut sends "
            "nothing and is left out.",
        )
        self.fig.put(doc, "codecs")
        infos = self.fig.infos.get("codecs")
        if not infos:
            return
        info = infos[0]
        ref = info.reference
        others = [c for c in info.codecs if c != ref]
        fastest = self._fastest_codecs(info.cuts)
        rows = []
        for j, k in enumerate(info.cuts):
            rows.append(
                [
                    f"{k} (after {info.after[j]})" if k else "0 (input)",
                    fastest.get(k, "-"),
                    fmt.nbytes(info.bytes[ref][j]),
                    f"{fmt.percent(info.accuracy[ref][j])}; "
                    f"{fmt.percent(info.test_accuracy[ref][j])}",
                    *[
                        x
                        for c in others
                        for x in (
                            f"{fmt.ratio(info.ratio(c)[j])}; "
                            f"{fmt.ratio(info.ratio(c, split='test')[j])}",
                            f"{info.change(c)[j]:+.1f}; {info.change(c, split='test')[j]:+.1f}",
                        )
                    ],
                ]
            )
        doc.p(
            f"Per cut of the {info.network} network: the {ref} payload (validation mean), "
            f"the final classifier's accuracy with it, and for each other codec its payload "
            f"as a share of {ref}'s and its accuracy change in points (each cell: "
            "validation; test). The fastest codec at a cut is the one with the lowest mean "
            "latency, with no exit, among those within 1 point of the dense server-only "
            "network's validation accuracy (the matched accuracy of the baselines)."
        )
        doc.table(
            [
                "cut",
                "fastest codec (latency)",
                f"{ref} bytes",
                f"{ref} accuracy (val; test)",
                *[
                    h
                    for c in others
                    for h in (f"{c}: bytes / {ref}", f"{c}: accuracy change (points)")
                ],
            ],
            rows,
        )
        said = self._codec_verdict()
        if said:
            doc.p(said)
        big = info.raw_bytes >= 4000
        for c in others:
            if not big.any():
                break
            lo, hi = (fmt.ratio(float(f((1 / info.ratio(c))[big]))) for f in (np.min, np.max))
            doc.p(
                f"{c}: at the cuts whose float32 tensors take at least 4 kB, its payload is "
                + (lo if lo == hi else f"{lo} to {hi}")
                + f" smaller than {ref}'s; its "
                f"worst accuracy change over all cuts is {info.change(c).min():+.1f} "
                f"points on validation, {info.change(c, split='test').min():+.1f} on test."
            )
        if len(infos) > 1:
            doc.p(
                "The figure also shows the front's other networks (",
                ", ".join(i.network for i in infos[1:]),
                "); the table is the dense network's.",
            )

    def _matched(self) -> pd.DataFrame:
        """The dense, no-exit grid rows with a codec (auto-split's), at matched accuracy."""
        gf = restrict(self.grid.frame, "auto-split")
        ref = float(self.comparison.attrs.get("reference_accuracy", float("nan")))
        return gf[gf.accuracy >= ref - 0.01] if ref == ref else gf.iloc[:0]

    def _fastest_codecs(self, cuts: Sequence[int]) -> dict[int, str]:
        """Per cut: the codec of the dense network with no exit that is fastest at matched
        accuracy, and its mean latency."""
        m = self._matched()
        out = {}
        for k in cuts:
            sub = m[m.knob_split == k]
            if len(sub):
                best = sub.loc[sub.latency_mean.idxmin()]
                out[k] = f"{best.knob_codec} ({fmt.human('latency_mean', best.latency_mean)})"
        return out

    def _codec_verdict(self) -> str:
        """Whether a codec moves the fastest feasible cut of the dense network with no exit
        at matched accuracy (fp32 only, against every codec of the space)."""
        m = self._matched()
        m = m[m.feasible.astype(bool)]
        plain = m[(m.knob_codec == "fp32") | (m.bandwidth == 0)]
        if not len(m) or not len(plain):
            return ""
        a, b = plain.loc[plain.latency_mean.idxmin()], m.loc[m.latency_mean.idxmin()]
        ka, kb = int(a.knob_split), int(b.knob_split)
        head = "Dense, with no exit, feasible and at matched accuracy: the fastest cut "
        if b.latency_mean >= a.latency_mean or (ka == kb and b.knob_codec == a.knob_codec):
            return (
                head + f"with float32 is {self._cut_text(ka)}, at "
                f"{fmt.human('latency_mean', a.latency_mean)}, and no codec beats it."
            )
        return (
            head + f"with float32 is {self._cut_text(ka)}, at "
            f"{fmt.human('latency_mean', a.latency_mean)}; with the codecs it is "
            f"{self._cut_text(kb)} with {b.knob_codec}, at "
            f"{fmt.human('latency_mean', b.latency_mean)} sending "
            f"{fmt.human('bandwidth', b.bandwidth)}: the codec made that cut the best."
        )
