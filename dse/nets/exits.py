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
    num_classes: int | Sequence[int],
    sites: Sequence[str] | None = None,
    head: str = "linear",
) -> fx.GraphModule:
    """Return ``model`` traced, with an exit head per task after each of ``sites``
    (default: all).

    ``num_classes`` is one number (one task) or one per task, in the order of the model's
    outputs (``task_names``). The result's forward returns every exit's logits, task by
    task within an exit, then the final logits of every task: ``(exit_0, ..., final)``
    for one task. One task's exit head is ``exit_heads.i``; with several tasks exit ``i``
    has ``exit_heads.i.t``. It keeps ``exit_sites`` (the sites used), ``task_names`` and
    ``classifier_name`` as attributes: the model's own, or else the one
    :func:`find_classifier` finds (then ``classifier_found`` is True).
    """
    classes = [int(num_classes)] if isinstance(num_classes, int) else [int(c) for c in num_classes]
    allowed = exit_sites(model)
    chosen = tuple(allowed if sites is None else sites)
    unknown = [s for s in chosen if s not in allowed]
    if unknown:
        raise InputError(
            "exits",
            "sites",
            f"unknown exit site(s) {unknown}",
            f"this model allows {list(allowed)}",
        )
    chosen = tuple(s for s in allowed if s in chosen)  # execution order
    gm = trace(model, name=type(model).__name__)
    tasks = tuple(getattr(model, "task_names", ()))
    gm.task_names = tasks
    if tasks:  # task heads replaced the classifier: they stay dense, nothing to find
        classifier = None
        gm.classifier_found = False
    else:
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
        paths = (
            [f"exit_heads.{i}"]
            if len(classes) == 1
            else [f"exit_heads.{i}.{t}" for t in range(len(classes))]
        )
        for path, c in zip(paths, classes, strict=True):
            gm.add_submodule(path, make_head(shape, c, head))
        with gm.graph.inserting_after(node):
            outputs += [gm.graph.call_module(path, (node,)) for path in paths]
    outputs = _by_head(outputs, len(classes))  # exit by exit, task by task
    out = next(n for n in gm.graph.nodes if n.op == "output")
    final = out.args[0]
    finals = list(final) if isinstance(final, tuple | list) else [final]
    if len(finals) != len(classes):
        raise InputError(
            "exits",
            "num_classes",
            f"the model returns {len(finals)} outputs for {len(classes)} task(s)",
            "give one class count per task",
        )
    out.args = (tuple([*outputs, *finals]),)
    gm.graph.lint()
    gm.recompile()
    gm.exit_sites = chosen
    gm.classifier_name = classifier
    return gm


def _by_head(nodes: list[fx.Node], tasks: int) -> list[fx.Node]:
    """Exit head call nodes ordered exit by exit, task by task (by their module path)."""

    def order(n: fx.Node) -> tuple[int, ...]:
        parts = str(n.target).split(".")[1:]
        return tuple(int(p) for p in parts) + ((0,) if tasks == 1 else ())

    return sorted(nodes, key=order)


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
    layers = [
        n
        for n in seen
        if n.op == "call_module" and isinstance(modules.get(str(n.target)), (nn.Linear, *_CONVS))
    ]
    return str(max(layers, key=order.__getitem__).target) if layers else None


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def confidence(logits: torch.Tensor, criterion: str = "max_prob") -> torch.Tensor:
    """Per-sample confidence in [0, 1]: max softmax probability, or 1 - normalised entropy."""
    if criterion not in CRITERIA:
        raise InputError(
            "exits", "criterion", f"unknown criterion {criterion!r}", f"use one of {CRITERIA}"
        )
    p = torch.softmax(logits.float(), dim=-1)
    if criterion == "max_prob":
        return p.max(dim=-1).values
    k = p.shape[-1]
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    return 1.0 - ent / torch.log(torch.tensor(float(k)))
