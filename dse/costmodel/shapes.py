"""Tracing a model with torch.fx and propagating shapes through the trace on meta tensors."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from dse.costmodel.ops import MODULE_KINDS
from dse.errors import InputError


def trace(model: nn.Module, *, name: str = "model") -> fx.GraphModule:
    """Symbolically trace ``model``; an untraceable op becomes an InputError with a fix.

    A GraphModule is traced again too, so that containers it calls (an exit head's
    Sequential) are expanded into their leaf layers.
    """
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            name,
            "forward",
            f"torch.fx cannot trace this model: {type(exc).__name__}: {first}{_user_frame(exc)}",
            "make data-dependent control flow static, or wrap the failing part in its own "
            "nn.Module and mark it as a leaf (torch.fx.wrap for functions)",
        ) from None


def _user_frame(exc: BaseException) -> str:
    """`` at FILE:LINE: SOURCE`` of the innermost traceback frame outside torch and dse."""
    import traceback
    from pathlib import Path

    skip = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(skip) and not f.filename.startswith("<")
    ]
    if not frames:
        return ""
    f = frames[-1]
    return f" at {f.filename}:{f.lineno}: {(f.line or '').strip()}"


# Leaf modules whose output has their input's shape and dtype: on meta tensors they need
# not run at all (batch norm's meta path goes through slow Python decompositions).
_SHAPE_PRESERVING: tuple[type[nn.Module], ...] = (
    *(cls for cls, kind in MODULE_KINDS if kind in ("norm", "activation", "dropout", "softmax")),
    nn.Identity,
)


class _MetaShapeProp(ShapeProp):
    """ShapeProp on meta tensors that passes shape-preserving layers' inputs through."""

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        module = self.fetch_attr(target)
        if (
            isinstance(module, _SHAPE_PRESERVING)
            and len(args) == 1
            and not kwargs
            and isinstance(args[0], torch.Tensor)
        ):
            return args[0]
        return super().call_module(target, args, kwargs)


def propagate_shapes(gm: fx.GraphModule, example: torch.Tensor, *, name: str = "model") -> None:
    """Fill ``node.meta['tensor_meta']`` using meta tensors: shapes without arithmetic.

    A model that cannot run on ``example`` at all (wrong shape or dtype) is bad input: an
    InputError naming the input, not an internal failure.
    """
    from torch.nn.utils.stateless import _reparametrize_module

    state = dict(gm.named_parameters())
    state.update(dict(gm.named_buffers()))
    meta = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in state.items()}
    x = torch.empty(example.shape, dtype=example.dtype, device="meta")
    # ShapeProp prints a traceback to stderr for every failing node: keep it quiet, the
    # failure is handled (or reported in one line) here.
    try:
        with _reparametrize_module(gm, meta), contextlib.redirect_stderr(io.StringIO()):
            _MetaShapeProp(gm).propagate(x)
    except Exception:
        # Some ops have no meta kernel: fall back to a real forward pass on the input.
        try:
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                ShapeProp(gm).propagate(example)
        except Exception as exc:
            cause = exc.__cause__ or exc
            text = str(cause).strip().splitlines()
            shape = "x".join(map(str, example.shape))
            raise InputError(
                name,
                "input",
                f"the model does not run on a {shape} {str(example.dtype).removeprefix('torch.')}"
                f" input: {type(cause).__name__}: {text[0] if text else ''}",
                "give the input shape the model expects (--input-shape NxCxHxW) and one "
                "floating dtype for all its parameters",
            ) from None


def tensor_meta(node: fx.Node) -> list[TensorMetadata]:
    """The tensors a node produces, as shape propagation recorded them (none if unknown)."""
    meta = node.meta.get("tensor_meta")
    if meta is None:
        return []
    if isinstance(meta, TensorMetadata):
        return [meta]
    out: list[TensorMetadata] = []
    for m in meta if isinstance(meta, list | tuple) else meta.values():
        if isinstance(m, TensorMetadata):
            out.append(m)
    return out


def nbytes(metas: Iterable[TensorMetadata]) -> int:
    """Bytes of the given tensors together."""
    return sum(int(math.prod(m.shape)) * m.dtype.itemsize for m in metas)
