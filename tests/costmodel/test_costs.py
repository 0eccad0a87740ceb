"""The cost model: roofline latency, energy, link transfer, per-cut tables and memory, all
against hand-computed figures on a device and a link made in code (tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers.nets import Residual

from dse.costmodel import costs as C
from dse.costmodel.devices import DeviceProfile, LinkProfile
from dse.costmodel.graph import Node, build_graph
from dse.costmodel.profiler import profile_graph, to_json

MakeDevice = Callable[..., DeviceProfile]
MakeLink = Callable[..., LinkProfile]


def node(
    kind: str = "conv",
    *,
    flops: int = 0,
    in_b: int = 0,
    out_b: int = 0,
    weight_b: int = 0,
    stored_b: int | None = None,
    density: float = 1.0,
    pattern: str | None = None,
) -> Node:
    """A layer with the given work; names and shapes do not matter to the cost model."""
    return Node(
        name="n",
        target="n",
        kind=kind,
        inputs=("input",),
        output_shape=(1,),
        output_bytes=out_b,
        input_bytes=in_b,
        params=weight_b // 4,
        nonzero_params=int(weight_b // 4 * density),
        weight_bytes=weight_b,
        stored_bytes=weight_b if stored_b is None else stored_b,
        flops=flops,
        macs=flops // 2,
        density=density,
        pattern=pattern or ("dense" if density >= 1.0 else "predefined"),
    )


# Device of conftest: peak 1e9 FLOP/s, eff conv 0.5 / default 0.25, 1e8 B/s, 1e-4 s, 2 W.

# ------------------------------------------------------------------------- roofline


def test_compute_bound_layer(make_device: MakeDevice) -> None:
    n = node("conv", flops=10**6, in_b=4000, out_b=4000, weight_b=2000)
    # compute 1e6 / (1e9 * 0.5) = 2 ms; memory 10 kB / 100 MB/s = 0.1 ms; + 0.1 ms overhead
    assert C.layer_latency(n, make_device()) == pytest.approx(2e-3 + 1e-4, rel=1e-12)


def test_memory_bound_layer(make_device: MakeDevice) -> None:
    n = node("activation", flops=1000, in_b=4000, out_b=4000)
    # compute 1000 / (1e9 * 0.25) = 4 us; memory 8 kB / 100 MB/s = 80 us; + 100 us
    assert C.layer_latency(n, make_device()) == pytest.approx(8e-5 + 1e-4, rel=1e-12)


def test_unlisted_kind_uses_default_efficiency(make_device: MakeDevice) -> None:
    n = node("linear", flops=10**6)
    assert C.layer_latency(n, make_device()) == pytest.approx(1e6 / 2.5e8 + 1e-4, rel=1e-12)
    assert C.layer_latency(node("other", flops=10**6), make_device()) == pytest.approx(
        1e6 / 2.5e8 + 1e-4, rel=1e-12
    )


def test_overhead_added_even_with_no_work(make_device: MakeDevice) -> None:
    assert C.layer_latency(node("add"), make_device()) == pytest.approx(1e-4)
    assert C.layer_latency(node("add"), make_device(overhead_s=0.0)) == 0.0
    assert C.layer_latency(node("add", out_b=100), make_device(overhead_s=3e-3)) == (
        pytest.approx(100 / 1e8 + 3e-3, rel=1e-12)
    )


@pytest.mark.parametrize("kind", ["reshape", "dropout"])
def test_views_are_free(make_device: MakeDevice, kind: str) -> None:
    n = node(kind, flops=10**6, in_b=10**6, out_b=10**6, weight_b=10**6)
    assert C.layer_latency(n, make_device()) == 0.0
    assert C.layer_energy(n, make_device()) == 0.0
    per_op = make_device(energy_per_flop_j=1e-9, energy_per_byte_j=1e-9)
    assert C.layer_energy(n, per_op) == 0.0


def test_peak_of_the_profiles_dtype(make_device: MakeDevice) -> None:
    dev = make_device(peak_flops={"fp32": 1e9, "fp16": 4e9}, dtype="fp16")
    n = node("conv", flops=10**6)
    assert C.layer_latency(n, dev) == pytest.approx(1e6 / 2e9 + 1e-4, rel=1e-12)


# -------------------------------------------------------------------------- sparsity


def test_sparse_layer_without_a_kernel_is_expanded_on_the_edge(make_device: MakeDevice) -> None:
    # density 1/4: 1e6 dense FLOPs -> 2.5e5; weights 4e5 B dense -> 1.5e5 B stored
    n = node(
        "conv",
        flops=10**6,
        in_b=10**4,
        out_b=10**4,
        weight_b=4 * 10**5,
        stored_b=15 * 10**4,
        density=0.25,
    )
    edge = make_device()
    # The edge holds the compressed weights and expands them before the dense kernel:
    # expansion reads 1.5e5 B and writes 4e5 B (5.5 ms) + 0.1 ms, then the dense kernel
    # max(1e6 / 5e8 = 2 ms, 4.2e5 B / 1e8 = 4.2 ms) + 0.1 ms. (It used to charge the dense
    # kernel alone while edge memory counted only the compressed weights.)
    assert C.layer_latency(n, edge) == pytest.approx(5.5e-3 + 1e-4 + 4.2e-3 + 1e-4, rel=1e-12)
    ex = C.execution(n, edge)
    assert (ex.kernel, ex.expand_bytes, ex.buffer_bytes) == ("expand", 5.5e5, 4e5)
    # energy pays the expansion too
    assert C.layer_energy(n, edge) == pytest.approx(2.0 * (9.7e-3 + 2e-4), rel=1e-12)
    # a server holds the weights dense: no expansion
    server = make_device(kind="server")
    assert C.layer_latency(n, server) == pytest.approx(4.2e-3 + 1e-4, rel=1e-12)
    assert C.execution(n, server).kernel == "dense"
    # a dense layer is never expanded
    full = node("conv", flops=10**6, weight_b=4 * 10**5)
    assert C.execution(full, edge).kernel == "dense"
    assert C.layer_latency(full, edge) == pytest.approx(4e-3 + 1e-4, rel=1e-12)


def test_edge_memory_holds_stored_weights_and_the_largest_expanded_layer(
    make_device: MakeDevice, make_link: MakeLink
) -> None:
    import dse.nets.sparsity as S

    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    S.apply_sparsity(net, S.plan_sparsity(net, 0.5, seed=0, exclude=["4"]))
    g = build_graph(net, torch.zeros(1, 8))
    t = C.cost_table(g, make_device(), make_device(kind="server"), make_link())
    stored = [x.stored_bytes for x in g.backbone_nodes()]
    assert stored[0] < g.backbone_nodes()[0].weight_bytes  # compressed
    # expanded dense buffers: layer 0 is 8*16*4 + 64 = 576 B, layer 2 is 16*8*4 + 32 = 544 B
    assert t.edge_expand_bytes.tolist() == [0, 576, 576, 576, 576, 576]
    np.testing.assert_array_equal(
        t.edge_memory_bytes,
        np.concatenate([[0], np.cumsum(stored)])
        + t.edge_expand_bytes
        + t.edge_peak_activation_bytes,
    )


def test_sparse_kernels_apply_only_to_the_patterns_they_name(make_device: MakeDevice) -> None:
    predefined = node(
        "conv",
        flops=10**6,
        in_b=10**4,
        out_b=10**4,
        weight_b=4 * 10**5,
        stored_b=15 * 10**4,
        density=0.25,
    )
    quarter = node(
        "conv",
        flops=10**6,
        in_b=10**4,
        out_b=10**4,
        weight_b=4 * 10**5,
        stored_b=15 * 10**4,
        density=0.25,
        pattern="1:4",
    )
    half = node("conv", flops=10**8, weight_b=400, stored_b=240, density=0.5, pattern="2:4")
    dense_server = make_device(kind="server")
    two_four = make_device(kind="server", sparse_efficiency={"2:4": {"conv": 0.4}})
    # a 2:4 kernel does not run a predefined (random regular) pattern: dense time
    assert C.layer_latency(predefined, two_four) == C.layer_latency(predefined, dense_server)
    assert C.execution(predefined, two_four).kernel == "dense"
    # it runs a 2:4 layer: half the FLOPs at efficiency 0.4
    assert C.execution(half, two_four).kernel == "2:4"
    assert C.layer_latency(half, two_four) == pytest.approx(5e7 / 4e8 + 1e-4, rel=1e-12)
    # a 1:4 layer fits a 2:4 kernel but still executes half the dense FLOPs (not a
    # quarter): max(5e5 / 4e8 = 1.25 ms, (1.5e5 * 2 + 2e4) B / 1e8 = 3.2 ms) + 0.1 ms
    assert C.execution(quarter, two_four).kernel == "2:4"
    assert C.layer_latency(quarter, two_four) == pytest.approx(3.2e-3 + 1e-4, rel=1e-12)
    # a kernel for predefined patterns runs the nonzero FLOPs of a predefined layer:
    # max(2.5e5 / 4e8 = 0.625 ms, 1.7e5 B / 1e8 = 1.7 ms) + 0.1 ms
    pre = make_device(kind="server", sparse_efficiency={"predefined": {"conv": 0.4}})
    assert C.layer_latency(predefined, pre) == pytest.approx(1.7e-3 + 1e-4, rel=1e-12)
    assert C.execution(quarter, pre).kernel == "dense"
    # kernels for conv only: a sparse linear layer runs dense
    lin = node("linear", flops=10**6, weight_b=4 * 10**5, stored_b=15 * 10**4, density=0.25)
    assert C.layer_latency(lin, pre) == C.layer_latency(lin, dense_server)
    # an unstructured kernel takes any mask
    anyp = make_device(kind="server", sparse_efficiency={"unstructured": {"conv": 0.4}})
    assert C.execution(quarter, anyp).kernel == "unstructured"
    assert C.execution(predefined, anyp).kernel == "unstructured"
    # a dense layer is unaffected by sparse kernels
    full = node("conv", flops=10**6, weight_b=4 * 10**5)
    assert C.layer_latency(full, pre) == C.layer_latency(full, dense_server)
    # the device takes the faster of its kernel and the dense path
    slow = make_device(kind="server", sparse_efficiency={"2:4": {"conv": 0.001}})
    assert C.execution(half, slow).kernel == "dense"


@pytest.mark.parametrize(
    ("kernel", "layer", "share"),
    [
        ("2:4", "2:4", 0.5),
        ("2:4", "1:4", 0.5),
        ("2:4", "1:8", 0.5),
        ("2:4", "2:8", 0.5),
        ("2:4", "3:4", None),
        ("2:4", "3:8", None),
        ("2:4", "1:2", 0.5),
        ("2:4", "2:2", None),
        ("4:8", "2:4", 0.5),
        ("2:4", "predefined", None),
        ("predefined", "2:4", None),
    ],
)
def test_kernel_share(kernel: str, layer: str, share: float | None) -> None:
    n = node("conv", flops=100, weight_b=400, density=0.5, pattern=layer)
    assert C.kernel_share(kernel, n) == share


# ---------------------------------------------------------------------------- energy


def test_energy_is_active_power_times_time(make_device: MakeDevice) -> None:
    n = node("conv", flops=10**6, in_b=4000, out_b=4000, weight_b=2000)
    dev = make_device(active_power_w=3.0)
    assert C.layer_energy(n, dev) == pytest.approx(3.0 * 2.1e-3, rel=1e-12)
    assert C.layer_energy(n, dev, latency_s=0.5) == 1.5  # a given latency is used as is


def test_energy_per_flop_and_byte(make_device: MakeDevice) -> None:
    dev = make_device(energy_per_flop_j=2e-12, energy_per_byte_j=5e-11)
    n = node("conv", flops=10**6, in_b=4000, out_b=4000, weight_b=2000)
    assert C.layer_energy(n, dev) == pytest.approx(1e6 * 2e-12 + 1e4 * 5e-11, rel=1e-12)
    sparse = node(
        "conv", flops=10**6, in_b=4000, out_b=4000, weight_b=2000, stored_b=600, density=0.25
    )
    dev = make_device(
        energy_per_flop_j=2e-12,
        energy_per_byte_j=5e-11,
        sparse_efficiency={"predefined": {"conv": 0.5}},
    )
    assert C.layer_energy(sparse, dev) == pytest.approx(2.5e5 * 2e-12 + 8600 * 5e-11, rel=1e-12)


# ------------------------------------------------------------------------------ link


def test_transfer_time(make_link: MakeLink) -> None:
    link = make_link()
    # 1e5 B at 1 MB/s = 0.1 s, + 20 ms RTT, + 1000 B back at 2 MB/s = 0.5 ms
    assert C.transfer_time(1e5, link, result_bytes=1000) == pytest.approx(0.1205, rel=1e-12)
    assert C.transfer_time(1e5, link) == pytest.approx(0.12, rel=1e-12)
    assert C.transfer_time(0, link, result_bytes=1000) == 0.0  # edge-only: no round trip


def test_radio_energy(make_link: MakeLink) -> None:
    link = make_link()
    # power 0.5 W/(Mbit/s) * 8 Mbit/s + 1 W = 5 W for 0.1 s = 0.5 J, + 3 J tail
    assert link.uplink_power_w() == pytest.approx(5.0)
    assert C.radio_energy(1e5, link) == pytest.approx(3.5, rel=1e-12)
    assert C.radio_energy(1e5, link, tail=False) == pytest.approx(0.5, rel=1e-12)
    assert C.radio_energy(1e5, make_link(tail_energy_j=0.0)) == pytest.approx(0.5, rel=1e-12)
    assert C.radio_energy(0, link) == 0.0


# ------------------------------------------------------------------------ cost table


def chain() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), torch.zeros(
        1, 1, 4, 4
    )


def test_cost_table_prefix_and_suffix_sums(make_device: MakeDevice, make_link: MakeLink) -> None:
    model, x = chain()
    g = build_graph(model, x)
    edge = make_device()
    server = make_device(
        kind="server",
        peak_flops={"fp32": 1e12},
        mem_bandwidth_Bps=1e11,
        overhead_s=1e-6,
        active_power_w=300.0,
    )
    link = make_link()
    t = C.cost_table(g, edge, server, link)
    layers = g.backbone_nodes()
    e = [C.layer_latency(n, edge) for n in layers]
    s = [C.layer_latency(n, server) for n in layers]
    n = len(layers)
    assert n == 4 and t.n_cuts == 5
    # the ReLU is fused into the first linear layer; cut 2 separates them, so there the
    # server runs the ReLU as a kernel of its own (overhead and memory traffic included)
    assert layers[2].fused
    relu_alone = C.layer_latency(replace(layers[2], fused=False), server)
    assert relu_alone > s[2]
    for k in range(n + 1):
        assert t.edge_s[k] == pytest.approx(sum(e[:k]), rel=1e-12, abs=0)
        expected = relu_alone + s[3] if k == 2 else sum(s[k:])
        assert t.server_s[k] == pytest.approx(expected, rel=1e-12, abs=0)
        assert t.edge_compute_j[k] == pytest.approx(2.0 * sum(e[:k]), rel=1e-12, abs=0)
    # the hand figures of the first linear layer on the edge: 16*8 MACs = 256 FLOP at
    # 2.5e8 FLOP/s = 1.024 us; bytes 64 in + 32 out + 544 weights = 640 B at 1e8 B/s = 6.4 us
    assert e[1] == pytest.approx(6.4e-6 + 1e-4, rel=1e-12)
    assert e[0] == 0.0  # flatten
    # bytes: input 64 B, flatten 64, linear 32, relu 32, nothing
    assert t.cut_bytes.tolist() == [64, 64, 32, 32, 0]
    result = 4 * 4
    for k, b in enumerate([64, 64, 32, 32]):
        assert t.transfer_s[k] == pytest.approx(8 * b / 8e6 + 0.02 + 8 * result / 16e6)
        # sending at 5 W, receiving the result at 0 W/(Mbit/s) x 16 + 1 W, the tail
        assert t.radio_j[k] == pytest.approx(5.0 * 8 * b / 8e6 + 1.0 * 8 * result / 16e6 + 3.0)
    assert t.transfer_s[-1] == 0.0 and t.radio_j[-1] == 0.0  # edge-only sends nothing
    assert t.server_s[-1] == 0.0 and t.edge_s[0] == 0.0
    assert t.edge_compute_j[0] == 0.0
    np.testing.assert_allclose(t.total_s, t.edge_s + t.transfer_s + t.server_s)
    # the edge idles while the link and the server work (none of that for edge-only)
    wait = [edge.idle_power_w * (t.transfer_s[k] + t.server_s[k]) for k in range(n)] + [0.0]
    np.testing.assert_allclose(t.wait_j, wait)
    assert t.wait_j[0] > 0
    np.testing.assert_allclose(t.edge_energy_j, t.edge_compute_j + t.radio_j + wait)
    assert t.edge_weight_bytes.tolist() == [0, 0, 544, 544, 544 + 144]
    np.testing.assert_array_equal(
        t.edge_memory_bytes, t.edge_weight_bytes + t.edge_peak_activation_bytes
    )
    assert C.cost_table(g, edge, server, link, tail=False).radio_j[0] == pytest.approx(
        5.0 * 8 * 64 / 8e6 + 1.0 * 8 * result / 16e6
    )


def test_cost_table_exits(make_device: MakeDevice, make_link: MakeLink) -> None:
    class Exit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 2)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(8, 2))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.a(x)
            return self.head(h), self.b(h)

    g = build_graph(Exit(), torch.zeros(1, 4))
    edge, server = make_device(), make_device(kind="server", overhead_s=1e-6)
    t = C.cost_table(g, edge, server, make_link())
    head = g.exit_nodes(0)
    assert [n.name for n in head] == ["head_0", "head_1"]
    assert t.exit_position.tolist() == [1]
    assert t.exit_edge_s[0] == pytest.approx(sum(C.layer_latency(n, edge) for n in head))
    assert t.exit_server_s[0] == pytest.approx(sum(C.layer_latency(n, server) for n in head))
    assert t.exit_edge_j[0] == pytest.approx(2.0 * t.exit_edge_s[0])
    assert t.exit_weight_bytes[0] == (8 * 2 + 2) * 4
    assert t.edge_s[t.exit_position[0]] == t.edge_s[1] == C.layer_latency(g.nodes["a"], edge)
    assert len(t.edge_layer_s) == 2  # heads are not backbone layers


# ------------------------------------------------------------------------ memory


def test_peak_activation_bytes_on_a_chain() -> None:
    model, x = chain()
    g = build_graph(model, x)
    # live while each layer runs (its inputs and its output): 64+64, 64+32, 32+32, 32+16;
    # at cut 0 the edge holds the 64-byte input until it is sent (it counted 0 before)
    assert C.peak_activation_bytes(g).tolist() == [64, 128, 128, 128, 128]
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2), nn.ReLU())
    g = build_graph(net, torch.zeros(1, 4))
    # 16+256, 256+256, 256+8, 8+8
    assert C.peak_activation_bytes(g).tolist() == [16, 272, 512, 512, 512]


def test_peak_activation_bytes_keeps_the_skip_alive() -> None:
    g = build_graph(Residual(), torch.zeros(1, 2, 3, 3))
    x, w = 72, 144  # bytes of 2- and 4-channel 3x3 float32 tensors
    # the input lives until the add (position 3):
    # a: x + a; r: x + a + r; b: x + r + b; add: x + b + add; relu: add + relu
    live = [x + w, x + 2 * w, x + w + x, 3 * x, 2 * x]
    assert C.peak_activation_bytes(g).tolist() == [x, *np.maximum.accumulate(live)]


# ------------------------------------------------------------------------ best cut


def test_best_cut_is_the_argmin(make_device: MakeDevice, make_link: MakeLink) -> None:
    model, x = chain()
    g = build_graph(model, x)
    server = make_device(
        kind="server", peak_flops={"fp32": 1e12}, mem_bandwidth_Bps=1e11, overhead_s=1e-6
    )
    # a slow link: everything on the edge
    p = profile_graph(g, make_device(), server, make_link(rtt_s=1.0))
    assert p.best_cut == int(np.argmin(p.cuts.total_s)) == 4
    # a slow edge and a free link: as early as possible; cut 1 (after the flatten) ties
    # with cut 0 to the last bit and the later cut wins the tie
    slow = make_device(overhead_s=1.0)
    fast = make_link(uplink_bps=1e12, downlink_bps=1e12, rtt_s=0.0)
    p = profile_graph(g, slow, server, fast)
    assert p.cuts.total_s[0] == p.cuts.total_s[1] < p.cuts.total_s[2:].min()
    assert p.best_cut == 1
    # in between: a bottleneck. Input 16 kB; l1 = Linear(4096, 8) -> ReLU -> Linear(8, 4096)
    # -> Linear(4096, 2). On the edge l1 moves 147,520 B (1.48 ms + 0.1 ms) and its fused
    # ReLU adds 8 FLOP (32 ns), after which 32 B go up in 32 us + 1 ms RTT: ~2.6 ms. Cut 1
    # sends the same 32 B but leaves the ReLU to the server as a kernel of its own (1 us
    # overhead there), so cut 2 wins. Server-only sends 16 kB (16.4 ms + 1 ms); edge-only
    # runs l2 and l3 too (~4.0 ms); after l2 the 16 kB go up again.
    net = nn.Sequential(nn.Linear(4096, 8), nn.ReLU(), nn.Linear(8, 4096), nn.Linear(4096, 2))
    g = build_graph(net, torch.zeros(1, 4096))
    p = profile_graph(g, make_device(), server, make_link(rtt_s=1e-3))
    total = p.cuts.total_s.to_numpy()
    assert p.best_cut == int(np.argmin(total)) == 2
    assert total[2] == pytest.approx(
        1.475_20e-3 + 1e-4 + 8 / 2.5e8 + 32 / 1e6 + 1e-3 + 8 * 8 / 16e6 + p.table.server_s[2],
        rel=1e-9,
    )
    assert total[1] > total[2]
    assert total[0] > 17e-3 and 3.9e-3 < total[4] < 4.1e-3


def test_profile_json_is_strict_json_with_exits(
    make_device: MakeDevice, make_link: MakeLink
) -> None:
    class Exit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 2)
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.a(x)
            return self.head(h), self.b(h)

    p = profile_graph(
        build_graph(Exit(), torch.zeros(1, 4)),
        make_device(),
        make_device(kind="server"),
        make_link(),
    )
    data = json.loads(json.dumps(to_json(p), allow_nan=False))
    assert [(r["name"], r["exit"]) for r in data["layers"]] == [
        ("a", None),
        ("head", 0),
        ("b", None),
    ]
    assert len(data["cuts"]) == 3  # the head is not a backbone layer


# ------------------------------------------------------------ sparse kernels by pattern


def test_the_a100_speeds_up_2_4_layers_only() -> None:
    from dse.costmodel.devices import load_device
    from dse.nets.sparsity import apply_sparsity, plan_sparsity

    a100 = load_device("a100")
    kernels = {}
    for method in ("predefined", "nm"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        plan = plan_sparsity(model, 0.5, seed=0, exclude=["2"], method=method)
        apply_sparsity(model, plan)
        g = build_graph(model, torch.zeros(1, 64))
        first = g.backbone_nodes()[0]
        kernels[method] = (first.pattern, C.execution(first, a100).kernel)
        dense = C.layer_latency(replace(first, density=1.0, pattern="dense"), a100)
        if method == "nm":
            # half the FLOPs at the 2:4 efficiency 0.3, the compressed bytes read
            assert C.layer_latency(first, a100) < dense
        else:
            assert C.layer_latency(first, a100) == dense
    assert kernels == {"predefined": ("predefined", "dense"), "nm": ("2:4", "2:4")}


# ------------------------------------------------------------ cuts inside a fused group


def test_a_cut_inside_a_fused_group_runs_the_rest_unfused_on_the_server(
    make_device: MakeDevice, make_link: MakeLink
) -> None:
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
    )
    g = build_graph(net, torch.zeros(1, 2, 6, 6))
    conv, norm, relu, conv2 = g.backbone_nodes()
    assert norm.fused and relu.fused
    edge, server = make_device(), make_device(kind="server", overhead_s=1e-3)
    t = C.cost_table(g, edge, server, make_link())
    lat = C.layer_latency
    # cut 1: the norm and the ReLU run on the server, the norm as a kernel of its own
    # (1 ms overhead, 2 x 576 B of traffic) and the ReLU fused into it
    assert t.server_s[1] == pytest.approx(
        lat(replace(norm, fused=False), server) + lat(relu, server) + lat(conv2, server), rel=1e-12
    )
    # cut 2: the norm was folded into the edge's conv; the ReLU is a kernel on the server
    assert t.server_s[2] == pytest.approx(
        lat(replace(relu, fused=False), server) + lat(conv2, server), rel=1e-12
    )
    assert t.server_s[3] == pytest.approx(lat(conv2, server), rel=1e-12)
    # three different server times where there was one: cuts 1 and 2 each leave one more
    # kernel (1 ms launch) to the server than cut 3
    assert t.server_s[1] > t.server_s[2] > t.server_s[3]
    assert t.server_s[2] - t.server_s[3] > 1e-3
    # the edge: its conv costs what it always does; the cut-off norm and ReLU cost nothing
    assert t.edge_s[1] == t.edge_s[2] - lat(norm, edge) == lat(conv, edge)
    assert lat(norm, edge) == 0.0


def test_vgg_s_server_time_differs_at_cuts_4_5_6() -> None:
    from dse.costmodel.devices import load_device, load_link
    from dse.nets.models import load_model

    g = build_graph(load_model("vgg-s"), torch.zeros(1, 3, 32, 32))
    assert [x.kind for x in g.backbone_nodes()[3:6]] == ["conv", "norm", "activation"]
    t = C.cost_table(g, load_device("raspberry-pi-4"), load_device("a100"), load_link("lte"))
    s4, s5, s6 = t.server_s[4:7]
    # cuts 4 and 5 leave the norm (with the ReLU fused into it), resp. the ReLU, to the
    # A100 as a kernel of its own (5 us launch); they used to cost the same as cut 6
    assert s4 > s5 > s6
    assert s5 - s6 > 5e-6


# ---------------------------------------------------------------- exit heads' memory


def test_exit_heads_activations_count_in_edge_memory() -> None:
    class Exit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 2)
            self.head = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.a(x)
            return self.head(h), self.b(h)

    g = build_graph(Exit(), torch.zeros(1, 4))
    held, alone = C.exit_activation_bytes(g)
    # while the head runs: the site a (32 B, still needed by b) + the head's peak:
    # Linear(8, 64) 256 B out with the ReLU's 256 B out (the site is counted once)
    assert held.tolist() == [32 + 256 + 256]
    assert alone.tolist() == [32 + 256 + 256]
    # the backbone alone never holds that much: input + a, then a + b
    assert C.peak_activation_bytes(g).tolist() == [16, 48, 48]


# ------------------------------------------------------------------------- the radio


def test_the_whole_radio_exchange_by_part(make_link: MakeLink) -> None:
    from dse.costmodel.devices import load_link

    link = make_link(alpha_down_w_per_mbps=0.25, connected_power_w=0.5)
    # send 1e5 B at 5 W for 0.1 s; receive 1000 B at 0.25 x 16 + 1 = 5 W for 0.5 ms;
    # connected 0.5 W through 20 ms RTT + 30 ms of server; 3 J tail
    r = C.radio_parts(1e5, link, result_bytes=1000, wait_s=0.05)
    assert (r.uplink, r.downlink, r.wait, r.tail) == pytest.approx((0.5, 2.5e-3, 0.025, 3.0))
    assert C.radio_energy(1e5, link, result_bytes=1000, wait_s=0.05) == pytest.approx(
        3.5275, rel=1e-12
    )
    assert C.radio_parts(0, link, result_bytes=1000, wait_s=1.0).total == 0.0
    lte = load_link("lte")
    assert lte.alpha_down_w_per_mbps == pytest.approx(0.05197)
    assert lte.connected_power_w == pytest.approx(1.06)
    assert lte.downlink_power_w() == pytest.approx(0.05197 * 13 + 1.28804)
    for name in ("3g", "wifi", "5g", "5g-mmwave"):
        other = load_link(name)
        assert other.alpha_down_w_per_mbps > 0 and other.connected_power_w > 0
        assert {"radio.alpha_down", "radio.connected"} <= set(other.sources)


def test_cost_table_charges_the_result_and_the_wait(
    make_device: MakeDevice, make_link: MakeLink
) -> None:
    model, x = chain()
    g = build_graph(model, x)
    link = make_link(alpha_down_w_per_mbps=0.25, connected_power_w=0.5)
    t = C.cost_table(g, make_device(), make_device(kind="server"), link)
    for k in range(4):
        assert t.radio_down_j[k] == pytest.approx(5.0 * 8 * 16 / 16e6)
        assert t.radio_wait_j[k] == pytest.approx(0.5 * (0.02 + t.server_s[k]))
        assert t.radio_j[k] == pytest.approx(
            t.radio_up_j[k] + t.radio_down_j[k] + t.radio_wait_j[k] + 3.0
        )
    assert t.radio_j[4] == t.radio_wait_j[4] == 0.0
