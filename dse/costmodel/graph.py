"""The layer graph: a torch.fx trace of a model, annotated with what every layer costs.

One node per leaf module or functional op, in the fx topological order, held in a
networkx DiGraph. Shapes come from propagating *meta* tensors (no arithmetic, no real
forward pass: ``shapes.py``); FLOPs come from the op table (``ops.py``): one fvcore
``FlopCountAnalysis`` per model for modules, extended with handles for the ops fvcore
skips by default, and a rule per function or tensor method, so nothing silently counts as
zero; an op no rule knows is counted as kind ``other`` and warned about once.

FLOP convention, used everywhere in dse: one FLOP is one multiply *or* one add, so a
multiply-accumulate (MAC) is 2 FLOP. For conv, linear and matmul ``flops == 2 * macs``
(a bias adds nothing, as in fvcore); elementwise ops and activations count one FLOP per
element they produce, pooling one per element it reads, inference batch norm two per
element (scale and shift; one without affine, fvcore's rule), all with no MACs. A module
called several times has its parameters stored once (on its first call) and its fvcore
count split over the calls in proportion to the elements each produces (reads, for pooling).

Multi-output models: when the model returns a tuple or list, the *last* element is the
final prediction and the ones before it are early exits. Nodes needed only by exit ``i``
form that exit's head; the nodes the final output needs form the backbone. A multi-task
model (one naming its ``task_names``, T of them) returns T final predictions last, and
each exit gives T outputs in a row (one per task): an exit's head is every node its T
outputs need, and the backbone is what any final output needs, the task heads included
(after the shared layers, in task order). Cuts are
positions in the backbone's topological order: cut ``k`` runs backbone nodes ``[:k]`` on
the edge and the rest on the server; cut 0 sends the input, the last cut sends nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import networkx as nx
import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel.kinds import OP_KINDS
from dse.costmodel.ops import (
    UNKNOWN,
    flops_from_counter,
    function_name,
    function_rule,
    fvcore_counts,
    module_kind,
)
from dse.costmodel.packing import mask_pattern, payload_bytes
from dse.costmodel.shapes import nbytes, propagate_shapes, tensor_meta, trace
from dse.errors import InputError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# The frozen graph handed to later stages.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One layer (leaf module or functional op) with its sizes and arithmetic."""

    name: str
    target: str  # module path, or the function / method name
    kind: str  # one of OP_KINDS
    inputs: tuple[str, ...]
    output_shape: tuple[int, ...]
    output_bytes: int
    input_bytes: int
    params: int  # all parameters, dense
    nonzero_params: int  # parameters outside a sparsity mask
    weight_bytes: int  # bytes of parameters read when computing (dense layout)
    stored_bytes: int  # bytes to store the parameters (sparse layers: values + indices)
    flops: int  # dense FLOPs (1 MAC = 2 FLOP)
    macs: int
    density: float = 1.0  # realised weight density of this layer (1.0 if dense)
    #: sparsity pattern of its weight mask (packing.mask_pattern): "dense", "N:M",
    #: "predefined" or "unstructured"; a device's sparse kernels are matched against it
    pattern: str = "dense"
    exit: int | None = None  # index of the exit head this node belongs to (None: backbone)
    fused: bool = False  # runs inside its producer's kernel (see fuse_nodes)
    #: the module's class name or the function / method name ("MaxPool2d", "add"):
    #: kernel predictors tell ops of one kind apart by it (max from average pooling)
    op: str = ""
    #: shape of its first activation input, batch included (() if it has none): kernel
    #: predictors read input channels, stride and kernel size from it
    input_shape: tuple[int, ...] = ()

    @property
    def sparse_flops(self) -> int:
        """FLOPs if only non-zero weights are multiplied (what a sparse kernel does)."""
        if self.density >= 1.0:
            return self.flops
        return int(round(self.flops * self.density))


@dataclass(frozen=True)
class Cut:
    """Cut ``index``: backbone nodes ``[:index]`` on the edge, the rest on the server."""

    index: int
    after: str  # name of the last edge node ("input" for cut 0)
    tensors: tuple[str, ...]  # producers whose output crosses the cut
    bytes: int  # bytes sent edge -> server (0 for the edge-only cut)
    clean: bool  # exactly one tensor crosses (or none, for edge-only)


@dataclass(frozen=True)
class ExitSite:
    """An early exit: its head nodes and the backbone position it hangs off."""

    index: int
    site: str  # the backbone node the head reads
    position: int  # the head can run on the edge for cuts >= position
    nodes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class LayerGraph:
    """The annotated graph of one model at one input shape."""

    model_name: str
    input_shape: tuple[int, ...]
    input_bytes: int
    result_bytes: int  # bytes of the final output (returned to the edge after a cut)
    nodes: Mapping[str, Node]  # every node, topological order
    backbone: tuple[str, ...]  # backbone node names, topological order
    cuts: tuple[Cut, ...]  # len(backbone) + 1 cuts
    exits: tuple[ExitSite, ...]
    dag: nx.DiGraph = field(repr=False)
    unsupported: Mapping[str, int] = field(default_factory=dict)  # op -> count, FLOPs unknown

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes.values())

    @property
    def flops(self) -> int:
        return sum(n.flops for n in self.nodes.values())

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes.values())

    def backbone_nodes(self) -> list[Node]:
        return [self.nodes[n] for n in self.backbone]

    def exit_nodes(self, index: int) -> list[Node]:
        return [self.nodes[n] for n in self.exits[index].nodes]

    def clean_cuts(self) -> list[int]:
        return [c.index for c in self.cuts if c.clean]


# --------------------------------------------------------------------------------------
# Building it: trace, DAG, output checks, per-node accounting, fusion, cuts and exits.
# --------------------------------------------------------------------------------------


def build_graph(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    name: str | None = None,
) -> LayerGraph:
    """Trace ``model`` on ``example_input`` and annotate every node.

    A leaf module's storage is :func:`dse.costmodel.packing.payload_bytes` (kept values + explicit
    indices for masked layers, raw tensors otherwise). Modules carrying a boolean buffer
    ``weight_mask`` count only the unmasked weights as non-zero.
    """
    label = name or type(model).__name__
    tasks = len(tuple(getattr(model, "task_names", ()))) or 1
    was_training = model.training
    model.eval()
    try:
        gm = trace(model, name=label)
        propagate_shapes(gm, example_input, name=label)
        by_module, unsupported = fvcore_counts(gm, example_input)
    finally:
        model.train(was_training)
    return _annotate(gm, example_input, by_module, unsupported, label, tasks=tasks)


def _annotate(
    gm: fx.GraphModule,
    example: torch.Tensor,
    by_module: Mapping[str, Mapping[str, int]],
    unsupported: Mapping[str, int],
    label: str,
    *,
    tasks: int = 1,
) -> LayerGraph:
    """The frozen graph of a traced, shape-propagated model: its DAG, its outputs checked,
    every node that feeds an output accounted, fused, and the cuts and exits found."""
    trace_ = _Trace.of(gm)
    outputs, finals = _outputs(trace_, label, tasks)
    backbone_set, head_of = _roles(trace_.dag, outputs, finals, tasks)
    accounting = _Accounting(gm, by_module)
    nodes: dict[str, Node] = {}
    for n in trace_.compute:
        if n.name in backbone_set or n.name in head_of:  # else dead code: feeds no output
            nodes[n.name] = _node(n, accounting.account(n), trace_.placeholder, head_of)
    nodes = fuse_nodes(nodes, trace_.dag)
    for name, node in nodes.items():
        trace_.dag.nodes[name]["node"] = node
    backbone = tuple(n.name for n in trace_.compute if n.name in backbone_set)
    input_bytes = int(example.numel()) * example.element_size()
    return LayerGraph(
        model_name=label,
        input_shape=tuple(example.shape),
        input_bytes=input_bytes,
        result_bytes=sum(nodes[f.name].output_bytes for f in finals),
        nodes=nodes,
        backbone=backbone,
        cuts=tuple(_cuts(trace_.dag, backbone, input_bytes, nodes)),
        exits=_exit_sites(trace_.dag, nodes, backbone, (len(outputs) - tasks) // tasks),
        dag=trace_.dag,
        unsupported=unsupported,
    )


@dataclass(frozen=True)
class _Trace:
    """The fx graph's input and output nodes, its compute nodes in order, and the DAG of
    the compute nodes (``"input"`` standing for the placeholder)."""

    placeholder: fx.Node
    output: fx.Node
    compute: list[fx.Node]
    dag: nx.DiGraph

    @classmethod
    def of(cls, gm: fx.GraphModule) -> _Trace:
        graph_nodes = list(gm.graph.nodes)
        placeholder = next(n for n in graph_nodes if n.op == "placeholder")
        output = next(n for n in graph_nodes if n.op == "output")
        compute = [
            n for n in graph_nodes if n.op in ("call_module", "call_function", "call_method")
        ]
        compute_names = {n.name for n in compute}
        dag = nx.DiGraph()
        dag.add_node("input")
        for n in compute:
            dag.add_node(n.name)
            for a in n.all_input_nodes:
                src = "input" if a is placeholder else a.name
                if src in compute_names or src == "input":
                    dag.add_edge(src, n.name)
        return cls(placeholder, output, compute, dag)


def _outputs(trace_: _Trace, label: str, tasks: int) -> tuple[list[fx.Node], list[fx.Node]]:
    """The output nodes (exits first, per task, then the finals) and the ``tasks`` finals;
    an output that is no tensor, or a model without a layer, is bad input."""
    out_arg = trace_.output.args[0]
    if isinstance(out_arg, dict):
        keys = ", ".join(map(repr, out_arg))
        raise InputError(
            label,
            "output",
            f"the model returns a dict ({keys}); dse needs "
            "a tensor, or a tuple of exit logits then the final ones",
            "return the logits tensor (or load it with the option output = KEY)",
        )
    outs = list(out_arg) if isinstance(out_arg, list | tuple) else [out_arg]
    out_nodes = [o for o in outs if isinstance(o, fx.Node)]
    if len(out_nodes) != len(outs) or not outs:
        raise InputError(
            label,
            "output",
            f"the model returns {out_arg!r}, not tensors",
            "return the logits tensor",
        )
    if len(out_nodes) % tasks:
        raise InputError(
            label,
            "output",
            f"the model returns {len(out_nodes)} outputs, not a multiple of its {tasks} tasks",
            "return every exit's logits per task, then the final logits of every task",
        )
    finals = out_nodes[len(out_nodes) - tasks :]
    final = finals[-1]
    if not trace_.compute or final.op == "placeholder":
        raise InputError(
            label,
            "forward",
            "the model has no layer: it returns its input unchanged"
            if final.op == "placeholder"
            else "the model has no layer",
            "give a model that computes its output (nn.Identity or an empty "
            "nn.Sequential cannot be split)",
        )
    return out_nodes, finals


def _roles(
    dag: nx.DiGraph, outputs: list[fx.Node], finals: list[fx.Node], tasks: int
) -> tuple[set[str], dict[str, int]]:
    """Which output each node serves: the backbone (what any final output needs) and, for
    the rest, the exit whose head it belongs to (the last outputs are final, the others
    exits, ``tasks`` outputs per exit)."""
    backbone = set().union(*(nx.ancestors(dag, f.name) | {f.name} for f in finals))
    backbone.discard("input")
    head_of: dict[str, int] = {}
    for i, o in enumerate(outputs[: len(outputs) - tasks]):
        for a in (nx.ancestors(dag, o.name) | {o.name}) - backbone - {"input"}:
            head_of.setdefault(a, i // tasks)
    return backbone, head_of


@dataclass
class _Account:
    """What one node computes and stores, before it becomes a :class:`Node`."""

    kind: str
    op: str
    flops: int = 0
    macs: int = 0
    params: int = 0
    nonzero: int = 0
    weight_bytes: int = 0
    stored: int = 0
    density: float = 1.0
    pattern: str = "dense"


class _Accounting:
    """Accounts the nodes of one graph in order: a handler per fx node kind (a module
    call, or a function or tensor-method call), sharing what is counted once per graph
    (parameters are stored once, an unknown op is warned about once)."""

    def __init__(self, gm: fx.GraphModule, by_module: Mapping[str, Mapping[str, int]]) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.by_module = by_module
        self.calls: dict[str, list[fx.Node]] = {}  # module path -> its call nodes, in order
        for n in gm.graph.nodes:
            if n.op == "call_module":
                self.calls.setdefault(n.target, []).append(n)
        self.warned: set[str] = set()
        self.stored_once: set[str] = set()  # modules / parameters whose storage is counted
        self.handlers: dict[str, Callable[[fx.Node], _Account]] = {
            "call_module": self.module,
            "call_function": self.function,
            "call_method": self.function,
        }

    def account(self, n: fx.Node) -> _Account:
        account = self.handlers[n.op](n)
        assert account.kind in OP_KINDS, account.kind
        return account

    def module(self, n: fx.Node) -> _Account:
        """A leaf module: its parameters (masked ones as kept), stored once however often
        it is called, and its fvcore count, split over its calls."""
        mod = self.modules[n.target]
        a = _Account(module_kind(mod), type(mod).__name__)
        # A module called several times is read at every call, stored once.
        first_call = n.target not in self.stored_once
        self.stored_once.add(n.target)
        for p in mod.parameters():
            a.params += p.numel()
            a.weight_bytes += p.numel() * p.element_size()
        a.nonzero = a.params
        mask = getattr(mod, "weight_mask", None)
        if isinstance(mask, torch.Tensor):
            kept = int(mask.sum())
            a.nonzero = a.params - mask.numel() + kept
            a.density = kept / mask.numel()
            a.pattern = mask_pattern(mask, getattr(mod, "groups", 1))
        if first_call:
            a.stored = _stored_bytes(mod)
        else:
            a.params = a.nonzero = 0
        a.flops, a.macs = flops_from_counter(self.by_module.get(n.target, {}))
        group = self.calls[n.target]
        if len(group) > 1:  # fvcore counts per module: split it over the calls
            weights = [_call_size(c, a.kind) for c in group]
            i = group.index(n)
            a.flops, a.macs = _share(a.flops, weights, i), _share(a.macs, weights, i)
        if a.kind == "other" and a.op not in self.warned:
            self.warned.add(a.op)
            log.warning("op kind of module %s unknown; costed as 'other'", a.op)
        return a

    def function(self, n: fx.Node) -> _Account:
        """A function or tensor method: its rule from the op table, and the parameters it
        reads directly (``F.linear(x, self.weight)``, or a traced root module that is
        itself a leaf such as a bare ``nn.Linear``)."""
        name = function_name(n)
        rule = function_rule(name)
        if rule is UNKNOWN and name not in self.warned:
            self.warned.add(name)
            log.warning("no FLOP rule for %s; counted as 0 FLOPs, kind 'other'", name)
        first = next((a for a in n.all_input_nodes), None)
        inputs = tensor_meta(first) if first is not None else []
        a = _Account(rule.kind, name)
        a.flops, a.macs = rule.count(inputs, tensor_meta(n))
        for arg in n.all_input_nodes:
            p = _parameter(self.gm, arg)
            if p is None:
                continue
            a.weight_bytes += p.numel() * p.element_size()
            if arg.target not in self.stored_once:
                self.stored_once.add(arg.target)
                a.params += p.numel()
                a.stored += p.numel() * p.element_size()
        a.nonzero = a.params
        return a


def _parameter(gm: fx.GraphModule, node: fx.Node) -> nn.Parameter | None:
    """The parameter a ``get_attr`` node reads, or None (buffers, constants, other nodes)."""
    if node.op != "get_attr":
        return None
    try:
        return gm.get_parameter(str(node.target))
    except AttributeError:
        return None


def _stored_bytes(module: nn.Module) -> int:
    """Storage of a leaf module; dense bytes (with a warning) if its mask cannot be packed."""
    try:
        return payload_bytes(module)
    except ValueError as exc:  # e.g. an irregular mask the packed format cannot express
        log.warning("storage of %s counted dense: %s", type(module).__name__, exc)
        return sum(t.numel() * t.element_size() for t in module.parameters())


def _call_size(node: fx.Node, kind: str) -> int:
    """What one call of a shared module scales with: elements read (pool) or produced."""
    if kind == "pool" and node.all_input_nodes:
        metas = tensor_meta(node.all_input_nodes[0])
    else:
        metas = tensor_meta(node)
    return int(math.prod(metas[0].shape)) if metas else 0


def _share(total: int, weights: list[int], i: int) -> int:
    """Call ``i``'s integer share of ``total`` in proportion to ``weights``; shares sum
    to ``total`` exactly (equal shares if every weight is 0)."""
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    before = sum(weights[:i])
    return total * (before + weights[i]) // whole - total * before // whole


def _node(n: fx.Node, a: _Account, placeholder: fx.Node, head_of: Mapping[str, int]) -> Node:
    """The frozen :class:`Node` of an accounted fx node: its sizes from the shapes."""
    metas = tensor_meta(n)
    activations = [x for x in n.all_input_nodes if x.op != "get_attr"]
    return Node(
        name=n.name,
        target=n.target if isinstance(n.target, str) else function_name(n),
        kind=a.kind,
        inputs=tuple("input" if x is placeholder else x.name for x in activations),
        output_shape=tuple(int(s) for s in metas[0].shape) if metas else (),
        output_bytes=nbytes(metas),
        input_bytes=sum(nbytes(tensor_meta(x)) for x in activations),
        params=a.params,
        nonzero_params=a.nonzero,
        weight_bytes=a.weight_bytes,
        stored_bytes=a.stored,
        flops=a.flops,
        macs=a.macs,
        density=a.density,
        pattern=a.pattern,
        exit=head_of.get(n.name),
        op=a.op,
        input_shape=_first_shape(activations),
    )


def _first_shape(inputs: list[fx.Node]) -> tuple[int, ...]:
    """The shape of the first tensor among ``inputs`` (() if none is a tensor)."""
    for x in inputs:
        metas = tensor_meta(x)
        if metas:
            return tuple(int(s) for s in metas[0].shape)
    return ()


def _exit_sites(
    dag: nx.DiGraph, nodes: Mapping[str, Node], backbone: tuple[str, ...], count: int
) -> tuple[ExitSite, ...]:
    """Each exit's head nodes and the last backbone node it reads (its site)."""
    position = {name: i for i, name in enumerate(backbone)}
    exits = []
    for i in range(count):
        head = tuple(n for n in nodes if nodes[n].exit == i)
        reads = {p for h in head for p in dag.predecessors(h) if p in position}
        site = max(reads, key=position.__getitem__) if reads else backbone[0]
        exits.append(ExitSite(i, site, position[site] + 1, head))
    return tuple(exits)


_FUSE_ANCHORS = {
    "norm": ("conv", "depthwise_conv", "linear"),
    "activation": ("conv", "depthwise_conv", "linear", "norm", "add"),
}


def fuse_nodes(nodes: Mapping[str, Node], dag: nx.DiGraph) -> dict[str, Node]:
    """Mark the norms and activations an inference runtime fuses into their producer.

    A batch norm right after a conv or linear is folded into its weights; an activation
    right after a conv, linear, norm or residual add runs in the same kernel. Either only
    when it is the producer's sole consumer and the producer is itself a kernel (or
    fused into one). Fused nodes pay no per-layer overhead and no memory traffic of their
    own (see costs.py), as per-fused-kernel predictors such as nn-Meter assume.
    """
    out = dict(nodes)
    for name, node in nodes.items():
        anchors = _FUSE_ANCHORS.get(node.kind)
        if anchors is None or len(node.inputs) != 1 or node.inputs[0] not in out:
            continue
        producer = out[node.inputs[0]]
        if dag.out_degree(producer.name) != 1:
            continue
        if producer.kind in anchors or (producer.fused and node.kind == "activation"):
            out[name] = replace(node, fused=True)
    return out


def fusion_after_cut(nodes: list[Node], k: int) -> dict[str, bool]:
    """Which of the fused backbone nodes ``nodes[k:]`` stay fused when ``nodes[:k]`` run on
    the other side of cut ``k``.

    A node is fused into its producer's kernel (:func:`fuse_nodes`) only if that producer
    runs on the same device: a norm or activation whose conv ran on the edge is a kernel
    of its own on the server, and so is an activation fused into that norm. Returns the
    fused nodes at positions ``>= k`` that are no longer fused, mapped to False (the rest
    keep their flag).
    """
    position = {x.name: i for i, x in enumerate(nodes)}
    status: dict[str, bool] = {}
    for x in nodes[k:]:
        if not x.fused:
            continue
        i = position.get(x.inputs[0]) if x.inputs else None
        if i is None or i < k:
            fused = False
        else:
            producer = nodes[i]
            still = status.get(producer.name, producer.fused)
            fused = producer.kind in _FUSE_ANCHORS[x.kind] or (still and x.kind == "activation")
        status[x.name] = fused
    return {name: False for name, fused in status.items() if not fused}


def _cuts(
    dag: nx.DiGraph, backbone: tuple[str, ...], input_bytes: int, nodes: Mapping[str, Node]
) -> list[Cut]:
    """Every cut of the backbone order, with the tensors that cross it.

    A producer crosses cut ``k`` when it runs on the edge (the input, or backbone position
    < k) and some backbone consumer runs on the server (position >= k). Exit heads read
    their site on whichever side the site is, so they never add to the traffic.
    """
    position = {name: i for i, name in enumerate(backbone)}
    position["input"] = -1
    # last backbone consumer of every producer
    last_use: dict[str, int] = {}
    for name in ["input", *backbone]:
        users = [position[s] for s in dag.successors(name) if s in position]
        if users:
            last_use[name] = max(users)
    cuts = []
    n = len(backbone)
    for k in range(n + 1):
        if k == n:
            cuts.append(Cut(k, backbone[-1] if n else "input", (), 0, True))
            continue
        crossing = tuple(p for p in ["input", *backbone[:k]] if last_use.get(p, -2) >= k)
        size = sum(input_bytes if p == "input" else nodes[p].output_bytes for p in crossing)
        after = backbone[k - 1] if k else "input"
        cuts.append(Cut(k, after, crossing, size, len(crossing) == 1))
    return cuts


def server_nodes(graph: LayerGraph, cut: int) -> set[str]:
    """Nodes on the server at ``cut``: the backbone from ``cut`` on and the heads of the
    exits whose site is past it."""
    server = set(graph.backbone[cut:])
    for e in graph.exits:
        if cut < e.position:
            server.update(e.nodes)
    return server


def _site_of_module(gm: fx.GraphModule, path: str) -> str:
    """The last fx node executed inside module ``path`` (its output)."""
    last = None
    for node in gm.graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        paths = {v[0] if isinstance(v, tuple) else k for k, v in stack.items()}
        inside = node.op == "call_module" and (
            node.target == path or str(node.target).startswith(path + ".")
        )  # a retraced GraphModule has no stack
        if path in paths or inside:
            last = node.name
    if last is None:
        raise InputError("model", "exit_sites", f"no layer runs inside module {path!r}")
    return last


def site_nodes(gm: fx.GraphModule, module_paths: Iterable[str]) -> list[str]:
    """The fx node names that produce the outputs of the given module paths."""
    return [_site_of_module(gm, p) for p in module_paths]


__all__ = [
    "fusion_after_cut",
    "Cut",
    "ExitSite",
    "LayerGraph",
    "Node",
    "build_graph",
    "server_nodes",
    "site_nodes",
]
