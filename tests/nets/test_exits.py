"""Early exits: heads attached to a traced backbone, and the confidence criteria."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from dse.costmodel.graph import build_graph
from dse.errors import InputError
from dse.nets.exits import (
    CONV_HIDDEN,
    HEADS,
    SDN_GRID,
    MixPool,
    attach_exits,
    confidence,
    exit_sites,
    make_head,
)
from dse.nets.models import default_input, load_model


def mlp_and_input() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return load_model("mlp").eval(), torch.randn(3, *default_input("mlp"))


def test_all_sites_return_exits_then_final() -> None:
    model, x = mlp_and_input()
    gm = attach_exits(model, x[:1], num_classes=10).eval()
    assert gm.exit_sites == ("layers.0", "layers.1") == exit_sites(model)
    assert gm.classifier_name == "classifier"
    with torch.no_grad():
        out = gm(x)
        assert isinstance(out, tuple) and len(out) == 3
        assert [tuple(o.shape) for o in out] == [(3, 10)] * 3
        torch.testing.assert_close(out[-1], model(x))  # the final answer is unchanged
        # exit 1 is a linear head on the output of layers.1 (the 128-wide ReLU)
        h = model.layers[1](model.layers[0](torch.flatten(x, 1)))
        torch.testing.assert_close(out[1], gm.get_submodule("exit_heads.1")(h))
    assert isinstance(gm.get_submodule("exit_heads.0"), nn.Sequential)
    assert gm.get_submodule("exit_heads.0")[0].in_features == 256
    assert gm.get_submodule("exit_heads.1")[0].in_features == 128


def test_subset_of_sites_in_execution_order() -> None:
    model, x = mlp_and_input()
    gm = attach_exits(model, x[:1], num_classes=4, sites=["layers.1"])
    assert gm.exit_sites == ("layers.1",)
    out = gm(x)
    assert len(out) == 2 and out[0].shape == (3, 4) and out[1].shape == (3, 10)
    # given out of order, the heads still come in execution order
    gm = attach_exits(model, x[:1], num_classes=4, sites=["layers.1", "layers.0"])
    assert gm.exit_sites == ("layers.0", "layers.1")
    assert gm.get_submodule("exit_heads.0")[0].in_features == 256


def test_no_sites_gives_the_bare_trace() -> None:
    model, x = mlp_and_input()
    gm = attach_exits(model, x[:1], num_classes=10, sites=[])
    assert gm.exit_sites == ()
    out = gm(x)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 10)


def test_unknown_site_is_an_input_error() -> None:
    model, x = mlp_and_input()
    with pytest.raises(InputError) as info:
        attach_exits(model, x[:1], num_classes=10, sites=["layers.7"])
    text = str(info.value)
    assert "layers.7" in text and "layers.0" in text and "layers.1" in text


def test_parameters_are_shared_not_copied() -> None:
    model, x = mlp_and_input()
    gm = attach_exits(model, x[:1], num_classes=10)
    theirs = dict(gm.named_parameters())
    for name, p in model.named_parameters():
        assert theirs[name] is p
    heads = {k for k in theirs if k.startswith("exit_heads.")}
    assert len(theirs) == len(dict(model.named_parameters())) + len(heads)
    with torch.no_grad():
        model.classifier.bias.add_(1.0)  # a change to the model shows in the exits model
        torch.testing.assert_close(gm(x)[-1], model(x))


def test_conv_head_is_infopros_shape() -> None:
    model = load_model("vgg-s").eval()
    x = torch.zeros(1, *default_input("vgg-s"))
    gm = attach_exits(model, x, num_classes=10, head="conv").eval()
    head = gm.get_submodule("exit_heads.0")  # on stages.0: 16 channels at 16x16
    assert [type(m) for m in head] == [
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.AdaptiveAvgPool2d,
        nn.Flatten,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert head[0].stride == (2, 2) and head[0].out_channels == 32
    c, w, hidden = 16, 32, CONV_HIDDEN
    assert sum(p.numel() for p in head.parameters()) == (
        c * w * 9 + 2 * w + w * hidden + hidden + hidden * 10 + 10
    )
    out = gm(torch.zeros(2, *default_input("vgg-s")))
    assert [tuple(o.shape) for o in out] == [(2, 10)] * 3
    linear = attach_exits(model, x, num_classes=10).get_submodule("exit_heads.0")
    assert [type(m) for m in linear] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]


def test_sdn_head_mixes_max_and_average_pooling_to_a_4x4_grid() -> None:
    head = make_head((1, 8, 16, 16), 5, "sdn")
    pool, flat, linear = head
    assert isinstance(pool, MixPool) and isinstance(flat, nn.Flatten)
    assert linear.in_features == 8 * SDN_GRID * SDN_GRID  # where things are is kept
    assert pool.alpha.detach().item() == 0.5 and pool.alpha.requires_grad
    x = torch.randn(2, 8, 16, 16)
    blocks = x.reshape(2, 8, 4, 4, 4, 4)  # 4x4 cells of 4x4 pixels
    expect = 0.5 * blocks.amax(dim=(3, 5)) + 0.5 * blocks.mean(dim=(3, 5))
    torch.testing.assert_close(pool(x), expect)
    with torch.no_grad():
        pool.alpha.fill_(1.0)
    torch.testing.assert_close(pool(x), blocks.amax(dim=(3, 5)))
    # a map already at most 4x4 is flattened as it is
    small = make_head((1, 8, 2, 2), 5, "sdn")
    assert [type(m) for m in small] == [nn.Flatten, nn.Linear] and small[1].in_features == 32
    # the mix gets a gradient: it is learned
    fresh = make_head((1, 8, 16, 16), 5, "sdn")
    fresh(x).square().sum().backward()
    assert fresh[0].alpha.grad is not None and fresh[0].alpha.grad.abs().item() > 0


def test_every_head_kind_is_costed_without_unknown_ops(caplog: pytest.LogCaptureFixture) -> None:
    model = load_model("vgg-s").eval()
    x = torch.zeros(1, *default_input("vgg-s"))
    flops = {}
    for kind in HEADS:
        gm = attach_exits(model, x, num_classes=4, head=kind)
        with caplog.at_level("WARNING"):
            graph = build_graph(gm, x, name=kind)
        assert not [r for r in caplog.records if "unknown" in r.getMessage().lower()]
        head = graph.exit_nodes(0)
        assert {n.kind for n in head} != {"other"}
        flops[kind] = sum(n.flops for n in head)
    # GAP + linear < SDN (pooled 4x4 grid) < a conv at half the resolution
    assert flops["linear"] < flops["sdn"] < flops["conv"]


def test_make_head_shapes_and_errors() -> None:
    flat = make_head((1, 32), 5)
    assert flat(torch.zeros(2, 32)).shape == (2, 5)
    for kind in HEADS:
        assert make_head((1, 8, 4, 4), 5, kind)(torch.zeros(2, 8, 4, 4)).shape == (2, 5)
        assert make_head((1, 32), 5, kind)(torch.zeros(2, 32)).shape == (2, 5)
    with pytest.raises(InputError, match="unknown head"):
        make_head((1, 8, 4, 4), 5, "transformer")


# ------------------------------------------------------------------------ confidence


def test_max_prob_by_hand() -> None:
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]])
    # softmax of (ln 3, 0, 0) = (3/5, 1/5, 1/5); of zeros = 1/3 each
    torch.testing.assert_close(confidence(logits), torch.tensor([0.6, 1 / 3]))


def test_entropy_by_hand() -> None:
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0], [50.0, 0.0, 0.0]])
    h = -(0.6 * math.log(0.6) + 2 * 0.2 * math.log(0.2))
    got = confidence(logits, "entropy")
    torch.testing.assert_close(got[0], torch.tensor(1 - h / math.log(3)))
    assert abs(float(got[1])) < 1e-6  # uniform: no confidence
    assert float(got[2]) > 1 - 1e-6  # all mass on one class: full confidence
    assert float(confidence(logits[2:])[0]) > 1 - 1e-6


def test_confidence_keeps_the_batch_shape_and_rejects_unknown_criteria() -> None:
    logits = torch.randn(4, 2, 10, dtype=torch.float16)
    for criterion in ("max_prob", "entropy"):
        c = confidence(logits, criterion)
        assert c.shape == (4, 2) and c.dtype == torch.float32
        assert bool(((c >= -1e-6) & (c <= 1 + 1e-6)).all())
    with pytest.raises(InputError, match="unknown criterion"):
        confidence(logits, "margin")
