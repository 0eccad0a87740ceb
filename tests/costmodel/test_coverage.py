"""Layer configurations: what a calibration timed, and whether a network is new to it."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from dse.costmodel.coverage import layer_configs, network_kernels, shared_layers
from dse.costmodel.graph import build_graph
from dse.costmodel.measure import KernelSpec
from dse.nets import load_model, sparsity
from dse.nets.zoo import ResNet


def configs(model: nn.Module, x: torch.Tensor, name: str = "m"):  # type: ignore[no-untyped-def]
    model = model.eval()
    graph = build_graph(model, x, name=name)
    return graph, layer_configs(model, x, graph)


def test_a_conv_layer_is_its_kind_shapes_kernel_stride_and_groups() -> None:
    net = nn.Sequential(
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
        nn.Conv2d(16, 16, 5, padding=2, groups=16),
        nn.MaxPool2d(2),
    )
    _, c = configs(net, torch.zeros(1, 8, 12, 12))
    conv, dw, pool = c.values()
    assert (conv.kind, conv.op, conv.inputs, conv.output) == (
        "conv",
        "Conv2d",
        ((1, 8, 12, 12),),
        (1, 16, 6, 6),
    )
    assert (conv.kernel, conv.stride, conv.groups) == ((3, 3), (2, 2), 1)
    assert (dw.kind, dw.kernel, dw.groups) == ("depthwise_conv", (5, 5), 16)
    assert (pool.kind, pool.kernel, pool.stride) == ("pool", (2, 2), (2, 2))
    assert conv.text == "conv Conv2d 8x12x12 -> 16x6x6 k3x3 s2x2 g1"


def test_bias_and_padding_do_not_make_a_layer_new_but_input_size_does() -> None:
    _, a = configs(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1)), torch.zeros(1, 4, 8, 8))
    _, b = configs(
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False)), torch.zeros(1, 4, 8, 8)
    )
    _, c = configs(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1)), torch.zeros(1, 4, 10, 10))
    assert list(a.values()) == list(b.values())
    assert not shared_layers({"a": list(a.values())}, {"c": c})
    assert shared_layers({"a": list(a.values())}, {"b": b})[0].timed_in == "a"


def test_a_sampled_kernel_has_the_configuration_of_the_same_layer_in_a_network() -> None:
    module, x = KernelSpec("conv", 16, 32, 16, 3, 2).build()
    _, k = configs(module, x)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, 2, padding=1))
    _, n = configs(net, torch.zeros(1, 3, 16, 16))
    shared = shared_layers({"kernel conv": list(k.values())}, {"net": n})
    assert [(s.network, s.layer, s.timed_in) for s in shared] == [("net", "_1", "kernel conv")]


def test_a_deeper_resnet_of_the_same_widths_is_not_unseen() -> None:
    """What the old benchmark called unseen: resnet-s's widths, more blocks."""
    _, seen = configs(load_model("resnet-s"), torch.zeros(1, 3, 32, 32), "resnet-s")
    _, deep = configs(
        ResNet(channels=(16, 32, 64), blocks=(4, 4, 3)), torch.zeros(1, 3, 32, 32), "deep"
    )
    shared = shared_layers({"resnet-s": list(seen.values())}, {"resnet-deep": deep})
    assert len(shared) == len(deep)  # every layer of it was timed


def test_sparse_twins_run_the_same_kernels_unless_the_device_has_sparse_ones(
    make_device,  # type: ignore[no-untyped-def]
) -> None:
    model = load_model("vgg-s").eval()
    x = torch.zeros(1, 3, 32, 32)
    twin = load_model("vgg-s").eval()
    plan = sparsity.plan_sparsity(twin, 0.25, seed=0, exclude=("classifier",))
    sparsity.apply_sparsity(twin, plan)
    g, c = configs(model, x)
    gs, cs = configs(twin, x)
    assert c == cs  # the same layers: masked weights change no configuration
    export = make_device(runtime="torch-export")
    assert network_kernels(g, c, export) == network_kernels(gs, cs, export)
    sparse = replace(export, sparse_efficiency={"unstructured": {"conv": 0.5}})
    kinds = {kernel for _, kernel in network_kernels(gs, cs, sparse)}
    assert kinds - {"dense"}  # the twin's convolutions run a sparse kernel there
    assert network_kernels(g, c, sparse) != network_kernels(gs, cs, sparse)
