"""What it costs to train a network across an edge device, a link and a server.

Three training modes (``[training] mode``):

- ``central``: the edge sends the raw training set (inputs and labels) to the server once,
  then the server trains the whole network alone;
- ``split`` (classic split learning): per batch the edge runs its part forward, sends the
  tensors crossing the cut and the labels, the server runs its part forward and backward
  and sends the gradient of those tensors back, and the edge runs its backward; one step
  after another (sequential);
- ``hierarchical`` (Sepehri et al., 2024): the edge trains the layers before the cut on an
  early exit's loss and sends the cut's tensors and the labels forward only; the server
  trains the rest on them. Nothing flows back, so edge, link and server work at the same
  time on successive batches (a three-stage pipeline).

At the edge-only cut (nothing crosses it) the edge trains the whole network alone; at cut
0 the edge has no layer: it only sends the inputs.

Rules, per batch of ``B`` samples, from the layer graph (built at batch 1; all SI units):

- forward of a layer: the roofline of ``costs.py`` with ``B`` times the FLOPs and the
  activation bytes and the weights read once,
  ``max(B * flops / (peak * eff[kind]), (weight bytes + B * (input + output bytes)) /
  mem_bw) + overhead``. Training holds masked weights dense and runs dense kernels, with
  norms and activations as kernels of their own (batch statistics cannot be folded), and
  no kernel predictor (fitted at inference batch sizes); reshapes and dropout are free.
- backward = 2 x forward: the gradients with respect to the inputs and to the weights
  each cost about one forward pass, so a layer's backward has twice its forward FLOPs
  and twice its memory traffic, hence twice its roofline time.
- the optimizer (AdamW) per step and layer trained: it reads the weights, their gradients
  and its two moments and writes the weights and moments back: ``7 x weight bytes /
  mem_bw`` (memory bound).
- which edge layers train: every edge layer in ``split``; in ``hierarchical`` the backbone
  up to the training exit's site and the heads of every exit on the edge (the other exits'
  heads learn on detached features), while layers between that site and the cut only run
  forward (no loss reaches them). With no exit before the cut the edge only runs forward.
- bytes per sample: up ``cut bytes + label bytes`` (labels: 8 bytes per task, int64);
  down, in ``split`` only, the gradient of the cut's tensors, ``cut bytes`` (none at cut
  0: the edge has nothing to train). An epoch's bytes and radio airtime count each
  training sample once; its stage times cost every batch at ``B`` (the last batch, maybe
  smaller, is costed whole).
- schedules per epoch of ``n = ceil(N / B)`` batches, every batch costed at ``B``, with
  ``E`` = edge forward + backward + optimizer, ``L`` = link airtime (up and down), ``S`` =
  server forward + backward + optimizer, ``rtt`` the link's round trip:
  ``split``: ``n * (E + L + rtt + S)``; ``hierarchical``: ``(E + L + rtt + S) + (n - 1) *
  max(E, L, S)`` (the slowest stage sets the pace; the first batch fills the pipeline);
  ``central``: ``n * S`` per epoch after a one-off upload of ``N * (input + label bytes)``
  (``8 b / uplink + rtt``); edge-only: ``n * E``.
- edge energy: active power x its busy time + idle power x the rest of the epoch; the
  radio draws its sending power over the uplink airtime, its receiving power over the
  downlink airtime and its connected power for the rest of the epoch (the session stays
  connected), and its tail once per training. Central: the upload's airtime, the RTT
  connected, idle power meanwhile, and the tail.
- edge memory: the edge part's weights (dense) + gradients and the two AdamW moments of
  the layers it trains (3 x their weight bytes) + the activations kept for the backward,
  ``B * (input bytes + outputs of the trained layers)`` + the batch being sent,
  ``B * cut bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dse.costmodel.costs import FREE_KINDS, transfer_time
from dse.costmodel.devices import DeviceProfile, LinkProfile
from dse.costmodel.graph import LayerGraph, Node, server_nodes
from dse.errors import InputError

MODES = ("central", "split", "hierarchical")
TRAINING_MODES = MODES
BACKWARD_FACTOR = 2.0
"""Backward over forward, in FLOPs, memory traffic and so time (see the module docstring)."""
OPTIMIZER_TRAFFIC = 7.0
"""AdamW's step moves 7 x the weight bytes: reads weights, gradients, 2 moments; writes 3."""
OPTIMIZER_STATE = 2.0
"""AdamW holds 2 moments per weight (exp_avg and exp_avg_sq), each the weight's size."""
LABEL_BYTES = 8
"""Bytes of one label of one task (int64), sent with each sample."""


@dataclass(frozen=True)
class TrainingCost:
    """One training mode at one cut: per-batch stage times and per-epoch totals (SI)."""

    mode: str
    cut: int
    exit: int | None  # index of the exit that trains the edge part (hierarchical), or None
    batches: int  # per epoch
    batch_size: int
    edge_forward_s: float  # per batch
    edge_backward_s: float  # per batch
    edge_optimizer_s: float  # per batch
    link_s: float  # per batch: uplink + downlink airtime (no RTT)
    server_s: float  # per batch: server forward + backward + optimizer
    epoch_s: float  # one epoch under the mode's schedule
    up_bytes: float  # per epoch (every training sample once)
    down_bytes: float  # per epoch
    edge_epoch_j: float  # edge energy per epoch (no tail)
    edge_memory_bytes: float  # while training
    optimizer_bytes: float  # AdamW's moments on the edge
    once_s: float = 0.0  # central: the one-off upload of the training set
    once_bytes: float = 0.0
    once_j: float = 0.0  # the radio's tail (once per training) and central's upload

    @property
    def edge_s(self) -> float:
        """Edge busy seconds per batch: forward + backward + optimizer."""
        return self.edge_forward_s + self.edge_backward_s + self.edge_optimizer_s

    def time_s(self, epochs: float) -> float:
        """Seconds to train ``epochs`` epochs (with central's upload)."""
        return self.once_s + epochs * self.epoch_s

    def bytes(self, epochs: float) -> float:
        """Bytes over the link (both ways) for ``epochs`` epochs."""
        return self.once_bytes + epochs * (self.up_bytes + self.down_bytes)

    def edge_energy_j(self, epochs: float) -> float:
        """Edge joules for ``epochs`` epochs."""
        return self.once_j + epochs * self.edge_epoch_j


def forward_seconds(node: Node, device: DeviceProfile, batch: int) -> float:
    """Training forward of one layer at ``batch`` samples on ``device``, s (dense, unfused)."""
    if node.kind in FREE_KINDS:
        return 0.0
    compute = batch * node.flops / (device.peak * device.eff(node.kind)) if node.flops else 0.0
    moved = node.weight_bytes + batch * (node.input_bytes + node.output_bytes)
    return max(compute, moved / device.mem_bandwidth_Bps) + device.overhead_s


def _forward(nodes: Iterable[Node], device: DeviceProfile, batch: int) -> float:
    return sum(forward_seconds(n, device, batch) for n in nodes)


def _optimizer(nodes: Iterable[Node], device: DeviceProfile) -> float:
    return OPTIMIZER_TRAFFIC * sum(n.weight_bytes for n in nodes) / device.mem_bandwidth_Bps


def training_exit(graph: LayerGraph, cut: int, named: int | None = None) -> int | None:
    """The exit that trains the edge part at ``cut``: ``named`` (an index into
    ``graph.exits``) if given, else the one nearest before the cut (None if none is).

    A named exit whose head does not run on the edge at ``cut`` is an InputError.
    """
    if named is not None:
        e = graph.exits[named]
        if e.position > cut:
            raise InputError(
                "training",
                "exit",
                f"exit {named} (after {e.site}) is past cut {cut}: its head runs on the server",
                "name an exit before the cut, or leave exit out (the nearest before the cut)",
            )
        return named
    before = [e for e in graph.exits if e.position <= cut]
    return max(before, key=lambda e: (e.position, e.index)).index if before else None


def training_cost(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    mode: str,
    cut: int,
    samples: int,
    batch_size: int,
    tasks: int = 1,
    exit: int | None = None,
) -> TrainingCost:
    """Cost of one epoch of training in ``mode`` at ``cut`` (see the module docstring).

    ``samples``: training samples per epoch; ``tasks``: labels per sample; ``exit``: the
    exit training the edge part in ``hierarchical`` (None: the nearest before the cut).
    """
    if mode not in MODES:
        raise InputError("training", "mode", f"unknown mode {mode!r}", f"use one of {MODES}")
    if not 0 <= cut < len(graph.cuts):
        raise InputError("training", "cut", f"cut {cut} is outside 0..{len(graph.cuts) - 1}")
    if samples < 1 or batch_size < 1:
        raise ValueError("samples and batch_size must be >= 1")
    epoch = _Epoch(samples, int(batch_size), LABEL_BYTES * tasks)
    if mode == "central":
        return _central(graph, edge, server, link, cut, epoch)
    parts = _parts(graph, mode, cut, exit)
    edge_s = _EdgeWork.of(parts, graph, edge, epoch)
    if parts.cut_bytes <= 0:  # edge-only: no link, no server
        seconds = epoch.batches * edge_s.total
        return TrainingCost(
            mode,
            cut,
            parts.exit,
            epoch.batches,
            epoch.batch,
            edge_s.forward,
            edge_s.backward,
            edge_s.optimizer,
            link_s=0.0,
            server_s=0.0,
            epoch_s=seconds,
            up_bytes=0.0,
            down_bytes=0.0,
            edge_epoch_j=edge.active_power_w * seconds,
            edge_memory_bytes=edge_s.memory,
            optimizer_bytes=OPTIMIZER_STATE * edge_s.trained_bytes,
        )
    return _two_parts(mode, cut, parts, edge_s, server, edge, link, epoch)


@dataclass(frozen=True)
class _Epoch:
    """An epoch's sizes: training samples, the batch size, label bytes per sample."""

    samples: int
    batch: int
    label_bytes: int

    @property
    def batches(self) -> int:
        """Batches per epoch, the last maybe smaller (costed whole)."""
        return math.ceil(self.samples / self.batch)


def _central(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    cut: int,
    epoch: _Epoch,
) -> TrainingCost:
    """Central training: the raw training set uploaded once, the server trains alone."""
    every = list(graph.nodes.values())
    B, n = epoch.batch, epoch.batches
    s = _forward(every, server, B) * (1 + BACKWARD_FACTOR) + _optimizer(every, server)
    once_bytes = epoch.samples * (graph.input_bytes + epoch.label_bytes)
    up_air = 8.0 * once_bytes / link.uplink_bps
    once_s = transfer_time(once_bytes, link)
    once_j = (
        link.uplink_power_w() * up_air
        + link.connected_power_w * link.rtt_s
        + edge.idle_power_w * once_s
        + link.tail_energy_j
    )
    return TrainingCost(
        "central",
        cut,
        None,
        n,
        B,
        edge_forward_s=0.0,
        edge_backward_s=0.0,
        edge_optimizer_s=0.0,
        link_s=0.0,
        server_s=s,
        epoch_s=n * s,
        up_bytes=0.0,
        down_bytes=0.0,
        edge_epoch_j=0.0,
        edge_memory_bytes=0.0,
        optimizer_bytes=0.0,
        once_s=once_s,
        once_bytes=once_bytes,
        once_j=once_j,
    )


@dataclass(frozen=True)
class _Parts:
    """The layers of each side at a cut, those the edge trains, and the bytes crossing."""

    edge: list[Node]
    server: list[Node]
    trained: list[Node]
    cut_bytes: float
    exit: int | None  # the exit whose loss trains the edge part (hierarchical)


def _parts(graph: LayerGraph, mode: str, cut: int, exit: int | None) -> _Parts:
    """Which layers run where at ``cut``, and which edge layers train in ``mode``."""
    every = list(graph.nodes.values())
    on_server = server_nodes(graph, cut)
    edge_part = [x for x in every if x.name not in on_server]
    server_part = [x for x in every if x.name in on_server]
    cut_bytes = float(graph.cuts[cut].bytes)
    used_exit = None
    if cut_bytes <= 0 or mode == "split":
        trained = edge_part  # edge-only: the whole network on the edge; split: all of it
    else:
        used_exit = training_exit(graph, cut, exit)
        heads = {name for e in graph.exits if e.position <= cut for name in e.nodes}
        upto = (
            set(graph.backbone[: graph.exits[used_exit].position])
            if used_exit is not None
            else set()
        )
        trained = [x for x in edge_part if x.name in heads or x.name in upto]
    return _Parts(edge_part, server_part, trained, cut_bytes, used_exit)


@dataclass(frozen=True)
class _EdgeWork:
    """The edge's seconds per batch (forward, backward, optimizer), the weight bytes it
    trains and the memory it holds while training."""

    forward: float
    backward: float
    optimizer: float
    trained_bytes: float
    memory: float

    @property
    def total(self) -> float:
        return self.forward + self.backward + self.optimizer

    @classmethod
    def of(cls, parts: _Parts, graph: LayerGraph, edge: DeviceProfile, epoch: _Epoch) -> _EdgeWork:
        B = epoch.batch
        trained_w = sum(x.weight_bytes for x in parts.trained)
        memory = (
            sum(x.weight_bytes for x in parts.edge)
            + (1 + OPTIMIZER_STATE) * trained_w
            + B * (graph.input_bytes + sum(x.output_bytes for x in parts.trained))
            + B * parts.cut_bytes
            if parts.edge
            else B * (graph.input_bytes + epoch.label_bytes)
        )
        return cls(
            _forward(parts.edge, edge, B),
            BACKWARD_FACTOR * _forward(parts.trained, edge, B),
            _optimizer(parts.trained, edge),
            trained_w,
            float(memory),
        )


def _two_parts(
    mode: str,
    cut: int,
    parts: _Parts,
    edge_s: _EdgeWork,
    server: DeviceProfile,
    edge: DeviceProfile,
    link: LinkProfile,
    epoch: _Epoch,
) -> TrainingCost:
    """Split or hierarchical training with something crossing the cut: the three stages
    scheduled one after another (split) or as a pipeline (hierarchical)."""
    B, n, rtt = epoch.batch, epoch.batches, link.rtt_s
    E = edge_s.total
    S = _forward(parts.server, server, B) * (1 + BACKWARD_FACTOR) + _optimizer(parts.server, server)
    up = B * (parts.cut_bytes + epoch.label_bytes)
    down = B * parts.cut_bytes if mode == "split" and parts.trained else 0.0
    L = 8.0 * up / link.uplink_bps + 8.0 * down / link.downlink_bps
    if mode == "split":
        seconds = n * (E + L + rtt + S)
    else:
        seconds = (E + L + rtt + S) + (n - 1) * max(E, L, S)
    busy = n * E
    # exact: every sample once
    up_epoch, down_epoch = up / B * epoch.samples, down / B * epoch.samples
    up_air, down_air = 8.0 * up_epoch / link.uplink_bps, 8.0 * down_epoch / link.downlink_bps
    radio = (
        link.uplink_power_w() * up_air
        + link.downlink_power_w() * down_air
        + link.connected_power_w * max(0.0, seconds - up_air - down_air)
    )
    energy = edge.active_power_w * busy + edge.idle_power_w * (seconds - busy) + radio
    return TrainingCost(
        mode,
        cut,
        parts.exit,
        n,
        B,
        edge_s.forward,
        edge_s.backward,
        edge_s.optimizer,
        link_s=L,
        server_s=S,
        epoch_s=seconds,
        up_bytes=up_epoch,
        down_bytes=down_epoch,
        edge_epoch_j=energy,
        edge_memory_bytes=edge_s.memory,
        optimizer_bytes=OPTIMIZER_STATE * edge_s.trained_bytes,
        once_j=link.tail_energy_j,
    )


def training_costs(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    mode: str,
    samples: int,
    batch_size: int,
    tasks: int = 1,
    exit: int | None = None,
) -> list[TrainingCost | None]:
    """:func:`training_cost` at every cut of ``graph``; None where a named ``exit`` is
    past the cut (no such training exists)."""
    out: list[TrainingCost | None] = []
    for k in range(len(graph.cuts)):
        try:
            out.append(
                training_cost(
                    graph,
                    edge,
                    server,
                    link,
                    mode=mode,
                    cut=k,
                    samples=samples,
                    batch_size=batch_size,
                    tasks=tasks,
                    exit=exit,
                )
            )
        except InputError:
            out.append(None)
    return out
