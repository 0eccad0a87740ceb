"""The two halves of a split network as chains of straight-line modules that
``torch.export`` turns into programs, one program per stage.

Each side is cut at its used exits into stages: the backbone segment up to an exit and
that exit's heads, then the next segment, and so on; the last stage runs to the cut on the
edge (the final heads too when the cut is edge-only) and to the end and the final heads on
the server. A stage has no control flow: it evaluates its exit and says whether the sample
leaves (``done``), and the host runs the next stage only when it does not
(:class:`dse.deploy.bundle.Chain`), so the layers past the exit a sample leaves at never
run. (One program per side with a ``torch.cond`` at every exit was the first lowering:
torch traces a cond's branches with symbolic shapes, which some networks' layers cannot
take - vgg-s with an exit before a cut in its last stage - and each cond cost seconds to
export.)

Both sides decide who leaves as the study scored it (``dse.search.Scorer.decisions``): a
task passes an exit when its confidence (the candidate's criterion,
:func:`dse.nets.confidence`) reaches its threshold, compared in float64 like the scorer's
numpy; policy ``all`` leaves where every (open) task passes, ``per_task`` answers each task
at its first passing exit and goes on until all are answered.

The state carried from stage to stage: ``open_tasks`` (bool ``[T]``: the tasks this side
answers; every task on the edge), ``answered`` (int64 ``[T]``: the index of the exit that
answered each task among the used exits, -1 while open; the final heads' index is the
number of used exits), each task's logits (``[1, classes]``, zeros until answered) and
``live``, the tensors later stages read. The signatures, for T tasks:

- the edge's first stage takes ``(x)``, the server's first ``(open_tasks, *payload)``;
- every later stage takes ``(open_tasks, answered, *logits, *live)``;
- a stage that ends at an exit returns ``(done, answered, *logits, *live)``, ``done`` a
  bool scalar: every open task is answered;
- a side's last stage returns ``(answered, *logits, *payload)`` on the edge and
  ``(answered, *logits)`` on the server.

The payload is, per crossing tensor, the codec's :meth:`dse.nets.Codec.quantize` result
(values, then scale and offset for int8/int4) or the raw float32 tensor (no codec). A side
without exits is one program with the signature of a format-1 bundle's program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel import LayerGraph, trace
from dse.nets import Codec, confidence, dequantize


@dataclass(frozen=True)
class Stage:
    """Nodes to run, then (unless final) one exit's heads and a decision."""

    nodes: tuple[str, ...]  # fx node names, execution order
    heads: tuple[str, ...] = ()  # the exit's head nodes (empty: the final stage)
    outputs: tuple[str, ...] = ()  # per task, the node whose value is the logits
    exit_index: int = -1  # index among the used exits (-1: final stage)
    live: tuple[str, ...] = ()  # values the later stages read (the cond's operands)


@dataclass(frozen=True)
class _Ref:
    """A node's value in the environment."""

    name: str


@dataclass(frozen=True)
class _Attr:
    """A ``get_attr`` node: an attribute of the traced network."""

    target: str


class _Runner(nn.Module):
    """Executes named nodes of a traced network's fx graph on an environment.

    It holds only the layers and attributes those nodes use, at their paths in the network
    (so a program's state_dict keys are ``runner.gm.<path>``): ``torch.export`` keeps every
    parameter of the module it exports, used or not, and a stage's program should carry
    its own weights only. The nodes are read once, here, so a run touches plain values."""

    def __init__(self, gm: fx.GraphModule, names: Sequence[str]) -> None:
        super().__init__()
        by_name = {n.name: n for n in gm.graph.nodes}
        self.placeholder = next(n.name for n in gm.graph.nodes if n.op == "placeholder")
        self._plan: dict[str, tuple[str, Any, Any, Any]] = {}
        modules: set[str] = set()
        attrs: set[str] = set()
        for name in names:
            n = by_name[name]
            if n.op not in ("call_module", "call_function", "call_method"):
                continue
            args = fx.node.map_arg(n.args, self._template)
            kwargs = fx.node.map_arg(n.kwargs, self._template)
            self._plan[n.name] = (n.op, n.target, args, kwargs)
            if n.op == "call_module":
                modules.add(str(n.target))
            attrs |= {str(a.target) for a in n.all_input_nodes if a.op == "get_attr"}
        self.gm = _holding(gm, modules, attrs)
        self._layers = {path: gm.get_submodule(path) for path in modules}

    @staticmethod
    def _template(a: fx.Node) -> Any:
        return _Attr(str(a.target)) if a.op == "get_attr" else _Ref(a.name)

    def key(self, name: str) -> str:
        """The environment key of a layer-graph name (``"input"`` is the placeholder)."""
        return self.placeholder if name == "input" else name

    def run(self, names: Sequence[str], env: dict[str, Any]) -> None:
        for name in names:
            op, target, args_t, kwargs_t = self._plan[name]
            args = self._fill(args_t, env)
            kwargs = self._fill(kwargs_t, env)
            if op == "call_module":
                env[name] = self._layers[target](*args, **kwargs)
            elif op == "call_function":
                env[name] = target(*args, **kwargs)
            else:
                obj, *rest = args
                env[name] = getattr(obj, target)(*rest, **kwargs)

    def _fill(self, value: Any, env: dict[str, Any]) -> Any:
        if isinstance(value, _Ref):
            return env[value.name]
        if isinstance(value, _Attr):
            obj: Any = self.gm
            for part in value.target.split("."):
                obj = getattr(obj, part)
            return obj
        if isinstance(value, tuple | list):
            return type(value)(self._fill(v, env) for v in value)
        if isinstance(value, dict):
            return {k: self._fill(v, env) for k, v in value.items()}
        return value


def _depth(path: str) -> int:
    return path.count(".")


def _within(path: str, placed: set[str]) -> bool:
    """Whether ``path`` is one of ``placed`` or inside one."""
    parts = path.split(".")
    return any(".".join(parts[:i]) in placed for i in range(1, len(parts) + 1))


def _parent(root: nn.Module, path: str) -> nn.Module:
    """The module at dotted ``path`` under ``root``, created empty where missing."""
    node = root
    for part in path.split(".") if path else ():
        if not hasattr(node, part):
            node.add_module(part, nn.Module())
        node = getattr(node, part)
    return node


def _holding(gm: fx.GraphModule, modules: set[str], attrs: set[str]) -> nn.Module:
    """A module tree holding ``gm``'s submodules ``modules`` and attributes ``attrs`` (the
    same objects, not copies) at their paths, and nothing else."""
    root = nn.Module()
    placed: set[str] = set()
    for path in sorted(modules, key=_depth):
        if _within(path, placed):
            continue  # inside a module already held
        owner, _, leaf = path.rpartition(".")
        _parent(root, owner).add_module(leaf, gm.get_submodule(path))
        placed.add(path)
    for target in sorted(attrs, key=_depth):
        owner_path, _, leaf = target.rpartition(".")
        if owner_path and _within(owner_path, placed):
            continue
        owner = gm.get_submodule(owner_path) if owner_path else gm
        value = getattr(owner, leaf)
        parent = _parent(root, owner_path)
        if isinstance(value, nn.Module):
            parent.add_module(leaf, value)
            placed.add(target)
        elif isinstance(value, nn.Parameter):
            parent.register_parameter(leaf, value)
        elif leaf in owner._buffers:
            persistent = leaf not in owner._non_persistent_buffers_set
            parent.register_buffer(leaf, value, persistent=persistent)
        else:  # a plain tensor attribute: a constant of the program
            setattr(parent, leaf, value)
    return root


def traced(net: nn.Module) -> fx.GraphModule:
    """The network traced as the layer graph and the study's codec outputs trace it."""
    gm = trace(net, name="network")
    return gm.eval()


def _outputs(gm: fx.GraphModule) -> list[str]:
    """The nodes a traced network returns, in order (per exit, then the final heads; a
    task each)."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    value = out.args[0]
    values = list(value) if isinstance(value, tuple | list) else [value]
    return [v.name for v in values]


def _head_order(gm: fx.GraphModule, heads: set[str]) -> tuple[str, ...]:
    return tuple(n.name for n in gm.graph.nodes if n.name in heads)


def _with_live(
    gm: fx.GraphModule, stages: list[Stage], start: Sequence[str], end: Sequence[str]
) -> list[Stage]:
    """Fill each non-final stage's ``live``: the values produced so far (or given at the
    start) that a later stage reads, or that the end needs (``end``: the payload)."""
    users: dict[str, set[str]] = {}
    for n in gm.graph.nodes:
        for a in n.all_input_nodes:
            users.setdefault(a.name, set()).add(n.name)
    produced = list(start)
    out = []
    for i, s in enumerate(stages):
        produced += [*s.nodes, *s.heads]
        later = {x for t in stages[i + 1 :] for x in (*t.nodes, *t.heads)}
        live = tuple(p for p in dict.fromkeys(produced) if users.get(p, set()) & later or p in end)
        out.append(Stage(s.nodes, s.heads, s.outputs, s.exit_index, live))
    return out


def plan_stages(
    gm: fx.GraphModule, graph: LayerGraph, cut: int, used: Sequence[int], tasks: int, side: str
) -> list[Stage]:
    """The stages of one side: backbone segments between its used exits, each exit's
    heads, and a final stage (to the cut on the edge, with the final heads when the cut
    is edge-only; to the end and the final heads on the server)."""
    placeholder = next(n.name for n in gm.graph.nodes if n.op == "placeholder")
    outs = _outputs(gm)
    finals = outs[len(outs) - tasks :]
    backbone = graph.backbone
    n = len(backbone)
    edge = side == "edge"
    lo, hi = (0, cut) if edge else (cut, n)
    stages = []
    pos = lo
    for idx, j in enumerate(used):
        e = graph.exits[j]
        if (e.position <= cut) != edge:
            continue
        stages.append(
            Stage(
                tuple(backbone[pos : e.position]),
                _head_order(gm, set(e.nodes)),
                tuple(outs[j * tasks + t] for t in range(tasks)),
                idx,
            )
        )
        pos = e.position
    final_heads: tuple[str, ...] = ()
    if hi == n:  # the final heads run here (a task's own layers after the backbone)
        final_heads = _head_order(gm, _ancestors_of(gm, finals, set(backbone)))
    stages.append(Stage((*backbone[pos:hi], *final_heads), (), tuple(finals) if hi == n else ()))
    crossing = [placeholder if p == "input" else p for p in graph.cuts[cut].tensors]
    return _with_live(gm, stages, [placeholder] if edge else crossing, crossing if edge else [])


def _ancestors_of(gm: fx.GraphModule, names: Sequence[str], stop: set[str]) -> set[str]:
    """The compute nodes the final outputs need that are not backbone nodes (a task's
    head layers on a shared backbone), the outputs included."""
    by_name = {n.name: n for n in gm.graph.nodes}
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        node = by_name[name]
        if name in seen or name in stop or node.op in ("placeholder", "get_attr"):
            continue
        seen.add(name)
        todo += [a.name for a in node.all_input_nodes]
    return seen


class _Decider(nn.Module):
    """The exit rule shared by both sides."""

    def __init__(
        self, thresholds: Sequence[float], criterion: str, policy: str, classes: Sequence[int]
    ) -> None:
        super().__init__()
        self.register_buffer("thresholds", torch.tensor(list(thresholds), dtype=torch.float64))
        self.criterion = criterion
        self.policy = policy
        self.classes = tuple(int(c) for c in classes)

    def initial(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        answered = torch.full((len(self.classes),), -1, dtype=torch.int64)
        return answered, [torch.zeros(1, c) for c in self.classes]

    def decide(
        self,
        index: int,
        logits: Sequence[torch.Tensor],
        answered: torch.Tensor,
        given: list[torch.Tensor],
        open_: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Record the tasks answered at exit ``index`` and whether the sample leaves."""
        conf = torch.cat([confidence(lg, self.criterion).reshape(1) for lg in logits])
        passed = conf.to(torch.float64) >= self.thresholds
        waiting = open_ & (answered < 0)
        if self.policy == "per_task":
            newly = waiting & passed
        else:  # every open task passes, or none is answered here
            newly = waiting & (passed | ~open_).all()
        answered = torch.where(newly, torch.full_like(answered, index), answered)
        given = [
            torch.where(newly[t], lg.to(torch.float32), g)
            for t, (lg, g) in enumerate(zip(logits, given, strict=True))
        ]
        done = (~open_ | (answered >= 0)).all()
        return answered, given, done


class _StageModule(nn.Module):
    """One stage as a straight-line module (see the module docstring); the subclasses
    give its inputs."""

    def __init__(
        self,
        gm: fx.GraphModule,
        stage: Stage,
        decider: _Decider,
        *,
        final_index: int,
        inputs: Sequence[str],
        finish: Callable[[_Runner, dict[str, Any]], list[torch.Tensor]],
    ) -> None:
        super().__init__()
        self.runner = _Runner(gm, [*stage.nodes, *stage.heads])
        self.decider = decider
        self.stage = stage
        self.final_index = final_index
        self.inputs = tuple(inputs)  # the environment keys of the live tensors taken
        self._finish = finish  # the last stage's extra outputs (the payload), from env

    def body(
        self,
        env: dict[str, Any],
        open_: torch.Tensor,
        answered: torch.Tensor,
        given: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        s = self.stage
        self.runner.run(s.nodes, env)
        if s.exit_index < 0:  # the side's last stage
            if s.outputs:  # the final heads answer every task still open
                waiting = open_ & (answered < 0)
                answered = torch.where(
                    waiting, torch.full_like(answered, self.final_index), answered
                )
                given = [
                    torch.where(waiting[t], env[o].to(torch.float32), g)
                    for t, (o, g) in enumerate(zip(s.outputs, given, strict=True))
                ]
            return (answered, *given, *self._finish(self.runner, env))
        self.runner.run(s.heads, env)
        answered, given, done = self.decider.decide(
            s.exit_index, [env[o] for o in s.outputs], answered, given, open_
        )
        return (done, answered, *given, *(env[name] for name in s.live))


class _EdgeEntry(_StageModule):
    """The edge's first stage: ``forward(x)``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        open_ = torch.ones(len(self.decider.classes), dtype=torch.bool)
        answered, given = self.decider.initial()
        return self.body({self.runner.placeholder: x}, open_, answered, given)


class _ServerEntry(_StageModule):
    """The server's first stage: ``forward(open_tasks, *payload)``."""

    def __init__(self, *args: Any, codec: Codec | None, crossing: Sequence[str], **kw: Any):
        super().__init__(*args, **kw)
        self.codec = codec
        self.crossing = tuple(crossing)

    def forward(self, open_tasks: torch.Tensor, *payload: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # per crossing tensor: its codes, scale and offset (int8, int4), else its values
        step = 3 if self.codec is not None and self.codec.quantised else 1
        env: dict[str, Any] = {
            self.runner.key(name): dequantize(*payload[j * step : (j + 1) * step])
            for j, name in enumerate(self.crossing)
        }
        answered, given = self.decider.initial()
        return self.body(env, open_tasks, answered, given)


class _Next(_StageModule):
    """A later stage: ``forward(open_tasks, answered, *logits, *live)``."""

    def forward(
        self, open_tasks: torch.Tensor, answered: torch.Tensor, *rest: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        tasks = len(self.decider.classes)
        env = dict(zip(self.inputs, rest[tasks:], strict=True))
        return self.body(env, open_tasks, answered, list(rest[:tasks]))


def _payload(
    codec: Codec | None, crossing: Sequence[str]
) -> Callable[[_Runner, dict[str, Any]], list[torch.Tensor]]:
    """The edge's last outputs: each crossing tensor, quantised by ``codec`` (or float32)."""

    def finish(runner: _Runner, env: dict[str, Any]) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for name in crossing:
            x = env[runner.key(name)].to(torch.float32)
            if codec is None:
                out.append(x)
                continue
            values, scale, lo = codec.quantize(x)
            out += [values] if scale is None else [values, scale, lo]
        return out

    return finish


def _nothing(runner: _Runner, env: dict[str, Any]) -> list[torch.Tensor]:
    return []


def side_programs(
    gm: fx.GraphModule,
    graph: LayerGraph,
    cut: int,
    used: Sequence[int],
    *,
    side: str,
    codec: Codec | None,
    thresholds: Sequence[float],
    criterion: str,
    policy: str,
    classes: Sequence[int],
) -> list[nn.Module]:
    """The stage modules of one side (``"edge"`` or ``"server"``) of the network ``gm``
    (its layer graph ``graph``) cut at ``cut`` with the exits ``used`` (indices into
    ``graph.exits``, in execution order), in eval mode, in the order they run."""
    if side not in ("edge", "server"):
        raise ValueError(f"side must be 'edge' or 'server', got {side!r}")
    stages = plan_stages(gm, graph, cut, used, len(classes), side)
    decider = _Decider(thresholds, criterion, policy, classes)
    crossing = tuple(graph.cuts[cut].tensors) if cut < len(graph.backbone) else ()
    common: dict[str, Any] = dict(final_index=len(used))
    out: list[nn.Module] = []
    for i, stage in enumerate(stages):
        last = i == len(stages) - 1
        finish = (_payload(codec, crossing) if side == "edge" else _nothing) if last else _nothing
        if i:
            module: nn.Module = _Next(
                gm, stage, decider, inputs=stages[i - 1].live, finish=finish, **common
            )
        elif side == "edge":
            module = _EdgeEntry(gm, stage, decider, inputs=(), finish=finish, **common)
        else:
            module = _ServerEntry(
                gm,
                stage,
                decider,
                inputs=(),
                finish=finish,
                codec=codec,
                crossing=crossing,
                **common,
            )
        out.append(module.eval())
    return out


def run_all(
    programs: Sequence[Callable[..., Any]], first: tuple[torch.Tensor, ...], open_: torch.Tensor
) -> tuple[list[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]:
    """Every stage of a side run in turn whatever its exit decides: the inputs each stage
    took (examples to export it with) and the last stage's outputs."""
    inputs = [first]
    out = tuple(programs[0](*first))
    for program in programs[1:]:
        done, answered, *rest = out
        inputs.append((open_, answered, *rest))
        out = tuple(program(*inputs[-1]))
    return inputs, out
