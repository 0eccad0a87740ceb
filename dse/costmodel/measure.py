"""Timing layers, kernels and edge parts on this machine, and the measurement CSV.

Timing (:func:`time_interleaved`): every program is run ``warmup`` times, then
``rounds`` rounds in which each program runs twice in a row, in a freshly shuffled order
per round, so that a busy spell of a shared machine hits every program alike. Only the
second run of each pair is timed: a deployed program runs again and again, so what it pays
is a run that follows its own. The first run restores what the other programs evicted:
oneDNN's primitive cache (1024 entries by default: a calibration interleaves thousands of
convolution shapes, and a program whose primitives were evicted pays for creating them
again, about 3x its time on a 2-core x86 VM) and the CPU caches. Per program the
median and the 10th percentile (the uncontended time) are kept, with the spread
(``(p90 - p10) / median``). Its callers pin the threads for the run (:func:`pinned_threads`).
:func:`time_passes` times the same programs in two such passes, one after the other: how
far the second pass's p10 lies from the first's is the measurement's own repeatability,
and the p10 over both passes' runs is the truth a predictor is judged against.

Edge programs (:func:`edge_programs`): per cut, the backbone before the cut as one
program returning the tensors that cross it, the whole edge part of a deployment.

Programs (:func:`program`) run in a runtime: ``eager`` calls the fx sub-graph (PyTorch
eager, op by op); ``torch-export`` exports it with ``torch.export`` and calls the
exported program's graph module with its lifted parameters and buffers, as a runtime runs
the program (``ExportedProgram.module()`` adds a pytree and guard wrapper of its own,
70-200 us per call on a 2-core x86 VM, which no deployed runtime pays).

Per-layer measurement (:func:`measure_layers`): every backbone node of a model is cut out
as a one-node program on the inputs it really gets (captured from one forward pass) and
timed as above, with an empty program (returns its input) timed in the same rounds: the
per-call floor, taken out of every node's time and reported as its own row.

The CSV schema (``dse profile MODEL --measure --csv FILE``; ``dse calibrate --from-csv``
reads it; a user can write it on their device with any tool), one row per measured node:

==============  ===========================================================================
column          meaning
==============  ===========================================================================
model           model name as ``dse`` loads it (zoo name, ``module:factory``, ...)
input_shape     the input shape, ``1x3x32x32``
node            graph node name (as ``dse profile`` lists it); ``(call)`` for the floor
kind            op kind of the node (``conv``, ``norm``, ...; ``call`` for the floor)
runtime         ``eager`` or ``torch-export`` (or another of ``devices.RUNTIMES``)
threads         intra-op threads the run used
median_s        median seconds of the node's kernel, per-call floor taken out
p10_s           10th percentile seconds, the same way
runs            timed runs per node
device          free text naming the machine
==============  ===========================================================================
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel.devices import RUNTIMES, TIMED_RUNTIMES
from dse.costmodel.graph import LayerGraph, build_graph
from dse.costmodel.shapes import trace
from dse.errors import InputError

CSV_COLUMNS: tuple[str, ...] = (
    "model",
    "input_shape",
    "node",
    "kind",
    "runtime",
    "threads",
    "median_s",
    "p10_s",
    "runs",
    "device",
)
CALL_NODE = "(call)"


def shape_text(x: torch.Tensor) -> str:
    """A tensor's shape as the CSV's ``input_shape`` writes it (``1x3x32x32``)."""
    return "x".join(map(str, x.shape))


@contextmanager
def pinned_threads(n: int | None) -> Iterator[int]:
    """Run with ``n`` intra-op threads (None: torch's current); yields the count used."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class Timing:
    """Repeated runs of one program, seconds."""

    median_s: float
    p10_s: float
    p90_s: float
    runs: int
    min_s: float = math.nan  # the fastest run

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how much the runs disagree."""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s > 0 else 0.0


def _runs(
    calls: Mapping[Any, Callable[[], Any]], *, rounds: int, warmup: int, seed: int
) -> dict[Any, list[float]]:
    """Seconds of every timed run of every call (shuffled interleaved rounds, see module)."""
    if rounds < 1 or warmup < 0:
        raise InputError(
            "measure", "repeats", f"need rounds >= 1, got {rounds}", "pass e.g. --repeats 30"
        )
    names = list(calls)
    runs: dict[Any, list[float]] = {n: [] for n in names}
    rng = random.Random(seed)
    clock = time.perf_counter
    with torch.inference_mode():
        for r in range(warmup + rounds):
            timed = r >= warmup
            rng.shuffle(names)
            for n in names:
                f = calls[n]
                if timed:
                    f()  # the timed run follows a run of its own (module docstring)
                start = clock()
                f()
                if timed:
                    runs[n].append(clock() - start)
    return runs


def timing_of(runs: Sequence[float]) -> Timing:
    """Median, 10th and 90th percentile of ``runs`` (seconds)."""
    a = np.asarray(runs, dtype=float)
    return Timing(
        float(np.median(a)),
        float(np.percentile(a, 10)),
        float(np.percentile(a, 90)),
        len(a),
        float(a.min()),
    )


def time_interleaved(
    calls: Mapping[Any, Callable[[], Any]], *, rounds: int = 30, warmup: int = 3, seed: int = 0
) -> dict[Any, Timing]:
    """Time every call in ``rounds`` shuffled rounds after ``warmup`` rounds (see module)."""
    runs = _runs(calls, rounds=rounds, warmup=warmup, seed=seed)
    return {n: timing_of(v) for n, v in runs.items()}


@dataclass(frozen=True)
class Passes:
    """The same programs timed in two passes: each pass alone, and both pooled (truth)."""

    first: Mapping[Any, Timing]
    second: Mapping[Any, Timing]
    pooled: Mapping[Any, Timing]

    def repeat_error(self, name: Any) -> float:
        """The second pass's p10 against the first's, less 1 (the measurement's own error)."""
        return self.second[name].p10_s / self.first[name].p10_s - 1.0


def time_passes(
    calls: Mapping[Any, Callable[[], Any]], *, rounds: int = 20, warmup: int = 3, seed: int = 0
) -> Passes:
    """Time every call in two passes of ``rounds`` interleaved rounds each (module)."""
    a = _runs(calls, rounds=rounds, warmup=warmup, seed=seed)
    b = _runs(calls, rounds=rounds, warmup=1, seed=seed + 1)
    return Passes(
        first={n: timing_of(v) for n, v in a.items()},
        second={n: timing_of(v) for n, v in b.items()},
        pooled={n: timing_of([*a[n], *b[n]]) for n in a},
    )


# --------------------------------------------------------------------------------------
# programs: fx sub-graphs, run eager or as torch.export programs
# --------------------------------------------------------------------------------------


def subgraph(gm: fx.GraphModule, keep: Sequence[str], outputs: Sequence[str]) -> fx.GraphModule:
    """The fx sub-graph of ``gm`` made of the nodes ``keep`` (in graph order), returning
    ``outputs`` (one tensor, or a tuple of several). A kept node's input from outside the
    sub-graph becomes a placeholder, in the order first used; attributes are copied."""
    wanted = set(keep)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}

    def arg(n: fx.Node) -> fx.Node:
        if n not in env:
            if n.op == "get_attr":
                env[n] = graph.get_attr(n.target)  # type: ignore[arg-type]
            else:
                env[n] = graph.placeholder(n.name)
        return env[n]

    by_name = {}
    for n in gm.graph.nodes:
        by_name[n.name] = n
        if n.name in wanted:
            env[n] = graph.node_copy(n, arg)
    missing = [o for o in outputs if by_name.get(o) not in env]
    if missing:
        raise ValueError(f"outputs {missing} are not in the sub-graph")
    outs = [env[by_name[o]] for o in outputs]
    graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    sub = fx.GraphModule(gm, graph)
    sub.eval()
    return sub


def edge_programs(
    model: nn.Module,
    example: torch.Tensor,
    graph: LayerGraph,
    cuts: Sequence[int],
    *,
    runtime: str = "torch-export",
) -> dict[int, Callable[[], Any]]:
    """Per cut ``k`` (1 .. len(backbone)): a call running the backbone before the cut as
    one ``runtime`` program on ``example``, returning the tensors that cross the cut (the
    edge-only cut returns the backbone's last output)."""
    gm = trace(model.eval())
    calls = {}
    for k in cuts:
        if not 1 <= k <= len(graph.backbone):
            raise ValueError(f"cut {k} runs nothing on the edge or is past the backbone")
        cut = graph.cuts[k]
        outputs = [t for t in cut.tensors if t in graph.nodes] or [graph.backbone[k - 1]]
        sub = subgraph(gm, list(graph.backbone[:k]), outputs)
        calls[k] = program(sub, [example], runtime=runtime)
    return calls


def _placeholders(gm: fx.GraphModule) -> list[str]:
    return [n.name for n in gm.graph.nodes if n.op == "placeholder"]


def program(
    module: nn.Module, inputs: Sequence[torch.Tensor], *, runtime: str
) -> Callable[[], Any]:
    """A zero-argument call running ``module`` on ``inputs`` in ``runtime``."""
    if runtime not in TIMED_RUNTIMES:
        raise InputError(
            "measure",
            "runtime",
            f"cannot time {runtime!r} on this machine",
            f"one of: {', '.join(TIMED_RUNTIMES)}",
        )
    args = tuple(inputs)
    if runtime == "eager":
        return lambda: module(*args)
    ep = torch.export.export(module.eval(), args)
    gm = ep.graph_module
    sig = ep.graph_signature
    tables = {**ep.state_dict, **ep.constants}
    lifted = [tables[n] for n in (*sig.parameters, *sig.buffers)]
    lifted += [tables[n] for n in getattr(sig, "lifted_tensor_constants", ())]
    full = (*lifted, *args)
    return lambda: gm(*full)


class _Capture(fx.Interpreter):
    """Runs a traced module once, keeping every node's output."""

    def __init__(self, gm: fx.GraphModule):
        super().__init__(gm)
        self.values: dict[str, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n.name] = out
        return out


class _Empty(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def node_programs(
    model: nn.Module, example: torch.Tensor, names: Sequence[str], *, runtime: str, prefix: str = ""
) -> dict[str, Callable[[], Any]]:
    """One program per node of ``names``: the node alone on the inputs it really gets."""
    gm = trace(model.eval())
    cap = _Capture(gm)
    with torch.inference_mode():
        cap.run(example)
    by_name = {n.name: n for n in gm.graph.nodes}
    calls = {}
    for name in names:
        sub = subgraph(gm, [name], [name])
        # placeholders are named after the producers they stand for ("x" for the input)
        inputs = []
        for p in _placeholders(sub):
            src = by_name[p]
            value = example if src.op == "placeholder" else cap.values[p]
            inputs.append(value.clone() if isinstance(value, torch.Tensor) else value)
        calls[prefix + name] = program(sub, inputs, runtime=runtime)
    return calls


def empty_program(example: torch.Tensor, *, runtime: str) -> Callable[[], Any]:
    """An empty program (returns its input): what a call costs with no layer in it."""
    return program(_Empty(), [example], runtime=runtime)


def measure_layers(
    model: nn.Module,
    example: torch.Tensor,
    *,
    name: str,
    runtime: str,
    threads: int | None = 1,
    rounds: int = 30,
    warmup: int = 3,
    seed: int = 0,
    device: str = "",
    graph: LayerGraph | None = None,
) -> Any:
    """Every backbone node of ``model`` timed as a kernel of its own (module docstring),
    as a pandas table in the CSV schema (:data:`CSV_COLUMNS`), the floor row last."""
    import pandas as pd

    graph = graph or build_graph(model, example, name=name)
    with pinned_threads(threads) as used:
        calls = node_programs(model, example, graph.backbone, runtime=runtime)
        calls[CALL_NODE] = empty_program(example, runtime=runtime)
        times = time_interleaved(calls, rounds=rounds, warmup=warmup, seed=seed)
    floor = times[CALL_NODE]
    shape = shape_text(example)
    rows = []
    for n in (*graph.backbone, CALL_NODE):
        t = times[n]
        own = n != CALL_NODE
        rows.append(
            {
                "model": name,
                "input_shape": shape,
                "node": n,
                "kind": graph.nodes[n].kind if own else "call",
                "runtime": runtime,
                "threads": used,
                "median_s": max(0.0, t.median_s - floor.median_s) if own else t.median_s,
                "p10_s": max(0.0, t.p10_s - floor.p10_s) if own else t.p10_s,
                "runs": t.runs,
                "device": device,
                "spread": t.spread,
            }
        )
    return pd.DataFrame(rows)


def write_csv(table: Any, path: str | Path) -> None:
    """Write a measurement table in the CSV schema (extra columns dropped)."""
    table[list(CSV_COLUMNS)].to_csv(path, index=False)


#: The longest one layer's kernel may take in a measurement CSV, s (as a profile's
#: per-layer overhead; see devices.PHYSICAL_BOUNDS).
MAX_KERNEL_S = 60.0
#: The most elements an input shape of a measurement CSV may have (a model is built and
#: traced on a tensor of that shape): 2**26, 256 MiB of float32.
MAX_INPUT_ELEMENTS = 2**26


def shape_error(text: str) -> str | None:
    """Why ``text`` is not a CSV input shape (``1xCxHxW``, batch 1, at most
    :data:`MAX_INPUT_ELEMENTS` elements), or None."""
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts):
        return f"{text!r} is not 1xCxHxW"
    dims = [int(p) for p in parts]
    if dims[0] != 1 or min(dims) < 1:
        return f"{text!r}: the batch must be 1 and every other size at least 1"
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        return f"{text!r} has more than {MAX_INPUT_ELEMENTS} elements"
    return None


def read_csv(path: str | Path) -> Any:
    """Read and check a measurement CSV (module docstring); one-line InputError on any
    missing column, non-numeric or negative time, bad runs/threads or unknown runtime."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(
            path,
            "<file>",
            "no such file",
            "give the CSV written by dse profile MODEL --measure --csv FILE",
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            path,
            "<csv>",
            f"not a readable CSV: {str(exc).splitlines()[0]}",
            "write it with dse profile MODEL --measure --csv FILE",
        ) from None
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            path, missing[0], "missing column", f"the header needs: {','.join(CSV_COLUMNS)}"
        )
    if table.empty:
        raise InputError(path, "<rows>", "no measurement rows", "measure at least one model")
    out = table.copy()
    for col in ("median_s", "p10_s", "threads", "runs"):
        values = []
        for i, text in enumerate(table[col]):
            row = f"row {i + 2}"  # 1-based, after the header line
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise InputError(
                    path,
                    f"{row}.{col}",
                    f"{text!r} is not a number",
                    "seconds as a plain number, e.g. 1.2e-05",
                )
            if v < 0:
                raise InputError(
                    path,
                    f"{row}.{col}",
                    f"negative value {text}",
                    "times and counts are >= 0: re-measure that row",
                )
            if col in ("threads", "runs") and (v < 1 or v != int(v)):
                raise InputError(
                    path, f"{row}.{col}", f"{text!r} is not a count >= 1", "a whole number, e.g. 30"
                )
            values.append(v)
        out[col] = values
    for col in ("median_s", "p10_s"):
        for i, v in enumerate(out[col]):
            if v > MAX_KERNEL_S:
                raise InputError(
                    path,
                    f"row {i + 2}.{col}",
                    f"{v:g} s is longer than any one layer runs ({MAX_KERNEL_S:g} s)",
                    "seconds, not milliseconds or microseconds: re-measure it",
                )
    for i, text in enumerate(table["input_shape"]):
        why = shape_error(text)
        if why:
            raise InputError(
                path,
                f"row {i + 2}.input_shape",
                why,
                "1xCxHxW as dse profile writes it, e.g. 1x3x32x32",
            )
    for i, r in enumerate(table["runtime"]):
        if r not in RUNTIMES:
            raise InputError(
                path,
                f"row {i + 2}.runtime",
                f"unknown runtime {r!r}",
                f"one of: {', '.join(RUNTIMES)}",
            )
    if out["runtime"].nunique() > 1:
        raise InputError(
            path,
            "runtime",
            f"rows for several runtimes ({', '.join(sorted(out.runtime.unique()))})",
            "fit one profile per runtime: split the file",
        )
    return out


def check_nodes(table: Any, graphs: Mapping[tuple[str, str], LayerGraph], path: str | Path) -> None:
    """Every row's node must be a node of its model's graph at its input shape (the fit
    reads the backbone's rows; a head's are kept in the file but not fitted on)."""
    for i, r in enumerate(table.itertuples(index=False)):
        if r.node == CALL_NODE:
            continue
        g = graphs[(r.model, r.input_shape)]
        if r.node not in g.nodes:
            near = ", ".join(list(g.backbone)[:8])
            raise InputError(
                path,
                f"row {i + 2}.node",
                f"unknown node {r.node!r} for model {r.model} at {r.input_shape}",
                f"use the names dse profile {r.model} lists (e.g. {near}, ...)",
            )


# --------------------------------------------------------------------------------------
# sampled kernels (nn-Meter's kernel builder, small)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSpec:
    """One sampled layer configuration: an op of ``kind`` on a ``c_in x size x size`` input."""

    kind: str
    c_in: int
    c_out: int
    size: int
    kernel: int = 1
    stride: int = 1

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.c_in}-{self.c_out}@{self.size}k{self.kernel}s{self.stride}"

    @property
    def macs(self) -> float:
        """Multiply-accumulates of a convolution or linear (0 for the other kinds)."""
        out = (self.size // self.stride) ** 2
        if self.kind == "conv":
            return float(self.c_in * self.c_out * self.kernel**2 * out)
        if self.kind == "depthwise_conv":
            return float(self.c_in * self.kernel**2 * out)
        if self.kind == "linear":
            return float(self.c_in * self.c_out)
        return 0.0

    def build(self) -> tuple[nn.Module, torch.Tensor]:
        """The module and its input (batch 1, float32)."""
        x = torch.randn(1, self.c_in, self.size, self.size)
        k, s, c, o = self.kernel, self.stride, self.c_in, self.c_out
        if self.kind == "conv":
            m: nn.Module = nn.Conv2d(c, o, k, s, padding=k // 2)
        elif self.kind == "depthwise_conv":
            m = nn.Conv2d(c, c, k, s, padding=k // 2, groups=c)
        elif self.kind == "linear":
            m, x = nn.Linear(c, o), torch.randn(1, c)
        elif self.kind == "maxpool":
            m = nn.MaxPool2d(k, s)
        elif self.kind == "avgpool":
            m = nn.AdaptiveAvgPool2d(1)
        elif self.kind == "norm":
            m = nn.BatchNorm2d(c)
            with torch.no_grad():
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
        elif self.kind == "activation":
            m = nn.ReLU() if k == 1 else nn.ReLU6()
        elif self.kind == "add":
            m = _Add()
        elif self.kind == "reshape":
            m = nn.Flatten()
        else:
            raise ValueError(f"unknown kernel kind {self.kind!r}")
        return nn.Sequential(m).eval(), x  # a leaf module under fx, as in a network


class _Add(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


#: Channel counts, input sizes (pixels) and linear widths the sampler draws from: the
#: ranges of small edge CNNs and MLPs, from a classifier's 10 outputs and a 3-channel
#: stem up to 512 channels and 64 pixels.
SAMPLE_CHANNELS: tuple[int, ...] = (3, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
SAMPLE_SIZES: tuple[int, ...] = (2, 3, 4, 6, 7, 8, 12, 14, 16, 24, 28, 32, 48, 56, 64)
SAMPLE_FEATURES: tuple[int, ...] = (10, 16, 32, 64, 100, 128, 192, 256, 512, 1024, 2048)
#: Share of the samples each kind gets: convolutions most (a fifth of them 3-channel
#: stems at full resolution, most of the rest drawn as a network's stages have them),
#: depthwise convolutions and linears (small ones included, down to the 10 outputs of a
#: classifier) next, then the cheap layers between them.
SAMPLE_SHARES: tuple[tuple[str, float], ...] = (
    ("conv", 0.40),
    ("depthwise_conv", 0.13),
    ("linear", 0.13),
    ("norm", 0.07),
    ("activation", 0.07),
    ("add", 0.06),
    ("maxpool", 0.05),
    ("avgpool", 0.05),
    ("reshape", 0.04),
)
#: The output widths and the sizes (both ends included) of a convolution drawn as a
#: network's stages have it: every count and every size in these ranges is drawn.
STAGE_CHANNELS: tuple[int, int] = (4, 128)
STAGE_SIZES: tuple[int, int] = (6, 64)
#: The most MACs one sampled kernel may do, and the most elements its input may have.
MAX_SAMPLE_MACS = 2e8
MAX_SAMPLE_ELEMENTS = 2**20


def sample_kernels(n: int, *, seed: int = 0) -> list[KernelSpec]:
    """``n`` layer configurations, each kind getting its :data:`SAMPLE_SHARES` of them:
    channels half from :data:`SAMPLE_CHANNELS`, half any count from 4 to its largest
    (log-uniform), sizes from :data:`SAMPLE_SIZES`, kernels and strides (linears over
    :data:`SAMPLE_FEATURES`). Two thirds of the convolutions are drawn as networks have
    them (a 3x3 or 1x1 kernel, stride 1 mostly, input channels the output's, half, twice,
    or an expansion of 6 either way), where one sample tells most about the layers a user
    brings: any output width and any size in :data:`STAGE_CHANNELS` and
    :data:`STAGE_SIZES`, so that every width, its vector lanes part-filled or not, is
    sampled on both kernels PyTorch runs a convolution on (the dispatch,
    ``predictor.conv_path``, depends on the input's size: oneDNN pads channels to whole
    vectors, and its time per FLOP at 20 channels is not that at 16 or 32). Every draw of
    one ``seed`` is the same."""
    rng = random.Random(seed)
    kinds = [k for k, _ in SAMPLE_SHARES]
    weights = [w for _, w in SAMPLE_SHARES]
    chans, sizes = SAMPLE_CHANNELS, SAMPLE_SIZES
    out: list[KernelSpec] = []

    def channels() -> int:  # half from the grid, half any count (vector lanes part-filled)
        if rng.random() < 0.5:
            return rng.choice(chans[1:])
        return int(round(math.exp(rng.uniform(math.log(4), math.log(chans[-1])))))

    while len(out) < n:
        kind = rng.choices(kinds, weights)[0]
        c, o, size = channels(), channels(), rng.choice(sizes)
        if kind == "conv":
            k, s = rng.choice((1, 1, 3, 3, 3, 5)), rng.choice((1, 1, 2))
            if rng.random() < 2 / 3:  # as a stage of a network has them: 3x3 or 1x1,
                # from as many channels as it puts out, half or twice as many, or an
                # inverted residual's expansion or projection; any width, any size
                k, s = rng.choice((3, 3, 3, 1)), 1 if rng.random() < 0.8 else 2
                o, size = rng.randint(*STAGE_CHANNELS), rng.randint(*STAGE_SIZES)
                c = max(4, round(o * rng.choice((1.0, 1.0, 1.0, 0.5, 2.0, 1 / 6, 6.0))))
            if rng.random() < 0.2:  # a stem: 3 channels in at full resolution, 3x3
                c, k, size = 3, 3, rng.choice(tuple(v for v in sizes if v >= 16))
            spec = KernelSpec(kind, c, o, size, k, s)
        elif kind == "depthwise_conv":
            k, s = rng.choice((3, 3, 3, 5)), rng.choice((1, 1, 2))
            spec = KernelSpec(kind, c, c, size, k, s)
        elif kind == "linear":
            spec = KernelSpec(kind, rng.choice(SAMPLE_FEATURES), rng.choice(SAMPLE_FEATURES), 1)
        elif kind == "maxpool":  # windows that do not overlap: a node's sizes say its work
            k = rng.choice((2, 2, 3))
            spec = KernelSpec(kind, c, c, max(size, 2 * k), k, k)
        elif kind == "activation":
            spec = KernelSpec(kind, c, c, size, rng.choice((1, 2)))
        else:  # avgpool, norm, add, reshape: the input's shape decides
            spec = KernelSpec(kind, c, c, size)
        if spec.macs > MAX_SAMPLE_MACS or spec.c_in * spec.size**2 > MAX_SAMPLE_ELEMENTS:
            continue
        out.append(spec)
    return out


def measure_kernels(
    specs: Sequence[KernelSpec],
    *,
    runtime: str,
    threads: int | None = 1,
    rounds: int = 20,
    warmup: int = 3,
    seed: int = 0,
) -> tuple[list[Any], list[float], float]:
    """Time every sampled kernel, all interleaved: the graph nodes of each kernel's graph,
    each node's p10 seconds less the per-call floor's, and that floor (p10 s)."""
    entries = []
    calls: dict[str, Callable[[], Any]] = {}
    with pinned_threads(threads):
        for i, spec in enumerate(specs):
            module, x = spec.build()
            graph = build_graph(module, x, name=spec.label)
            prefix = f"{i}/"
            calls.update(node_programs(module, x, graph.backbone, runtime=runtime, prefix=prefix))
            entries += [(prefix + n, graph.nodes[n]) for n in graph.backbone]
        calls[CALL_NODE] = empty_program(torch.zeros(1, 8), runtime=runtime)
        times = time_interleaved(calls, rounds=rounds, warmup=warmup, seed=seed)
    floor = times[CALL_NODE]
    nodes = [node for _, node in entries]
    p10 = [max(0.0, times[k].p10_s - floor.p10_s) for k, _ in entries]
    return nodes, p10, floor.p10_s
