"""Kernel latency predictors calibrated on this machine: sampled kernels, network layers and
whole network programs, timed in the profile's runtime, fitted and judged on networks held
out (:class:`PredictorPlan`, :func:`fit_kernel_predictor`), and written beside a profile.
:mod:`dse.costmodel.calibrate` fits the device profile itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn

from dse.costmodel.devices import DeviceProfile
from dse.costmodel.graph import LayerGraph, Node, build_graph
from dse.costmodel.measure import pinned_threads
from dse.errors import InputError


@dataclass(frozen=True)
class LayerTimes:
    """One network's backbone nodes with their measured seconds (floor out), and where
    they were timed, the edge part of its cuts as whole programs: ``(cut, seconds)``."""

    model: str
    nodes: tuple[Node, ...]
    seconds: tuple[float, ...]
    programs: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, eq=False)
class PredictorFit:
    """The chosen predictor, and how each method did on held-out networks."""

    predictor: Any  # KernelPredictor fitted on everything
    chosen: str
    table: Any  # pandas: method, model, cuts, within_10, within_20, mape
    scores: Mapping[str, Mapping[str, float]]  # method -> within_5, within_10, mape
    kernels: int  # sampled kernels measured
    call_s: float


def cut_errors(predicted: Sequence[float], measured: Sequence[float], call_s: float) -> list[float]:
    """Relative error of every cut's edge part (prefix sums of layer times + the floor)."""
    import numpy as np

    p = call_s + np.cumsum(predicted)
    m = call_s + np.cumsum(measured)
    return [float(a / b - 1.0) for a, b in zip(p, m, strict=True) if b > 0]


def program_errors(predictor: Any, net: LayerTimes) -> list[float]:
    """Relative error of ``predictor`` on every timed program of ``net`` (the edge part of
    a cut, whole); without timed programs, on the prefix sums of its layers' times."""
    if not net.programs:
        p = [predictor.time_of(n) or 0.0 for n in net.nodes]
        return cut_errors(p, net.seconds, predictor.call_s)
    return [
        predictor.program_s(net.nodes[:k]) / s - 1.0 for k, s in net.programs if s > 0 and k > 0
    ]


def _programs(networks: Sequence[LayerTimes]) -> list[Any]:
    from dse.costmodel.predictor import ProgramTime

    return [ProgramTime(tuple(w.nodes[:k]), s) for w in networks for k, s in w.programs if k > 0]


def fit_kernel_predictor(
    kernel_nodes: Sequence[Node],
    kernel_s: Sequence[float],
    networks: Sequence[LayerTimes],
    *,
    runtime: str,
    call_s: float,
    seed: int = 0,
    methods: Sequence[str] = ("terms", "trees", "hybrid"),
    threads: int = 1,
) -> PredictorFit:
    """Fit each method on kernels + networks (their layers, and their programs where
    timed, all at ``threads`` intra-op threads); judge each on every network held out
    (fit on the kernels and the other networks, predict every timed program of the
    held-out one, or every prefix of its layers); keep the method with the larger share
    of cuts within 10% (then the lower MAPE, then the simpler method, in ``methods``'
    order): the metric the predictor is held to on networks it never saw."""
    import numpy as np
    import pandas as pd

    from dse.costmodel.predictor import fit_predictor

    def fitted(nets: Sequence[LayerTimes], method: str, meta: Any = None) -> Any:
        nodes = list(kernel_nodes) + [n for w in nets for n in w.nodes]
        secs = list(kernel_s) + [s for w in nets for s in w.seconds]
        return fit_predictor(
            nodes,
            secs,
            method=method,
            runtime=runtime,
            call_s=call_s,
            seed=seed,
            programs=_programs(nets),
            meta=meta,
            threads=threads,
        )

    rows = []
    for method in methods:
        for i, held in enumerate(networks):
            pred = fitted([w for j, w in enumerate(networks) if j != i], method)
            err = np.abs(program_errors(pred, held))
            rows.append(
                {
                    "method": method,
                    "model": held.model,
                    "cuts": len(err),
                    "within_10": float((err <= 0.10).mean()) if len(err) else 0.0,
                    "within_20": float((err <= 0.20).mean()) if len(err) else 0.0,
                    "mape": float(err.mean()) if len(err) else float("inf"),
                    "errors": err,
                }
            )
    table = pd.DataFrame(
        rows,
        columns=["method", "model", "cuts", "within_10", "within_20", "mape", "errors"],
    )
    scores: dict[str, dict[str, float]] = {}
    for method, group in table.groupby("method", sort=False):
        err = np.concatenate(list(group.errors)) if len(group) else np.zeros(0)
        scores[str(method)] = {
            "within_5": float((err <= 0.05).mean()) if len(err) else 0.0,
            "within_10": float((err <= 0.10).mean()) if len(err) else 0.0,
            "mape": float(err.mean()) if len(err) else float("inf"),
        }
    # the larger share within 10%, then the lower MAPE (to 0.1%), then the simpler method
    order = {m: i for i, m in enumerate(methods)}
    chosen = (
        max(
            scores,
            key=lambda m: (scores[m]["within_10"], -round(scores[m]["mape"], 3), -order[m]),
        )
        if scores
        else methods[0]
    )
    final = fitted(
        networks,
        chosen,
        meta={
            "kernels": len(kernel_nodes),
            "networks": [w.model for w in networks],
            "programs": sum(len(w.programs) for w in networks),
            "held_out": {m: dict(s) for m, s in scores.items()},
        },
    )
    return PredictorFit(
        predictor=final,
        chosen=chosen,
        table=table.drop(columns="errors"),
        scores=scores,
        kernels=len(kernel_nodes),
        call_s=final.call_s,
    )


@dataclass(frozen=True, eq=False)
class PredictorPlan:
    """What calibrating a kernel predictor times, as zero-argument calls by key: every
    sampled kernel (``("kernel", i, node)``), every backbone layer of every network alone
    (``("layer", model, node)``) and the edge part of its cuts (``("cut", model, k)``),
    and the empty program (``("call",)``). ``configs`` names the layer configurations
    of all of them (what was timed -> its configurations: ``coverage``)."""

    runtime: str
    calls: Mapping[Any, Any]
    kernels: tuple[tuple[Any, Node], ...]
    networks: tuple[tuple[str, tuple[Node, ...], tuple[int, ...]], ...]
    configs: Mapping[str, tuple[Any, ...]]

    CALL: ClassVar[tuple[str, ...]] = ("call",)

    def fit(
        self,
        times: Mapping[Any, Any],
        *,
        seed: int = 0,
        methods: Sequence[str] = ("terms", "trees", "hybrid"),
        threads: int = 1,
    ) -> PredictorFit:
        """Fit and choose the predictor from the p10 of every call (``measure.Timing``),
        timed at ``threads`` intra-op threads: kernels and layers less the empty
        program's p10, programs whole."""
        floor = times[self.CALL].p10_s
        knodes = [n for _, n in self.kernels]
        ks = [max(0.0, times[key].p10_s - floor) for key, _ in self.kernels]
        nets = [
            LayerTimes(
                model,
                nodes,
                tuple(max(0.0, times[("layer", model, n.name)].p10_s - floor) for n in nodes),
                tuple((k, times[("cut", model, k)].p10_s) for k in cuts),
            )
            for model, nodes, cuts in self.networks
        ]
        return fit_kernel_predictor(
            knodes,
            ks,
            nets,
            runtime=self.runtime,
            call_s=floor,
            seed=seed,
            methods=methods,
            threads=threads,
        )


def plan_predictor(
    models: Sequence[tuple[str, nn.Module, torch.Tensor]],
    *,
    runtime: str,
    kernels: int = 150,
    seed: int = 0,
    cuts: int | None = None,
) -> PredictorPlan:
    """The calls calibrating a predictor times (:class:`PredictorPlan`): ``kernels``
    sampled kernel configurations, and every layer of ``models`` with the edge part of
    their cuts (all, or about ``cuts`` per network spread over the backbone, the last
    always), as ``runtime`` programs."""
    from dse.costmodel.coverage import layer_configs
    from dse.costmodel.measure import (
        edge_programs,
        empty_program,
        node_programs,
        sample_kernels,
    )

    calls: dict[Any, Any] = {}
    knodes: list[tuple[Any, Node]] = []
    configs: dict[str, tuple[Any, ...]] = {}
    for i, spec in enumerate(sample_kernels(kernels, seed=seed)):
        module, x = spec.build()
        graph = build_graph(module, x, name=spec.label)
        for name, call in node_programs(module, x, graph.backbone, runtime=runtime).items():
            calls[("kernel", i, name)] = call
            knodes.append((("kernel", i, name), graph.nodes[name]))
        configs[f"kernel {spec.label}"] = tuple(layer_configs(module, x, graph).values())
    nets = []
    for label, model, example in models:
        graph = build_graph(model, example, name=label)
        for name, call in node_programs(model, example, graph.backbone, runtime=runtime).items():
            calls[("layer", label, name)] = call
        ks = spread_cuts(len(graph.backbone), cuts)
        for k, call in edge_programs(model, example, graph, ks, runtime=runtime).items():
            calls[("cut", label, k)] = call
        nets.append((label, tuple(graph.nodes[n] for n in graph.backbone), tuple(ks)))
        configs[label] = tuple(layer_configs(model, example, graph).values())
    calls[PredictorPlan.CALL] = empty_program(torch.zeros(1, 8), runtime=runtime)
    return PredictorPlan(runtime, calls, tuple(knodes), tuple(nets), configs)


def spread_cuts(n: int, count: int | None) -> list[int]:
    """Cuts 1 .. ``n`` (every one with ``count`` None, else about ``count`` of them spread
    evenly, ``n`` always among them)."""
    if count is None or count >= n:
        return list(range(1, n + 1))
    step = max(1, n // max(count, 1))
    return sorted(set(range(step, n + 1, step)) | {n})


def calibrate_predictor(
    models: Sequence[tuple[str, nn.Module, torch.Tensor]],
    *,
    runtime: str,
    kernels: int = 150,
    threads: int | None = 1,
    rounds: int = 20,
    seed: int = 0,
) -> PredictorFit:
    """Sample ``kernels`` layer configurations and time them with every layer of
    ``models`` and the edge part of each of their cuts, in ``runtime``
    (``measure.TIMED_RUNTIMES``), all interleaved, on ``threads`` threads; fit and choose
    the predictor (:func:`fit_kernel_predictor`)."""
    from dse.costmodel.measure import time_interleaved

    plan = plan_predictor(models, runtime=runtime, kernels=kernels, seed=seed)
    with pinned_threads(threads) as used:
        times = time_interleaved(plan.calls, rounds=rounds, warmup=3, seed=seed)
    return plan.fit(times, seed=seed, threads=used)


def networks_from_table(
    table: Any, graphs: Mapping[tuple[str, str], LayerGraph]
) -> list[LayerTimes]:
    """Per (model, input shape) of a measurement table: its nodes and p10 seconds, in
    backbone order (rows of nodes off the backbone, and the floor row, left out)."""
    out = []
    for (model, shape), rows in table.groupby(["model", "input_shape"], sort=False):
        g = graphs[(model, shape)]
        secs = dict(zip(rows.node, rows.p10_s, strict=True))
        names = [n for n in g.backbone if n in secs]
        out.append(
            LayerTimes(
                str(model), tuple(g.nodes[n] for n in names), tuple(float(secs[n]) for n in names)
            )
        )
    return out


def call_floor_of(table: Any) -> float:
    """The per-call floor of a measurement table: the median of its ``(call)`` rows' p10."""
    from dse.costmodel.measure import CALL_NODE

    floors = table[table.node == CALL_NODE].p10_s
    return float(floors.median()) if len(floors) else 0.0


def _toml_value(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def _toml_key(k: str) -> str:
    import re

    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def dump_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A nested mapping of strings and numbers as TOML text (tables after scalars)."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)
    ]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in data.items():
        if isinstance(v, Mapping):
            name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
            out += f"\n[{name}]\n" + dump_toml(v, name)
    return out


def predictor_profile_files(
    base: DeviceProfile, fitted: Any, *, name: str, out: Any, how: str
) -> tuple[str, bytes]:
    """The device profile (TOML text) and its predictor sidecar (bytes) for ``out``:
    ``base``'s figures with ``compute.runtime`` set to the predictor's runtime and a
    ``[predictor]`` table naming ``<out stem>.predictor.json`` with its sha256."""
    import tomllib
    from pathlib import Path

    from dse.costmodel.predictor import sha256

    if base.path is None:
        raise InputError(base.name, "path", "the base profile has no file", "give a .toml")
    data = tomllib.loads(Path(base.path).read_text())
    sidecar = fitted.dumps()
    predictor = fitted
    data["name"] = name
    from dse.costmodel.calibrate import machine  # calibrate re-exports this module's names

    data["version"] = 1
    data["description"] = (
        f"{machine()}: {predictor.runtime} runtime, kernel predictor "
        f"({predictor.method}); other figures from {base.name}"
    )
    data["source"] = f"measured with dse calibrate ({how}); other figures from {base.name}"
    data["compute"]["runtime"] = predictor.runtime
    data["compute"].pop("sparse_efficiency", None)  # eager/exported programs: no sparse kernel
    data["sources"] = {
        k: v
        for k, v in data.get("sources", {}).items()
        if not str(k).startswith("compute.sparse_efficiency")
    }
    data["predictor"] = {"file": f"{Path(out).stem}.predictor.json", "sha256": sha256(sidecar)}
    head = (
        f"# Fitted by `dse calibrate` from {base.name}: layer latencies come from the "
        "kernel predictor in [predictor];\n# the roofline figures below are kept from "
        "the base for kinds the predictor has no model of.\n"
    )
    return head + dump_toml(data), sidecar
