"""The multi-task section: one backbone for every task against one network per task."""

from __future__ import annotations

from dse.report import fmt
from dse.report.doc import Bold, Code, Doc


class Tasks:
    """The multi-task section: one backbone for every task against one network per task."""

    def _tasks_section(self, doc: Doc) -> None:
        ts = self.task_section
        if ts is None:
            return
        doc.h(1, "One backbone or one network per task", "tasks")
        t = len(self.tasks)
        cached = ts.networks - ts.trained_now
        doc.p(
            f"The study's dense network, one backbone shared by its {t} tasks with one head "
            f"per task (MTL), against {ts.networks} single-task networks (STL), one per "
            "task, built from the same backbone, head kind, exit sites and training "
            "settings. Those "
            f"{ts.networks} networks are trained for this comparison only the first time and "
            "cached: "
            + (
                f"{ts.trained_now} trained for this report, {cached} from the cache."
                if ts.trained_now
                else "all of them came from the cache this time."
            )
            + " Both sides are scored dense, with no exit taken, at every cut; each "
            "design is shown at its best cut (the lowest mean latency), at MTL-Split's cut "
            "where the comparison has it (the shared layers on the edge, every head on the "
            "server; the single-task networks cut at the same layer), all on the edge and all "
            "on the server."
        )
        if ts.comparison is None:
            doc.p(
                Bold("Not computed: "),
                f"the comparison failed ({ts.error}). ",
                Code(f"dse compare {self.spec.name}"),
                " runs it alone.",
            )
            return
        c = ts.comparison
        f = c.frame()
        rows = []
        for name, r in f.iterrows():
            rows.append(
                [
                    str(name),
                    str(r["cuts"]),
                    fmt.flop(float(r["edge_flops"])),
                    fmt.human("bandwidth", r["bytes"]),
                    fmt.human("latency_mean", r["latency_mean"]),
                    fmt.human("edge_energy", r["edge_energy"]),
                    fmt.human("edge_memory", r["edge_memory"]),
                    *[fmt.human("accuracy", r[f"test_accuracy.{task}"]) for task in c.tasks],
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
                *[f"test accuracy, {task}" for task in c.tasks],
            ],
            rows,
        )
        doc.p(
            "Cuts: the multi-task network's one cut; the single-task networks' cuts in task "
            f"order ({', '.join(c.tasks)}). Edge FLOPs, bytes sent, edge energy and edge "
            "memory of the single-task side are sums over its networks (every edge part "
            "resident at once); accuracy is that of the final heads."
        )
        self.fig.put(doc, "tasks")
        doc.p(Bold("What the numbers say: "))
        doc.items([v[0].upper() + v[1:] + "." for v in c.verdicts()])
        if c.schedule == "parallel":
            sched = (
                'The single-task side runs in parallel ([deployment] stl = "parallel"): '
                "as if the edge device ran every network at once (as many cores as "
                "tasks), so its latency is the slowest network's. This is an optimistic "
                'bound; stl = "sequential" runs them one after another.'
            )
        else:
            sched = (
                "The single-task side runs sequentially ([deployment] stl = "
                '"sequential"): the edge parts run one after another on the one edge '
                "device, each sends as soon as its own edge part is done, the link "
                "carries one transfer at a time and the server runs the server parts as "
                "they arrive; the latency is when the last answer is back. stl = "
                '"parallel" gives the optimistic bound of one core per network.'
            )
        doc.p(sched)
        doc.p(
            f"At a cut inside the shared layers, one backbone computes and sends 1/{t} of "
            f"what {t} single-task networks do, by construction (one backbone instead of "
            f"{t}): that saving needs no measuring. The comparison that matters is each "
            "design at its own best cut, and the accuracy each task keeps."
        )
