"""One backbone for all tasks (MTL-Split) against one network per task, on one cost model.

For a spec with several ``[data] tasks``: the study's dense multi-task network, and one
single-task network per task built from the same backbone, head kind, exit sites and
training settings (each trained once and cached like every network). Both are scored
dense, with no exit taken, at every cut. Each design is shown at its best cut (the lowest
mean latency; with equal latencies, the fewest bytes), at MTL-Split's cut (the shared
layers on the edge, the heads on the server; the single-task networks cut at the same
layer), all on the edge, and all on the server. The single-task networks run side by
side under ``[deployment] stl``:

- ``sequential`` (default): their edge parts run one after another on the one device; each
  sends as soon as its edge part is done, the link carries one transfer at a time, and the
  server (far larger) runs the server parts as they arrive. Latency is when the last
  answer is back.
- ``parallel``: as if the device ran them all at once (as many cores as tasks): the latency
  is the slowest network's. An optimistic bound.

Edge FLOPs, bytes sent, edge energy (each network's compute, its own radio exchange and its
idle wait) and edge memory (every edge part resident at once) of the single-task side are
sums over its networks. Accuracy is per task, on validation and test, of the final heads.
At the same cut inside the shared layers the multi-task network computes and sends a T-th
of what T single-task networks do by construction (one backbone instead of T): the
comparison that tells something is each design at its own best cut, and the accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dse.errors import InputError
from dse.nets import NetworkSpec, train_network
from dse.search.evaluate import Metrics, Scorer, make_scorer
from dse.search.explorer import Explorer
from dse.search.space import Candidate

SCHEDULES = ("sequential", "parallel")


@dataclass(frozen=True)
class Design:
    """One way of deploying the tasks at given cuts: what it costs and how well it does."""

    name: str  # e.g. "MTL, best cut"
    kind: str  # "mtl" or "stl"
    cuts: tuple[int, ...]  # one cut (MTL) or one per task (STL)
    edge_flops: float
    bytes: float
    latency_mean: float
    latency_p95: float
    edge_energy: float
    edge_memory: float
    accuracy: tuple[float, ...]  # validation, per task
    test_accuracy: tuple[float, ...]


@dataclass(frozen=True)
class TaskComparison:
    tasks: tuple[str, ...]
    schedule: str
    designs: tuple[Design, ...]
    mtl_cuts: pd.DataFrame  # every cut of the multi-task network: flops, bytes, latency
    stl_cuts: tuple[pd.DataFrame, ...]  # the same per single-task network

    def design(self, name: str) -> Design:
        return next(d for d in self.designs if d.name == name)

    def frame(self) -> pd.DataFrame:
        """One row per design: its cuts, costs and per-task accuracies."""
        rows = []
        for d in self.designs:
            row = {
                "design": d.name,
                "cuts": ",".join(map(str, d.cuts)),
                "edge_flops": d.edge_flops,
                "bytes": d.bytes,
                "latency_mean": d.latency_mean,
                "latency_p95": d.latency_p95,
                "edge_energy": d.edge_energy,
                "edge_memory": d.edge_memory,
            }
            for t, a, b in zip(self.tasks, d.accuracy, d.test_accuracy, strict=True):
                row[f"accuracy.{t}"] = a
                row[f"test_accuracy.{t}"] = b
            rows.append(row)
        return pd.DataFrame(rows).set_index("design")

    def verdicts(self) -> list[str]:
        """Plain sentences: where one backbone wins, and where it loses."""
        m, s = self.design("MTL, best cut"), self.design("STL, best cuts")
        out = []
        for label, a, b, unit in (
            ("mean latency", m.latency_mean, s.latency_mean, "s"),
            ("edge energy", m.edge_energy, s.edge_energy, "J"),
            ("bytes sent", m.bytes, s.bytes, "B"),
            ("edge memory", m.edge_memory, s.edge_memory, "B"),
        ):
            if b > 0:
                ratio = a / b
                word = "less" if ratio < 1 else "more" if ratio > 1 else "the same"
                out.append(
                    f"{label}: one backbone needs {ratio:.2f}x what {len(self.tasks)} "
                    f"single-task networks need ({word}), each at its best cut"
                )
            elif a > 0:
                out.append(
                    f"{label}: the single-task networks need none, one backbone {a:.3g} {unit}"
                )
        for t, a, b in zip(self.tasks, m.test_accuracy, s.test_accuracy, strict=True):
            diff = 100 * (a - b)
            if diff < -1:
                out.append(
                    f"task {t}: one backbone loses {-diff:.1f} points of test accuracy "
                    f"({100 * a:.1f}% against {100 * b:.1f}%)"
                )
            else:
                out.append(
                    f"task {t}: test accuracy {100 * a:.1f}% with one backbone, "
                    f"{100 * b:.1f}% alone ({diff:+.1f} points)"
                )
        heavy = _heads_dominate(self.mtl_cuts)
        if heavy is not None:
            out.append(heavy)
        return out


def _heads_dominate(cuts: pd.DataFrame) -> str | None:
    """Where the task heads cost more edge FLOPs than the shared layers (if anywhere)."""
    shared = cuts[~cuts.in_heads]
    heads = cuts[cuts.in_heads]
    if heads.empty or shared.empty:
        return None
    trunk = float(shared.edge_flops.max())
    total = float(heads.edge_flops.max())
    if total - trunk > trunk:
        return (
            f"the task heads cost more than the shared layers ({total - trunk:.3g} FLOPs "
            f"against {trunk:.3g}): cuts that put heads on the edge lose what sharing saves"
        )
    return None


def _edge_flops(scorer: Scorer) -> np.ndarray:
    """Per cut: dense FLOPs of the backbone layers run on the edge."""
    g = scorer.graph
    flops = [g.nodes[n].flops for n in g.backbone]
    return np.concatenate([[0.0], np.cumsum(flops, dtype=float)])


def _per_cut(scorer: Scorer, cands: list[Candidate]) -> tuple[list[Metrics], pd.DataFrame]:
    metrics = [scorer.score(c) for c in cands]
    flops = _edge_flops(scorer)
    g = scorer.graph
    heads = {n for n in g.backbone if str(g.nodes[n].target).startswith("task_heads.")}
    first_head = min((g.backbone.index(n) for n in heads), default=len(g.backbone))
    frame = pd.DataFrame(
        {
            "cut": [c.split for c in cands],
            "edge_flops": [flops[c.split] for c in cands],
            "bytes": [m.bandwidth for m in metrics],
            "latency_mean": [m.latency_mean for m in metrics],
            "edge_energy": [m.edge_energy for m in metrics],
            "in_heads": [c.split > first_head for c in cands],
        }
    )
    return metrics, frame


SHARED_MTL = "MTL, shared layers on edge"
SHARED_STL = "STL, same cut"


def shared_cut(cuts: pd.DataFrame) -> int:
    """The cut after the shared layers (MTL-Split's: the backbone on the edge, every head
    on the server); the single-task networks have the same layers before it."""
    return int(cuts.cut[~cuts.in_heads].max())


def _best(metrics: list[Metrics]) -> int:
    return min(range(len(metrics)), key=lambda i: (metrics[i].latency_mean, metrics[i].bandwidth))


def single_task_spec(spec: NetworkSpec, task: str) -> NetworkSpec:
    """The single-task counterpart of a multi-task network: same backbone, head kind, exit
    sites, training settings and seed; the task's own labels."""
    train = spec.train
    if train.task_weights is not None or train.task_weighting != "fixed":
        train = replace(train, task_weights=None, task_weighting="fixed")
    return NetworkSpec(
        model=spec.model,
        data=spec.data,
        tasks=(task,),
        model_options=dict(spec.model_options),
        method=spec.method,
        density=spec.density,
        exits=spec.exits,
        train=train,
        head=spec.head,
        weights=spec.weights,
    )


def compare_tasks(explorer: Explorer, *, schedule: str | None = None) -> TaskComparison:
    """Multi-task against single-task networks for ``explorer``'s spec (one with several
    tasks); trains the single-task networks it needs (once, cached)."""
    spec = explorer.spec
    tasks = explorer.tasks or ()
    if len(tasks) < 2:
        raise InputError(
            spec.path or spec.name,
            "data.tasks",
            "the comparison of one backbone against one network per task needs several tasks",
            'name them: [data] tasks = ["...", "..."]',
        )
    schedule = schedule or spec.stl
    if schedule not in SCHEDULES:
        raise InputError(
            spec.path or spec.name,
            "deployment.stl",
            f"unknown {schedule!r}",
            f"use one of {', '.join(SCHEDULES)}",
        )
    lo = spec.thresholds[0]
    mtl = explorer.scorer("dense", 1.0)
    cands = [Candidate("dense", 1.0, k, (), lo) for k in range(len(mtl.graph.cuts))]
    m_metrics, m_frame = _per_cut(mtl, cands)
    base = explorer.network_spec("dense", 1.0)
    singles = []
    for task in tasks:
        trained = train_network(
            single_task_spec(base, task), cache=explorer.cache, progress=explorer.progress
        )
        sc = make_scorer(
            trained, explorer.edge, explorer.server, explorer.link, tail=spec.tail_energy
        )
        sc_cands = [Candidate("dense", 1.0, k, (), lo) for k in range(len(sc.graph.cuts))]
        singles.append((sc, *_per_cut(sc, sc_cands)))

    def mtl_design(name: str, i: int) -> Design:
        m = m_metrics[i]
        return Design(
            name,
            "mtl",
            (cands[i].split,),
            float(m_frame.edge_flops[i]),
            m.bandwidth,
            m.latency_mean,
            m.latency_p95,
            m.edge_energy,
            m.edge_memory,
            m.task_accuracy,
            m.test_task_accuracy,
        )

    def stl_design(name: str, picks: list[int]) -> Design:
        chosen = [(s[1][i], s[2], i) for s, i in zip(singles, picks, strict=True)]
        lat = _schedule([(m.edge_s, m.transfer_s, m.server_s) for m, _, _ in chosen], schedule)
        return Design(
            name,
            "stl",
            tuple(picks),
            float(sum(f.edge_flops[i] for _, f, i in chosen)),
            # no exit is taken: every input takes the one path, so p95 is the mean
            float(sum(m.bandwidth for m, _, _ in chosen)),
            lat,
            lat,
            float(sum(m.edge_energy for m, _, _ in chosen)),
            float(sum(m.edge_memory for m, _, _ in chosen)),
            tuple(m.task_accuracy[0] for m, _, _ in chosen),
            tuple(m.test_task_accuracy[0] for m, _, _ in chosen),
        )

    last = [len(s[1]) - 1 for s in singles]
    shared = shared_cut(m_frame)
    designs = (
        mtl_design("MTL, best cut", _best(m_metrics)),
        stl_design("STL, best cuts", [_best(s[1]) for s in singles]),
        mtl_design(SHARED_MTL, shared),
        stl_design(SHARED_STL, [shared] * len(singles)),
        mtl_design("MTL, all on edge", len(m_metrics) - 1),
        stl_design("STL, all on edge", last),
        mtl_design("MTL, all on server", 0),
        stl_design("STL, all on server", [0] * len(singles)),
    )
    return TaskComparison(tuple(tasks), schedule, designs, m_frame, tuple(s[2] for s in singles))


def _schedule(parts: list[tuple[float, float, float]], schedule: str) -> float:
    """Latency of several networks' (edge, transfer, server) seconds run side by side."""
    if schedule == "parallel":
        return max(e + x + s for e, x, s in parts)
    edge_done = link_free = end = 0.0
    for e, x, s in parts:
        edge_done += e
        if x > 0:
            link_free = max(edge_done, link_free) + x
            end = max(end, link_free + s)
        else:
            end = max(end, edge_done + s)
    return end
