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
from dse.nets.sites import find_sites, resolve

HEADS = ("linear", "conv", "sdn")
#: Bumped when a head kind builds another architecture (the version enters the training key
#: of a network with that head, so a cache never hands back the other one's weights).
HEAD_VERSIONS = {"linear": 1, "conv": 2, "sdn": 1}
CRITERIA = ("max_prob", "entropy")
SDN_GRID = 4
"""The SDN head's pooled grid: 4x4, as Kaya et al. reduce every internal classifier's input."""
CONV_HIDDEN = 128
"""The conv head's hidden linear width (InfoPro's feature dimension)."""


class MixPool(nn.Module):
    """SDN's feature reduction (Kaya et al., ICML'19): ``a * maxpool + (1 - a) * avgpool``
    to a ``grid`` x ``grid`` map, the mix ``a`` learned (one scalar, starting at 0.5).

    Where the map is already that small, it passes unchanged (SDN pools only maps of 4x4
    and more). Unlike global average pooling it keeps where things are in the image.
    """

    def __init__(self, grid: int | tuple[int, int] = SDN_GRID) -> None:
        super().__init__()
        self.max = nn.AdaptiveMaxPool2d(grid)
        self.avg = nn.AdaptiveAvgPool2d(grid)
        self.alpha = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.max(x) + (1 - self.alpha) * self.avg(x)


def make_head(shape: Sequence[int], num_classes: int, kind: str = "linear") -> nn.Module:
    """A small exit head for a tensor of ``shape`` (N, C[, H, W]).

    ``linear``: global average pool + linear (a plain linear on 2-D features).
    ``sdn``: SDN's internal classifier: :class:`MixPool` to a 4x4 grid, flatten, linear
    (``16 C`` inputs; a map smaller than 4x4 is flattened as it is).
    ``conv``: InfoPro's auxiliary head (Wang et al., ICLR'21): a 3x3 conv of stride 2 to
    ``2 C`` channels, BN, ReLU, global average pool, then two linear layers
    (:data:`CONV_HIDDEN` hidden, ReLU between).
    Features without a spatial map (2-D) get one linear layer, whatever the kind.
    """
    if kind not in HEADS:
        raise InputError("exits", "head", f"unknown head {kind!r}", f"use one of {HEADS}")
    c = int(shape[1])
    if len(shape) == 2:
        return nn.Sequential(nn.Linear(c, num_classes))
    if kind == "sdn":
        h, w = int(shape[-2]), int(shape[-1])
        if h <= SDN_GRID and w <= SDN_GRID:
            return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
        cells = min(h, SDN_GRID) * min(w, SDN_GRID)
        return nn.Sequential(
            MixPool((min(h, SDN_GRID), min(w, SDN_GRID))),
            nn.Flatten(),
            nn.Linear(c * cells, num_classes),
        )
    if kind == "conv":
        width = 2 * c
        return nn.Sequential(
            nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, CONV_HIDDEN),
            nn.ReLU(),
            nn.Linear(CONV_HIDDEN, num_classes),
        )
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))


def exit_sites(model: nn.Module) -> tuple[str, ...]:
    """The module paths after which ``model`` marks an exit (empty if it marks none)."""
    return tuple(getattr(model, "exit_sites", ()))


def attach_exits(
    model: nn.Module,
    example: torch.Tensor,
    *,
    num_classes: int | Sequence[int],
    sites: Sequence[str] | str | None = None,
    head: str = "linear",
) -> fx.GraphModule:
    """Return ``model`` traced, with an exit head per task after each of ``sites``.

    ``sites``: None is every site the model marks (``exit_sites``; none for a model that
    marks none), ``"auto"`` one after each drop of the spatial size, else module paths
    (any module that runs once and feeds the output: see :mod:`dse.nets.sites`).
    ``num_classes`` is one number (one task) or one per task, in the order of the model's
    outputs (``task_names``). The result's forward returns every exit's logits, task by
    task within an exit, then the final logits of every task: ``(exit_0, ..., final)``
    for one task. One task's exit head is ``exit_heads.i``; with several tasks exit ``i``
    has ``exit_heads.i.t``. It keeps ``exit_sites`` (the sites used), ``task_names`` and
    ``classifier_name`` as attributes: the model's own, or else the one
    :func:`find_classifier` finds (then ``classifier_found`` is True).
    """
    classes = [int(num_classes)] if isinstance(num_classes, int) else [int(c) for c in num_classes]
    marked = exit_sites(model)
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
    if sites is None or (not isinstance(sites, str) and all(s in marked for s in sites)):
        chosen = tuple(s for s in marked if sites is None or s in sites)  # execution order
        if chosen:
            propagate_shapes(gm, example)
    else:  # module paths beyond the marked ones, or "auto"
        propagate_shapes(gm, example)
        chosen = resolve(find_sites(model, example, classifier=classifier, gm=gm), marked, sites)
    if not chosen:
        gm.exit_sites = ()
        gm.classifier_name = classifier
        return gm
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
