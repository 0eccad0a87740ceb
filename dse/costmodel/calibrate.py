"""Measure this machine and fit a device profile to it (what nn-Meter does per kernel).

The shipped profiles' per-layer overhead and efficiencies are estimates ("E"); on small
networks they decide the latency. Here they are measured instead, on the machine this
runs on (run it on the edge device itself):

1. every layer of a few networks is timed in eager PyTorch (median of ``repeats`` runs,
   after a warm-up), through a torch.fx interpreter over the same trace the layer graph
   uses, so a measured time belongs to a graph node by name; the interpreter's own cost
   per node (the layers' sum less the plain forward pass, spread evenly) is taken out;
2. layers the cost model fuses into their producer (``graph.fuse_nodes``) are added to
   that producer: the cost model predicts per fused kernel, so it is fitted per kernel;
3. memory bandwidth is measured STREAM-style (``c = a + b`` on arrays far larger than the
   caches); peak FLOP/s comes from a base profile (a datasheet figure) or, without one,
   from the best measured matrix multiply;
4. the codec throughputs of the ``[codec]`` table (:func:`measure_codecs`): float32 to
   int8 quantisation with its min/max pass and back, in torch; zstd level 3 and zlib
   level 6 on int8 codes of activation-like data (ReLU'd normal samples);
5. per-kernel overhead is the median time of the kernels with almost no work; each
   kind's efficiency is its FLOPs over peak times its measured time less that overhead,
   summed over the kind's compute-bound kernels (whose work took longer than moving their
   bytes and than the overhead), so big kernels weigh most.

The fit is judged on whole networks, measured end to end: each network is predicted by a
profile fitted on the *other* networks, so the error printed is one on unseen models.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import zstandard

from dse.costmodel.costs import FREE_KINDS, layer_latency
from dse.costmodel.devices import CODEC_RATES, DeviceProfile
from dse.costmodel.graph import LayerGraph, Node, build_graph
from dse.costmodel.measure import pinned_threads
from dse.costmodel.shapes import trace
from dse.errors import InputError

COMPUTE_KINDS = ("conv", "depthwise_conv", "linear", "matmul")
#: A kernel whose roofline time (no overhead) on the base profile is below this has
#: almost no work: what it takes is per-kernel overhead.
TINY_S = 2e-6


class _NodeTimer(fx.Interpreter):
    """Runs a traced module node by node, adding each node's time on ``clock`` (seconds)
    to ``times``."""

    def __init__(
        self,
        gm: fx.GraphModule,
        times: dict[str, list[float]],
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(gm)
        self.times = times
        self.clock = clock

    def run_node(self, n: fx.Node) -> Any:
        if n.op in ("placeholder", "output", "get_attr"):
            return super().run_node(n)
        start = self.clock()
        out = super().run_node(n)
        self.times[n.name].append(self.clock() - start)
        return out


@dataclass(frozen=True)
class Measurement:
    """One network timed on this machine: per layer and end to end, in seconds."""

    model: str
    input_shape: tuple[int, ...]
    threads: int
    repeats: int
    layers: Mapping[str, float]  # graph node name -> median seconds, interpreter cost out
    total_s: float  # median of whole forward passes (no interpreter)
    interpreter_s: float  # what timing one node through the interpreter adds, subtracted
    spread: float = 0.0  # (p90 - p10) / median of the whole forward passes


def measure_model(
    model: nn.Module,
    example: torch.Tensor,
    *,
    name: str = "model",
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time every layer of ``model`` on ``example`` and the whole forward pass. ``clock``
    (seconds) is the machine's; a test passes its own to check the arithmetic without
    depending on how fast the machine runs."""
    if repeats < 1 or warmup < 0:
        raise InputError("measure", "repeats", f"must be >= 1 (warm-up >= 0), got {repeats}")
    model = model.eval()
    gm = trace(model, name=name)
    times: dict[str, list[float]] = defaultdict(list)
    whole: list[float] = []
    with pinned_threads(threads), torch.inference_mode():
        for i in range(warmup + repeats):
            if i == warmup:
                times.clear()
            _NodeTimer(gm, times, clock).run(example)
            start = clock()
            model(example)
            if i >= warmup:
                whole.append(clock() - start)
        used = torch.get_num_threads()
    medians = {k: statistics.median(v) for k, v in times.items()}
    total = statistics.median(whole)
    ordered = sorted(whole)
    p10, p90 = ordered[int(0.1 * (len(ordered) - 1))], ordered[int(0.9 * (len(ordered) - 1))]
    # Running node by node costs the interpreter's own Python work on every node; the
    # plain forward pass does not. Spread the difference evenly and take it out, so the
    # layers add up to what the network really takes.
    extra = max(0.0, (sum(medians.values()) - total) / max(1, len(medians)))
    return Measurement(
        model=name,
        input_shape=tuple(example.shape),
        threads=used,
        repeats=repeats,
        layers={k: max(0.0, v - extra) for k, v in medians.items()},
        total_s=total,
        interpreter_s=extra,
        spread=(p90 - p10) / total if total > 0 else 0.0,
    )


def kernels(graph: LayerGraph) -> dict[str, list[Node]]:
    """Backbone kernels: each unfused, non-free node with the fused nodes it absorbs."""
    nodes = graph.nodes
    groups: dict[str, list[Node]] = {}
    for name in graph.backbone:
        node = nodes[name]
        if node.kind in FREE_KINDS:
            continue
        anchor = node
        while anchor.fused and anchor.inputs and anchor.inputs[0] in nodes:
            anchor = nodes[anchor.inputs[0]]
        groups.setdefault(anchor.name, []).append(node)
    return groups


def stream_bandwidth(*, mib: int = 64, repeats: int = 10, threads: int | None = None) -> float:
    """Sustained memory bandwidth in bytes/s: ``c = a + b`` over three ``mib`` MiB arrays."""
    n = mib * 2**20 // 4
    a, b, c = torch.ones(n), torch.ones(n), torch.empty(n)
    runs = []
    with pinned_threads(threads):
        torch.add(a, b, out=c)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.add(a, b, out=c)
            runs.append(time.perf_counter() - start)
    return 3 * n * 4 / statistics.median(runs)


def gemm_flops(*, size: int = 1024, repeats: int = 10, threads: int | None = None) -> float:
    """The best FLOP/s of a float32 ``size`` x ``size`` matrix multiply (2 n^3 FLOPs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    runs = []
    with pinned_threads(threads):
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            runs.append(time.perf_counter() - start)
    return 2 * size**3 / min(runs)


def _median_s(step: Any, repeats: int) -> float:
    """Median wall time of ``step()`` over ``repeats`` runs, after one warm-up run."""
    step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        runs.append(time.perf_counter() - start)
    return max(statistics.median(runs), 1e-9)


def measure_codecs(
    *, mib: float = 4.0, repeats: int = 5, threads: int | None = None, seed: int = 0
) -> dict[str, float]:
    """This machine's codec throughputs, B/s, by :data:`~dse.costmodel.devices.CODEC_RATES`
    key (the units of a profile's ``[codec]`` table), each the median of ``repeats`` runs.

    On ``mib`` MiB of float32 activations-like data (ReLU of standard normal samples):
    ``quantize`` times an int8 affine quantisation with its min/max pass (float32 bytes in
    per second), ``dequantize`` the way back (float32 bytes out per second); ``zstd``
    (level 3) and ``zlib`` (level 6) compress the int8 codes (bytes in per second),
    ``unzstd`` and ``unzlib`` decompress them (bytes out per second), on one thread as
    the zstandard and zlib modules run.
    """
    if mib <= 0 or repeats < 1:
        raise InputError(
            "calibrate",
            "codec",
            f"need mib > 0 and repeats >= 1, got {mib}, {repeats}",
            "e.g. mib=4, repeats=5",
        )
    n = max(1024, int(mib * 2**20) // 4)
    gen = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(n, generator=gen))
    raw = 4.0 * n
    levels = 255

    def quantize() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lo, hi = torch.aminmax(x)
        scale = (hi - lo) / levels
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        return torch.round((x - lo) / safe).clamp_(0, levels).to(torch.uint8), scale, lo

    q, scale, lo = quantize()

    def dequantize() -> torch.Tensor:
        return q.to(torch.float32) * scale + lo

    codes = q.numpy().tobytes()
    zc, zd = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    zbody, lbody = zc.compress(codes), zlib.compress(codes, 6)
    steps = {
        "quantize": (quantize, raw),
        "dequantize": (dequantize, raw),
        "zstd": (lambda: zc.compress(codes), len(codes)),
        "unzstd": (lambda: zd.decompress(zbody), len(codes)),
        "zlib": (lambda: zlib.compress(codes, 6), len(codes)),
        "unzlib": (lambda: zlib.decompress(lbody), len(codes)),
    }
    with pinned_threads(threads), torch.inference_mode():
        rates = {key: nbytes / _median_s(step, repeats) for key, (step, nbytes) in steps.items()}
    assert tuple(rates) == CODEC_RATES
    return rates


@dataclass(frozen=True)
class Fit:
    """What the measurements say about this machine, in the profile's terms."""

    peak_flops: float
    peak_source: str
    overhead_s: float
    mem_bandwidth_Bps: float
    efficiency: Mapping[str, float]
    kernels: Mapping[str, int]  # kind -> kernels the efficiency was fitted on


def fit(
    pairs: Sequence[tuple[LayerGraph, Measurement]],
    base: DeviceProfile,
    *,
    bandwidth_Bps: float,
    peak_flops: float | None = None,
) -> Fit:
    """Fit overhead and per-kind efficiency to measured kernels (see the module docstring).

    ``peak_flops`` defaults to the base profile's; kinds with no measured kernel keep the
    base profile's efficiency.
    """
    # What was measured is float32: the base's fp32 peak (its default dtype's otherwise).
    peak = peak_flops if peak_flops is not None else base.peak_flops.get("fp32", base.peak)
    probe = replace(
        base,
        peak_flops={**base.peak_flops, "fp32": peak},
        dtype="fp32",
        overhead_s=0.0,
        mem_bandwidth_Bps=bandwidth_Bps,
    )
    # per kernel: kind, the anchor's FLOPs, measured s, roofline s without overhead, the
    # anchor's memory s, and the predicted s of the layers fused into it
    rows = []
    for graph, m in pairs:
        for anchor, group in kernels(graph).items():
            node = graph.nodes[anchor]
            measured = sum(m.layers.get(n.name, 0.0) for n in group)  # anchor + fused layers
            fused = sum(layer_latency(n, probe) for n in group if n is not node)
            moved = node.weight_bytes + node.input_bytes + node.output_bytes
            rows.append(
                (
                    node.kind,
                    node.flops,
                    measured,
                    layer_latency(node, probe) + fused,
                    moved / bandwidth_Bps,
                    fused,
                )
            )
    if not rows:
        raise InputError("measure", "models", "no kernel was measured", "measure a model")
    tiny = [r[2] for r in rows if r[3] < TINY_S]
    overhead = statistics.median(tiny) if tiny else min(r[2] for r in rows)
    flops: dict[str, float] = defaultdict(float)
    busy: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for kind, f, t, _, memory, fused in rows:
        work = t - overhead - fused  # what the anchor's own arithmetic took
        # Only a kernel whose work took longer than moving its bytes, and longer than the
        # overhead itself, says how fast the kind computes: in a memory-bound or tiny
        # kernel the arithmetic is lost in the other terms and their noise.
        if kind in COMPUTE_KINDS and f > 0 and work > max(memory, overhead):
            flops[kind] += f
            busy[kind] += work
            count[kind] += 1
    eff = dict(base.efficiency)
    for kind in flops:
        eff[kind] = min(1.0, flops[kind] / (peak * busy[kind]))
    return Fit(
        peak_flops=peak,
        peak_source="base" if peak_flops is None else "gemm",
        overhead_s=overhead,
        mem_bandwidth_Bps=bandwidth_Bps,
        efficiency=eff,
        kernels=dict(count),
    )


def fitted_profile(base: DeviceProfile, f: Fit, *, name: str) -> DeviceProfile:
    """``base`` with the fitted figures in place (dtype fp32: what was measured)."""
    return replace(
        base,
        name=name,
        peak_flops={**base.peak_flops, "fp32": f.peak_flops},
        dtype="fp32",
        efficiency=f.efficiency,
        overhead_s=f.overhead_s,
        mem_bandwidth_Bps=f.mem_bandwidth_Bps,
    )


def predicted_total(graph: LayerGraph, device: DeviceProfile) -> float:
    """The cost model's edge-only latency of ``graph``'s backbone on ``device``."""
    return sum(layer_latency(graph.nodes[n], device) for n in graph.backbone)


def machine() -> str:
    """A line naming this machine: host, CPU model, cores, torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{socket.gethostname()}: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__}"
    )


# --------------------------------------------------------------------------------------
# the whole procedure: measure zoo networks, fit, judge on unseen networks, write a profile
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    base: DeviceProfile
    profile: DeviceProfile  # fitted on every measured network
    fit: Fit
    measurements: tuple[Measurement, ...]
    table: Any  # pandas DataFrame: one row per network, measured vs predicted
    machine: str
    codec_mib: float = 0.0  # MiB of float32 the codec throughputs were measured on


def calibrate(
    models: Sequence[tuple[str, nn.Module, torch.Tensor]],
    base: DeviceProfile,
    *,
    name: str,
    repeats: int = 20,
    threads: int | None = None,
    gemm_peak: bool = False,
    codec_mib: float = 4.0,
) -> Calibration:
    """Measure ``models`` here, fit ``base`` to them, and judge the fit on unseen models;
    measure the codec throughputs on ``codec_mib`` MiB (:func:`measure_codecs`)."""
    import pandas as pd

    pairs = []
    for label, model, example in models:
        graph = build_graph(model, example, name=label)
        pairs.append(
            (graph, measure_model(model, example, name=label, repeats=repeats, threads=threads))
        )
    bandwidth = stream_bandwidth(threads=threads)
    peak = gemm_flops(threads=threads) if gemm_peak else None
    whole = fit(pairs, base, bandwidth_Bps=bandwidth, peak_flops=peak)
    codec = measure_codecs(mib=codec_mib, threads=threads)
    profile = replace(fitted_profile(base, whole, name=name), codec_Bps=codec)
    rows = []
    for i, (graph, m) in enumerate(pairs):
        others = pairs[:i] + pairs[i + 1 :]
        unseen = (
            fitted_profile(
                base, fit(others, base, bandwidth_Bps=bandwidth, peak_flops=peak), name=name
            )
            if others
            else None
        )
        row = {
            "model": m.model,
            "input": "x".join(map(str, m.input_shape[1:])),
            "kernels": len(kernels(graph)),
            "measured_s": m.total_s,
            "spread": m.spread,
            "base_s": predicted_total(graph, base),
            "fitted_s": predicted_total(graph, profile),
        }
        row["unseen_s"] = predicted_total(graph, unseen) if unseen else float("nan")
        for col in ("base", "fitted", "unseen"):
            row[f"{col}_error"] = row[f"{col}_s"] / m.total_s - 1.0
        rows.append(row)
    return Calibration(
        base=base,
        profile=profile,
        fit=whole,
        measurements=tuple(m for _, m in pairs),
        table=pd.DataFrame(rows),
        machine=machine(),
        codec_mib=codec_mib,
    )


def profile_toml(c: Calibration) -> str:
    """The fitted profile as a device profile file, every measured figure marked M:."""
    p, f, base = c.profile, c.fit, c.base
    nets = ", ".join(f"{m.model} {'x'.join(map(str, m.input_shape[1:]))}" for m in c.measurements)
    threads = c.measurements[0].threads if c.measurements else torch.get_num_threads()
    how = (
        f"dse calibrate on {c.machine}; {threads} thread(s); eager PyTorch, median of "
        f"{c.measurements[0].repeats if c.measurements else 0} runs; networks: {nets}"
    )
    peak_src = (
        f"M: best float32 1024x1024 matmul, {how}"
        if f.peak_source == "gemm"
        else base.sources.get("compute.peak_flops.fp32", f"copied from {base.name} v{base.version}")
    )
    eff_lines = [f"{k} = {v:.4g}" for k, v in sorted(p.efficiency.items())]
    eff_src = {}
    for k in sorted(p.efficiency):
        if k in f.kernels:
            eff_src[k] = (
                f"M: FLOPs / (peak x (time - overhead)) over {f.kernels[k]} "
                f"compute-bound kernels, {how}"
            )
        else:
            kept = base.sources.get(
                f"compute.efficiency.{k}", base.sources.get("compute.efficiency", "")
            )
            eff_src[k] = (
                f"{kept or 'E: estimate'} (kept from {base.name}: no compute-bound kernel measured)"
            )

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"# Fitted by `dse calibrate` from {base.name}: see [sources] for what was measured.",
        'type = "device"',
        f"name = {q(p.name)}",
        "version = 1",
        f"kind = {q(p.kind)}",
        f"description = {q(f'{c.machine}; {threads} thread(s), FP32, eager PyTorch')}",
        f"source = {q(f'measured with dse calibrate; power and capacity from {base.name}')}",
        "",
        "[compute]",
        f'peak_flops = {{ fp32 = "{f.peak_flops / 1e9:.6g} GFLOP/s" }}',
        'dtype = "fp32"',
        f'overhead = "{f.overhead_s * 1e6:.4g} us"',
        "",
        "[compute.efficiency]",
        *eff_lines,
        "",
    ]
    if p.sparse_efficiency:
        lines += [
            "[compute.sparse_efficiency]",
            *(f"{k} = {v:.4g}" for k, v in sorted(p.sparse_efficiency.items())),
            "",
        ]
    lines += [
        "[memory]",
        f'bandwidth = "{f.mem_bandwidth_Bps / 1e9:.4g} GB/s"',
        f'capacity = "{p.mem_capacity_bytes:.0f} B"',
        "",
        "[power]",
        f'idle = "{p.idle_power_w:g} W"',
        f'active = "{p.active_power_w:g} W"',
        "",
    ]
    if p.codec_Bps:
        lines += ["[codec]", *(f'{k} = "{v / 1e6:.5g} MB/s"' for k, v in p.codec_Bps.items()), ""]
    lines += [
        "[sources]",
        f'"compute.peak_flops.fp32" = {q(peak_src)}',
        f'"compute.overhead" = {q("M: median time of the kernels with almost no work, " + how)}',
        *(f'"compute.efficiency.{k}" = {q(v)}' for k, v in eff_src.items()),
    ]
    if p.sparse_efficiency:
        lines.append(f'"compute.sparse_efficiency" = {q(f"copied from {base.name}")}')
    lines += [
        f'"memory.bandwidth" = {q("M: STREAM-style c = a + b over 3 x 64 MiB, " + how)}',
        f'"memory.capacity" = {q(base.sources.get("memory.capacity", "copied from " + base.name))}',
        f'"power.idle" = {q(base.sources.get("power.idle", "copied from " + base.name))}',
        f'"power.active" = {q(base.sources.get("power.active", "copied from " + base.name))}',
    ]
    codec_how = {
        "quantize": "float32 -> int8 affine quantisation in torch (min/max pass included), "
        "float32 bytes in per second",
        "dequantize": "int8 -> float32 in torch, float32 bytes out per second",
        "zstd": "zstandard level 3 compressing int8 codes, bytes in per second",
        "unzstd": "zstandard decompressing them, bytes out per second",
        "zlib": "zlib level 6 compressing int8 codes, bytes in per second",
        "unzlib": "zlib decompressing them, bytes out per second",
    }
    for k in p.codec_Bps:
        text = (
            f"M: {codec_how[k]}, on {c.codec_mib:g} MiB of ReLU'd standard normal "
            f"float32 data, median of 5 runs; {how}"
        )
        lines.append(f'"codec.{k}" = {q(text)}')
    return "\n".join(lines) + "\n"


# the kernel predictors, calibrated beside the profile (predictor_fit.py)
from dse.costmodel.predictor_fit import (  # noqa: E402, F401
    LayerTimes,
    PredictorFit,
    PredictorPlan,
    calibrate_predictor,
    call_floor_of,
    cut_errors,
    dump_toml,
    fit_kernel_predictor,
    networks_from_table,
    plan_predictor,
    predictor_profile_files,
    program_errors,
    spread_cuts,
)
