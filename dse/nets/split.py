"""The network run as it is split: the edge part, the payload at the cut, the server part.

A codec changes no weight, only what the server part reads. :func:`codec_outputs` runs a
trained network once per batch up to every cut (one ordinary forward pass, keeping every
layer's output), then, for each cut and each lossy codec, codes the tensors that cross the
cut sample by sample (:meth:`Codec.roundtrip`: one real payload per sample, batch size one
as a device sends) and runs only the server part (the backbone from the cut on and the
exits past it) on the decoded tensors. Edge exits read the tensors before coding, so their
outputs never change. A lossless codec (fp32, or fp32 with zstd or zlib) gives the server
the very tensors it had: only the payload sizes are measured.

What comes out per (cut, codec), for validation and test: each task's per-output
correctness and confidences (the only things scoring reads), every sample's payload
length in bytes, and each output's class (what an exported split is held to).
:class:`CodecWork` counts what building them cost: forward passes of the whole network,
server-part passes, and their FLOP-weighted sum in whole-network passes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel import LayerGraph, server_nodes, trace
from dse.nets.codecs import Codec
from dse.nets.exits import CRITERIA, confidence


@dataclass(frozen=True)
class CodecView:
    """One (cut, codec) on one split: what scoring needs in place of the plain logits."""

    correct: np.ndarray  # bool [tasks, outputs, N]
    confidence: dict[str, np.ndarray]  # criterion -> float32 [tasks, outputs, N]
    sizes: np.ndarray  # int64 [N]: payload bytes per sample
    #: int64 [tasks, outputs, N]: each output's class (fresh from codec_outputs; the
    #: cached views keep only what scoring reads, and have None)
    predicted: np.ndarray | None = None

    @functools.cached_property
    def bytes_mean(self) -> float:
        """Mean payload bytes: what the link carries per inference."""
        return float(self.sizes.mean())

    @functools.cached_property
    def bytes_p95(self) -> float:
        return float(np.percentile(self.sizes, 95))


@dataclass
class CodecWork:
    """What building codec outputs cost."""

    full_passes: int = 0  # batches run through the whole network
    server_passes: int = 0  # batches run through a server part (per cut and lossy codec)
    #: all of it in passes of the whole network over the split (a server part counts its
    #: share of the network's FLOPs, a batch its share of the samples)
    equivalent_passes: float = 0.0
    seconds: float = 0.0
    encoded: int = 0  # payloads encoded (samples x cuts x codecs)


sides = server_nodes
"""The graph nodes that run on the server at ``cut``: the backbone from ``cut`` on and the
heads of the exits whose site is past it (the cost model's own split of the graph)."""


def _flop_share(graph: LayerGraph, cut: int) -> float:
    total = sum(n.flops for n in graph.nodes.values()) or 1
    return sum(graph.nodes[n].flops for n in sides(graph, cut)) / total


def codec_outputs(
    net: nn.Module,
    graph: LayerGraph,
    x: torch.Tensor,
    labels: Sequence[torch.Tensor],
    cuts: Sequence[int],
    codecs: Sequence[Codec],
    *,
    tasks: int = 1,
    batch: int = 256,
    work: CodecWork | None = None,
) -> dict[tuple[int, str], CodecView]:
    """Per (cut, codec name): the network's outputs with the cut's tensors coded.

    ``net`` is the trained network (exits attached, eval mode), ``graph`` its layer graph,
    ``x`` the inputs of one split and ``labels`` its labels per task. The edge-only cut
    sends nothing and is skipped.
    """
    work = work if work is not None else CodecWork()
    start = time.perf_counter()
    gm = trace(net, name="network")
    gm.eval()
    modules = dict(gm.named_modules())
    nodes = list(gm.graph.nodes)
    placeholder = next(n for n in nodes if n.op == "placeholder")
    output = next(n for n in nodes if n.op == "output")
    n_cuts = len(graph.cuts)
    plan = [k for k in cuts if 0 <= k < n_cuts - 1 and graph.cuts[k].bytes > 0]
    server_of = {k: sides(graph, k) for k in plan}
    share_of = {k: _flop_share(graph, k) for k in plan}  # fixed per cut: once, not per batch
    by_name = {n.name: n for n in nodes}
    crossing_of = {
        k: [placeholder if p == "input" else by_name[p] for p in graph.cuts[k].tensors]
        for k in plan
    }
    lossy = [c for c in codecs if c.lossy]
    pieces: dict[tuple[int, str], dict[str, list[Any]]] = {
        (k, c.name): {"out": [], "sizes": []} for k in plan for c in codecs
    }
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i : i + batch]
            env = _run(gm, modules, nodes, {placeholder: xb}, set())
            work.full_passes += 1
            share = len(xb) / len(x)
            work.equivalent_passes += share
            plain = _outputs(env, output)
            for k in plan:
                crossing = crossing_of[k]
                values = [env[n] for n in crossing]
                for codec in codecs:
                    decoded, sizes = codec.roundtrip(values)
                    work.encoded += len(xb)
                    piece = pieces[(k, codec.name)]
                    piece["sizes"].append(np.asarray(sizes, dtype=np.int64))
                    if codec in lossy:
                        seeded = dict(env)
                        seeded.update(zip(crossing, decoded, strict=True))
                        out = _outputs(_run(gm, modules, nodes, seeded, server_of[k]), output)
                        work.server_passes += 1
                        work.equivalent_passes += share * share_of[k]
                        piece["out"].append(out)
                    else:
                        piece["out"].append(plain)
    views = {}
    for (k, name), piece in pieces.items():
        outs = [torch.cat([o[j] for o in piece["out"]]) for j in range(len(piece["out"][0]))]
        per_task = [torch.stack(outs[t::tasks]) for t in range(tasks)]
        predicted = np.stack([lg.argmax(-1).numpy() for lg in per_task])
        correct = np.stack([p == y.numpy() for p, y in zip(predicted, labels, strict=True)])
        conf = {c: np.stack([confidence(lg, c).numpy() for lg in per_task]) for c in CRITERIA}
        views[(k, name)] = CodecView(correct, conf, np.concatenate(piece["sizes"]), predicted)
    work.seconds += time.perf_counter() - start
    return views


def _outputs(env: dict[fx.Node, Any], output: fx.Node) -> list[torch.Tensor]:
    value = fx.node.map_arg(output.args[0], lambda n: env[n])
    return list(value) if isinstance(value, tuple | list) else [value]


def _run(
    gm: fx.GraphModule,
    modules: dict[str, nn.Module],
    nodes: list[fx.Node],
    env: dict[fx.Node, Any],
    only: set[str],
) -> dict[fx.Node, Any]:
    """Execute ``gm``'s graph; with ``only`` non-empty, only the compute nodes named in it
    run (the others keep their value in ``env``, which seeds them)."""
    env = dict(env)
    for n in nodes:
        if n.op in ("placeholder", "output"):
            continue
        if only and n.op != "get_attr" and n.name not in only:
            continue
        if n.op == "get_attr":
            env[n] = attr_of(gm, str(n.target))
            continue
        args = fx.node.map_arg(n.args, lambda a: env[a])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
        env[n] = call_node(n, modules, args, kwargs)
    return env


def call_node(n: fx.Node, modules: dict[str, nn.Module], args: Any, kwargs: Any) -> Any:
    """Run one compute node of a traced graph (a module, function or method call) on the
    values of its arguments."""
    if n.op == "call_module":
        return modules[str(n.target)](*args, **kwargs)
    if n.op == "call_function":
        return n.target(*args, **kwargs)  # type: ignore[operator]
    obj, *rest = args  # call_method
    return getattr(obj, str(n.target))(*rest, **kwargs)


def attr_of(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
