"""Score a candidate from cached logits and the cost table: no training, no forward pass.

For cut ``k`` and used exits ``E`` (ascending site position), a sample takes one *path*:
it leaves at the first exit in ``E`` whose confidence reaches the threshold, or runs to
the final classifier. Every path has a latency, bytes sent and edge energy:

- exit ``j`` on the edge (site position ``p_j <= k``): the edge backbone up to ``p_j`` plus
  the heads of ``E`` evaluated so far; nothing is sent;
- exit ``j`` on the server (``p_j > k``): the edge part up to ``k`` with all edge heads,
  the transfer, the server backbone from ``k`` to ``p_j`` and the server heads so far
  (the edge idles meanwhile: idle power x that wait is edge energy too);
- the final classifier: edge part, transfer, the rest of the server backbone and all
  server heads of ``E``.

The radio's part of a path that sends is the whole exchange: sending, receiving the
result, staying connected through the RTT and that path's server time, and the tail.

Several tasks: every exit carries a head per task, and the candidate's ``policy`` says
who leaves. ``all``: a sample leaves at the first used exit where every task is confident
(each at its own threshold), all tasks answered there. ``per_task``: each task is answered
at the first used exit where it is confident (or by its final head); the sample goes on
(and is sent, past the cut) until every task is answered, so its path is the latest of its
tasks' answers. Accuracy is per task; ``accuracy`` is their mean and ``accuracy_min`` the
lowest (with one task, all three are the same number).

A codec at the cut (the candidate's ``codec``; None sends float32 as the layer graph
counts it, with no header): the bytes sent are the mean length of the real payloads of the
split's samples, the edge pays the encoder's time (at its active power) and the server the
decoder's, and the server's outputs (its exits and the final heads) are those computed on
the decoded tensors (:mod:`dse.nets.split`, cached per network and codec). Edge exits read
the tensors before coding. Latencies use the mean payload: p95 latency is that of the
paths, not of payload sizes.

Expected latency, bytes and energy are the path values weighted by the paths' rates;
p95 latency is the 95th percentile of that discrete distribution. Selection uses the
validation split; the same numbers on the test split are kept for reporting.

What is deployed: the backbone and the used exits' heads, stored (edge and server parts)
and, for the edge part, held in edge memory (stored weights, the largest layer expanded
from compressed weights, peak activations including those of the edge heads). With
threshold 0 every sample leaves at the first used exit: the layers after it never run,
so they are neither stored nor held (a right-sized network).

Training the network costs what ``dse.costmodel.training`` models for its ``[training]``
mode at the candidate's cut (central training: the same at every cut), over the epochs
the network ran: ``train_time``, ``train_edge_energy``, ``train_bytes``,
``train_edge_memory``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import numpy as np

from dse.costmodel import (
    CostTable,
    DeviceProfile,
    LayerGraph,
    LinkProfile,
    TrainingCost,
    build_graph,
    codec_seconds,
    cost_table,
    radio_parts,
    training_costs,
    transfer_time,
)
from dse.nets import CRITERIA, Codec, CodecView, TrainedNetwork, confidence, example_input
from dse.search.space import Candidate


@dataclass(frozen=True)
class Metrics:
    """Everything measured for one candidate (SI units: s, bytes, J)."""

    accuracy: float
    latency_mean: float
    latency_p95: float
    bandwidth: float
    edge_energy: float
    edge_memory: float
    storage: float
    edge_s: float  # expected parts of the latency
    transfer_s: float
    server_s: float
    compute_energy: float
    radio_energy: float  # the radio's whole exchange, the sum of the four parts below
    idle_energy: float  # the edge idling while the link and the server work
    exit_rates: tuple[float, ...]  # per used exit, then the final classifier
    test_accuracy: float
    test_latency_mean: float
    test_latency_p95: float
    test_bandwidth: float
    test_edge_energy: float
    test_exit_rates: tuple[float, ...]
    realised_density: float  # weights kept over those of the dense network (the requested
    # density is the candidate's knob; layers it does not fit stay dense)
    radio_up_energy: float = 0.0  # sending the cut's tensors
    radio_down_energy: float = 0.0  # receiving the result
    radio_wait_energy: float = 0.0  # connected through the RTT and the server's time
    radio_tail_energy: float = 0.0  # the radio's tail after the exchange
    tasks: tuple[str, ...] = ()  # the network's tasks, in order
    task_accuracy: tuple[float, ...] = ()  # per task (``accuracy`` is their mean)
    test_task_accuracy: tuple[float, ...] = ()
    accuracy_min: float = 0.0  # the lowest task's accuracy
    test_accuracy_min: float = 0.0
    #: per task: the share of samples whose answer came from an exit (not the final head)
    task_exit_rate: tuple[float, ...] = ()
    bandwidth_p95: float = 0.0  # 95th percentile of the payload bytes (codecs), else bytes
    #: training the network in its [training] mode over the epochs it ran (see
    #: dse.costmodel.training): seconds, edge joules, bytes both ways, edge bytes held
    train_time: float = 0.0
    train_edge_energy: float = 0.0
    train_bytes: float = 0.0
    train_edge_memory: float = 0.0

    def as_dict(self) -> dict[str, float | list[float]]:
        """Plain JSON-ready values (``dataclasses.asdict`` deep-copies: too slow per trial).

        Per-task accuracies appear as ``accuracy.TASK`` and ``test_accuracy.TASK``, the
        names objectives and constraints use.
        """
        d: dict[str, float | list[float]] = {f: getattr(self, f) for f in _METRIC_FIELDS}
        for name in (
            "exit_rates",
            "test_exit_rates",
            "tasks",
            "task_accuracy",
            "test_task_accuracy",
            "task_exit_rate",
        ):
            d[name] = list(d[name])
        for task, a, b in zip(self.tasks, self.task_accuracy, self.test_task_accuracy, strict=True):
            d[f"accuracy.{task}"] = a
            d[f"test_accuracy.{task}"] = b
        return d


_METRIC_FIELDS = tuple(f.name for f in fields(Metrics))


@dataclass(frozen=True, eq=False)
class Scorer:
    """One trained network on one deployment: its cost table and per-output confidences."""

    trained: TrainedNetwork
    graph: LayerGraph
    table: CostTable
    confidence: dict[str, dict[str, np.ndarray]]  # split -> criterion -> [outputs, N]
    correct: dict[str, np.ndarray]  # split -> bool [outputs, N]
    storage_backbone: float
    storage_exits: np.ndarray  # per exit head
    realised_density: float = 1.0  # the network's weights kept over its dense network's
    classes: tuple[int, ...] = ()  # outputs of each task's classifier (empty: unknown)
    tail: bool = True  # the radio's tail energy counted (see costs.radio_parts)
    #: codec name -> cut -> (validation, test) views (dse.nets.split.codec_outputs)
    codec_views: dict[str, dict[int, tuple[CodecView, CodecView]]] = field(default_factory=dict)
    _sent_of: dict[int, Sent] = field(default_factory=dict, repr=False)
    #: per cut, what training the network in its mode costs (None: no such training)
    training: tuple[TrainingCost | None, ...] = ()
    epochs: float = 0.0  # the epochs the training ran

    def __post_init__(self) -> None:
        # one task may be given as [outputs, N]; stored as [tasks, outputs, N]
        for split, c in self.correct.items():
            if c.ndim == 2:
                self.correct[split] = c[None]
                self.confidence[split] = {k: v[None] for k, v in self.confidence[split].items()}
        if isinstance(self.classes, int):
            object.__setattr__(self, "classes", (self.classes,) if self.classes else ())

    @property
    def tasks(self) -> tuple[str, ...]:
        if self.trained is not None:
            return self.trained.tasks
        return tuple(f"task{t}" for t in range(self.correct["val"].shape[0]))

    def score(self, cand: Candidate) -> Metrics:
        t = self.table
        k = cand.split
        used = sorted(cand.exits, key=lambda j: (t.exit_position[j], j))
        coded = cand.codec is not None and t.cut_bytes[k] > 0
        views = self.codec_views[cand.codec][k] if coded else None
        split_of = {}
        for i, split in enumerate(("val", "test")):
            if views is None:
                split_of[split] = (
                    _paths(t, k, used),
                    self.correct[split],
                    self.confidence[split],
                    float(t.cut_bytes[k]),
                )
                continue
            view = views[i]
            codec = _codec(cand.codec)
            sent = self._sent(k, codec, view)
            correct, conf = self._coded(split, k, view, codec.lossy)
            split_of[split] = (_paths(t, k, used, sent), correct, conf, view.bytes_p95)
        results = {}
        for split, (paths, correct, conf, p95_bytes) in split_of.items():
            results[split] = _mix(paths, *self._choice(split, used, cand, conf), correct, used)
            results[split]["bytes_p95"] = p95_bytes
        val, test = results["val"], results["test"]
        memory, storage = self.deployed(cand)
        train = self.training_metrics(k)
        return Metrics(
            accuracy=val["accuracy"],
            latency_mean=val["latency_mean"],
            latency_p95=val["latency_p95"],
            bandwidth=val["bandwidth"],
            edge_energy=val["edge_energy"],
            edge_memory=float(memory),
            storage=float(storage),
            edge_s=val["edge_s"],
            transfer_s=val["transfer_s"],
            server_s=val["server_s"],
            compute_energy=val["compute_energy"],
            radio_energy=val["radio_energy"],
            idle_energy=val["idle_energy"],
            radio_up_energy=val["radio_up"],
            radio_down_energy=val["radio_down"],
            radio_wait_energy=val["radio_wait"],
            radio_tail_energy=val["radio_tail"],
            exit_rates=val["rates"],
            test_accuracy=test["accuracy"],
            test_latency_mean=test["latency_mean"],
            test_latency_p95=test["latency_p95"],
            test_bandwidth=test["bandwidth"],
            test_edge_energy=test["edge_energy"],
            test_exit_rates=test["rates"],
            realised_density=self.realised_density,
            tasks=self.tasks,
            task_accuracy=val["task_accuracy"],
            test_task_accuracy=test["task_accuracy"],
            accuracy_min=min(val["task_accuracy"]),
            test_accuracy_min=min(test["task_accuracy"]),
            task_exit_rate=val["task_exit_rate"],
            bandwidth_p95=val["bytes_p95"] if val["bandwidth"] > 0 else 0.0,
            **train,
        )

    def redeployed(self, edge: DeviceProfile, server: DeviceProfile, link: LinkProfile) -> Scorer:
        """The same network on another deployment: the cost table recomputed, the
        confidences, correctness and codec outputs shared (no device or link changes
        them)."""
        table = cost_table(self.graph, edge, server, link, tail=self.tail)
        return replace(
            self,
            table=table,
            _sent_of={},
            training=_training(self.trained, self.graph, edge, server, link),
        )

    def training_metrics(self, k: int) -> dict[str, float]:
        """Training the network in its mode at cut ``k`` over its epochs (zeros when no
        training costs were given; NaN where no such training exists)."""
        if not self.training:
            return {}
        c = self.training[k]
        if c is None:
            nan = float("nan")
            return dict(
                train_time=nan, train_edge_energy=nan, train_bytes=nan, train_edge_memory=nan
            )
        return dict(
            train_time=c.time_s(self.epochs),
            train_edge_energy=c.edge_energy_j(self.epochs),
            train_bytes=c.bytes(self.epochs),
            train_edge_memory=c.edge_memory_bytes,
        )

    def decisions(self, cand: Candidate, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """On ``split``, per sample the path ``cand`` takes and per task and sample the
        path that answers it (positions in the used exits sorted by site, their number
        for the final heads), as :meth:`score` decides them: with a lossy codec, the
        server's exits read their outputs on the decoded tensors."""
        t = self.table
        k = cand.split
        used = sorted(cand.exits, key=lambda j: (t.exit_position[j], j))
        conf = None
        if cand.codec is not None and t.cut_bytes[k] > 0:
            view = self.codec_views[cand.codec][k][("val", "test").index(split)]
            conf = self._coded(split, k, view, _codec(cand.codec).lossy)[1]
        return self._choice(split, used, cand, conf)

    def _sent(self, k: int, codec: Codec, view: CodecView) -> Sent:
        """What crossing cut ``k`` with ``codec`` costs: the mean payload of ``view``'s
        samples on the link and the radio, the encoder on the edge, the decoder on the
        server. Computed once per view (a trial is a look-up)."""
        hit = self._sent_of.get(id(view))
        if hit is not None:
            return hit
        t = self.table
        nbytes = view.bytes_mean
        raw = float(t.cut_bytes[k])
        radio = radio_parts(nbytes, t.link, result_bytes=self.graph.result_bytes, tail=self.tail)
        enc = codec_seconds(
            t.edge,
            dtype=codec.dtype,
            lossless=codec.lossless,
            raw_bytes=raw,
            coded_bytes=nbytes,
            direction="encode",
        )
        dec = codec_seconds(
            t.server,
            dtype=codec.dtype,
            lossless=codec.lossless,
            raw_bytes=raw,
            coded_bytes=nbytes,
            direction="decode",
        )
        sent = Sent(
            nbytes,
            transfer_time(nbytes, t.link, result_bytes=self.graph.result_bytes),
            radio.uplink,
            radio.downlink,
            radio.tail,
            enc,
            enc * t.edge.active_power_w,
            dec,
        )
        self._sent_of[id(view)] = sent  # the views live as long as the scorer
        return sent

    def _coded(
        self, split: str, k: int, view: CodecView, lossy: bool
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Correctness and confidences with the server's outputs computed on the decoded
        tensors (a lossless codec changes none); edge exits keep their own."""
        if not lossy:
            return self.correct[split], self.confidence[split]
        server = np.array([*(self.table.exit_position > k), True])  # exits past k, final
        correct = np.where(server[None, :, None], view.correct, self.correct[split])
        conf = {
            c: np.where(server[None, :, None], view.confidence[c], v)
            for c, v in self.confidence[split].items()
        }
        return correct, conf

    def deployed(self, cand: Candidate) -> tuple[float, float]:
        """(edge memory, storage) of what ``cand`` deploys, bytes.

        Edge memory: stored weights of the edge backbone and its used heads, the largest
        layer expanded from compressed weights, and the peak of live activations (the
        backbone's, or a head's while it runs). Storage: the backbone and the used heads.
        At a threshold every output passes (:meth:`always_exits`) nothing runs after the
        first used exit: only the backbone up to it and its head are deployed.
        """
        t, k = self.table, cand.split
        used = sorted(cand.exits, key=lambda j: (t.exit_position[j], j))
        if used and self.always_exits(cand):  # right-sized: every sample leaves at used[0]
            j = used[0]
            p = int(t.exit_position[j])
            storage = float(t.edge_weight_bytes[p] + t.exit_weight_bytes[j])
            if p <= k:
                memory = (
                    storage
                    + max(t.edge_expand_bytes[p], t.exit_expand_bytes[j])
                    + max(t.edge_peak_activation_bytes[p], t.exit_alone_activation_bytes[j])
                )
                return float(memory), storage
            return float(t.edge_memory_bytes[k]), storage
        on_edge = [j for j in used if t.exit_position[j] <= k]
        memory = (
            t.edge_weight_bytes[k]
            + float(t.exit_weight_bytes[on_edge].sum())
            + max([t.edge_expand_bytes[k], *t.exit_expand_bytes[on_edge]])
            + max([t.edge_peak_activation_bytes[k], *t.exit_activation_bytes[on_edge]])
        )
        storage = self.storage_backbone + float(self.storage_exits[used].sum())
        return float(memory), float(storage)

    def always_exits(self, cand: Candidate) -> bool:
        """Whether every possible output passes ``cand``'s thresholds, so no sample ever
        goes past its first used exit: for every task, threshold 0, or, for the max softmax
        probability (never below 1/classes), a threshold under 1/classes (by a margin for
        rounding)."""
        thresholds = cand.thresholds(len(self.tasks))
        if all(x <= 0.0 for x in thresholds):
            return True
        return (
            cand.criterion == "max_prob"
            and len(self.classes) == len(thresholds)
            and all(
                c > 0 and x <= 1.0 / c - 1e-6 for c, x in zip(self.classes, thresholds, strict=True)
            )
        )

    def _choice(
        self,
        split: str,
        used: list[int],
        cand: Candidate,
        confidences: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, the path it takes (position in ``used``, or len(used) = final), and
        per task and sample, the path whose output answers that task (see the module's
        docstring for the two policies)."""
        tasks, _, n = self.correct[split].shape
        if not used:
            path = np.zeros(n, dtype=np.int64)
            return path, np.broadcast_to(path, (tasks, n))
        source = confidences if confidences is not None else self.confidence[split]
        conf = source[cand.criterion][:, used]  # [T, used, N]
        passed = conf >= np.asarray(cand.thresholds(tasks))[:, None, None]
        if cand.policy == "per_task":
            answer = np.where(passed.any(axis=1), passed.argmax(axis=1), len(used))
            return answer.max(axis=0), answer
        every = passed.all(axis=0)
        path = np.where(every.any(axis=0), every.argmax(axis=0), len(used))
        return path, np.broadcast_to(path, (tasks, n))


@functools.lru_cache(maxsize=64)
def _codec(name: str) -> Codec:
    """The codec of a name (parsed once: a trial is scored in microseconds)."""
    return Codec.parse(name)


@dataclass(frozen=True)
class Sent:
    """What crossing one cut costs per sample: bytes, link time, the radio's parts, and the
    codec's encoder (edge: seconds and joules) and decoder (server: seconds)."""

    nbytes: float
    transfer_s: float
    up_j: float
    down_j: float
    tail_j: float
    encode_s: float = 0.0
    encode_j: float = 0.0
    decode_s: float = 0.0


def _uncoded(t: CostTable, k: int) -> Sent:
    """Float32 as the layer graph counts it (no codec, no header)."""
    return Sent(
        float(t.cut_bytes[k]),
        float(t.transfer_s[k]),
        float(t.radio_up_j[k]),
        float(t.radio_down_j[k]),
        float(t.radio_tail_j[k]),
    )


def _paths(t: CostTable, k: int, used: list[int], sent: Sent | None = None) -> np.ndarray:
    """Per path (used exits in order, then final, as columns): the rows of
    :data:`PATH_ROWS` (latency and its parts, bytes, edge energy and its parts)."""
    s = sent if sent is not None else _uncoded(t, k)
    m = len(used) + 1
    edge = np.zeros(m)
    transfer = np.zeros(m)
    server = np.zeros(m)
    nbytes = np.zeros(m)
    compute_j = np.zeros(m)
    up_j, down_j, tail_j = np.zeros(m), np.zeros(m), np.zeros(m)
    pos = t.exit_position
    on_edge = [j for j in used if pos[j] <= k]
    base_edge = t.edge_s[k] + sum(t.exit_edge_s[j] for j in on_edge)
    base_j = t.edge_compute_j[k] + sum(t.exit_edge_j[j] for j in on_edge)
    head_edge = head_edge_j = head_server = 0.0
    for i, j in enumerate(used):
        if pos[j] <= k:
            head_edge += t.exit_edge_s[j]
            head_edge_j += t.exit_edge_j[j]
            edge[i] = t.edge_s[pos[j]] + head_edge
            compute_j[i] = t.edge_compute_j[pos[j]] + head_edge_j
        else:
            head_server += t.exit_server_s[j]
            edge[i] = base_edge + s.encode_s
            compute_j[i] = base_j + s.encode_j
            transfer[i] = s.transfer_s
            server[i] = s.decode_s + t.server_s[k] - t.server_s[pos[j]] + head_server
            nbytes[i] = s.nbytes
            up_j[i], down_j[i], tail_j[i] = s.up_j, s.down_j, s.tail_j
    server_heads = sum(t.exit_server_s[j] for j in used if pos[j] > k)
    sends = s.nbytes > 0  # nothing crosses the last cut: no coding either
    edge[-1] = base_edge + (s.encode_s if sends else 0.0)
    compute_j[-1] = base_j + (s.encode_j if sends else 0.0)
    transfer[-1] = s.transfer_s
    # no head is on the server at the last cut
    server[-1] = (s.decode_s if sends else 0.0) + t.server_s[k] + server_heads
    nbytes[-1] = s.nbytes
    up_j[-1], down_j[-1], tail_j[-1] = s.up_j, s.down_j, s.tail_j
    sends = transfer > 0
    wait_j = np.where(sends, t.radio_wait_for(server), 0.0)
    radio_j = up_j + down_j + wait_j + tail_j
    idle_j = t.edge.idle_power_w * (transfer + server)
    latency = edge + transfer + server
    return np.stack(
        [
            latency,
            nbytes,
            compute_j + radio_j + idle_j,
            edge,
            transfer,
            server,
            compute_j,
            radio_j,
            up_j,
            down_j,
            wait_j,
            tail_j,
            idle_j,
        ]
    )


PATH_ROWS = (
    "latency_mean",
    "bandwidth",
    "edge_energy",
    "edge_s",
    "transfer_s",
    "server_s",
    "compute_energy",
    "radio_energy",
    "radio_up",
    "radio_down",
    "radio_wait",
    "radio_tail",
    "idle_energy",
)
"""The rows of :func:`_paths`' matrix: per path, what its rate-weighted mean becomes."""


def _mix(
    paths: np.ndarray, choice: np.ndarray, answer: np.ndarray, correct: np.ndarray, used: list[int]
) -> dict:
    """Rate-weighted means of every path row, p95 latency, accuracy (the tasks' mean, and
    per task) and the exit rates.

    ``choice``: per sample, its path; ``answer``: per task and sample, the path whose
    output answers it; ``correct``: [tasks, outputs, N].
    """
    m = len(used) + 1
    n = len(choice)
    rates = np.bincount(choice, minlength=m) / n
    outputs = np.array([*used, correct.shape[1] - 1])
    samples = np.arange(n)
    per_task = tuple(
        np.count_nonzero(correct[t, outputs[answer[t]], samples]) / n
        for t in range(correct.shape[0])
    )
    accuracy = per_task[0] if len(per_task) == 1 else sum(per_task) / len(per_task)
    early = tuple(float(np.count_nonzero(a < len(used)) / n) for a in answer)
    latency = paths[0]
    order = np.argsort(latency, kind="stable")
    cum = np.cumsum(rates[order])
    p95 = float(latency[order][min(int(np.searchsorted(cum, 0.95 - 1e-12)), m - 1)])
    out = dict(zip(PATH_ROWS, (paths @ rates).tolist(), strict=True))
    out.update(
        accuracy=float(accuracy),
        latency_p95=p95,
        rates=tuple(rates.tolist()),
        task_accuracy=tuple(float(a) for a in per_task),
        task_exit_rate=early,
    )
    return out


COST_FIELDS = (
    "latency_mean",
    "latency_p95",
    "bandwidth",
    "edge_energy",
    "edge_memory",
    "storage",
    "edge_s",
    "transfer_s",
    "server_s",
    "compute_energy",
    "radio_energy",
    "idle_energy",
)
"""What :meth:`Batch.costs` gives per candidate: the metrics a deployment changes (and
:data:`TRAIN_FIELDS`, where the scorer has training costs)."""
TRAIN_FIELDS = ("train_time", "train_edge_energy", "train_bytes", "train_edge_memory")


class _Group(NamedTuple):
    """Candidates of one network that share a cut, used exits and codec: one path matrix
    per deployment, a row of path rates each."""

    split: int
    used: tuple[int, ...]
    codec: str | None  # the codec that codes the cut's tensors (None: float32 or nothing sent)
    rows: np.ndarray  # positions in the batch's candidates
    rates: np.ndarray  # [rows, paths]: validation share of samples taking each path
    first: dict[bool, int]  # always-exits flag -> one candidate with it (memory, storage)


@dataclass(frozen=True, eq=False)
class Batch:
    """Many candidates of one network, decided once and costed on any deployment.

    Which path each sample takes and whether its answer is right depend on the network,
    the candidate and (for a lossy codec) the decoded tensors, never on the devices or the
    link; a deployment changes only the cost of each path and the edge memory. So the
    decisions are made here once, and :meth:`costs` prices every candidate on one
    deployment with one small matrix product per (cut, used exits, codec): the same
    numbers as :meth:`Scorer.score` (validation split), at a fraction of its time.
    """

    candidates: tuple[Candidate, ...]
    #: per candidate, what no deployment changes: ``accuracy``, ``accuracy_min``,
    #: ``test_accuracy`` and ``accuracy.TASK`` per task
    fixed: dict[str, np.ndarray]
    groups: tuple[_Group, ...]
    #: per candidate: every sample leaves at its first used exit (:meth:`Scorer.always_exits`)
    always: np.ndarray

    def costs(self, scorer: Scorer) -> dict[str, np.ndarray]:
        """Per candidate, the :data:`COST_FIELDS` on ``scorer``'s deployment (``scorer``:
        this batch's network, e.g. :meth:`Scorer.redeployed`)."""
        n = len(self.candidates)
        out = {f: np.empty(n) for f in COST_FIELDS}
        t = scorer.table
        mixed = [PATH_ROWS.index(f) for f in COST_FIELDS if f in PATH_ROWS]
        names = [PATH_ROWS[i] for i in mixed]
        for g in self.groups:
            sent = None
            if g.codec is not None:
                view = scorer.codec_views[g.codec][g.split][0]
                sent = scorer._sent(g.split, _codec(g.codec), view)
            paths = _paths(t, g.split, list(g.used), sent)
            values = g.rates @ paths[mixed].T  # [rows, metrics]
            for i, name in enumerate(names):
                out[name][g.rows] = values[:, i]
            latency = paths[0]
            order = np.argsort(latency, kind="stable")
            cum = np.cumsum(g.rates[:, order], axis=1)
            at = np.minimum(np.count_nonzero(cum < 0.95 - 1e-12, axis=1), len(latency) - 1)
            out["latency_p95"][g.rows] = latency[order][at]
            for flag, i in g.first.items():
                memory, storage = scorer.deployed(self.candidates[i])
                rows = g.rows[self.always[g.rows] == flag]
                out["edge_memory"][rows] = memory
                out["storage"][rows] = storage
        if scorer.training:  # training the network at each candidate's cut, here
            splits = np.array([c.split for c in self.candidates])
            for name in TRAIN_FIELDS:
                out[name] = np.empty(n)
            for k in np.unique(splits):  # once per cut, not per candidate
                for name, v in scorer.training_metrics(int(k)).items():
                    out[name][splits == k] = v
        return out


def batch(scorer: Scorer, candidates: Sequence[Candidate]) -> Batch:
    """Decide ``candidates`` (all of ``scorer``'s network) once: see :class:`Batch`."""
    t = scorer.table
    cands = tuple(candidates)
    tasks = scorer.tasks
    decided: dict[tuple, tuple[np.ndarray, tuple[float, ...], float]] = {}
    fixed = {
        name: np.empty(len(cands))
        for name in ("accuracy", "accuracy_min", "test_accuracy", *(f"accuracy.{x}" for x in tasks))
    }
    members: dict[tuple, list[int]] = {}
    rates_of: list[np.ndarray] = []
    always = np.zeros(len(cands), dtype=bool)
    for i, cand in enumerate(cands):
        k = cand.split
        used = tuple(sorted(cand.exits, key=lambda j: (t.exit_position[j], j)))
        coded = cand.codec if cand.codec is not None and t.cut_bytes[k] > 0 else None
        lossy = coded is not None and _codec(coded).lossy
        key = (
            used,
            cand.thresholds(len(tasks)),
            cand.criterion,
            cand.policy,
            (k, coded) if lossy else None,
        )
        hit = decided.get(key)
        if hit is None:
            split_acc = []
            for s, split in enumerate(("val", "test")):
                correct, conf = scorer.correct[split], None
                if coded is not None:
                    view = scorer.codec_views[coded][k][s]
                    correct, conf = scorer._coded(split, k, view, lossy)
                choice, answer = scorer._choice(split, list(used), cand, conf)
                mixed = _mix(
                    np.zeros((len(PATH_ROWS), len(used) + 1)), choice, answer, correct, list(used)
                )
                split_acc.append(mixed)
            val, test = split_acc
            hit = (
                np.asarray(val["rates"]),
                val["task_accuracy"],
                test["accuracy"],
                val["accuracy"],
            )
            decided[key] = hit
        rates, task_acc, test_acc, acc = hit
        fixed["accuracy"][i] = acc
        fixed["accuracy_min"][i] = min(task_acc)
        fixed["test_accuracy"][i] = test_acc
        for x, a in zip(tasks, task_acc, strict=True):
            fixed[f"accuracy.{x}"][i] = a
        members.setdefault((k, used, coded), []).append(i)
        rates_of.append(rates)
        always[i] = bool(used) and scorer.always_exits(cand)
    groups = []
    for (k, used, coded), rows in members.items():
        idx = np.array(rows, dtype=np.int64)
        first = {}
        for r in rows:
            first.setdefault(bool(always[r]), r)
        groups.append(_Group(k, used, coded, idx, np.stack([rates_of[r] for r in rows]), first))
    return Batch(cands, fixed, tuple(groups), always)


def make_scorer(
    trained: TrainedNetwork,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    tail: bool = True,
    graph: LayerGraph | None = None,
) -> Scorer:
    """Build the layer graph of the trained network, its cost table and confidences."""
    if graph is None:
        net = trained.network()
        graph = build_graph(net, example_input(trained.spec.data), name=trained.spec.model)
    table = cost_table(graph, edge, server, link, tail=tail)
    conf: dict[str, dict[str, np.ndarray]] = {}
    correct: dict[str, np.ndarray] = {}
    for split, logits, labels in (
        ("val", trained.val_logits, trained.val_labels),
        ("test", trained.test_logits, trained.test_labels),
    ):
        # [tasks, outputs, N]: the classes differ between tasks, a confidence does not
        conf[split] = {c: np.stack([confidence(lg, c).numpy() for lg in logits]) for c in CRITERIA}
        correct[split] = np.stack(
            [(lg.argmax(-1) == y).numpy() for lg, y in zip(logits, labels, strict=True)]
        )
    head_nodes = {n for e in graph.exits for n in e.nodes}
    backbone = sum(n.stored_bytes for name, n in graph.nodes.items() if name not in head_nodes)
    exits = np.array([sum(graph.nodes[n].stored_bytes for n in e.nodes) for e in graph.exits])
    return Scorer(
        trained,
        graph,
        table,
        conf,
        correct,
        float(backbone),
        exits,
        trained.realised_density,
        trained.classes,
        tail,
        training=_training(trained, graph, edge, server, link),
        epochs=float(trained.epochs_run),
    )


def _training(
    trained: TrainedNetwork,
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
) -> tuple[TrainingCost | None, ...]:
    """What training ``trained`` in its mode costs at each cut on this deployment."""
    cfg = trained.spec.train
    return tuple(
        training_costs(
            graph,
            edge,
            server,
            link,
            mode=cfg.mode,
            samples=len(trained.spec.data.train.x),
            batch_size=cfg.batch_size,
            tasks=len(trained.tasks),
            exit=trained.exit_sites.index(cfg.exit) if cfg.exit in trained.exit_sites else None,
        )
    )
