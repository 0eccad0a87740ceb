"""The two halves of a split network as modules ``torch.export`` turns into programs.

:class:`EdgeModule` runs the backbone up to the cut, evaluating the used edge exits in
order, and :class:`ServerModule` runs the rest from the (decoded) tensors at the cut,
evaluating the server exits. Both decide who leaves as the study scored it
(``dse.search.Scorer.decisions``): a task passes an exit when its confidence (the
candidate's criterion, :func:`dse.nets.confidence`) reaches its threshold, compared in
float64 like the scorer's numpy; policy ``all`` leaves where every (open) task passes,
``per_task`` answers each task at its first passing exit and goes on until all are
answered. Every exit is a ``torch.cond``: what comes after it is a branch, so the layers
past an exit a sample leaves at never run.

The state carried through the stages: ``answered`` (int64 ``[T]``: the index of the exit
that answered each task among the used exits, -1 while open) and each task's logits
(zeros until answered). The edge module returns ``(answered, *logits, *payload)`` where
the payload is, per crossing tensor, the codec's :meth:`dse.nets.Codec.quantize` result
(values, then scale and offset for int8/int4) or the raw float32 tensor (no codec); the
server module takes ``(open_tasks, *payload)`` and returns ``(answered, *logits)``, the
final heads' index being the number of used exits.
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

    The nodes are read once, here: ``torch.cond`` traces its branches with dynamo, which
    does not trace into ``torch.fx`` itself, so the run only touches plain values."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__()
        self.gm = gm
        self._layers = dict(gm.named_modules())
        self.placeholder = next(n.name for n in gm.graph.nodes if n.op == "placeholder")
        self._plan: dict[str, tuple[str, Any, Any, Any]] = {}
        for n in gm.graph.nodes:
            if n.op not in ("call_module", "call_function", "call_method"):
                continue
            args = fx.node.map_arg(n.args, self._template)
            kwargs = fx.node.map_arg(n.kwargs, self._template)
            self._plan[n.name] = (n.op, n.target, args, kwargs)

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


class _Staged(nn.Module):
    """Stages joined by ``torch.cond`` at every exit."""

    def __init__(
        self,
        gm: fx.GraphModule,
        stages: list[Stage],
        decider: _Decider,
        finish: Callable[[dict[str, Any]], list[torch.Tensor]],
        templates: Callable[[], list[torch.Tensor]],
    ) -> None:
        super().__init__()
        self.runner = _Runner(gm)
        self.decider = decider
        self.stages = stages
        self._finish = finish  # the final stage's extra outputs (the payload), from env
        self._templates = templates  # zeros shaped like them, for a sample that left

    def staged(self, env: dict[str, Any], open_: torch.Tensor) -> tuple[torch.Tensor, ...]:
        answered, given = self.decider.initial()
        return self._stage(0, env, open_, answered, given)

    def _stage(
        self,
        i: int,
        env: dict[str, Any],
        open_: torch.Tensor,
        answered: torch.Tensor,
        given: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        s = self.stages[i]
        self.runner.run(s.nodes, env)
        if s.exit_index < 0:  # final stage
            if s.outputs:  # the final heads answer every task still open
                waiting = open_ & (answered < 0)
                answered = torch.where(
                    waiting, torch.full_like(answered, self.final_index), answered
                )
                given = [
                    torch.where(waiting[t], env[o].to(torch.float32), g)
                    for t, (o, g) in enumerate(zip(s.outputs, given, strict=True))
                ]
            # new tensors (a cond branch may not return its operands), and contiguous
            # ones: both branches of a cond must agree on strides, and a convolution's
            # output may come channels-last where the other branch's zeros do not
            return (
                answered.clone(),
                *(g.clone() for g in given),
                *(p.clone(memory_format=torch.contiguous_format) for p in self._finish(env)),
            )
        self.runner.run(s.heads, env)
        answered, given, done = self.decider.decide(
            s.exit_index, [env[o] for o in s.outputs], answered, given, open_
        )
        live = [env[name] for name in s.live]
        tasks = len(given)

        def leave(
            answered: torch.Tensor, open_: torch.Tensor, *rest: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            return (answered.clone(), *(g.clone() for g in rest[:tasks]), *self._templates())

        def go(
            answered: torch.Tensor, open_: torch.Tensor, *rest: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            given = list(rest[:tasks])
            env = dict(zip(s.live, rest[tasks:], strict=True))
            return self._stage(i + 1, env, open_, answered, given)

        return tuple(torch.cond(done, leave, go, (answered, open_, *given, *live)))

    final_index: int = 0


class EdgeModule(_Staged):
    """The edge half: ``forward(x) -> (answered, *logits, *payload)`` (see the module
    docstring)."""

    def __init__(
        self,
        gm: fx.GraphModule,
        graph: LayerGraph,
        cut: int,
        used: Sequence[int],
        *,
        codec: Codec | None,
        thresholds: Sequence[float],
        criterion: str,
        policy: str,
        classes: Sequence[int],
        example: torch.Tensor,
    ) -> None:
        tasks = len(classes)
        stages = plan_stages(gm, graph, cut, used, tasks, "edge")
        self.crossing = tuple(graph.cuts[cut].tensors) if cut < len(graph.backbone) else ()
        self.codec = codec
        super().__init__(
            gm, stages, _Decider(thresholds, criterion, policy, classes), self._payload, self._zeros
        )
        self.final_index = len(used)
        with torch.no_grad():  # the payload's shapes and dtypes, for the leave branches
            env = {self.runner.placeholder: example}
            self.runner.run([n for s in stages for n in (*s.nodes, *s.heads)], env)
            self._specs = [(tuple(t.shape), t.dtype) for t in self._payload(env)]

    def _payload(self, env: dict[str, Any]) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for name in self.crossing:
            x = env[self.runner.key(name)]
            if self.codec is None:
                out.append(x.to(torch.float32).clone())
                continue
            values, scale, lo = self.codec.quantize(x.to(torch.float32))
            out += [values.clone()] if scale is None else [values, scale, lo]
        return out

    def _zeros(self) -> list[torch.Tensor]:
        return [torch.zeros(shape, dtype=dtype) for shape, dtype in self._specs]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        open_ = torch.ones(len(self.decider.classes), dtype=torch.bool)
        return self.staged({self.runner.placeholder: x}, open_)


class ServerModule(_Staged):
    """The server half: ``forward(open_tasks, *payload) -> (answered, *logits)``."""

    def __init__(
        self,
        gm: fx.GraphModule,
        graph: LayerGraph,
        cut: int,
        used: Sequence[int],
        *,
        codec: Codec | None,
        thresholds: Sequence[float],
        criterion: str,
        policy: str,
        classes: Sequence[int],
    ) -> None:
        tasks = len(classes)
        stages = plan_stages(gm, graph, cut, used, tasks, "server")
        super().__init__(
            gm, stages, _Decider(thresholds, criterion, policy, classes), lambda env: [], list
        )
        self.crossing = tuple(graph.cuts[cut].tensors)
        self.codec = codec
        self.final_index = len(used)

    def forward(self, open_tasks: torch.Tensor, *payload: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # per crossing tensor: its codes, scale and offset (int8, int4), else its values
        step = 3 if self.codec is not None and self.codec.quantised else 1
        env: dict[str, Any] = {
            self.runner.key(name): dequantize(*payload[j * step : (j + 1) * step])
            for j, name in enumerate(self.crossing)
        }
        return self.staged(env, open_tasks)
