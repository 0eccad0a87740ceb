"""The op table: module classes and functions -> op kind, and how their FLOPs are counted.

Modules: :data:`MODULE_KINDS` gives the kind; FLOPs come from one fvcore
``FlopCountAnalysis`` per model (:func:`fvcore_counts`), extended with handles for the aten
ops fvcore skips by default (:data:`EXTRA_FVCORE_OPS`), so nothing silently counts as zero.
Functions and tensor methods: :data:`FUNCTION_RULES` maps each name to an :class:`OpRule`
(kind + handle), built by small factories per op family (:func:`elementwise`,
:func:`reads_input`, :func:`free`, :func:`contraction`), the way fvcore maps operators to
handles; an unknown name gets :data:`UNKNOWN` (kind ``other``, 0 FLOPs), never an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import TensorMetadata

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


# --------------------------------------------------------------------------------------
# Functional nodes: one rule per function or tensor method, from small factories per family.
# --------------------------------------------------------------------------------------

Handle = Callable[[list[TensorMetadata], list[TensorMetadata]], tuple[int, int]]
"""``(tensors of the first input, tensors produced) -> (FLOPs, MACs)`` of one functional
node, from shapes alone (fvcore attributes a function's count to the enclosing module, not
to a node, so the graph counts functional nodes itself, by fvcore's conventions)."""


@dataclass(frozen=True)
class OpRule:
    """The op kind of a function or tensor method and how its FLOPs are counted."""

    kind: str
    handle: Handle

    def count(self, inputs: list[TensorMetadata], outputs: list[TensorMetadata]) -> tuple[int, int]:
        """``(FLOPs, MACs)``; nothing for a node whose output has no known tensor."""
        return self.handle(inputs, outputs) if outputs else (0, 0)


def _numel(metas: list[TensorMetadata]) -> int:
    return int(math.prod(metas[0].shape))


def elementwise(kind: str) -> OpRule:
    """One FLOP per element produced (arithmetic, activations, softmax)."""
    return OpRule(kind, lambda inputs, outputs: (_numel(outputs), 0))


def reads_input(kind: str) -> OpRule:
    """One FLOP per element of the first input, the output's if unknown (pooling, mean)."""
    return OpRule(kind, lambda inputs, outputs: (_numel(inputs or outputs), 0))


def free(kind: str) -> OpRule:
    """No arithmetic: data movement, views, dropout at inference, an unknown op."""
    return OpRule(kind, lambda inputs, outputs: (0, 0))


def contraction(kind: str) -> OpRule:
    """One MAC (2 FLOP) per element produced and per element of the contracted (last)
    dimension of the first input; nothing if that input is unknown (matmul, linear)."""

    def handle(inputs: list[TensorMetadata], outputs: list[TensorMetadata]) -> tuple[int, int]:
        if not inputs:
            return 0, 0
        macs = _numel(outputs) * int(inputs[0].shape[-1])
        return 2 * macs, macs

    return OpRule(kind, handle)


def _family(rule: OpRule, *names: str) -> dict[str, OpRule]:
    return dict.fromkeys(names, rule)


FUNCTION_RULES: Mapping[str, OpRule] = MappingProxyType(
    {
        **_family(elementwise("add"), "add", "iadd", "sub", "isub"),
        **_family(elementwise("mul"), "mul", "imul", "truediv", "div"),
        **_family(
            elementwise("activation"),
            "relu",
            "relu_",
            "relu6",
            "gelu",
            "silu",
            "sigmoid",
            "tanh",
            "hardswish",
            "hardsigmoid",
            "leaky_relu",
            "hardtanh",
        ),
        **_family(elementwise("softmax"), "softmax", "log_softmax"),
        **_family(
            reads_input("pool"),
            "max_pool2d",
            "avg_pool2d",
            "adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "mean",
        ),
        **_family(free("concat"), "cat", "stack"),
        **_family(
            free("reshape"),
            "flatten",
            "view",
            "reshape",
            "permute",
            "transpose",
            "contiguous",
            "squeeze",
            "unsqueeze",
            "getitem",
            "size",
            "getattr",
        ),
        **_family(free("dropout"), "dropout"),
        **_family(contraction("matmul"), "matmul", "bmm"),
        **_family(contraction("linear"), "linear"),
    }
)
"""Function or tensor-method name -> its rule."""

UNKNOWN = free("other")
"""The rule of a function no entry names: kind ``other``, counted as 0 FLOPs (and warned
about once per graph by the caller)."""


def function_rule(name: str) -> OpRule:
    """The rule of function or tensor method ``name``; :data:`UNKNOWN` if none names it."""
    return FUNCTION_RULES.get(name, UNKNOWN)


# --------------------------------------------------------------------------------------
# Modules: their kind from the class; their FLOPs from fvcore, with handles for what it skips.
# --------------------------------------------------------------------------------------

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
    """The op kind of a leaf module; ``other`` for a class the table does not know."""
    if isinstance(module, nn.modules.conv._ConvNd):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise_conv" if depthwise else "conv"
    for cls, kind in MODULE_KINDS:
        if isinstance(module, cls):
            return kind
    return "other"


def function_name(node: fx.Node) -> str:
    """The function or tensor-method name of a functional fx node (``"add"``, ``"view"``)."""
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
    """``(FLOPs, MACs)`` of one module's fvcore counts by operator (a MAC is 2 FLOP)."""
    flops = macs = 0
    for op, count in counter.items():
        if op in MAC_OPERATORS:
            macs += int(count)
            flops += 2 * int(count)
        else:
            flops += int(count)
    return flops, macs
