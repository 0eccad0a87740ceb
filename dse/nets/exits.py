"""Early exits: heads hung off a traced backbone, and the criteria that decide who leaves.

``attach_exits`` rewrites the fx graph of any traceable model so that it returns the
logits of every exit head followed by the final classifier's, in execution order. The
heads are ordinary submodules (``exit_heads.i``), so they show up as nodes in the layer
graph and are costed like any other layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel import propagate_shapes, site_nodes, trace
from dse.errors import InputError

HEADS = ("linear", "conv")
CRITERIA = ("max_prob", "entropy")


def make_head(shape: Sequence[int], num_classes: int, kind: str = "linear") -> nn.Module:
    """A small exit head for a tensor of ``shape`` (N, C[, H, W]).

    ``linear``: global average pool + linear (a plain linear on 2-D features).
    ``conv``: a 3x3 conv-BN-ReLU at the same width first, then pool + linear.
    """
    if kind not in HEADS:
        raise InputError("exits", "head", f"unknown head {kind!r}", f"use one of {HEADS}")
    c = int(shape[1])
    if len(shape) == 2:
        return nn.Sequential(nn.Linear(c, num_classes))
    layers: list[nn.Module] = []
    if kind == "conv":
        layers += [nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def exit_sites(model: nn.Module) -> tuple[str, ...]:
    """The module paths after which ``model`` allows an exit (empty if it marks none)."""
    return tuple(getattr(model, "exit_sites", ()))


def attach_exits(
    model: nn.Module,
    example: torch.Tensor,
    *,
    num_classes: int,
    sites: Sequence[str] | None = None,
    head: str = "linear",
) -> fx.GraphModule:
    """Return ``model`` traced, with an exit head after each of ``sites`` (default: all).

    The result's forward returns ``(exit_0, ..., exit_{k-1}, final)`` logits. It keeps
    ``exit_sites`` (the sites used) and ``classifier_name`` as attributes: the model's own,
    or else the one :func:`find_classifier` finds (then ``classifier_found`` is True).
    """
    allowed = exit_sites(model)
    chosen = tuple(allowed if sites is None else sites)
    unknown = [s for s in chosen if s not in allowed]
    if unknown:
        raise InputError("exits", "sites", f"unknown exit site(s) {unknown}",
                         f"this model allows {list(allowed)}")
    chosen = tuple(s for s in allowed if s in chosen)  # execution order
    gm = trace(model, name=type(model).__name__)
    classifier = getattr(model, "classifier_name", None)
    gm.classifier_found = classifier is None
    if classifier is None:
        classifier = find_classifier(gm)
    if not chosen:
        gm.exit_sites = ()
        gm.classifier_name = classifier
        return gm
    propagate_shapes(gm, example)
    names = site_nodes(gm, chosen)
    by_name = {n.name: n for n in gm.graph.nodes}
    outputs = []
    for i, name in enumerate(names):
        node = by_name[name]
        shape = node.meta["tensor_meta"].shape
        gm.add_submodule(f"exit_heads.{i}", make_head(shape, num_classes, head))
        with gm.graph.inserting_after(node):
            outputs.append(gm.graph.call_module(f"exit_heads.{i}", (node,)))
    out = next(n for n in gm.graph.nodes if n.op == "output")
    final = out.args[0]
    out.args = (tuple([*outputs, final]),)
    gm.graph.lint()
    gm.recompile()
    gm.exit_sites = chosen
    gm.classifier_name = classifier
    return gm


def find_classifier(gm: fx.GraphModule) -> str | None:
    """The module path of the last Linear or convolution the final output depends on (the
    final classifier), or None when no such layer produces the output."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    final = out.args[0]
    if isinstance(final, tuple | list):
        final = final[-1] if final else None
    if not isinstance(final, fx.Node):
        return None
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    seen: set[fx.Node] = set()
    todo = [final]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(node.all_input_nodes)
    modules = dict(gm.named_modules())
    layers = [n for n in seen if n.op == "call_module"
              and isinstance(modules.get(str(n.target)), (nn.Linear, *_CONVS))]
    return str(max(layers, key=order.__getitem__).target) if layers else None


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def confidence(logits: torch.Tensor, criterion: str = "max_prob") -> torch.Tensor:
    """Per-sample confidence in [0, 1]: max softmax probability, or 1 - normalised entropy."""
    if criterion not in CRITERIA:
        raise InputError("exits", "criterion", f"unknown criterion {criterion!r}",
                         f"use one of {CRITERIA}")
    p = torch.softmax(logits.float(), dim=-1)
    if criterion == "max_prob":
        return p.max(dim=-1).values
    k = p.shape[-1]
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    return 1.0 - ent / torch.log(torch.tensor(float(k)))
