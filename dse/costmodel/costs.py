"""The cost model: what each layer costs on a device, and what each cut costs on a link.

All quantities in SI units: seconds, joules, bytes, FLOP (1 MAC = 2 FLOP, see graph.py).

Layer ``l`` on device ``D``::

    t_l = max(flops_l / (peak_D * eff_D[kind_l]), bytes_l / mem_bw_D) + overhead_D
    bytes_l = weight bytes + input bytes + output bytes
    e_l = P_active_D * t_l      (or flops_l * J/FLOP + bytes_l * J/B if the profile gives them)

Norms and activations that a runtime fuses into the preceding conv/linear kernel (see
``graph.fuse_nodes``) pay no overhead and no memory traffic: a fused norm is folded into
the weights, a fused activation costs its arithmetic only.

While the edge waits for the link and the server it idles: the wait costs
``P_idle_D * (transfer + server time)`` of edge energy.

With sparsity, ``flops_l`` shrinks to the non-zero weights' share and the weight bytes to
the stored (values + indices) bytes only where the device has a sparse kernel for the
layer's kind (``sparse_efficiency`` in the profile, used instead of ``efficiency``).
Storage always shrinks. Reshapes and inference-time dropout are views: they cost nothing.

Link ``L`` carrying ``b`` bytes up and the ``r``-byte result back::

    t = 8 b / uplink + rtt + 8 r / downlink
    E_radio = (alpha_L * uplink_mbps + beta_L) * 8 b / uplink + tail_energy_L

(the uplink power model of Huang et al., MobiSys 2012, as used by Neurosurgeon).
The edge-only cut sends nothing and costs nothing on the link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.costmodel.devices import DeviceProfile, LinkProfile
from dse.costmodel.graph import LayerGraph, Node

FREE_KINDS = frozenset({"reshape", "dropout"})


def layer_latency(node: Node, device: DeviceProfile) -> float:
    """Roofline latency of one layer on ``device``, in seconds.

    A fused norm is folded into its producer's weights (free); a fused activation costs
    its arithmetic only, inside the producer's kernel (no overhead, no memory traffic).
    """
    if node.kind in FREE_KINDS or (node.fused and node.kind == "norm"):
        return 0.0
    flops, weight_bytes, eff = _effective_work(node, device)
    if node.fused:
        return flops / (device.peak * eff) if flops else 0.0
    moved = weight_bytes + node.input_bytes + node.output_bytes
    compute = flops / (device.peak * eff) if flops else 0.0
    memory = moved / device.mem_bandwidth_Bps
    return max(compute, memory) + device.overhead_s


def layer_energy(node: Node, device: DeviceProfile, latency_s: float | None = None) -> float:
    """Energy of one layer on ``device``, in joules."""
    if node.kind in FREE_KINDS or (node.fused and node.kind == "norm"):
        return 0.0
    if device.energy_per_flop_j is not None and device.energy_per_byte_j is not None:
        flops, weight_bytes, _ = _effective_work(node, device)
        moved = 0.0 if node.fused else weight_bytes + node.input_bytes + node.output_bytes
        return flops * device.energy_per_flop_j + moved * device.energy_per_byte_j
    t = layer_latency(node, device) if latency_s is None else latency_s
    return device.active_power_w * t


def _effective_work(node: Node, device: DeviceProfile) -> tuple[float, float, float]:
    """(FLOPs, weight bytes, efficiency) the device really spends on ``node``."""
    sparse_eff = device.sparse_eff(node.kind) if node.density < 1.0 else None
    if sparse_eff is not None:
        return float(node.sparse_flops), float(node.stored_bytes), sparse_eff
    return float(node.flops), float(node.weight_bytes), device.eff(node.kind)


def transfer_time(nbytes: float, link: LinkProfile, *, result_bytes: float = 0.0) -> float:
    """Seconds to send ``nbytes`` up and ``result_bytes`` down; 0 when nothing is sent."""
    if nbytes <= 0:
        return 0.0
    return 8.0 * nbytes / link.uplink_bps + link.rtt_s + 8.0 * result_bytes / link.downlink_bps


def radio_energy(nbytes: float, link: LinkProfile, *, tail: bool = True) -> float:
    """Joules the edge radio spends sending ``nbytes``.

    With ``tail`` the link's tail energy is charged once per transfer: right for isolated
    requests; a stream of back-to-back inferences keeps the radio up and amortises it.
    """
    if nbytes <= 0:
        return 0.0
    extra = link.tail_energy_j if tail else 0.0
    return link.uplink_power_w() * 8.0 * nbytes / link.uplink_bps + extra


@dataclass(frozen=True, eq=False)
class CostTable:
    """Per-cut vectors for one graph on one (edge, server, link): what scoring needs.

    Arrays indexed by cut ``k`` have ``n + 1`` entries (``n`` backbone layers). Exit ``i``
    adds ``exit_edge_s[i]`` when its head runs on the edge (``k >= exit_position[i]``),
    else ``exit_server_s[i]``.
    """

    graph: LayerGraph
    edge: DeviceProfile
    server: DeviceProfile
    link: LinkProfile
    edge_layer_s: np.ndarray  # per backbone layer
    server_layer_s: np.ndarray
    edge_layer_j: np.ndarray
    edge_s: np.ndarray  # per cut: backbone [:k] on the edge
    server_s: np.ndarray  # per cut: backbone [k:] on the server
    edge_compute_j: np.ndarray
    cut_bytes: np.ndarray
    transfer_s: np.ndarray
    radio_j: np.ndarray
    edge_weight_bytes: np.ndarray  # stored bytes of backbone [:k]
    edge_peak_activation_bytes: np.ndarray
    exit_position: np.ndarray  # per exit
    exit_edge_s: np.ndarray
    exit_server_s: np.ndarray
    exit_edge_j: np.ndarray
    exit_weight_bytes: np.ndarray

    @property
    def n_cuts(self) -> int:
        return len(self.cut_bytes)

    @property
    def total_s(self) -> np.ndarray:
        """Latency per cut with no exits taken: edge + transfer + server."""
        return self.edge_s + self.transfer_s + self.server_s

    @property
    def wait_j(self) -> np.ndarray:
        """Edge energy idling while the link and the server work, per cut."""
        return self.edge.idle_power_w * (self.transfer_s + self.server_s) * (self.cut_bytes > 0)

    @property
    def edge_energy_j(self) -> np.ndarray:
        return self.edge_compute_j + self.radio_j + self.wait_j

    @property
    def edge_memory_bytes(self) -> np.ndarray:
        return self.edge_weight_bytes + self.edge_peak_activation_bytes


def cost_table(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    tail: bool = True,
) -> CostTable:
    """Cost every cut of ``graph`` for the given devices and link (``tail``: see radio_energy)."""
    nodes = graph.backbone_nodes()
    n = len(nodes)
    e_s = np.array([layer_latency(x, edge) for x in nodes], dtype=float)
    s_s = np.array([layer_latency(x, server) for x in nodes], dtype=float)
    e_j = np.array([layer_energy(x, edge, t) for x, t in zip(nodes, e_s, strict=True)])
    zero = np.zeros(1)
    edge_s = np.concatenate([zero, np.cumsum(e_s)])
    server_s = np.concatenate([np.cumsum(s_s[::-1])[::-1], zero]) if n else zero
    edge_j = np.concatenate([zero, np.cumsum(e_j)])
    cut_bytes = np.array([c.bytes for c in graph.cuts], dtype=float)
    transfer = np.array(
        [transfer_time(b, link, result_bytes=graph.result_bytes) for b in cut_bytes]
    )
    radio = np.array([radio_energy(b, link, tail=tail) for b in cut_bytes])
    weights = np.concatenate([zero, np.cumsum([x.stored_bytes for x in nodes])])

    heads = [graph.exit_nodes(i) for i in range(len(graph.exits))]
    return CostTable(
        graph=graph,
        edge=edge,
        server=server,
        link=link,
        edge_layer_s=e_s,
        server_layer_s=s_s,
        edge_layer_j=e_j,
        edge_s=edge_s,
        server_s=server_s,
        edge_compute_j=edge_j,
        cut_bytes=cut_bytes,
        transfer_s=transfer,
        radio_j=radio,
        edge_weight_bytes=weights,
        edge_peak_activation_bytes=peak_activation_bytes(graph),
        exit_position=np.array([x.position for x in graph.exits], dtype=int),
        exit_edge_s=np.array([sum(layer_latency(x, edge) for x in h) for h in heads]),
        exit_server_s=np.array([sum(layer_latency(x, server) for x in h) for h in heads]),
        exit_edge_j=np.array([sum(layer_energy(x, edge) for x in h) for h in heads]),
        exit_weight_bytes=np.array([sum(x.stored_bytes for x in h) for h in heads]),
    )


def peak_activation_bytes(graph: LayerGraph) -> np.ndarray:
    """Peak live activation bytes on the edge for each cut (0 for the server-only cut).

    Running the backbone in order, a tensor lives from its producer until its last
    backbone consumer; a tensor crossing the cut lives until it is sent. While layer
    ``i`` runs, its inputs and its output are live together.
    """
    order = graph.backbone
    pos = {name: i for i, name in enumerate(order)}
    pos["input"] = -1
    size = {name: graph.nodes[name].output_bytes for name in order}
    size["input"] = graph.input_bytes
    last = {p: pos[p] for p in pos}
    for name in order:
        for src in graph.nodes[name].inputs:
            if src in pos:
                last[src] = max(last[src], pos[name])
    n = len(order)
    live = np.zeros(n)
    for p, start in pos.items():
        lo = max(start, 0)
        live[lo : last[p] + 1] += size[p]
    return np.concatenate([np.zeros(1), np.maximum.accumulate(live)]) if n else np.zeros(1)
