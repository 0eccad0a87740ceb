"""One backbone for all tasks (MTL-Split) against one network per task, on one cost model.

For a spec with several ``[data] tasks``: the study's dense multi-task network, and one
single-task network per task built from the same backbone, head kind, exit sites and
training settings (each trained once and cached like every network). Both are scored
dense, with no exit taken, at every cut. Each design is shown at its best cut (the lowest
mean latency; with equal latencies, the fewest bytes), at MTL-Split's cut (the shared
layers on the edge, the heads on the server; the single-task networks cut at the same
layer), all on the edge, and all on the server. The single-task side's best cuts are the
combination of one cut per network with the lowest mean latency of them all together
(then the fewest bytes), not each network's best alone.

Several requests in flight are modelled as they run (:func:`run_together`): the edge parts
run under ``[deployment] stl``, each request is sent as soon as its edge part is done, the
link's airtime is shared (the uplink carries one request's bytes after another, first
ready first, and the downlink likewise), while the round trips' waits overlap: a request
does not wait for another's answer before it is sent. The server (far larger) runs the
server parts as they arrive. Latency is when the last answer is back.

- ``sequential`` (default): the edge parts run one after another on the one device.
- ``parallel``: as if the device ran them all at once (as many cores as tasks): an
  optimistic bound.

Edge energy is that timeline's: every network's compute, every byte's airtime at the
radio's sending and receiving power, the radio connected (neither sending nor receiving)
from the first send to the last answer, its tail once after the last, and the edge's idle
power while it has nothing to compute until the last answer. One request alone (the
multi-task side) costs exactly what the scorer charges it. Edge FLOPs, bytes sent and edge
memory (every edge part resident at once) of the single-task side are sums over its
networks. Accuracy is per task, on validation and test, of the final heads. At the same
cut inside the shared layers the multi-task network computes and sends a T-th of what T
single-task networks do by construction (one backbone instead of T): the comparison that
tells something is each design at its own best cut, and the accuracy.

Each single-task network may be trained with several loss weightings
(``stl_weightings``; the validation split keeps the best per task), so that the two sides
get as many tries as the caller gave the multi-task network.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dse.costmodel import DeviceProfile, LinkProfile
from dse.errors import InputError
from dse.nets import NetworkSpec, train_network
from dse.search.evaluate import Metrics, Scorer, make_scorer
from dse.search.explorer import Explorer
from dse.search.space import Candidate
from dse.search.spec import StudySpec

SCHEDULES = ("sequential", "parallel")
#: Cut combinations the single-task side's best cuts are searched over, at most; beyond it
#: each network keeps only its fastest cuts alone (as many as the budget allows).
MAX_COMBINATIONS = 100_000


@dataclass(frozen=True)
class Exchange:
    """One network's part in answering one input (s, J): its edge compute, the airtime of
    its request and of its answer, its server time, and the energies of those."""

    edge_s: float
    up_s: float  # uplink airtime of the cut's tensors; 0 when nothing is sent
    down_s: float  # downlink airtime of the result
    server_s: float
    compute_j: float  # the edge computing (and coding the tensors)
    up_j: float  # the radio sending
    down_j: float  # the radio receiving
    tail_j: float  # the radio's tail after an exchange (charged once, after the last)

    @property
    def sent(self) -> bool:
        return self.up_s > 0

    @classmethod
    def of(cls, m: Metrics, link: LinkProfile) -> Exchange:
        """The exchange of a candidate scored with no exit taken (one path)."""
        up = 8.0 * m.bandwidth / link.uplink_bps if m.bandwidth > 0 else 0.0
        down = max(0.0, m.transfer_s - up - link.rtt_s) if up > 0 else 0.0
        return cls(
            m.edge_s,
            up,
            down,
            m.server_s,
            m.compute_energy,
            m.radio_up_energy,
            m.radio_down_energy,
            m.radio_tail_energy,
        )


@dataclass(frozen=True)
class Together:
    """Several exchanges answering one input together: when the last answer is back (s)
    and the edge's energy (J) by part."""

    latency: float
    compute_j: float
    up_j: float
    down_j: float
    wait_j: float  # the radio connected, neither sending nor receiving
    tail_j: float
    idle_j: float  # the edge idling, nothing left to compute

    @property
    def edge_energy(self) -> float:
        return self.compute_j + self.up_j + self.down_j + self.wait_j + self.tail_j + self.idle_j


def run_together(
    exchanges: Sequence[Exchange], link: LinkProfile, edge: DeviceProfile, *, schedule: str
) -> Together:
    """The timeline of several requests for one input (see the module docstring): edge
    parts one after another (``sequential``) or at once (``parallel``); each request sent
    when its edge part is done, the uplink's airtime shared first ready first; half the
    round trip to the server, which starts at once; the answers share the downlink in the
    order they are ready, and arrive half a round trip later. One exchange alone takes
    ``edge + up + rtt + server + down`` and costs what the scorer charges it."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    half = link.rtt_s / 2
    ready, done = [], 0.0
    for x in exchanges:
        done = done + x.edge_s if schedule == "sequential" else x.edge_s
        ready.append(done)
    busy = max(ready, default=0.0)  # the edge computes until its last part is done
    end = busy
    up_free = down_free = 0.0
    airtime: list[tuple[float, float]] = []
    served = []
    for i in sorted(range(len(exchanges)), key=lambda i: (ready[i], i)):
        x = exchanges[i]
        if not x.sent:
            end = max(end, ready[i] + x.server_s)
            continue
        start = max(ready[i], up_free)
        up_free = start + x.up_s
        airtime.append((start, up_free))
        served.append((up_free + half + x.server_s, i))
    for at, i in sorted(served):
        start = max(at, down_free)
        down_free = start + exchanges[i].down_s
        airtime.append((start, down_free))
        end = max(end, down_free + half)
    sent = [x for x in exchanges if x.sent]
    wait = 0.0
    if sent:
        first = min(a for a, _ in airtime)
        wait = (end - first) - _union(airtime)
    return Together(
        latency=end,
        compute_j=sum(x.compute_j for x in exchanges),
        up_j=sum(x.up_j for x in sent),
        down_j=sum(x.down_j for x in sent),
        wait_j=link.connected_power_w * wait,
        tail_j=max((x.tail_j for x in sent), default=0.0),
        idle_j=edge.idle_power_w * (end - busy),
    )


def _union(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by ``intervals`` (the radio busy sending or receiving)."""
    total, reach = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


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
    stl_cuts: tuple[pd.DataFrame, ...]  # the same per single-task network, each alone
    #: per task, the loss weighting of the single-task network kept (on validation)
    stl_weightings: tuple[str, ...] = ()

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


def best_cuts(
    options: Sequence[Sequence[Exchange]],
    nbytes: Sequence[Sequence[float]],
    link: LinkProfile,
    edge: DeviceProfile,
    *,
    schedule: str,
) -> list[int]:
    """One cut per network (``options[n][k]``: network n's exchange at cut k) whose
    requests together answer soonest (:func:`run_together`), then send the fewest bytes,
    then the earlier cuts.

    The timeline only grows with any part of any exchange, so a cut no better than another
    of the same network in every part (edge, airtimes, server, bytes) is never needed:
    the combinations of the others are all tried, up to :data:`MAX_COMBINATIONS`; beyond
    it, each network keeps only its fastest cuts alone."""
    choices = [_undominated(opts, b) for opts, b in zip(options, nbytes, strict=True)]
    if math.prod(map(len, choices)) > MAX_COMBINATIONS:
        per = max(2, int(MAX_COMBINATIONS ** (1 / len(choices))))
        choices = [
            sorted(sorted(c, key=lambda k, o=o: (_alone(o[k]), k))[:per])
            for c, o in zip(choices, options, strict=True)
        ]

    def rank(picks: tuple[int, ...]) -> tuple[float, float, tuple[int, ...]]:
        xs = [opts[k] for opts, k in zip(options, picks, strict=True)]
        sent = sum(b[k] for b, k in zip(nbytes, picks, strict=True))
        return run_together(xs, link, edge, schedule=schedule).latency, sent, picks

    return list(min(itertools.product(*choices), key=rank))


def _undominated(opts: Sequence[Exchange], nbytes: Sequence[float]) -> list[int]:
    """The cuts no other cut of the same network beats or equals in every part (of equal
    ones, the earliest stays)."""

    def parts(k: int) -> tuple[float, ...]:
        x = opts[k]
        return (x.edge_s, x.up_s, x.down_s, x.server_s, nbytes[k])

    keep: list[int] = []
    for k in range(len(opts)):
        mine = parts(k)
        beaten = any(
            all(a <= b for a, b in zip(parts(j), mine, strict=True)) and (parts(j) != mine or j < k)
            for j in range(len(opts))
            if j != k
        )
        if not beaten:
            keep.append(k)
    return keep


def _alone(x: Exchange) -> float:
    """One exchange's latency on its own (the rtt aside, equal for every cut that sends)."""
    return x.edge_s + x.up_s + x.server_s + x.down_s


def single_task_spec(spec: NetworkSpec, task: str, *, weighting: str = "fixed") -> NetworkSpec:
    """The single-task counterpart of a multi-task network: same backbone, head kind, exit
    sites, training settings and seed; the task's own labels, and the loss ``weighting``
    ("fixed": the plain loss; "uncertainty": Kendall et al.'s learned weight, one here)."""
    train = spec.train
    if train.task_weights is not None or train.task_weighting != weighting:
        train = replace(train, task_weights=None, task_weighting=weighting)
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


def _checked_schedule(spec: StudySpec, tasks: Sequence[str], schedule: str | None) -> str:
    """The single-task networks' schedule (``schedule`` or the spec's), refused in one line
    when unknown, or when the spec has fewer than two tasks to compare."""
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
    return schedule


def _single_task_scorers(
    explorer: Explorer,
    base: NetworkSpec,
    tasks: Sequence[str],
    weightings: Sequence[str],
    lo: float,
) -> tuple[list[tuple[Scorer, list[Metrics], pd.DataFrame]], list[str]]:
    """Per task, its single-task network (one per loss weighting, the best on validation
    kept, the first on a tie) scored at every cut, and the weighting kept."""
    singles, kept = [], []
    for task in tasks:
        tries = [
            train_network(
                single_task_spec(base, task, weighting=w),
                cache=explorer.cache,
                progress=explorer.progress,
            )
            for w in weightings
        ]
        i = max(range(len(tries)), key=lambda i: (tries[i].task_accuracy("val")[0], -i))
        kept.append(weightings[i])
        sc = make_scorer(
            tries[i], explorer.edge, explorer.server, explorer.link, tail=explorer.spec.tail_energy
        )
        sc_cands = [Candidate("dense", 1.0, k, (), lo) for k in range(len(sc.graph.cuts))]
        singles.append((sc, *_per_cut(sc, sc_cands)))
    return singles, kept


def compare_tasks(
    explorer: Explorer,
    *,
    schedule: str | None = None,
    stl_weightings: Sequence[str] | None = None,
) -> TaskComparison:
    """Multi-task against single-task networks for ``explorer``'s spec (one with several
    tasks); trains the single-task networks it needs (once, cached).

    ``stl_weightings``: the loss weightings each single-task network is trained with, the
    best on its validation accuracy kept (default: the plain loss, one try, as the spec's
    multi-task network had one); give the ones the multi-task network was chosen among."""
    spec = explorer.spec
    tasks = explorer.tasks or ()
    schedule = _checked_schedule(spec, tasks, schedule)
    lo = spec.thresholds[0]
    mtl = explorer.scorer("dense", 1.0)
    cands = [Candidate("dense", 1.0, k, (), lo) for k in range(len(mtl.graph.cuts))]
    m_metrics, m_frame = _per_cut(mtl, cands)
    base = explorer.network_spec("dense", 1.0)
    weightings = tuple(stl_weightings or ("fixed",))
    link, edge = explorer.link, explorer.edge
    singles, kept = _single_task_scorers(explorer, base, tasks, weightings, lo)
    exchanges = [[Exchange.of(m, link) for m in s[1]] for s in singles]

    def mtl_design(name: str, i: int) -> Design:
        m = m_metrics[i]
        alone = run_together([Exchange.of(m, link)], link, edge, schedule=schedule)
        return Design(
            name,
            "mtl",
            (cands[i].split,),
            float(m_frame.edge_flops[i]),
            m.bandwidth,
            alone.latency,
            alone.latency,  # no exit is taken: every input takes the one path
            alone.edge_energy,
            m.edge_memory,
            m.task_accuracy,
            m.test_task_accuracy,
        )

    def stl_design(name: str, picks: list[int]) -> Design:
        chosen = [(s[1][i], s[2], i) for s, i in zip(singles, picks, strict=True)]
        together = run_together(
            [x[i] for x, i in zip(exchanges, picks, strict=True)], link, edge, schedule=schedule
        )
        return Design(
            name,
            "stl",
            tuple(picks),
            float(sum(f.edge_flops[i] for _, f, i in chosen)),
            float(sum(m.bandwidth for m, _, _ in chosen)),
            together.latency,
            together.latency,  # no exit is taken: every input takes the one path
            together.edge_energy,
            float(sum(m.edge_memory for m, _, _ in chosen)),
            tuple(m.task_accuracy[0] for m, _, _ in chosen),
            tuple(m.test_task_accuracy[0] for m, _, _ in chosen),
        )

    last = [len(s[1]) - 1 for s in singles]
    shared = shared_cut(m_frame)
    nbytes = [[m.bandwidth for m in s[1]] for s in singles]
    designs = (
        mtl_design("MTL, best cut", _best(m_metrics)),
        stl_design("STL, best cuts", best_cuts(exchanges, nbytes, link, edge, schedule=schedule)),
        mtl_design(SHARED_MTL, shared),
        stl_design(SHARED_STL, [shared] * len(singles)),
        mtl_design("MTL, all on edge", len(m_metrics) - 1),
        stl_design("STL, all on edge", last),
        mtl_design("MTL, all on server", 0),
        stl_design("STL, all on server", [0] * len(singles)),
    )
    return TaskComparison(
        tuple(tasks),
        schedule,
        designs,
        m_frame,
        tuple(s[2] for s in singles),
        stl_weightings=tuple(kept),
    )
