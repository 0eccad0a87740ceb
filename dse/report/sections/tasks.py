"""The multi-task section: one backbone for every task against one network per task."""

from __future__ import annotations

from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Bold, Code, Doc
from dse.search import TaskComparison

PARALLEL = (
    'The single-task side runs in parallel ([deployment] stl = "parallel"): '
    "as if the edge device ran every network at once (as many cores as "
    "tasks), so its latency is the slowest network's. This is an optimistic "
    'bound; stl = "sequential" runs them one after another.'
)
SEQUENTIAL = (
    "The single-task side runs sequentially ([deployment] stl = "
    '"sequential"): the edge parts run one after another on the one edge '
    "device, each sends as soon as its own edge part is done, the link "
    "carries one transfer at a time and the server runs the server parts as "
    "they arrive; the latency is when the last answer is back. stl = "
    '"parallel" gives the optimistic bound of one core per network.'
)


def tasks(data: ReportData, doc: Doc) -> None:
    """What the comparison measures, its table, verdicts and schedule (several tasks)."""
    section = data.task_comparison
    if section is None:
        return
    doc.h(1, "One backbone or one network per task", "tasks")
    count = len(data.tasks)
    cached = section.networks - section.trained_now
    doc.p(
        f"The study's dense network, one backbone shared by its {count} tasks with one head "
        f"per task (MTL), against {section.networks} single-task networks (STL), one per "
        "task, built from the same backbone, head kind, exit sites and training "
        "settings. Those "
        f"{section.networks} networks are trained for this comparison only the first time "
        "and cached: "
        + (
            f"{section.trained_now} trained for this report, {cached} from the cache."
            if section.trained_now
            else "all of them came from the cache this time."
        )
        + " Both sides are scored dense, with no exit taken, at every cut; each "
        "design is shown at its best cut (the lowest mean latency), at MTL-Split's cut "
        "where the comparison has it (the shared layers on the edge, every head on the "
        "server; the single-task networks cut at the same layer), all on the edge and all "
        "on the server."
    )
    comparison = section.comparison
    if comparison is None:
        doc.p(
            Bold("Not computed: "),
            f"the comparison failed ({section.error}). ",
            Code(f"dse compare {data.spec.name}"),
            " runs it alone.",
        )
        return
    _designs(comparison, doc)
    data.figures.put(doc, "tasks")
    doc.p(Bold("What the numbers say: "))
    doc.items([v[0].upper() + v[1:] + "." for v in comparison.verdicts()])
    doc.p(PARALLEL if comparison.schedule == "parallel" else SEQUENTIAL)
    doc.p(
        f"At a cut inside the shared layers, one backbone computes and sends 1/{count} of "
        f"what {count} single-task networks do, by construction (one backbone instead of "
        f"{count}): that saving needs no measuring. The comparison that matters is each "
        "design at its own best cut, and the accuracy each task keeps."
    )


def _designs(comparison: TaskComparison, doc: Doc) -> None:
    """Each design's cuts, costs and test accuracy per task."""
    rows = []
    for name, row in comparison.frame().iterrows():
        rows.append(
            [
                str(name),
                str(row["cuts"]),
                fmt.flop(float(row["edge_flops"])),
                fmt.human("bandwidth", row["bytes"]),
                fmt.human("latency_mean", row["latency_mean"]),
                fmt.human("edge_energy", row["edge_energy"]),
                fmt.human("edge_memory", row["edge_memory"]),
                *[fmt.human("accuracy", row[f"test_accuracy.{t}"]) for t in comparison.tasks],
            ]
        )
    doc.table(
        [
            "design",
            "cuts",
            "edge FLOPs",
            "bytes sent",
            "mean latency",
            "edge energy",
            "edge memory",
            *[f"test accuracy, {t}" for t in comparison.tasks],
        ],
        rows,
    )
    doc.p(
        "Cuts: the multi-task network's one cut; the single-task networks' cuts in task "
        f"order ({', '.join(comparison.tasks)}). Edge FLOPs, bytes sent, edge energy and edge "
        "memory of the single-task side are sums over its networks (every edge part "
        "resident at once); accuracy is that of the final heads."
    )
