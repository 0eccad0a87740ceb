"""The training cost model against hand computation on a tiny graph.

The graph: an MLP on a 1x2x2 input (16 bytes): flatten (free) -> linear 4->4 (32 FLOP, 80
weight bytes, 16 bytes in and out) -> ReLU (4 FLOP, fused at inference) -> classifier
linear 4->3 (24 FLOP, 60 weight bytes, 16 in, 12 out); one exit, a linear 4->3 head on
the ReLU's output (position 3). Device (conftest): 1 GFLOP/s at 25% for these kinds,
100 MB/s, 100 us per kernel, 2 W active, 1 W idle. Link: 8 Mbit/s up, 16 down, 20 ms RTT,
radio 0.5 W/(Mbit/s) + 1 W (5 W sending at 8 Mbit/s), 3 J tail. 35 samples in batches
of 10 (4 batches), one task (8 label bytes per sample).
"""

from __future__ import annotations

import math

import pytest
import torch

from dse.costmodel import build_graph, training_cost, training_costs, training_exit
from dse.errors import InputError
from dse.nets import attach_exits, load_model

# per layer at batch 10: max(10 * FLOPs / 2.5e8, (weights + 10 * (in + out)) / 1e8) + 1e-4
LINEAR0 = 4e-6 + 1e-4  # (80 + 10 * 32) / 1e8 = 4e-6 > 10 * 32 / 2.5e8 = 1.28e-6
RELU = 3.2e-6 + 1e-4  # 10 * 32 / 1e8
HEAD = 3.4e-6 + 1e-4  # (60 + 10 * 28) / 1e8
CLASSIFIER = HEAD
OPT = 7 / 1e8  # AdamW moves 7 x the weight bytes per step


@pytest.fixture(scope="module")
def graph():  # noqa: ANN201 - a LayerGraph
    torch.manual_seed(0)
    model = load_model("mlp", in_channels=1, input_size=2, num_classes=3, widths=(4,))
    net = attach_exits(model, torch.zeros(1, 1, 2, 2), num_classes=3)
    g = build_graph(net, torch.zeros(1, 1, 2, 2), name="mlp")
    assert g.backbone == ("flatten", "layers_0_0", "layers_0_1", "classifier")
    assert [c.bytes for c in g.cuts] == [16, 16, 16, 16, 0] and g.exits[0].position == 3
    return g


def cost(graph, make_device, make_link, mode: str, cut: int, **kw):  # noqa: ANN001, ANN201
    return training_cost(
        graph,
        make_device(),
        make_device(kind="server"),
        make_link(),
        mode=mode,
        cut=cut,
        samples=35,
        batch_size=10,
        **kw,
    )


def test_hierarchical_at_the_exit_is_pipelined(graph, make_device, make_link) -> None:  # noqa: ANN001
    c = cost(graph, make_device, make_link, "hierarchical", 3)
    assert c.exit == 0 and c.batches == 4
    fwd = LINEAR0 + RELU + HEAD
    assert c.edge_forward_s == pytest.approx(fwd)
    assert c.edge_backward_s == pytest.approx(2 * fwd)  # backward = 2 x forward
    assert c.edge_optimizer_s == pytest.approx(OPT * (80 + 60))
    E = 3 * fwd + OPT * 140  # 9.416e-4
    S = 3 * CLASSIFIER + OPT * 60  # 3.144e-4
    L = 8 * 10 * (16 + 8) / 8e6  # 2.4e-4: the cut's tensor and the label, up only
    assert (E, S) == (pytest.approx(9.416e-4), pytest.approx(3.144e-4))
    assert c.link_s == pytest.approx(L) and c.server_s == pytest.approx(S)
    assert c.epoch_s == pytest.approx(E + L + 0.02 + S + 3 * max(E, L, S))  # 0.0243208
    assert c.epoch_s == pytest.approx(0.0243208)
    assert (c.up_bytes, c.down_bytes) == (35 * 24, 0)  # every sample once
    busy = 4 * E
    radio = 5.0 * 8 * 840 / 8e6  # sending at 5 W; the test link has no connected power
    assert c.edge_epoch_j == pytest.approx(2 * busy + 1 * (c.epoch_s - busy) + radio)
    assert c.once_j == 3.0  # the tail, once per training
    # weights 140 + gradients and 2 moments 3 x 140 + activations 10 x (16 + 16 + 16 + 16
    # + 12) + the batch being sent 10 x 16
    assert c.edge_memory_bytes == 140 + 420 + 760 + 160
    assert c.optimizer_bytes == 280
    assert c.time_s(3) == pytest.approx(3 * c.epoch_s)
    assert c.edge_energy_j(2) == pytest.approx(3.0 + 2 * c.edge_epoch_j)


def test_split_is_sequential_and_sends_the_gradient_back(graph, make_device, make_link) -> None:  # noqa: ANN001
    c = cost(graph, make_device, make_link, "split", 3)
    E = 3 * (LINEAR0 + RELU + HEAD) + OPT * 140
    S = 3 * CLASSIFIER + OPT * 60
    L = 8 * 240 / 8e6 + 8 * 160 / 16e6  # up 2.4e-4 + the gradient down 8e-5
    assert c.link_s == pytest.approx(L)
    assert c.epoch_s == pytest.approx(4 * (E + L + 0.02 + S))  # 0.086304
    assert c.epoch_s == pytest.approx(0.086304)
    assert (c.up_bytes, c.down_bytes) == (35 * 24, 35 * 16)
    assert c.bytes(2) == 2 * (840 + 560)
    hier = cost(graph, make_device, make_link, "hierarchical", 3)
    assert hier.epoch_s < c.epoch_s


def test_central_sends_the_training_set_once(graph, make_device, make_link) -> None:  # noqa: ANN001
    c = cost(graph, make_device, make_link, "central", 2)
    S = 3 * (LINEAR0 + RELU + HEAD + CLASSIFIER) + OPT * 200  # 1.256e-3
    assert c.server_s == pytest.approx(S) and c.epoch_s == pytest.approx(4 * S)
    assert c.once_bytes == 35 * (16 + 8) and c.up_bytes == 0
    assert c.once_s == pytest.approx(8 * 840 / 8e6 + 0.02)
    assert c.time_s(10) == pytest.approx(c.once_s + 10 * 4 * S)
    assert c.bytes(10) == 840  # sent once, whatever the epochs
    up_air = 8 * 840 / 8e6
    assert c.once_j == pytest.approx(5.0 * up_air + 1.0 * c.once_s + 3.0)


def test_no_exit_before_the_cut_trains_nothing_on_the_edge(graph, make_device, make_link) -> None:  # noqa: ANN001
    c = cost(graph, make_device, make_link, "hierarchical", 2)
    assert c.exit is None
    assert c.edge_forward_s == pytest.approx(LINEAR0)
    assert c.edge_backward_s == 0 and c.edge_optimizer_s == 0 and c.optimizer_bytes == 0
    s = cost(graph, make_device, make_link, "split", 2)
    assert s.edge_backward_s == pytest.approx(2 * LINEAR0)


def test_edge_only_and_server_only_cuts(graph, make_device, make_link) -> None:  # noqa: ANN001
    last = cost(graph, make_device, make_link, "hierarchical", 4)
    E = 3 * (LINEAR0 + RELU + HEAD + CLASSIFIER) + OPT * 200
    assert last.epoch_s == pytest.approx(4 * E) and last.up_bytes == 0
    assert last.edge_epoch_j == pytest.approx(2 * 4 * E) and last.once_j == 0
    first = cost(graph, make_device, make_link, "split", 0)
    assert first.edge_forward_s == 0 and first.down_bytes == 0  # no edge layer to train
    assert first.up_bytes == 35 * (16 + 8)


def test_training_exit_and_the_table(graph, make_device, make_link) -> None:  # noqa: ANN001
    assert [training_exit(graph, k) for k in range(5)] == [None, None, None, 0, 0]
    with pytest.raises(InputError) as err:
        training_exit(graph, 2, 0)
    assert err.value.field == "exit" and "\n" not in str(err.value)
    table = training_costs(
        graph,
        make_device(),
        make_device(),
        make_link(),
        mode="hierarchical",
        samples=35,
        batch_size=10,
        exit=0,
    )
    assert [t is None for t in table] == [True, True, True, False, False]
    with pytest.raises(InputError):
        cost(graph, make_device, make_link, "federated", 3)
    assert math.isfinite(cost(graph, make_device, make_link, "split", 1).epoch_s)
