"""The layer graph: closed-form FLOPs, MACs, params and bytes on tiny nets; cuts; exits;
agreement with fvcore on every zoo model; bad models."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from helpers.nets import Residual

from dse.costmodel import graph as G
from dse.costmodel import ops
from dse.costmodel.graph import build_graph
from dse.errors import InputError
from dse.nets.exits import attach_exits
from dse.nets.models import default_input, list_models, load_model

# ----------------------------------------------------------------------------- tiny nets


class Branches(nn.Module):
    """Two 1x1 conv branches (3 and 1 channels) concatenated, then a 1x1 conv 4->2."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Conv2d(2, 3, 1)
        self.q = nn.Conv2d(2, 1, 1)
        self.c = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.cat([self.p(x), self.q(x)], 1))


class TwoExits(nn.Module):
    """Backbone a -> r -> b -> final; exit 0 = head0 on r; exit 1 = head1a -> head1b on b."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.r = nn.ReLU()
        self.b = nn.Linear(8, 6)
        self.final = nn.Linear(6, 2)
        self.head0 = nn.Linear(8, 2)
        self.head1a = nn.Linear(6, 3)
        self.head1b = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.r(self.a(x))
        g = self.b(h)
        return self.head0(h), self.head1b(self.head1a(g)), self.final(g)


def only(graph: G.LayerGraph) -> G.Node:
    assert len(graph.nodes) == 1, list(graph.nodes)
    return next(iter(graph.nodes.values()))


# --------------------------------------------------------------- closed-form arithmetic


def test_linear_macs_flops_params_bytes() -> None:
    g = build_graph(nn.Sequential(nn.Linear(4, 3)), torch.zeros(1, 4))
    n = only(g)
    assert n.kind == "linear"
    assert n.macs == 4 * 3  # one MAC per weight per sample; the bias is not counted
    assert n.flops == 2 * 12
    assert n.params == n.nonzero_params == 4 * 3 + 3
    assert n.weight_bytes == n.stored_bytes == 15 * 4
    assert n.output_shape == (1, 3)
    assert (n.input_bytes, n.output_bytes) == (4 * 4, 3 * 4)
    assert (g.params, g.macs, g.flops, g.input_bytes, g.result_bytes) == (15, 12, 24, 16, 12)


def test_linear_batch_scales_arithmetic_not_params() -> None:
    n = only(build_graph(nn.Sequential(nn.Linear(4, 3)), torch.zeros(5, 4)))
    assert (n.macs, n.flops, n.params, n.output_bytes) == (5 * 12, 5 * 24, 15, 5 * 12)


def test_root_leaf_and_functional_parameters_are_counted() -> None:
    """A bare nn.Linear traces to F.linear on get_attr weights: its parameters still count,
    as weights rather than activations."""
    n = only(build_graph(nn.Linear(4, 3), torch.zeros(1, 4)))
    assert (n.kind, n.macs, n.flops) == ("linear", 12, 24)
    assert (n.params, n.weight_bytes, n.stored_bytes) == (15, 60, 60)
    assert n.inputs == ("input",)
    assert n.input_bytes == 16

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, 4))
            self.register_buffer("scale", torch.ones(3))  # a buffer, not a parameter

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self.w) * self.scale

    g = build_graph(Functional(), torch.zeros(1, 4))
    assert g.params == 12
    assert (g.nodes["linear"].params, g.nodes["linear"].macs) == (12, 12)
    assert g.nodes["mul"].params == 0 and g.nodes["mul"].flops == 3
    assert g.nodes["mul"].inputs == ("linear",)


def test_conv_on_2x5x5() -> None:
    # 3 filters of 2x3x3 on 5x5 -> 3x3 outputs; each output is 2*3*3 = 18 MACs.
    n = only(build_graph(nn.Sequential(nn.Conv2d(2, 3, 3)), torch.zeros(1, 2, 5, 5)))
    assert n.kind == "conv"
    assert n.output_shape == (1, 3, 3, 3)
    assert n.macs == 27 * 18 == 486
    assert n.flops == 2 * 486
    assert n.params == 3 * 2 * 3 * 3 + 3 == 57
    assert (n.input_bytes, n.output_bytes) == (50 * 4, 27 * 4)


def test_strided_padded_and_depthwise_conv() -> None:
    # padding 1, stride 2 on 5x5: floor((5 + 2 - 3) / 2) + 1 = 3
    n = only(
        build_graph(nn.Sequential(nn.Conv2d(2, 4, 3, 2, 1, bias=False)), torch.zeros(1, 2, 5, 5))
    )
    assert n.output_shape == (1, 4, 3, 3)
    assert (n.macs, n.params) == (36 * 18, 72)
    dw = only(
        build_graph(
            nn.Sequential(nn.Conv2d(2, 2, 3, groups=2, bias=False)), torch.zeros(1, 2, 5, 5)
        )
    )
    assert dw.kind == "depthwise_conv"
    assert (dw.macs, dw.params) == (18 * 9, 18)  # each output reads one 3x3 window


def test_activations_count_one_flop_per_element() -> None:
    x = torch.zeros(1, 3, 4, 5)
    for net in (nn.Sequential(nn.ReLU()), nn.Sequential(nn.Sigmoid()), nn.Sequential(nn.GELU())):
        n = only(build_graph(net, x))
        assert (n.kind, n.flops, n.macs) == ("activation", 60, 0)

    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    n = only(build_graph(Fn(), x))
    assert (n.kind, n.flops) == ("activation", 60)


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.AdaptiveMaxPool2d(1),
        nn.MaxPool2d(3),
    ],
    ids=["max2", "avg2", "adaptive-avg", "adaptive-max", "max3-floor"],
)
def test_pooling_counts_one_flop_per_input_element(pool: nn.Module) -> None:
    n = only(build_graph(nn.Sequential(pool), torch.zeros(1, 3, 4, 4)))
    assert (n.kind, n.flops, n.macs) == ("pool", 3 * 16, 0)


def test_functional_pooling_and_mean() -> None:
    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.max_pool2d(x, 2).mean((2, 3))

    g = build_graph(Fn(), torch.zeros(1, 3, 4, 4))
    assert [(n.kind, n.flops, n.output_shape) for n in g.nodes.values()] == [
        ("pool", 48, (1, 3, 2, 2)),
        ("pool", 12, (1, 3)),
    ]


def test_batch_norm_at_inference() -> None:
    x = torch.zeros(1, 3, 2, 2)
    n = only(build_graph(nn.Sequential(nn.BatchNorm2d(3)), x))
    assert (n.kind, n.flops, n.params) == ("norm", 2 * 12, 6)  # scale and shift per element
    n = only(build_graph(nn.Sequential(nn.BatchNorm2d(3, affine=False)), x))
    assert (n.flops, n.params) == (12, 0)


def test_reshape_and_dropout_are_free_and_mode_is_restored() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 2))
    net.train()
    g = build_graph(net, torch.zeros(1, 3, 2, 2))
    assert net.training  # build_graph traces in eval mode and puts the mode back
    kinds = [(n.kind, n.flops) for n in g.nodes.values()]
    assert kinds == [("reshape", 0), ("dropout", 0), ("linear", 48)]


@pytest.mark.parametrize("dtype,size", [(torch.float64, 8), (torch.bfloat16, 2)])
def test_bytes_follow_dtype(dtype: torch.dtype, size: int) -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).to(dtype)
    g = build_graph(net, torch.zeros(2, 4, dtype=dtype))
    lin, act = g.nodes.values()
    assert (lin.input_bytes, lin.output_bytes) == (8 * size, 6 * size)
    assert lin.weight_bytes == lin.stored_bytes == 15 * size
    assert act.output_bytes == 6 * size
    assert g.input_bytes == 8 * size and g.result_bytes == 6 * size
    assert [c.bytes for c in g.cuts] == [8 * size, 6 * size, 0]
    assert (lin.macs, lin.flops) == (24, 48)  # arithmetic does not depend on the dtype


def test_shared_module_stored_once_and_flops_split_by_shape() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU()
            self.pool = nn.MaxPool1d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.act(self.fc(self.act(self.fc(x))))  # 4 elements each
            y = self.act(torch.cat([y, y, y], 1))  # 12 elements
            return self.pool(self.pool(y.unsqueeze(1)))  # reads 12, then 6

    g = build_graph(Shared(), torch.zeros(1, 4))
    n = g.nodes
    assert g.params == 20  # the shared Linear counts once
    assert (n["fc"].params, n["fc_1"].params) == (20, 0)
    assert (n["fc"].stored_bytes, n["fc_1"].stored_bytes) == (80, 0)
    assert n["fc"].weight_bytes == n["fc_1"].weight_bytes == 80  # read at both calls
    assert (n["fc"].macs, n["fc_1"].macs) == (16, 16)
    assert [n[k].flops for k in ("act", "act_1", "act_2")] == [4, 4, 12]
    assert [n[k].flops for k in ("pool", "pool_1")] == [12, 6]
    assert g.flops == 2 * 32 + 20 + 18


def test_dead_code_is_dropped() -> None:
    class Dead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.unused(x)
            return self.used(x)

    g = build_graph(Dead(), torch.zeros(1, 4))
    assert list(g.nodes) == ["used"] and g.backbone == ("used",)


# ------------------------------------------------------------------------------ cuts


def test_residual_cuts_carry_the_skip() -> None:
    g = build_graph(Residual(), torch.zeros(1, 2, 3, 3))
    x, wide = 2 * 9 * 4, 4 * 9 * 4  # bytes of 2- and 4-channel 3x3 float32 tensors
    assert g.backbone == ("a", "r", "b", "add", "relu")
    assert [n.output_bytes for n in g.backbone_nodes()] == [wide, wide, x, x, x]
    got = [(c.index, c.after, c.tensors, c.bytes, c.clean) for c in g.cuts]
    assert got == [
        (0, "input", ("input",), x, True),
        (1, "a", ("input", "a"), x + wide, False),
        (2, "r", ("input", "r"), x + wide, False),
        (3, "b", ("input", "b"), 2 * x, False),
        (4, "add", ("add",), x, True),
        (5, "relu", (), 0, True),
    ]
    assert g.clean_cuts() == [0, 4, 5]
    # a: 36 outputs x 2 MACs; b: 18 outputs x 4 MACs; r 36, add 18, relu 18 FLOPs.
    assert [n.flops for n in g.backbone_nodes()] == [144, 36, 144, 18, 18]
    assert (g.macs, g.flops, g.params) == (144, 360, 12 + 10)
    assert g.nodes["add"].inputs == ("b", "input")
    assert g.nodes["add"].input_bytes == 2 * x


def test_branch_and_concat_cuts() -> None:
    g = build_graph(Branches(), torch.zeros(1, 2, 4, 4))
    x, p, q, cat = 2 * 16 * 4, 3 * 16 * 4, 1 * 16 * 4, 4 * 16 * 4
    assert g.backbone == ("p", "q", "cat", "c")
    assert g.nodes["cat"].kind == "concat" and g.nodes["cat"].flops == 0
    got = [(c.tensors, c.bytes, c.clean) for c in g.cuts]
    assert got == [
        (("input",), x, True),
        (("input", "p"), x + p, False),
        (("p", "q"), p + q, False),
        (("cat",), cat, True),
        ((), 0, True),
    ]
    assert [n.macs for n in g.backbone_nodes()] == [16 * 3 * 2, 16 * 1 * 2, 0, 16 * 2 * 4]


def test_chain_cuts_are_all_clean() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    g = build_graph(net, torch.zeros(1, 2, 5, 5))
    assert [c.bytes for c in g.cuts] == [200, 108, 108, 12, 0]
    assert [c.after for c in g.cuts] == ["input", "_0", "_1", "_2", "_3"]
    assert all(c.clean for c in g.cuts)
    assert [len(c.tensors) for c in g.cuts] == [1, 1, 1, 1, 0]


# ----------------------------------------------------------------------------- exits


def test_exit_heads_are_identified() -> None:
    g = build_graph(TwoExits(), torch.zeros(1, 4))
    assert g.backbone == ("a", "r", "b", "final")
    assert [(e.index, e.site, e.position, e.nodes) for e in g.exits] == [
        (0, "r", 2, ("head0",)),
        (1, "b", 3, ("head1a", "head1b")),
    ]
    assert {k: n.exit for k, n in g.nodes.items()} == {
        "a": None,
        "r": None,
        "b": None,
        "final": None,
        "head0": 0,
        "head1a": 1,
        "head1b": 1,
    }
    assert [n.name for n in g.exit_nodes(1)] == ["head1a", "head1b"]
    assert g.result_bytes == 2 * 4  # the final output, not an exit's
    # heads read their site wherever it runs: they never add to a cut's traffic
    assert [c.tensors for c in g.cuts] == [("input",), ("a",), ("r",), ("b",), ()]
    assert len(g.cuts) == len(g.backbone) + 1
    assert g.params == 40 + 54 + 14 + 18 + 21 + 8


def test_attached_exits_on_the_mlp() -> None:
    model = load_model("mlp")
    x = torch.zeros(1, *default_input("mlp"))
    g = build_graph(attach_exits(model, x, num_classes=10), x)
    assert g.backbone == (
        "flatten",
        "layers_0_0",
        "layers_0_1",
        "layers_1_0",
        "layers_1_1",
        "classifier",
    )
    assert [(e.site, e.position, e.nodes) for e in g.exits] == [
        ("layers_0_1", 3, ("exit_heads_0_0",)),
        ("layers_1_1", 5, ("exit_heads_1_0",)),
    ]
    assert g.nodes["exit_heads_0_0"].macs == 256 * 10
    assert g.nodes["exit_heads_1_0"].macs == 128 * 10


# ------------------------------------------------------------------- agreement with fvcore


def _fvcore_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """FLOPs and MACs of ``model`` by fvcore itself, with graph.py's extra op handles
    (written again here) and its MAC operators doubled."""

    def handle(where: str):
        def count(inputs: list, outputs: list) -> int:
            value = outputs[0] if where == "out" else inputs[0]
            return math.prod(value.type().sizes())

        return count

    analysis = FlopCountAnalysis(model.eval(), x)
    for op, where in ops.EXTRA_FVCORE_OPS.items():
        analysis.set_op_handle(op, handle(where))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    macs = sum(c for op, c in by_op.items() if op in {"conv", "linear", "matmul", "addmm"})
    return sum(by_op.values()) + macs, macs


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("exits", [False, True], ids=["plain", "exits"])
def test_node_flops_sum_to_fvcore_total(name: str, exits: bool) -> None:
    x = torch.zeros(1, *default_input(name))
    model = load_model(name)
    if exits:
        model = attach_exits(model, x, num_classes=10)
    g = build_graph(model, x)
    flops, macs = _fvcore_flops(model, x)
    assert g.flops == flops
    assert g.macs == macs
    assert g.params == sum(p.numel() for p in model.parameters())
    assert not g.unsupported


# ----------------------------------------------------------------------- bad models


def test_untraceable_model_names_the_line_and_the_fix() -> None:
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(InputError) as info:
        build_graph(Branchy(), torch.zeros(1, 2))
    err = info.value
    assert (err.where, err.field) == ("Branchy", "forward")
    text = str(err)
    assert "if x.sum() > 0:" in text and "test_graph.py" in text
    assert "control flow" in text
    assert "leaf" in text and "torch.fx.wrap" in text
    assert "\n" not in text


def test_input_the_model_cannot_take_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        build_graph(nn.Sequential(nn.Linear(4, 3)), torch.zeros(1, 5), name="tiny")
    err = info.value
    assert (err.where, err.field) == ("tiny", "input")
    assert "1x5 float32" in str(err) and "(1x5 and 4x3)" in str(err)
    assert "\n" not in str(err)


def test_unknown_ops_cost_as_other_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shuffle = nn.PixelShuffle(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(torch.exp(self.shuffle(x)))

    with caplog.at_level(logging.WARNING, logger="dse.costmodel.graph"):
        g = build_graph(Odd(), torch.zeros(1, 4, 2, 2))
    assert [(n.kind, n.flops, n.output_shape) for n in g.nodes.values()] == [
        ("other", 0, (1, 1, 4, 4))
    ] * 3
    messages = [r.getMessage() for r in caplog.records if r.name == "dse.costmodel.graph"]
    assert sum("PixelShuffle" in m for m in messages) == 1
    assert sum("exp" in m for m in messages) == 1  # warned once, not per call
    assert g.unsupported == {"aten::pixel_shuffle": 1, "aten::exp": 2}
    assert [c.bytes for c in g.cuts] == [64, 64, 64, 0]


# ----------------------------------------------------------------------------- masks


def test_regular_mask_reduces_nonzero_params_and_storage() -> None:
    fc = nn.Linear(4, 4)
    # every output keeps 2 inputs and every input feeds 2 outputs (a predefined pattern)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    with torch.no_grad():
        fc.weight.mul_(mask)
    fc.register_buffer("weight_mask", mask)
    n = only(build_graph(nn.Sequential(fc), torch.zeros(1, 4)))
    assert n.params == 20
    assert n.nonzero_params == 20 - 16 + 8
    assert n.density == 0.5
    assert (n.flops, n.sparse_flops) == (32, 16)
    assert n.weight_bytes == 80  # dense layout read by a dense kernel
    # stored: 8 float32 values + 8 uint8 column indices + the 4 float32 biases
    assert n.stored_bytes == 8 * 4 + 8 * 1 + 4 * 4


def test_irregular_mask_counts_nonzeros_and_does_not_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fc = nn.Linear(4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        fc.weight.mul_(mask)
    fc.register_buffer("weight_mask", mask)
    with caplog.at_level(logging.WARNING, logger="dse.costmodel.graph"):
        n = only(build_graph(nn.Sequential(fc), torch.zeros(1, 4)))
    assert (n.params, n.nonzero_params) == (15, 3 + 4)
    assert n.density == pytest.approx(4 / 12)
    assert n.stored_bytes == 60  # no packed form for this pattern: stored dense
    assert any("counted dense" in r.getMessage() for r in caplog.records)


def test_norms_and_activations_fuse_into_their_producing_kernel() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.bn = nn.BatchNorm2d(2)
            self.act = nn.ReLU()
            self.bn2 = nn.BatchNorm2d(2)  # read twice below: stays a kernel of its own
            self.act2 = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.act(self.bn(self.conv(x)))  # conv -> bn -> relu: one kernel
            z = self.bn2(y)  # a norm after an activation: not a kernel to fold into
            return self.act2(z + z)  # relu after a residual-style add: fused into the add

    g = build_graph(Net(), torch.zeros(1, 2, 4, 4))
    fused = {n.name: n.fused for n in g.nodes.values()}
    assert fused == {
        "conv": False,
        "bn": True,
        "act": True,
        "bn2": False,
        "add": False,
        "act2": True,
    }
