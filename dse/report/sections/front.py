"""The Pareto front section: the figure, the table of front trials and the codecs they use."""

from __future__ import annotations

from typing import Any

from dse import vocab
from dse.report import fmt, plots
from dse.report.data import ReportData
from dse.report.doc import Doc, Link
from dse.report.text import codec_text, exits_of, lossy, realised, sends, task_columns
from dse.search import Candidate

SHOWN = 40  # front trials in the table; front.csv has them all


def front(data: ReportData, doc: Doc) -> None:
    """The front figure, its trials (the knee starred) and the codecs they use."""
    doc.h(1, "Pareto front", "front")
    data.figures.put(doc, "front")
    if not len(data.front):
        doc.p("No feasible trial, so the front is empty (front.csv has only its header).")
        return
    shown = data.front.head(SHOWN)
    knee = int(data.recommended["trial"]) if data.recommended is not None else -1
    per_task = task_columns(data)  # grouped by task, after the mean accuracy
    metrics = list(
        dict.fromkeys(
            [
                *[m for m in data.names if m not in per_task],
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
    coded = bool(data.spec.codecs)
    rows = []
    for _, row in shown.iterrows():
        candidate = Candidate.from_row(row)
        rows.append(
            [
                f"{int(row['trial'])}{' ★' if int(row['trial']) == knee else ''}",
                vocab.network_name(*candidate.network),
                realised(row),
                str(candidate.split),
                exits_of(data, candidate, short=True),
                *([codec_text(data, candidate, row)] if coded else []),
                *[fmt.human(m, row[m]) for m in metrics],
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
    rest = len(data.front) - len(shown)
    more = f" ({rest} more rows)" if rest > 0 else ""
    doc.p(
        f"{len(data.front)} feasible front trials{more}; ★ marks the recommended one. "
        "All of them, with every knob and metric in SI units, are in ",
        Link("front.csv", "front.csv"),
        ".",
    )
    if coded:
        said, lossy_cuts = codec_usage(data)
        for line in said:
            doc.p(line)
        if lossy_cuts:
            doc.items(lossy_cuts)


def codec_usage(data: ReportData) -> tuple[list[str], list[str]]:
    """Which codecs the front's points use (counts) in sentences, and, one item each,
    every (lossy codec, network, cut) that sends on the front, with its payload as a
    share of fp32's there."""
    if not data.spec.codecs or not len(data.front):
        return [], []
    counts: dict[str, int] = {}
    lossy_trials: dict[tuple[str, str], dict[int, list[int]]] = {}
    silent = 0
    for _, row in data.front.iterrows():
        candidate = Candidate.from_row(row)
        codec = candidate.codec
        if codec is None:
            continue
        if not sends(data, candidate, row):
            silent += 1
            continue
        counts[codec] = counts.get(codec, 0) + 1
        if lossy(codec):
            network = vocab.network_label(*candidate.network)
            cuts = lossy_trials.setdefault((codec, network), {})
            cuts.setdefault(candidate.split, []).append(int(row["trial"]))
    used = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    said = [
        f"Codecs on the front ({len(data.front)} points; - in the codec column: nothing is "
        "sent): "
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
    if not lossy_trials:
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
    for (codec, network), cuts in sorted(lossy_trials.items()):
        info = _codec_info(data, network)
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
            listed = ", ".join(map(str, trials[:5])) + (", ..." if len(trials) > 5 else "")
            items.append(
                f"{codec} at cut {k} of {network}{where} "
                f"(trial{'s' if len(trials) > 1 else ''} {listed})"
            )
    return said, items


def _codec_info(data: ReportData, network: str) -> Any:
    """The rate-accuracy numbers of the network labelled ``network`` (None: not
    computed)."""
    for info in data.figures.info("codecs") or ():
        if info.network == network:
            return info
    for method, density in data.explorer.space.networks():
        if vocab.network_label(method, density) == network:
            try:
                return plots.rate_accuracy_info(
                    data.explorer.scorer(method, density), network=network
                )
            except ValueError:
                return None
    return None
