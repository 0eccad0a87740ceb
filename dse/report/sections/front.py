"""The Pareto front section: the figure, the table of front trials and the codecs they use."""

from __future__ import annotations

from typing import Any

from dse import vocab
from dse.report import fmt, plots
from dse.report.doc import Doc, Link
from dse.report.text import _lossy, _realised, candidate_of


class Front:
    """The Pareto front section: the figure, the table of front trials and the codecs they use."""

    def _front(self, doc: Doc) -> None:
        doc.h(1, "Pareto front", "front")
        self.fig.put(doc, "front")
        if not len(self.front):
            doc.p("No feasible trial, so the front is empty (front.csv has only its header).")
            return
        shown = self.front.head(40)
        knee = int(self.rec["trial"]) if self.rec is not None else -1
        per_task = self._task_columns()  # grouped by task, after the mean accuracy
        metrics = list(
            dict.fromkeys(
                [
                    *[m for m in self.names if m not in per_task],
                    "accuracy",
                    "test_accuracy",
                    *per_task,
                    "latency_mean",
                    "latency_p95",
                    "bandwidth",
                    "edge_energy",
                    "edge_memory",
                    "storage",
                ]
            )
        )
        metrics = [m for m in metrics if m in shown]
        coded = bool(self.spec.codecs)
        rows = []
        for _, r in shown.iterrows():
            c = candidate_of(r)
            rows.append(
                [
                    f"{int(r['trial'])}{' ★' if int(r['trial']) == knee else ''}",
                    vocab.network_name(*c.network),
                    _realised(r),
                    str(c.split),
                    self._exits(c, short=True),
                    *([self._codec_text(c, r)] if coded else []),
                    *[fmt.human(m, r[m]) for m in metrics],
                ]
            )
        doc.table(
            [
                "trial",
                "network",
                "realised density",
                "cut",
                "exits @ threshold",
                *(["codec"] if coded else []),
                *metrics,
            ],
            rows,
        )
        rest = len(self.front) - len(shown)
        more = f" ({rest} more rows)" if rest > 0 else ""
        doc.p(
            f"{len(self.front)} feasible front trials{more}; ★ marks the recommended one. "
            "All of them, with every knob and metric in SI units, are in ",
            Link("front.csv", "front.csv"),
            ".",
        )
        if coded:
            said, lossy = self.codec_usage()
            for line in said:
                doc.p(line)
            if lossy:
                doc.items(lossy)

    def codec_usage(self) -> tuple[list[str], list[str]]:
        """Which codecs the front's points use (counts) in sentences, and, one item each,
        every (lossy codec, network, cut) that sends on the front, with its payload as a
        share of fp32's there."""
        if not self.spec.codecs or not len(self.front):
            return [], []
        counts: dict[str, int] = {}
        lossy: dict[tuple[str, str], dict[int, list[int]]] = {}
        silent = 0
        for _, r in self.front.iterrows():
            c = candidate_of(r)
            if c.codec is None:
                continue
            if not self._sends(c, r):
                silent += 1
                continue
            counts[c.codec] = counts.get(c.codec, 0) + 1
            if _lossy(c.codec):
                net = vocab.network_label(*c.network)
                lossy.setdefault((c.codec, net), {}).setdefault(c.split, []).append(int(r["trial"]))
        n = len(self.front)
        used = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        said = [
            f"Codecs on the front ({n} points; - in the codec column: nothing is sent): "
            + (
                used
                if used
                else "none, no front point sends anything, so the codec decides nothing on it"
            )
            + (
                f"; {silent} send nothing (edge-only, or every sample leaves at an edge "
                "exit), so the codec decides nothing there"
                if silent and used
                else ""
            )
            + "."
        ]
        if not lossy:
            if used:
                said.append(
                    "No front point sends a lossily coded tensor: no codec that "
                    "reduces precision made a cut better here."
                )
            return said, []
        said.append(
            "A lossy codec puts these cuts on the front (payload, validation mean, "
            "against fp32's at the same cut; final-classifier accuracy change):"
        )
        items = []
        for (codec, net), cuts in sorted(lossy.items()):
            info = self._codec_info(net)
            for k, trials in sorted(cuts.items()):
                where = ""
                if info is not None and k in info.cuts:
                    j = info.cuts.index(k)
                    where = (
                        f": {fmt.nbytes(info.bytes[codec][j])} instead of "
                        f"{fmt.nbytes(info.bytes[info.reference][j])} "
                        f"({fmt.ratio(info.ratio(codec)[j])}), accuracy "
                        f"{info.change(codec)[j]:+.1f} points"
                    )
                ts = ", ".join(map(str, trials[:5])) + (", ..." if len(trials) > 5 else "")
                items.append(
                    f"{codec} at cut {k} of {net}{where} "
                    f"(trial{'s' if len(trials) > 1 else ''} {ts})"
                )
        return said, items

    def _codec_info(self, net: str) -> Any:
        """The rate-accuracy numbers of the network labelled ``net`` (None: not computed)."""
        for i in self.fig.infos.get("codecs") or ():
            if i.network == net:
                return i
        for m, d in self.ex.space.networks():
            if vocab.network_label(m, d) == net:
                try:
                    return plots.rate_accuracy_info(self.ex.scorer(m, d), network=net)
                except ValueError:
                    return None
        return None
