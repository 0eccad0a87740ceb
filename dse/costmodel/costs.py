"""The cost model: what each layer costs on a device, and what each cut costs on a link.

All quantities in SI units: seconds, joules, bytes, FLOP (1 MAC = 2 FLOP, see graph.py).

Layer ``l`` on device ``D``::

    t_l = max(flops_l / (peak_D * eff_D[kind_l]), bytes_l / mem_bw_D) + overhead_D
    bytes_l = weight bytes + input bytes + output bytes
    e_l = P_active_D * t_l      (or flops_l * J/FLOP + bytes_l * J/B if the profile gives them)

Fusion follows the profile's runtime (``DeviceProfile.runtime``): under ``eager`` and
``torch-export`` every node is a kernel of its own (a fused flag is ignored). Under a
fusing runtime (``fused``, the default; ``executorch-xnnpack``; ``tensorrt``), norms and
activations that it fuses into the preceding conv/linear kernel (see
``graph.fuse_nodes``) pay no overhead and no memory traffic: a fused norm is folded into
the weights, a fused activation costs its arithmetic only. Fusion needs both layers on one
device: when a cut separates a conv (edge) from its norm or activation (server), those
run on the server as kernels of their own (``graph.fusion_after_cut``); the edge's conv
costs what it always does, and its cut-off activation costs the edge nothing.

While the edge waits for the link and the server it idles: the wait costs
``P_idle_D * (transfer + server time)`` of edge energy.

Sparse weights. A layer's mask has a pattern (``Node.pattern``: ``N:M``, ``predefined``,
``unstructured``). A device runs a sparse layer with a sparse kernel only when its profile
names one for that pattern and op kind (``[compute.sparse_efficiency."PATTERN"]``): an
``N:M`` kernel takes any layer with at most N nonzeros in every M consecutive weights and
executes N/M of the dense FLOPs; a ``predefined`` kernel takes regular patterns, an
``unstructured`` one any mask, and both execute the nonzero FLOPs. The kernel reads the
stored (values + indices) bytes, scaled to the share it executes. Of the options it has,
the device runs the fastest.

Without a sparse kernel for its pattern, what an *edge* device holds at run time is the
compressed weights (values + indices, the stored bytes), expanded one layer at a time
into a dense buffer just before the layer runs: edge memory is the stored bytes plus the
largest expanded layer, and each such layer pays the expansion, a memory-bound step
``(stored + dense weight bytes) / mem_bw + overhead`` (read the compressed weights, write
the dense ones), before its dense kernel. A *server* expands the weights once when it
loads them and holds them dense (its memory is not a metric). Storage always shrinks.
Reshapes and inference-time dropout are views: they cost nothing. Under ``eager`` and
``torch-export`` masked weights are held dense and run dense: no expansion step.

A profile with a fitted kernel predictor (``DeviceProfile.predictor``, see
``predictor.py``) predicts every unfused node of a kind it has a model for from the
predictor instead of the roofline (reshapes too, when it has a model for them), and each
side of a cut pays the predictor's per-call floor once (``call_s``: the edge when it runs
at least one layer, the server likewise). Without a predictor nothing changes.

Link ``L`` carrying ``b`` bytes up and the ``r``-byte result back::

    t = 8 b / uplink + rtt + 8 r / downlink
    E_radio = (alpha_L * uplink_mbps + beta_L) * 8 b / uplink          (sending)
            + (alpha_down_L * downlink_mbps + beta_L) * 8 r / downlink  (receiving)
            + P_connected_L * (rtt + server time)                       (waiting, connected)
            + tail_energy_L                                             (once per exchange)

(the power model of Huang et al., MobiSys 2012, as used by Neurosurgeon). The edge-only
cut sends nothing and costs nothing on the link.

Coding the tensors at a cut (:func:`codec_seconds`): ``R`` float32 bytes become a body of
``R * CODEC_BODY_FRACTION[dtype]`` bytes (fp16/bf16 1/2, int8 1/4, int4 1/8), optionally
compressed, framed into a ``P``-byte payload (header, body, CRC32). The edge pays
``R / quantize + body / zstd`` (or ``/ zlib``) and the framing, ``P / pack + P / crc32``;
the server ``P / crc32 + P / unpack + body / unzstd + R / dequantize`` (throughputs:
``DeviceProfile.codec_rate``, and :func:`framing_rates`). fp32 without a lossless coder
still packs and checksums its payload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from dse.costmodel.devices import (
    UNFUSED_RUNTIMES,
    DeviceProfile,
    LinkProfile,
    LOSSLESS_REFERENCE_Bps,
    check_runs_float,
    parse_nm,
)
from dse.costmodel.graph import LayerGraph, Node, fusion_after_cut

FREE_KINDS = frozenset({"reshape", "dropout"})


@dataclass(frozen=True)
class Execution:
    """How a device runs one layer: the kernel and the work it does."""

    kernel: str  # "dense"; "expand" (compressed weights expanded, then dense); or the
    # pattern of the sparse kernel used ("2:4", "predefined", "unstructured")
    flops: float  # FLOPs executed
    weight_bytes: float  # weight bytes the kernel reads
    efficiency: float  # fraction of peak on those FLOPs
    expand_bytes: float = 0.0  # bytes the expansion step moves (read stored, write dense)
    buffer_bytes: float = 0.0  # dense weight buffer held while the layer runs


def kernel_share(pattern: str, node: Node) -> float | None:
    """Share of the dense FLOPs a sparse kernel for ``pattern`` executes on ``node``, or
    None when that kernel cannot run the layer's pattern."""
    if node.density >= 1.0 or node.pattern == "dense":
        return None
    if pattern == "unstructured":
        return node.density
    if pattern == "predefined":
        return node.density if node.pattern == "predefined" else None
    kernel, layer = parse_nm(pattern), parse_nm(node.pattern)
    if kernel is None or layer is None:
        return None
    (big_n, big_m), (n, m) = kernel, layer
    if m % big_m == 0:
        worst = n  # the layer's n nonzeros may all fall in one run of M
    elif big_m % m == 0:
        worst = n * (big_m // m)
    else:
        return None
    return big_n / big_m if worst <= big_n else None


def _expands(device: DeviceProfile, expand: bool | None) -> bool:
    if device.runtime in UNFUSED_RUNTIMES:
        return False  # eager PyTorch holds masked weights dense and runs them dense
    return device.kind == "edge" if expand is None else expand


def executions(node: Node, device: DeviceProfile, *, expand: bool | None = None) -> list[Execution]:
    """Every way ``device`` can run ``node``: its sparse kernels that fit, then dense.

    ``expand``: whether the device holds sparse weights compressed and expands them per
    layer (default: an edge device does, a server holds them dense).
    """
    eff = device.eff(node.kind)
    if node.density >= 1.0 or node.pattern == "dense":
        return [Execution("dense", float(node.flops), float(node.weight_bytes), eff)]
    out = []
    for pattern, sparse_eff in device.sparse_kernels(node.kind).items():
        share = kernel_share(pattern, node)
        if share is not None:
            out.append(
                Execution(
                    pattern,
                    float(node.flops) * share,
                    float(node.stored_bytes) * share / node.density,
                    sparse_eff,
                )
            )
    if _expands(device, expand):
        out.append(
            Execution(
                "expand",
                float(node.flops),
                float(node.weight_bytes),
                eff,
                float(node.stored_bytes + node.weight_bytes),
                float(node.weight_bytes),
            )
        )
    else:
        out.append(Execution("dense", float(node.flops), float(node.weight_bytes), eff))
    return out


def is_fused(node: Node, device: DeviceProfile) -> bool:
    """Whether ``node`` runs inside its producer's kernel on ``device`` (its runtime fuses
    and the graph marks it fused)."""
    return node.fused and device.fuses


def call_floor(device: DeviceProfile) -> float:
    """Seconds one program call costs on ``device`` beyond its layers (predictor's floor)."""
    return device.predictor.call_s if device.predictor is not None else 0.0


def _latency(node: Node, device: DeviceProfile, ex: Execution) -> float:
    t = _kernel_latency(node, device, ex)
    if ex.expand_bytes:  # expanding compressed weights first: one more pass over memory
        t += ex.expand_bytes / device.mem_bandwidth_Bps + device.overhead_s
    return t


def _kernel_latency(node: Node, device: DeviceProfile, ex: Execution) -> float:
    """The kernel itself: the profile's predictor where it has a model of the kind, else
    the roofline."""
    fused = is_fused(node, device)
    if device.predictor is not None and not fused and ex.kernel in ("dense", "expand"):
        predicted = device.predictor.time_of(node)
        if predicted is not None:
            return predicted
    if node.kind in FREE_KINDS or (fused and node.kind == "norm"):
        return 0.0
    compute = ex.flops / (device.peak * ex.efficiency) if ex.flops else 0.0
    if fused:
        return compute
    moved = ex.weight_bytes + node.input_bytes + node.output_bytes
    return max(compute, moved / device.mem_bandwidth_Bps) + device.overhead_s


def execution(node: Node, device: DeviceProfile, *, expand: bool | None = None) -> Execution:
    """The fastest way ``device`` runs ``node`` (see :func:`executions`)."""
    return min(executions(node, device, expand=expand), key=lambda e: _latency(node, device, e))


def layer_latency(node: Node, device: DeviceProfile, *, expand: bool | None = None) -> float:
    """Roofline latency of one layer on ``device``, in seconds.

    A fused norm is folded into its producer's weights (free); a fused activation costs
    its arithmetic only, inside the producer's kernel (no overhead, no memory traffic).
    A sparse layer with no sparse kernel here pays its expansion on an edge device.
    """
    return _latency(node, device, execution(node, device, expand=expand))


def layer_energy(
    node: Node, device: DeviceProfile, latency_s: float | None = None, *, expand: bool | None = None
) -> float:
    """Energy of one layer on ``device``, in joules."""
    fused = is_fused(node, device)
    if device.energy_per_flop_j is not None and device.energy_per_byte_j is not None:
        if node.kind in FREE_KINDS or (fused and node.kind == "norm"):
            return 0.0
        ex = execution(node, device, expand=expand)
        moved = 0.0 if fused else ex.weight_bytes + node.input_bytes + node.output_bytes
        moved += ex.expand_bytes
        return ex.flops * device.energy_per_flop_j + moved * device.energy_per_byte_j
    t = layer_latency(node, device, expand=expand) if latency_s is None else latency_s
    return device.active_power_w * t  # 0 for a free or folded layer: its latency is 0


#: Bytes of the quantised body per float32 byte, by codec dtype.
CODEC_BODY_FRACTION: dict[str, float] = {
    "fp32": 1.0,
    "fp16": 0.5,
    "bf16": 0.5,
    "int8": 0.25,
    "int4": 0.125,
}
CODEC_LOSSLESS: tuple[str, ...] = ("zstd", "zlib")
#: Bytes of memory traffic per payload byte to build a payload the way ``dse.nets.codecs``
#: does: the body copied out of its tensor, the header joined in front, the CRC appended:
#: three copies of the payload, each a read and a write.
PACK_TRAFFIC = 6.0
#: ... and to read one back: the body sliced out of the payload and cast into its array,
#: two copies, each a read and a write.
UNPACK_TRAFFIC = 4.0
#: zlib's crc32 on one core of the lossless coders' reference machine (a Core i9-9900K @
#: 5.0 GHz, ``devices.LOSSLESS_REFERENCE_Bps``): 2.1 GB/s measured on one core of an AMD
#: EPYC VM @ 2.6 GHz (M: zlib 1.2.13 through Python's zlib.crc32, 64 KiB to 1 MiB buffers,
#: best of 15 runs), x 5.0 / 2.6 for the clock at the same work per cycle (E): 4 GB/s.
CRC32_REFERENCE_Bps = 4.0e9


def framing_rates(device: DeviceProfile) -> dict[str, float]:
    """Throughputs of framing a payload on ``device``, payload bytes per second: ``pack``
    and ``unpack`` memory-bound (bandwidth / :data:`PACK_TRAFFIC`, / :data:`UNPACK_TRAFFIC`),
    ``crc32`` on one core: :data:`CRC32_REFERENCE_Bps` scaled as the profile scales the
    lossless coders' reference core, by its ``unzstd`` figure over the reference's
    (decompression is level independent; a profile without one gets the default core)."""
    core = device.codec_rate("unzstd") / LOSSLESS_REFERENCE_Bps["unzstd"]
    return {
        "pack": device.mem_bandwidth_Bps / PACK_TRAFFIC,
        "unpack": device.mem_bandwidth_Bps / UNPACK_TRAFFIC,
        "crc32": CRC32_REFERENCE_Bps * core,
    }


def codec_seconds(
    device: DeviceProfile,
    *,
    dtype: str,
    lossless: str | None,
    raw_bytes: float,
    coded_bytes: float,
    direction: str,
) -> float:
    """Seconds ``device`` takes to code (``direction="encode"``, the edge) or decode
    (``"decode"``, the server) one sample's tensors at a cut.

    ``raw_bytes`` is their float32 size, ``coded_bytes`` the payload's length (header,
    body, CRC) as measured. With body = ``raw_bytes * CODEC_BODY_FRACTION[dtype]`` and the
    framing throughputs of :func:`framing_rates`::

        encode = raw_bytes / quantize  + body / zstd     (or zlib; each term only if used)
                 + coded_bytes / pack  + coded_bytes / crc32
        decode = coded_bytes / crc32   + coded_bytes / unpack
                 + body / unzstd       + raw_bytes / dequantize

    fp32 quantises nothing; without ``lossless`` nothing is compressed; every payload is
    packed and checksummed.
    """
    if dtype not in CODEC_BODY_FRACTION:
        raise ValueError(f"unknown codec dtype {dtype!r}; one of {', '.join(CODEC_BODY_FRACTION)}")
    if lossless is not None and lossless not in CODEC_LOSSLESS:
        raise ValueError(
            f"unknown lossless coder {lossless!r}; None or one of {', '.join(CODEC_LOSSLESS)}"
        )
    if direction not in ("encode", "decode"):
        raise ValueError(f"direction must be 'encode' or 'decode', got {direction!r}")
    for label, value in (("raw_bytes", raw_bytes), ("coded_bytes", coded_bytes)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{label} must be finite and >= 0, got {value!r}")
    body = raw_bytes * CODEC_BODY_FRACTION[dtype]
    framing = framing_rates(device)
    seconds = (
        coded_bytes / framing["crc32"]
        + coded_bytes / framing["pack" if direction == "encode" else "unpack"]
    )
    if dtype != "fp32":
        step = "quantize" if direction == "encode" else "dequantize"
        seconds += raw_bytes / device.codec_rate(step)
    if lossless is not None:
        step = lossless if direction == "encode" else f"un{lossless}"
        seconds += body / device.codec_rate(step)
    return seconds


def transfer_time(nbytes: float, link: LinkProfile, *, result_bytes: float = 0.0) -> float:
    """Seconds to send ``nbytes`` up and ``result_bytes`` down; 0 when nothing is sent."""
    if nbytes <= 0:
        return 0.0
    return 8.0 * nbytes / link.uplink_bps + link.rtt_s + 8.0 * result_bytes / link.downlink_bps


@dataclass(frozen=True)
class RadioEnergy:
    """The edge radio's energy for one exchange, by part, J."""

    uplink: float = 0.0  # sending the cut's tensors
    downlink: float = 0.0  # receiving the result
    wait: float = 0.0  # connected, waiting out the RTT and the server
    tail: float = 0.0  # the high-power tail after the exchange

    @property
    def total(self) -> float:
        return self.uplink + self.downlink + self.wait + self.tail


def radio_parts(
    nbytes: float,
    link: LinkProfile,
    *,
    result_bytes: float = 0.0,
    wait_s: float = 0.0,
    tail: bool = True,
) -> RadioEnergy:
    """The radio's energy to send ``nbytes``, wait ``wait_s`` beyond the airtimes (the RTT
    and the server's time) and receive ``result_bytes``; nothing when nothing is sent.

    With ``tail`` the link's tail energy is charged once per exchange: right for isolated
    requests; a stream of back-to-back inferences keeps the radio up and amortises it.
    """
    if nbytes <= 0:
        return RadioEnergy()
    return RadioEnergy(
        uplink=link.uplink_power_w() * 8.0 * nbytes / link.uplink_bps,
        downlink=(
            link.downlink_power_w() * 8.0 * result_bytes / link.downlink_bps
            if result_bytes > 0
            else 0.0
        ),
        wait=link.connected_power_w * wait_s,
        tail=link.tail_energy_j if tail else 0.0,
    )


def radio_energy(
    nbytes: float,
    link: LinkProfile,
    *,
    result_bytes: float = 0.0,
    wait_s: float = 0.0,
    tail: bool = True,
) -> float:
    """Joules the edge radio spends on one exchange (:func:`radio_parts`, summed)."""
    return radio_parts(nbytes, link, result_bytes=result_bytes, wait_s=wait_s, tail=tail).total


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
    server_layer_s: np.ndarray  # per backbone layer, fused as when the whole model is there
    edge_layer_j: np.ndarray
    edge_s: np.ndarray  # per cut: backbone [:k] on the edge
    server_s: np.ndarray  # per cut: backbone [k:] on the server (fusion split at the cut)
    edge_compute_j: np.ndarray
    cut_bytes: np.ndarray
    transfer_s: np.ndarray
    radio_up_j: np.ndarray  # per cut: sending the cut's tensors
    radio_down_j: np.ndarray  # per cut: receiving the result
    radio_tail_j: np.ndarray  # per cut: the radio's tail after the exchange
    edge_weight_bytes: np.ndarray  # stored bytes of backbone [:k]
    edge_expand_bytes: np.ndarray  # largest dense buffer of an expanded layer in [:k]
    edge_peak_activation_bytes: np.ndarray
    exit_position: np.ndarray  # per exit
    exit_edge_s: np.ndarray
    exit_server_s: np.ndarray
    exit_edge_j: np.ndarray
    exit_weight_bytes: np.ndarray
    exit_expand_bytes: np.ndarray  # largest expanded buffer of the head on the edge
    exit_activation_bytes: np.ndarray  # peak live bytes while the head runs on the edge
    exit_alone_activation_bytes: np.ndarray  # the same when nothing runs after the exit

    @property
    def n_cuts(self) -> int:
        return len(self.cut_bytes)

    @property
    def total_s(self) -> np.ndarray:
        """Latency per cut with no exits taken: edge + transfer + server."""
        return self.edge_s + self.transfer_s + self.server_s

    @property
    def sent(self) -> np.ndarray:
        """1.0 for cuts that send something (all but edge-only), else 0.0."""
        return (self.cut_bytes > 0).astype(float)

    def radio_wait_for(self, server_s: np.ndarray | float) -> np.ndarray | float:
        """Connected-radio energy while waiting the RTT and ``server_s`` of server time."""
        return self.link.connected_power_w * (self.link.rtt_s + server_s)

    @property
    def radio_wait_j(self) -> np.ndarray:
        """Per cut: the radio connected while it waits out the RTT and the server."""
        return self.radio_wait_for(self.server_s) * self.sent

    @property
    def radio_j(self) -> np.ndarray:
        """Per cut: the whole exchange's radio energy (up, down, wait, tail)."""
        return self.radio_up_j + self.radio_down_j + self.radio_wait_j + self.radio_tail_j

    @property
    def wait_j(self) -> np.ndarray:
        """Edge energy idling while the link and the server work, per cut."""
        return self.edge.idle_power_w * (self.transfer_s + self.server_s) * self.sent

    @property
    def edge_energy_j(self) -> np.ndarray:
        return self.edge_compute_j + self.radio_j + self.wait_j

    @property
    def edge_memory_bytes(self) -> np.ndarray:
        """Stored weights, the expansion buffer and peak activations of backbone [:k]."""
        return self.edge_weight_bytes + self.edge_expand_bytes + self.edge_peak_activation_bytes


def cost_table(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    tail: bool = True,
) -> CostTable:
    """Cost every cut of ``graph`` for the given devices and link (``tail``: see radio_parts).

    An integer-only edge or server (an int8 accelerator) is refused: see
    :func:`~dse.costmodel.devices.check_runs_float`.
    """
    check_runs_float(edge, "edge")
    check_runs_float(server, "server")
    nodes = graph.backbone_nodes()
    n = len(nodes)
    e_s = np.array([layer_latency(x, edge, expand=True) for x in nodes], dtype=float)
    s_s = np.array([layer_latency(x, server, expand=False) for x in nodes], dtype=float)
    e_j = np.array([layer_energy(x, edge, t, expand=True) for x, t in zip(nodes, e_s, strict=True)])
    zero = np.zeros(1)
    edge_s = np.concatenate([zero, np.cumsum(e_s) + call_floor(edge)])
    server_s = (
        np.concatenate([np.cumsum(s_s[::-1])[::-1] + call_floor(server), zero]) if n else zero
    )
    server_s = server_s + _split_fusion(nodes, server, s_s)
    edge_j = np.concatenate([zero, np.cumsum(e_j)])
    cut_bytes = np.array([c.bytes for c in graph.cuts], dtype=float)
    transfer = np.array(
        [transfer_time(b, link, result_bytes=graph.result_bytes) for b in cut_bytes]
    )
    radio = [radio_parts(b, link, result_bytes=graph.result_bytes, tail=tail) for b in cut_bytes]
    weights = np.concatenate([zero, np.cumsum([x.stored_bytes for x in nodes])])
    buffers = [execution(x, edge, expand=True).buffer_bytes for x in nodes]
    expand = np.concatenate([zero, np.maximum.accumulate(buffers)]) if n else zero

    heads = [graph.exit_nodes(i) for i in range(len(graph.exits))]
    held, alone = exit_activation_bytes(graph)
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
        radio_up_j=np.array([r.uplink for r in radio]),
        radio_down_j=np.array([r.downlink for r in radio]),
        radio_tail_j=np.array([r.tail for r in radio]),
        edge_weight_bytes=weights,
        edge_expand_bytes=expand,
        edge_peak_activation_bytes=peak_activation_bytes(graph),
        exit_position=np.array([x.position for x in graph.exits], dtype=int),
        exit_edge_s=np.array([sum(layer_latency(x, edge, expand=True) for x in h) for h in heads]),
        exit_server_s=np.array(
            [sum(layer_latency(x, server, expand=False) for x in h) for h in heads]
        ),
        exit_edge_j=np.array([sum(layer_energy(x, edge, expand=True) for x in h) for h in heads]),
        exit_weight_bytes=np.array([sum(x.stored_bytes for x in h) for h in heads]),
        exit_expand_bytes=np.array(
            [
                max((execution(x, edge, expand=True).buffer_bytes for x in h), default=0.0)
                for h in heads
            ]
        ),
        exit_activation_bytes=held,
        exit_alone_activation_bytes=alone,
    )


def _split_fusion(nodes: list[Node], server: DeviceProfile, layer_s: np.ndarray) -> np.ndarray:
    """Per cut: server time added because the cut separates fused layers (see
    ``graph.fusion_after_cut``): those after the cut run as kernels of their own."""
    n = len(nodes)
    extra = np.zeros(n + 1)
    index = {x.name: i for i, x in enumerate(nodes)}
    for k in range(1, n):
        for name in fusion_after_cut(nodes, k):
            i = index[name]
            extra[k] += (
                layer_latency(replace(nodes[i], fused=False), server, expand=False) - layer_s[i]
            )
    return extra


def _lifetimes(graph: LayerGraph) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Backbone position of every producer ("input": -1), its size, its last backbone use."""
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
    return pos, size, last


def peak_activation_bytes(graph: LayerGraph) -> np.ndarray:
    """Peak live activation bytes on the edge for each cut.

    Running the backbone in order, a tensor lives from its producer until its last
    backbone consumer; a tensor crossing the cut lives until it is sent. While layer
    ``i`` runs, its inputs and its output are live together. At cut 0 the edge holds the
    input until it is sent.
    """
    pos, size, last = _lifetimes(graph)
    n = len(graph.backbone)
    live = np.zeros(n)
    for p, start in pos.items():
        lo = max(start, 0)
        live[lo : last[p] + 1] += size[p]
    first = np.full(1, float(graph.input_bytes))
    return np.concatenate([first, np.maximum.accumulate(live)]) if n else first


def exit_activation_bytes(graph: LayerGraph) -> tuple[np.ndarray, np.ndarray]:
    """Per exit: peak live bytes while its head runs on the edge (after backbone
    ``[:position]``), and the same when nothing runs after the exit (a right-sized network).

    The head's own tensors live from their producer to their last consumer in the head;
    meanwhile the exit's site stays live and, unless nothing runs after the exit, so does
    every backbone tensor still needed later (or to be sent).
    """
    pos, size, last = _lifetimes(graph)
    held = np.zeros(len(graph.exits))
    alone = np.zeros(len(graph.exits))
    for e in graph.exits:
        p = e.position
        after = {t for t, start in pos.items() if start < p <= last[t]} | {e.site}
        hpos = {name: i for i, name in enumerate(e.nodes)}
        hlast = dict(hpos)
        for name in e.nodes:
            for src in graph.nodes[name].inputs:
                if src in hpos:
                    hlast[src] = max(hlast[src], hpos[name])
        live = np.zeros(len(e.nodes))
        for name, i in hpos.items():
            live[i : hlast[name] + 1] += graph.nodes[name].output_bytes
        head = float(live.max()) if len(live) else 0.0
        held[e.index] = sum(size[t] for t in after) + head
        alone[e.index] = size[e.site] + head
    return held, alone
