"""The op table: module classes and functions -> op kind, and how their FLOPs are counted.

FLOPs of modules come from one fvcore ``FlopCountAnalysis`` per model, extended with
handles for the ops fvcore skips by default, so nothing silently counts as zero.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

MODULE_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Linear, "linear"),  # convolutions: see module_kind (conv or depthwise_conv)
    (nn.modules.batchnorm._NormBase, "norm"),
    (nn.LayerNorm, "norm"),
    (nn.GroupNorm, "norm"),
    (nn.ReLU, "activation"),
    (nn.ReLU6, "activation"),
    (nn.GELU, "activation"),
    (nn.SiLU, "activation"),
    (nn.Hardswish, "activation"),
    (nn.Hardsigmoid, "activation"),
    (nn.Sigmoid, "activation"),
    (nn.Tanh, "activation"),
    (nn.LeakyReLU, "activation"),
    (nn.ELU, "activation"),
    (nn.Hardtanh, "activation"),
    (nn.modules.pooling._MaxPoolNd, "pool"),
    (nn.modules.pooling._AvgPoolNd, "pool"),
    (nn.modules.pooling._AdaptiveAvgPoolNd, "pool"),
    (nn.modules.pooling._AdaptiveMaxPoolNd, "pool"),
    (nn.Flatten, "reshape"),
    (nn.Unflatten, "reshape"),
    (nn.Identity, "reshape"),
    (nn.modules.dropout._DropoutNd, "dropout"),
    (nn.Softmax, "softmax"),
    (nn.LogSoftmax, "softmax"),
)


# Functions and tensor methods: name -> (kind, rule). Rules count FLOPs from shapes for
# functional nodes, which fvcore attributes to the enclosing module rather than a node.
FUNCTION_KINDS: dict[str, tuple[str, str]] = {
    "add": ("add", "elementwise"),
    "iadd": ("add", "elementwise"),
    "sub": ("add", "elementwise"),
    "isub": ("add", "elementwise"),
    "mul": ("mul", "elementwise"),
    "imul": ("mul", "elementwise"),
    "truediv": ("mul", "elementwise"),
    "div": ("mul", "elementwise"),
    "relu": ("activation", "elementwise"),
    "relu_": ("activation", "elementwise"),
    "relu6": ("activation", "elementwise"),
    "gelu": ("activation", "elementwise"),
    "silu": ("activation", "elementwise"),
    "sigmoid": ("activation", "elementwise"),
    "tanh": ("activation", "elementwise"),
    "hardswish": ("activation", "elementwise"),
    "hardsigmoid": ("activation", "elementwise"),
    "leaky_relu": ("activation", "elementwise"),
    "hardtanh": ("activation", "elementwise"),
    "softmax": ("softmax", "elementwise"),
    "log_softmax": ("softmax", "elementwise"),
    "max_pool2d": ("pool", "input"),
    "avg_pool2d": ("pool", "input"),
    "adaptive_avg_pool2d": ("pool", "input"),
    "adaptive_max_pool2d": ("pool", "input"),
    "mean": ("pool", "input"),
    "cat": ("concat", "zero"),
    "stack": ("concat", "zero"),
    "flatten": ("reshape", "zero"),
    "view": ("reshape", "zero"),
    "reshape": ("reshape", "zero"),
    "permute": ("reshape", "zero"),
    "transpose": ("reshape", "zero"),
    "contiguous": ("reshape", "zero"),
    "squeeze": ("reshape", "zero"),
    "unsqueeze": ("reshape", "zero"),
    "getitem": ("reshape", "zero"),
    "size": ("reshape", "zero"),
    "getattr": ("reshape", "zero"),
    "dropout": ("dropout", "zero"),
    "matmul": ("matmul", "matmul"),
    "bmm": ("matmul", "matmul"),
    "linear": ("linear", "linear"),
}


# fvcore operator names whose count is MACs (fvcore counts one per multiply-add).
MAC_OPERATORS = frozenset({"conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm"})


# aten ops fvcore skips by default, and how we count them: one FLOP per output element
# ("out") or per element of the first input ("in"). Registered through fvcore's own
# handle mechanism (``set_op_handle``).
EXTRA_FVCORE_OPS: dict[str, str] = {
    "aten::relu": "out",
    "aten::relu_": "out",
    "aten::hardtanh": "out",
    "aten::hardtanh_": "out",
    "aten::gelu": "out",
    "aten::silu": "out",
    "aten::silu_": "out",
    "aten::sigmoid": "out",
    "aten::tanh": "out",
    "aten::hardswish": "out",
    "aten::hardswish_": "out",
    "aten::hardsigmoid": "out",
    "aten::leaky_relu": "out",
    "aten::elu": "out",
    "aten::add": "out",
    "aten::add_": "out",
    "aten::sub": "out",
    "aten::mul": "out",
    "aten::mul_": "out",
    "aten::div": "out",
    "aten::softmax": "out",
    "aten::log_softmax": "out",
    "aten::max_pool2d": "in",
    "aten::avg_pool2d": "in",
    "aten::adaptive_max_pool2d": "in",
    "aten::max_pool1d": "in",
    "aten::avg_pool1d": "in",
    "aten::adaptive_max_pool1d": "in",
    "aten::adaptive_avg_pool1d": "in",
    "aten::max_pool3d": "in",
    "aten::avg_pool3d": "in",
    "aten::adaptive_max_pool3d": "in",
    "aten::adaptive_avg_pool3d": "in",
    "aten::mean": "in",
}


def fvcore_elementwise(where: str) -> Callable[[list[Any], list[Any]], int]:
    """A fvcore handle counting one FLOP per element of the output or first input."""

    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        value = outputs[0] if where == "out" else inputs[0]
        shape = value.type().sizes()
        return int(math.prod(shape)) if shape is not None else 0

    return handle


def module_kind(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise_conv" if depthwise else "conv"
    for cls, kind in MODULE_KINDS:
        if isinstance(module, cls):
            return kind
    return "other"


def function_name(node: fx.Node) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", str(target))
    return name


def fvcore_counts(gm: fx.GraphModule, example: torch.Tensor) -> tuple[dict, dict[str, int]]:
    """Per-module, per-operator counts from one fvcore analysis, and unsupported ops."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(gm, example)
    for op, where in EXTRA_FVCORE_OPS.items():
        analysis.set_op_handle(op, fvcore_elementwise(where))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    by_module = analysis.by_module_and_operator()
    unsupported = dict(analysis.unsupported_ops())
    return by_module, unsupported


def flops_from_counter(counter: Mapping[str, int]) -> tuple[int, int]:
    flops = macs = 0
    for op, count in counter.items():
        if op in MAC_OPERATORS:
            macs += int(count)
            flops += 2 * int(count)
        else:
            flops += int(count)
    return flops, macs
