"""Where an exit may hang on any traceable model: module paths, and ``auto``.

A model from the zoo marks its exit sites (``exit_sites``); any other model, an
``nn.Sequential`` or a user's network, has none. Every module that runs once and whose
output is a feature tensor the final output depends on is a possible site: its module path
(``features.6``; in an ``nn.Sequential`` the top-level index, ``6``) names it. ``auto``
chooses one site per drop of the spatial size, as SDN places its internal classifiers
after the blocks that down-sample: after the outermost module that holds that drop and no
other, whose output is a single tensor crossing to the rest of the network (so a cut there
sends one tensor). A drop to 1x1 (global pooling) gets none, and neither does a site after
which no layer but the final classifier computes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel import propagate_shapes, trace
from dse.errors import InputError

AUTO = "auto"
#: the exit sites an error lists at most (the count of the rest follows)
SHOWN = 30
_HEAD_PREFIXES = ("exit_heads", "task_heads")
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Site:
    """One possible exit site: its module path, the index of its output node in execution
    order and that node's output shape."""

    path: str
    index: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Sites:
    """The possible exit sites of a traced model, in execution order (an outer module
    before the inner ones that end at the same node), and the ``auto`` choice."""

    possible: tuple[Site, ...]
    auto: tuple[str, ...]

    def paths(self) -> tuple[str, ...]:
        return tuple(s.path for s in self.possible)

    def index(self, path: str) -> int:
        return next(s.index for s in self.possible if s.path == path)


def find_sites(
    model: nn.Module,
    example: torch.Tensor,
    *,
    classifier: str | None = None,
    gm: fx.GraphModule | None = None,
) -> Sites:
    """Every possible exit site of ``model`` (traced on ``example``) and the ``auto`` ones.

    ``classifier``: the module path of the final classifier (no site inside it). ``gm``:
    the model already traced, its shapes propagated (else it is traced here).
    """
    if gm is None:
        gm = trace(model, name=type(model).__name__)
        propagate_shapes(gm, example)
    nodes = list(gm.graph.nodes)
    position = {n: i for i, n in enumerate(nodes)}
    out = next(n for n in nodes if n.op == "output")
    finals = out.args[0] if isinstance(out.args[0], tuple | list) else (out.args[0],)
    finals = [f for f in finals if isinstance(f, fx.Node)]
    backbone = _ancestors(finals)
    spans, shared = _module_spans(nodes)
    modules = dict(gm.named_modules())
    possible = []
    for path, (first, last) in spans.items():
        node = nodes[last]
        if (
            path in shared
            or _inside(path, classifier)
            or any(_inside(path, p) for p in _HEAD_PREFIXES)
            or node not in backbone
            or node in finals
        ):
            continue
        shape = _shape(node)
        if shape is None or len(shape) not in (2, 4) or shape[0] != example.shape[0]:
            continue
        possible.append((last, -(last - first), path, shape))
    possible.sort()
    sites = tuple(Site(path, last, shape) for last, _, path, shape in possible)
    weighted_after = _last_weighted(nodes, modules, backbone, classifier)
    return Sites(sites, _auto(nodes, position, backbone, sites, spans, weighted_after))


def resolve(
    sites: Sites, marked: Sequence[str], chosen: Sequence[str] | str | None
) -> tuple[str, ...]:
    """The exit sites ``chosen`` names, in execution order: None is every site the model
    marks, ``"auto"`` is :attr:`Sites.auto`, else module paths (marked or possible).
    An unknown path is an InputError naming the allowed ones."""
    if chosen is None:
        return tuple(marked)
    if isinstance(chosen, str):
        if chosen != AUTO:
            raise InputError(
                "exits", "sites", f"unknown exits {chosen!r}", 'give module paths or "auto"'
            )
        return sites.auto
    allowed = sites.paths()
    unknown = [s for s in chosen if s not in allowed and s not in marked]
    if unknown:
        shown = list(dict.fromkeys([*marked, *allowed]))
        more = f" ... ({len(shown) - SHOWN} more)" if len(shown) > SHOWN else ""
        raise InputError(
            "exits",
            "sites",
            f"unknown exit site(s) {unknown}",
            f'this model allows the module paths {shown[:SHOWN]}{more}, or "auto"',
        )
    order = {s.path: i for i, s in enumerate(sites.possible)}
    marked_order = {p: i for i, p in enumerate(marked)}
    unique = list(dict.fromkeys(chosen))
    if all(s in order for s in unique):
        return tuple(sorted(unique, key=order.__getitem__))
    return tuple(sorted(unique, key=lambda s: marked_order.get(s, len(marked))))


def _inside(path: str, prefix: str | None) -> bool:
    return bool(prefix) and (path == prefix or path.startswith(f"{prefix}."))


def _ancestors(finals: list[fx.Node]) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    todo = list(finals)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(n.all_input_nodes)
    return seen


def _module_spans(nodes: list[fx.Node]) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Per module path: the indices of its first and last node; and the paths of modules
    that run more than once (a shared ReLU), which name no one tensor."""
    spans: dict[str, tuple[int, int]] = {}
    calls: dict[str, int] = {}
    shared: set[str] = set()
    for i, n in enumerate(nodes):
        if n.op in ("placeholder", "output", "get_attr"):
            continue
        paths: set[str] = set()
        for key, value in (n.meta.get("nn_module_stack") or {}).items():
            path = value[0] if isinstance(value, tuple) else key
            paths.add(path)
            if "@" in str(key):
                shared.add(path)
        if n.op == "call_module":  # a retraced GraphModule has no stack: its prefixes
            parts = str(n.target).split(".")
            paths.update(".".join(parts[: k + 1]) for k in range(len(parts)))
            calls[str(n.target)] = calls.get(str(n.target), 0) + 1
        for p in paths:
            first = spans.get(p, (i, i))[0]
            spans[p] = (first, i)
    shared.update(p for p, k in calls.items() if k > 1)
    return spans, shared


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def _area(shape: tuple[int, ...] | None) -> int | None:
    return shape[-1] * shape[-2] if shape is not None and len(shape) == 4 else None


def _last_weighted(
    nodes: list[fx.Node],
    modules: dict[str, nn.Module],
    backbone: set[fx.Node],
    classifier: str | None,
) -> int:
    """The index of the last backbone node that runs a weighted layer (conv or linear)
    other than the final classifier (-1: none)."""
    last = -1
    for i, n in enumerate(nodes):
        if n.op != "call_module" or n not in backbone or _inside(str(n.target), classifier):
            continue
        if isinstance(modules.get(str(n.target)), _WEIGHTED):
            last = i
    return last


def _auto(
    nodes: list[fx.Node],
    position: dict[fx.Node, int],
    backbone: set[fx.Node],
    sites: tuple[Site, ...],
    spans: dict[str, tuple[int, int]],
    weighted_after: int,
) -> tuple[str, ...]:
    """One site per drop of the spatial size (see the module docstring)."""
    drops: list[tuple[int, int]] = []  # (node index, area after the drop)
    for i, n in enumerate(nodes):
        if n not in backbone:
            continue
        area = _area(_shape(n))
        before = [a for a in (_area(_shape(x)) for x in n.all_input_nodes) if a is not None]
        if area is not None and before and area < max(before) and area > 1:
            drops.append((i, area))
    clean = _clean(nodes, position, backbone)
    chosen: list[str] = []
    for i, area in drops:
        other = [j for j, a in drops if a != area]
        fits = [
            s
            for s in sites
            if len(s.shape) == 4
            and _area(s.shape) == area
            and s.index in clean
            and s.index < weighted_after
            and spans[s.path][0] <= i <= s.index
            and not any(spans[s.path][0] <= j <= s.index for j in other)
        ]
        if not fits:  # no module holds the drop alone: the first clean one after it
            fits = [
                s
                for s in sites
                if len(s.shape) == 4
                and _area(s.shape) == area
                and s.index >= i
                and s.index in clean
                and s.index < weighted_after
            ][:1]
        if fits:
            best = max(fits, key=lambda s: (spans[s.path][1] - spans[s.path][0], -s.index))
            if best.path not in chosen:
                chosen.append(best.path)
    return tuple(sorted(chosen, key=lambda p: spans[p][1]))


def _clean(nodes: list[fx.Node], position: dict[fx.Node, int], backbone: set[fx.Node]) -> set[int]:
    """Indices of the backbone nodes after which only their own output is still needed by
    later backbone nodes (a cut there sends one tensor)."""
    order = [n for n in nodes if n in backbone or n.op == "placeholder"]
    rank = {n: k for k, n in enumerate(order)}
    last_use = {n: max((rank[u] for u in n.users if u in rank), default=-1) for n in order}
    out = set()
    live: set[fx.Node] = set()
    for k, n in enumerate(order):
        live.add(n)
        live = {x for x in live if last_use[x] > k}
        if live == {n} and n.op != "placeholder":
            out.add(position[n])
    return out
