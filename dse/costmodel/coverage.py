"""Which layer configurations a calibration timed, and whether a network is new to it.

A latency predictor judged on networks whose layers it has already timed says little
about the networks a user brings. A *layer configuration* is what decides a kernel's
time: the op kind and op, its input and output shapes (channels and input size), and its
kernel size, stride and groups (``LayerConfig``). A calibration covers the configurations
of every kernel it sampled and every backbone layer of every network it timed; a network
is *unseen* when none of its configurations is among them (:func:`shared_layers`).

A sparse twin of a network (the same layers with masked weights) runs the same kernels
unless the device has sparse kernels for them: :func:`network_kernels` names the kernels
a device runs, so twins whose kernels are equal count once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn

from dse.costmodel.graph import LayerGraph
from dse.costmodel.shapes import propagate_shapes, tensor_meta, trace

if TYPE_CHECKING:
    from dse.costmodel.devices import DeviceProfile


class LayerConfig(NamedTuple):
    """One layer's configuration: what decides its kernel's time."""

    kind: str
    op: str
    inputs: tuple[tuple[int, ...], ...]  # shapes of its tensor inputs
    output: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    groups: int = 1

    @property
    def text(self) -> str:
        """A short description: ``conv Conv2d 16x32x32 -> 32x16x16 k3 s2 g1``."""
        shapes = ", ".join("x".join(map(str, s[1:])) for s in self.inputs)
        out = "x".join(map(str, self.output[1:]))
        extra = ""
        if self.kernel:
            extra = f" k{'x'.join(map(str, self.kernel))} s{'x'.join(map(str, self.stride))}"
            extra += f" g{self.groups}"
        return f"{self.kind} {self.op} {shapes} -> {out}{extra}"


def _pair(v: object) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, tuple | list):
        return tuple(int(x) if x is not None else 0 for x in v)
    return ()


def layer_configs(
    model: nn.Module, example: torch.Tensor, graph: LayerGraph
) -> dict[str, LayerConfig]:
    """The :class:`LayerConfig` of every backbone node of ``graph`` (``model`` on ``example``)."""
    gm = trace(model.eval(), name=graph.model_name)
    propagate_shapes(gm, example, name=graph.model_name)
    by_name = {n.name: n for n in gm.graph.nodes}
    modules = dict(gm.named_modules())
    out = {}
    for name in graph.backbone:
        node, fx_node = graph.nodes[name], by_name[name]
        inputs = tuple(tuple(m.shape) for a in fx_node.all_input_nodes for m in tensor_meta(a))
        kernel: tuple[int, ...] = ()
        stride: tuple[int, ...] = ()
        groups = 1
        if fx_node.op == "call_module":
            mod = modules[str(fx_node.target)]
            if hasattr(mod, "kernel_size"):
                kernel, stride = _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size)
            elif isinstance(mod, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
                kernel = _pair(mod.output_size)
            groups = int(getattr(mod, "groups", 1))
        out[name] = LayerConfig(
            node.kind, node.op, inputs, tuple(node.output_shape), kernel, stride, groups
        )
    return out


def network_kernels(
    graph: LayerGraph, configs: Mapping[str, LayerConfig], device: DeviceProfile
) -> tuple[tuple[LayerConfig, str], ...]:
    """Each backbone layer's configuration with the kernel ``device`` runs it with
    (``dense``, ``sparse`` or ``expand``): equal for twins that run the same kernels."""
    from dse.costmodel.costs import execution

    return tuple((configs[n], execution(graph.nodes[n], device).kernel) for n in graph.backbone)


class Shared(NamedTuple):
    """A layer of a network whose configuration a calibration timed."""

    network: str
    layer: str
    config: LayerConfig
    timed_in: str  # the calibration network or kernel sample that has it


def shared_layers(
    calibration: Mapping[str, Iterable[LayerConfig]],
    networks: Mapping[str, Mapping[str, LayerConfig]],
) -> list[Shared]:
    """Every layer of ``networks`` (name -> layer -> config) whose configuration occurs in
    ``calibration`` (what was timed -> its configurations), in the networks' order."""
    seen: dict[LayerConfig, str] = {}
    for source, configs in calibration.items():
        for c in configs:
            seen.setdefault(c, source)
    return [
        Shared(net, layer, c, seen[c])
        for net, layers in networks.items()
        for layer, c in layers.items()
        if c in seen
    ]
