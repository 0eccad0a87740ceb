"""Split and hierarchical training: the network trained as two parts, edge and server.

The network (exits attached) is cut at a position of its layer graph: the edge part runs
the backbone before the cut and the heads of the exits there, the server part the rest
(:func:`dse.nets.split.sides`). One training step on a batch:

- ``split`` (split learning): the edge runs its part forward; the tensors crossing the cut
  go to the server as fresh leaves; the server runs its part forward, its loss backward,
  and hands back the gradient of those leaves; the edge runs its backward from that
  gradient (plus its own exits' losses). The result is the gradient of the whole
  network's loss, as central training computes it, obtained in two halves.
- ``hierarchical`` (Sepehri et al., 2024): the edge trains its part on the loss of one
  exit, the *training exit* (the nearest before the cut unless named), with weight 1; the
  heads of the other edge exits learn on detached features (they do not move the edge
  backbone). The crossing tensors go to the server detached: nothing flows back, so the
  edge part's weights are the same whether a server part trains or not. The server trains
  the rest (final heads weight 1, its exits ``exit_weight``). Layers between the training
  exit's site and the cut receive no gradient and keep their initial weights: cut at an
  exit's site to train every edge layer.

At the edge-only cut (nothing crosses) both modes train the whole network as central
training does. The server part draws its random numbers (dropout) from a stream of its
own, so it cannot shift the edge part's. One optimizer holds both parts' weights: AdamW
updates each weight from its own gradient and moments only, so this is the same as one
optimizer per part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from dse.costmodel import TRAINING_MODES, LayerGraph, trace, training_exit
from dse.errors import InputError
from dse.nets.split import attr_of, call_node, sides

MODES = TRAINING_MODES


@dataclass
class SplitTrainer:
    """One network cut in two for training; :meth:`step` trains one batch (see the module
    docstring). Built by :func:`split_trainer`."""

    mode: str
    cut: int
    exit: int | None  # the training exit (hierarchical), index into the network's exits
    gm: fx.GraphModule
    edge: set[str]  # fx node names run on the edge
    server: set[str]  # fx node names run on the server
    crossing: list[fx.Node]  # the nodes whose outputs cross the cut
    outputs: list[fx.Node]  # the network's outputs, in order
    weights: list[float]  # per output: its loss weight (task weight x output weight)
    tasks: int
    detach: set[str] = field(default_factory=set)  # edge head nodes reading detached inputs
    server_rng: torch.Tensor | None = None  # the server part's CPU RNG state
    _nodes: list[fx.Node] = field(default_factory=list, repr=False)
    _modules: dict[str, nn.Module] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._nodes = list(self.gm.graph.nodes)
        self._modules = dict(self.gm.named_modules())

    @property
    def placeholder(self) -> fx.Node:
        return next(n for n in self._nodes if n.op == "placeholder")

    def edge_parameters(self) -> list[nn.Parameter]:
        """The weights of the modules the edge part runs."""
        return _params(self.gm, self._nodes, self.edge)

    def server_parameters(self) -> list[nn.Parameter]:
        return _params(self.gm, self._nodes, self.server)

    def run_edge(self, x: torch.Tensor) -> dict[fx.Node, Any]:
        """The edge part forward: every value it computes (the input included)."""
        return self._run({self.placeholder: x}, self.edge, self.detach)

    def run_server(self, crossing: Sequence[torch.Tensor]) -> dict[fx.Node, Any]:
        """The server part forward from the tensors that crossed the cut."""
        return self._run(dict(zip(self.crossing, crossing, strict=True)), self.server, set())

    def loss(
        self, env: dict[fx.Node, Any], side: set[str], targets: Sequence[torch.Tensor]
    ) -> torch.Tensor | None:
        """The weighted loss of the outputs computed on ``side`` (None: no output there)."""
        total: torch.Tensor | None = None
        for j, (node, w) in enumerate(zip(self.outputs, self.weights, strict=True)):
            if node.name not in side or w == 0.0:
                continue
            term = w * F.cross_entropy(env[node], targets[j % self.tasks])
            total = term if total is None else total + term
        return total

    def step(
        self, x: torch.Tensor, targets: Sequence[torch.Tensor], *, server: bool = True
    ) -> float:
        """Forward and backward of one batch (gradients accumulate in ``.grad``; the
        caller steps the optimizer). ``server=False``: the edge part alone (hierarchical).
        Returns the batch's total loss."""
        env = self.run_edge(x)
        edge_loss = self.loss(env, self.edge, targets)
        sent = [env[n] for n in self.crossing]
        if not self.server:
            if edge_loss is not None:
                edge_loss.backward()
            return float(edge_loss.item()) if edge_loss is not None else 0.0
        total = 0.0
        if self.mode == "hierarchical":
            if edge_loss is not None and edge_loss.requires_grad:
                edge_loss.backward()
            total += float(edge_loss.item()) if edge_loss is not None else 0.0
            if server:
                server_loss = self._server_step([t.detach() for t in sent], targets)
                total += server_loss
            return total
        if not server:
            raise ValueError(
                "split training needs its server part: the edge's backward "
                "starts from the server's gradient"
            )
        # split: the cut's tensors cross as leaves; their gradient comes back
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in sent]
        total += self._server_step(leaves, targets)
        roots = [
            (t, leaf.grad)
            for t, leaf in zip(sent, leaves, strict=True)
            if t.requires_grad and leaf.grad is not None
        ]
        if edge_loss is not None:
            roots.insert(0, (edge_loss, None))
            total += float(edge_loss.item())
        if roots:
            torch.autograd.backward([r for r, _ in roots], [g for _, g in roots])
        return total

    def _server_step(self, crossing: list[torch.Tensor], targets: Sequence[torch.Tensor]) -> float:
        edge_rng = torch.get_rng_state()
        if self.server_rng is not None:
            torch.set_rng_state(self.server_rng)
        try:
            env = self.run_server(crossing)
            loss = self.loss(env, self.server, targets)
            if loss is not None:
                loss.backward()
        finally:
            self.server_rng = torch.get_rng_state()
            torch.set_rng_state(edge_rng)
        return float(loss.item()) if loss is not None else 0.0

    def _run(
        self, env: dict[fx.Node, Any], names: set[str], detach: set[str]
    ) -> dict[fx.Node, Any]:
        env = dict(env)
        for n in self._nodes:
            if n.op in ("placeholder", "output") or n in env:
                continue
            if n.op == "get_attr":
                env[n] = attr_of(self.gm, str(n.target))
                continue
            if n.name not in names:
                continue
            cut_off = n.name in detach

            def value(a: fx.Node, cut_off: bool = cut_off) -> Any:
                v = env[a]
                return v.detach() if cut_off and isinstance(v, torch.Tensor) else v

            args = fx.node.map_arg(n.args, value)
            kwargs = fx.node.map_arg(n.kwargs, value)
            env[n] = call_node(n, self._modules, args, kwargs)
        return env


def _params(gm: fx.GraphModule, nodes: list[fx.Node], names: set[str]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for n in nodes:
        if n.op == "call_module" and n.name in names:
            for p in gm.get_submodule(str(n.target)).parameters():
                seen.setdefault(id(p), p)
        elif n.op == "get_attr" and any(u.name in names for u in n.users):
            value = attr_of(gm, str(n.target))
            if isinstance(value, nn.Parameter):
                seen.setdefault(id(value), value)
    return list(seen.values())


def exit_index(net: nn.Module, name: str | None) -> int | None:
    """The index of the exit after module ``name`` among ``net``'s exits (None: None)."""
    if name is None:
        return None
    sites = tuple(getattr(net, "exit_sites", ()))
    if name not in sites:
        raise InputError(
            "training",
            "exit",
            f"{name!r} is not an exit of this network",
            f"its exits: {', '.join(sites) or 'none'}",
        )
    return sites.index(name)


def split_trainer(
    net: nn.Module,
    graph: LayerGraph,
    *,
    mode: str,
    cut: int,
    exit: str | None = None,
    exit_weight: float = 1.0,
    task_weights: Sequence[float] = (1.0,),
    seed: int = 0,
) -> SplitTrainer:
    """``net`` (exits attached; ``graph`` its layer graph) prepared to train in ``mode``
    (``split`` or ``hierarchical``) at ``cut``; ``exit``: the module path of the exit that
    trains the edge part (None: the nearest before the cut)."""
    if mode not in ("split", "hierarchical"):
        raise InputError(
            "training", "mode", f"{mode!r} does not split the network", "use split or hierarchical"
        )
    if not 0 <= cut < len(graph.cuts):
        raise InputError(
            "training",
            "cut",
            f"cut {cut} is outside 0..{len(graph.cuts) - 1}",
            "give a cut of the network's layer graph",
        )
    gm = trace(net, name="network")
    nodes = list(gm.graph.nodes)
    by_name = {n.name: n for n in nodes}
    compute = {n.name for n in nodes if n.op in ("call_module", "call_function", "call_method")}
    edge_only = graph.cuts[cut].bytes <= 0
    server = set() if edge_only else sides(graph, cut) & compute
    edge = compute - server
    placeholder = next(n for n in nodes if n.op == "placeholder")
    crossing = (
        []
        if edge_only
        else [placeholder if p == "input" else by_name[p] for p in graph.cuts[cut].tensors]
    )
    out = next(n for n in nodes if n.op == "output").args[0]
    outputs = list(out) if isinstance(out, tuple | list) else [out]
    tasks = len(task_weights)
    n_exits = len(graph.exits)
    weights = [
        float(task_weights[j % tasks]) * (exit_weight if j // tasks < n_exits else 1.0)
        for j in range(len(outputs))
    ]
    used = None
    detach: set[str] = set()
    if mode == "hierarchical" and not edge_only:
        used = training_exit(graph, cut, exit_index(net, exit))
        for e in graph.exits:
            if e.position > cut:
                continue
            if e.index == used:
                for t in range(tasks):
                    weights[e.index * tasks + t] = float(task_weights[t])
            else:  # its head learns on detached features: its inputs from the backbone
                head = set(e.nodes)
                detach.update(
                    name
                    for name in e.nodes
                    if any(a.name not in head for a in by_name[name].all_input_nodes)
                )
    elif exit is not None:
        raise InputError(
            "training",
            "exit",
            "only hierarchical training has an exit that trains the edge part",
            'set mode = "hierarchical" or remove exit',
        )
    state = torch.Generator().manual_seed(seed + 1).get_state()
    return SplitTrainer(
        mode, cut, used, gm, edge, server, crossing, outputs, weights, tasks, detach, state
    )
