"""The ``dse`` command line: each subcommand parses, calls one library function, prints.

Exit codes: 0 success, 2 bad input (one line naming the file, the field and the fix),
1 internal failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dse.errors import InputError, write_refused

DESCRIPTION = """\
Decide how to run a neural network across an edge device and a server: where to cut it,
which early exits the edge part carries and at which confidence threshold, and how sparse
its layers are. dse trains the candidates it needs, scores them with a per-layer cost
model of your devices and link, and reports the Pareto fronts."""

EPILOG = """\
A first run: dse demo (a small study, its baselines, verification, report and what its
front spans).
Exit codes: 0 success, 2 bad input (one line naming the file, the field and the fix),
1 internal failure."""

STORAGE_HELP = (
    "the study's storage: journal | sqlite | memory | a .journal path | an RDB "
    "URL (postgresql+psycopg://user@host/db) | grpc://host:port (default: the "
    "spec's when running it, else studies/NAME.journal or NAME.db)"
)
QUIET_HELP = "no progress bars or progress lines"
DEFAULT_EDGE = "raspberry-pi-4"
DEFAULT_SERVER = "a100"
DEFAULT_LINK = "lte"
#: The study `dse demo` (and `make demo`) runs: a microcontroller over Wi-Fi, where the cut
#: matters.
DEMO_SPEC = "studies/tiny-esp32.toml"


def parse_shape(text: str, *, field: str = "--input-shape") -> tuple[int, ...]:
    """``1x3x32x32`` or ``3x32x32`` (batch 1 added) -> a shape tuple."""
    try:
        dims = tuple(int(p) for p in text.lower().replace(",", "x").split("x") if p)
    except ValueError:
        raise InputError(
            "command line", field, f"cannot read shape {text!r}", "write it as 1x3x32x32"
        ) from None
    if not dims or any(d <= 0 for d in dims):
        raise InputError("command line", field, f"bad shape {text!r}", "write it as 1x3x32x32")
    if len(dims) == 3:
        dims = (1, *dims)
    return dims


def _write_json(path: str, data: Any) -> None:
    from dse.nets import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(data, indent=2, default=_jsonable).encode())


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple | set):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# --------------------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    import torch

    from dse.costmodel import (
        load_device,
        load_link,
        profile_model,
        sparse_kernel_summary,
        to_json,
    )
    from dse.nets import default_input, load_model
    from dse.report import fmt

    edge, server, link = load_device(args.edge), load_device(args.server), load_link(args.link)
    shape = parse_shape(args.input_shape) if args.input_shape else (1, *default_input(args.model))
    # --classes reaches the model only when given: a factory keeps its own default
    options = {} if args.output is None else {"output": args.output}
    model = load_model(
        args.model, in_channels=shape[1], input_size=shape[-1], num_classes=args.classes, **options
    )
    # The input takes the model's floating dtype: a float64 or bfloat16 model is profiled
    # as it is, with its own bytes per element.
    dtype = next((q.dtype for q in model.parameters() if q.is_floating_point()), torch.float32)
    example = torch.zeros(shape, dtype=dtype)
    p = profile_model(model, example, edge, server, link, name=args.model, tail=not args.no_tail)
    if args.measure:
        return _measure_profile(args, model, example, p)
    g = p.graph
    print(
        f"{args.model} at {'x'.join(map(str, shape))}: {fmt.count(g.params)} params, "
        f"{fmt.count(g.macs)} MACs, {fmt.count(g.flops)} FLOPs"
    )
    print(
        f"edge {edge.name}, server {server.name}, link {link.name} "
        f"({link.uplink_bps / 1e6:g} Mbit/s up, rtt {fmt.seconds(link.rtt_s)})\n"
    )
    layers = p.layers.assign(
        output_shape=p.layers.output_shape.map(lambda s: "x".join(map(str, s))),
        output_bytes=p.layers.output_bytes.map(fmt.nbytes),
        params=p.layers.params.map(fmt.count),
        flops=p.layers.flops.map(fmt.count),
        edge=p.layers.edge_latency_s.map(fmt.seconds),
        server=p.layers.server_latency_s.map(fmt.seconds),
    )
    columns = ["name", "kind", "output_shape", "output_bytes", "params", "flops", "edge", "server"]
    if (p.layers.pattern != "dense").any():
        layers = layers.assign(
            sparse=[
                ""
                if r.pattern == "dense"
                else f"{r.pattern}: edge {r.edge_kernel}, server {r.server_kernel}"
                for r in p.layers.itertuples()
            ]
        )
        columns.append("sparse")
    print(layers[columns].to_string(index=False))
    print()
    for line in sparse_kernel_summary(p):
        print(f"sparse layers on {line}")
    cuts = p.cuts
    if args.clean_only:
        cuts = cuts[cuts.clean]
    notes: dict[int, list[str]] = {0: ["server-only"], len(p.cuts) - 1: ["edge-only"]}
    notes.setdefault(p.best_cut, []).append("<- min latency")
    table = cuts.assign(
        tensors=cuts.tensors.map(len),
        bytes=cuts.bytes.map(fmt.nbytes),
        edge=cuts.edge_s.map(fmt.seconds),
        transfer=cuts.transfer_s.map(fmt.seconds),
        server=cuts.server_s.map(fmt.seconds),
        total=cuts.total_s.map(fmt.seconds),
        edge_energy=cuts.edge_energy_j.map(fmt.joules),
        note=[" ".join(notes.get(i, [])) for i in cuts["index"]],
    )[
        [
            "index",
            "after",
            "tensors",
            "bytes",
            "edge",
            "transfer",
            "server",
            "total",
            "edge_energy",
            "note",
        ]
    ]
    print(table.to_string(index=False))
    energy = cuts.assign(
        **{
            c: cuts[c].map(fmt.joules)
            for c in (
                "edge_energy_j",
                "compute_j",
                "radio_up_j",
                "radio_down_j",
                "radio_wait_j",
                "radio_tail_j",
                "idle_j",
            )
        }
    )
    energy = energy.rename(
        columns={
            "edge_energy_j": "edge_energy",
            "compute_j": "compute",
            "radio_up_j": "radio_up",
            "radio_down_j": "radio_down",
            "radio_wait_j": "radio_wait",
            "radio_tail_j": "radio_tail",
            "idle_j": "idle",
        }
    )
    print(
        "\nedge energy by part (radio: sending, receiving the result, connected through "
        "the RTT and the server, tail; idle: the board waiting):"
    )
    print(
        energy[
            [
                "index",
                "edge_energy",
                "compute",
                "radio_up",
                "radio_down",
                "radio_wait",
                "radio_tail",
                "idle",
            ]
        ].to_string(index=False)
    )
    best = p.cuts.iloc[p.best_cut]
    print(
        f"\nmin-latency cut {p.best_cut} (after {best.after}): {fmt.seconds(best.total_s)}; "
        f"edge-only {fmt.seconds(p.edge_only.total_s)}, "
        f"server-only {fmt.seconds(p.server_only.total_s)}"
    )
    if g.unsupported:
        print(f"ops with no FLOP rule (counted as 0): {dict(g.unsupported)}")
    if args.csv:
        p.layers.assign(
            output_shape=p.layers.output_shape.map(lambda sh: "x".join(map(str, sh)))
        ).to_csv(args.csv, index=False)
        p.cuts.assign(tensors=p.cuts.tensors.map(" ".join)).to_csv(
            Path(args.csv).with_suffix(".cuts.csv"), index=False
        )
        print(f"wrote {args.csv} and {Path(args.csv).with_suffix('.cuts.csv')}")
    if args.json:
        _write_json(args.json, to_json(p))
        print(f"wrote {args.json}")
    return 0


def _measure_profile(args: argparse.Namespace, model: Any, example: Any, p: Any) -> int:
    """``dse profile MODEL --measure``: every backbone layer timed here, beside the
    edge profile's prediction; ``--csv`` writes the measurement CSV schema."""
    from dse.costmodel import calibrate, measure
    from dse.report import fmt

    if args.repeats < 1:
        raise InputError(
            "--repeats", "repeats", f"must be >= 1, got {args.repeats}", "pass e.g. --repeats 30"
        )
    if args.threads < 1:
        raise InputError(
            "--threads",
            "threads",
            f"must be >= 1, got {args.threads}",
            "pass the number of cores the deployed runtime will use",
        )
    table = measure.measure_layers(
        model,
        example,
        name=args.model,
        runtime=args.runtime,
        threads=args.threads,
        rounds=args.repeats,
        device=calibrate.machine(),
        graph=p.graph,
    )
    predicted = dict(zip(p.layers.name, p.layers.edge_latency_s, strict=True))
    print(f"{args.model} at {'x'.join(map(str, example.shape))}, measured on {calibrate.machine()}")
    print(
        f"runtime {args.runtime}, {int(table.threads.iloc[0])} thread(s) pinned, "
        f"{args.repeats} interleaved rounds after 3 warm-up rounds; per-call floor "
        "taken out of every layer and shown as (call)\n"
    )
    shown = table.assign(
        median=table.median_s.map(fmt.seconds),
        p10=table.p10_s.map(fmt.seconds),
        spread=table.spread.map(lambda v: f"{100 * v:.0f}%"),
        predicted=[fmt.seconds(predicted[n]) if n in predicted else "" for n in table.node],
    )
    print(shown[["node", "kind", "p10", "median", "spread", "predicted"]].to_string(index=False))
    layers = table[table.node != measure.CALL_NODE]
    print(
        f"\nsum of layers: p10 {fmt.seconds(layers.p10_s.sum())}, median "
        f"{fmt.seconds(layers.median_s.sum())}; {p.table.edge.name} predicts "
        f"{fmt.seconds(float(p.edge_only.edge_s))} (edge-only)"
    )
    if args.csv:
        measure.write_csv(table, args.csv)
        print(
            f"wrote {args.csv}; fit a profile from it with: dse calibrate --from-csv "
            f"{args.csv} --base BASE --out FILE"
        )
    if args.json:
        _write_json(args.json, table.to_dict(orient="records"))
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------------------
# devices / links / models
# --------------------------------------------------------------------------------------


def _calibrate_predictor(args: argparse.Namespace, base: Any, out: Path, name: str) -> int:
    """``dse calibrate --runtime R`` or ``--from-csv FILE``: a kernel predictor profile."""
    import torch

    from dse.costmodel import calibrate, load_device, measure
    from dse.nets import atomic_write_bytes, default_input, load_model
    from dse.report import fmt

    if args.from_csv:
        table = measure.read_csv(args.from_csv)
        graphs = {}
        for model, shape in table.groupby(["model", "input_shape"], sort=False).groups:
            dims = parse_shape(shape, field=f"{args.from_csv}: input_shape")
            net = load_model(model, in_channels=dims[1], input_size=dims[-1])
            try:
                graphs[(model, shape)] = calibrate.build_graph(net, torch.zeros(dims), name=model)
            except Exception as exc:  # noqa: BLE001 - the CSV's shape does not fit the model
                raise InputError(
                    args.from_csv,
                    "input_shape",
                    f"{model} does not run on {shape} ({type(exc).__name__}: {exc})",
                    "the shape the model was measured at",
                ) from None
        measure.check_nodes(table, graphs, args.from_csv)
        runtime = str(table.runtime.iloc[0])
        nets = calibrate.networks_from_table(table, graphs)
        fitted = calibrate.fit_kernel_predictor(
            [], [], nets, runtime=runtime, call_s=calibrate.call_floor_of(table), seed=args.seed
        )
        how = f"from {args.from_csv}: {', '.join(sorted(set(table.device)))}"
    else:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        models = [(n, load_model(n), torch.zeros((1, *default_input(n)))) for n in names]
        print(
            f"timing {args.kernels} sampled kernels and every layer of {', '.join(names)} "
            f"as {args.runtime} programs ({args.repeats} interleaved rounds)...",
            flush=True,
        )
        fitted = calibrate.calibrate_predictor(
            models,
            runtime=args.runtime,
            kernels=args.kernels,
            threads=args.threads or 1,
            rounds=args.repeats,
            seed=args.seed,
        )
        runtime = args.runtime
        how = (
            f"{args.kernels} sampled kernels and {', '.join(names)}, {args.threads or 1} "
            f"thread(s), p10 of {args.repeats} interleaved rounds"
        )
    if not fitted.predictor.models:
        from dse.costmodel import MIN_SAMPLES

        raise InputError(
            args.from_csv or "--models",
            "predictor",
            f"no kind of layer was timed {MIN_SAMPLES} times or more: nothing to fit",
            "measure more or larger networks (e.g. add `dse profile "
            "vgg-s --measure --csv` rows), or sample kernels (--kernels)",
        )
    print(
        f"per-call floor {fmt.seconds(fitted.call_s)}; held-out networks (each predicted "
        "by a fit without it), every cut's edge part:"
    )
    t = fitted.table
    print(
        t.assign(
            **{c: t[c].map(lambda v: f"{100 * v:.0f}%") for c in ("within_10", "within_20", "mape")}
        ).to_string(index=False)
    )
    for method, s in fitted.scores.items():
        mark = "  <- chosen" if method == fitted.chosen else ""
        print(
            f"{method:6s} within 10%: {100 * s['within_10']:.0f}% of held-out cuts, "
            f"MAPE {100 * s['mape']:.1f}%{mark}"
        )
    text, sidecar = calibrate.predictor_profile_files(
        base, fitted.predictor, name=name, out=out, how=how
    )
    atomic_write_bytes(out.with_name(f"{out.stem}.predictor.json"), sidecar)
    atomic_write_bytes(out, text.encode())
    load_device(out)  # what was written must load as a profile
    print(
        f"\nwrote {out} (runtime {runtime}) and {out.stem}.predictor.json; use it with: "
        f"dse profile MODEL --edge {out}"
    )
    if args.json:
        _write_json(
            args.json,
            {
                "profile": str(out),
                "runtime": runtime,
                "chosen": fitted.chosen,
                "scores": dict(fitted.scores),
                "call_s": fitted.call_s,
                "held_out": t.to_dict(orient="records"),
            },
        )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import re

    import torch

    from dse.costmodel import calibrate, load_device
    from dse.nets import atomic_write_bytes, default_input, load_model
    from dse.report import fmt

    base = load_device(args.base)
    out = Path(args.out)
    name = args.name or out.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InputError(
            "--name",
            "name",
            f"{name!r} is not a profile name",
            "use letters, digits, '.', '_' and '-'",
        )
    if out.exists() and not args.force:
        raise InputError(
            out, "--out", "exists already", "pass --force to replace it, or write to another path"
        )
    if not out.parent.is_dir():
        raise InputError(out, "--out", "its folder does not exist", "create it first")
    if args.repeats < 1:
        raise InputError(
            "--repeats", "repeats", f"must be >= 1, got {args.repeats}", "pass e.g. --repeats 20"
        )
    if args.threads is not None and args.threads < 1:
        raise InputError(
            "--threads",
            "threads",
            f"must be >= 1, got {args.threads}",
            "pass the number of cores the deployed runtime will use",
        )
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise InputError("--models", "models", "no model given", "pass e.g. --models mlp,vgg-s")
    if args.kernels < 0:
        raise InputError(
            "--kernels", "kernels", f"must be >= 0, got {args.kernels}", "pass e.g. --kernels 150"
        )
    if args.from_csv or args.runtime:
        return _calibrate_predictor(args, base, out, name)
    models = [(n, load_model(n), torch.zeros((1, *default_input(n)))) for n in names]
    print(f"measuring {', '.join(names)} on this machine ({args.repeats} runs each)...", flush=True)
    c = calibrate.calibrate(
        models,
        base,
        name=name,
        repeats=args.repeats,
        threads=args.threads,
        gemm_peak=args.gemm_peak,
    )
    f = c.fit
    print(c.machine)
    print(
        f"peak {f.peak_flops / 1e9:.4g} GFLOP/s fp32 "
        f"({'best measured matmul' if f.peak_source == 'gemm' else 'from ' + base.name})"
    )
    print(
        f"overhead per kernel {fmt.seconds(f.overhead_s)} "
        f"(base {fmt.seconds(base.overhead_s)}); memory bandwidth "
        f"{f.mem_bandwidth_Bps / 1e9:.3g} GB/s (base {base.mem_bandwidth_Bps / 1e9:.3g})"
    )
    for kind, n in sorted(f.kernels.items()):
        print(
            f"efficiency {kind:15s} {f.efficiency[kind]:.3g} "
            f"(base {base.eff(kind):.3g}; {n} kernels)"
        )
    print(
        "codec throughputs: "
        + ", ".join(
            f"{k} {v / 1e6:.4g} MB/s (base {base.codec_rate(k) / 1e6:.4g})"
            for k, v in c.profile.codec_Bps.items()
        )
    )
    t = c.table
    shown = t.assign(
        **{
            col: t[col].map(fmt.seconds) for col in ("measured_s", "base_s", "fitted_s", "unseen_s")
        },
        **{
            col: t[col].map(lambda v: f"{100 * v:+.0f}%")
            for col in ("base_error", "fitted_error", "unseen_error")
        },
    )
    print(
        "\nwhole networks, measured end to end vs predicted edge-only latency "
        "(unseen: fitted on the other networks):"
    )
    print(
        shown[
            [
                "model",
                "input",
                "kernels",
                "measured_s",
                "base_s",
                "base_error",
                "fitted_s",
                "fitted_error",
                "unseen_s",
                "unseen_error",
            ]
        ].to_string(index=False)
    )
    print(
        f"median |error|: base profile {100 * t.base_error.abs().median():.0f}%, "
        f"fitted {100 * t.fitted_error.abs().median():.0f}%, "
        f"on unseen networks {100 * t.unseen_error.abs().median():.0f}%"
    )
    atomic_write_bytes(out, calibrate.profile_toml(c).encode())
    load_device(out)  # what was written must load as a profile
    print(f"\nwrote {out}; use it with: dse profile MODEL --edge {out}")
    if args.json:
        _write_json(
            args.json,
            {
                "machine": c.machine,
                "profile": str(out),
                "peak_flops": f.peak_flops,
                "peak_source": f.peak_source,
                "overhead_s": f.overhead_s,
                "mem_bandwidth_Bps": f.mem_bandwidth_Bps,
                "efficiency": dict(f.efficiency),
                "kernels": dict(f.kernels),
                "codec_Bps": dict(c.profile.codec_Bps),
                "networks": t.to_dict(orient="records"),
            },
        )
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    """``dse devices|links list|show|validate``."""
    from dse.costmodel import devices

    devs = args.command == "devices"
    if args.action == "list":
        loader = devices.load_device if devs else devices.load_link
        for name in devices.list_devices() if devs else devices.list_links():
            prof = loader(name)
            print(f"{name:20s} {getattr(prof, 'kind', 'link'):7s} {prof.description}")
    elif args.action == "show":
        print(devices.describe((devices.load_device if devs else devices.load_link)(args.name)))
    else:
        for f in args.files:
            prof = devices.validate_file(f)
            print(f"{f}: ok ({prof.name} v{prof.version})")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    import torch

    from dse.costmodel import build_graph
    from dse.nets import default_input, list_models, load_model, model_entry
    from dse.report import fmt

    for name in list_models():
        shape = (1, *default_input(name))
        model = load_model(name)
        g = build_graph(model, torch.zeros(shape), name=name)
        sites = getattr(model, "exit_sites", ())
        print(
            f"{name:12s} {fmt.count(g.params):>6s} params {fmt.count(g.flops):>6s} FLOPs "
            f"at {'x'.join(map(str, shape[1:]))}, exits after {', '.join(sites)}: "
            f"{model_entry(name).description}"
        )
    return 0


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------


def _data_from_args(args: argparse.Namespace) -> Any:
    from dse.nets import load_data

    # None means "not given"; any given value (0 included) goes to load_data to be checked
    opts = {
        k: getattr(args, k)
        for k in ("size", "n", "channels", "noise")
        if getattr(args, k, None) is not None
    }
    return load_data(args.data, root=args.data_root, seed=args.data_seed, **opts)


def network_summary(trained: Any) -> dict[str, Any]:
    """Accuracy, sizes and arithmetic of a trained network (what ``dse train`` prints)."""
    from dse.costmodel import build_graph
    from dse.nets import example_input, sparsity

    net = trained.network()
    graph = build_graph(net, example_input(trained.spec.data), name=trained.spec.model)
    acc = trained.accuracy("test")
    return {
        "model": trained.spec.model,
        "method": trained.spec.method,
        "accuracy": acc[-1],
        "exit_accuracy": acc[:-1],
        "exit_sites": list(trained.exit_sites),
        "val_accuracy": trained.accuracy("val")[-1],
        "density": sparsity.realised_density(net),
        "requested_density": trained.spec.density,
        "realised_density": trained.realised_density,
        "classifier": getattr(net, "classifier_name", None),
        "classifier_found": bool(getattr(net, "classifier_found", False)),
        "params": graph.params,
        "nonzero_params": sum(n.nonzero_params for n in graph.nodes.values()),
        "flops": sum(n.sparse_flops for n in graph.nodes.values()),
        "dense_flops": graph.flops,
        "stored_bytes": sparsity.stored_bytes(net, form="indices"),
        "stored_bytes_seed_form": sparsity.stored_bytes(net, form="seed")
        if trained.spec.method in ("predefined", "nm")
        else sparsity.stored_bytes(net),
        "dense_bytes": sparsity.dense_bytes(net),
        "train_seconds": trained.train_seconds,
        "epochs_run": trained.epochs_run,
        "epoch_kept": trained.epoch_kept,
        "learning_problem": trained.learning_problem(),
        "tasks": list(trained.tasks),
        "task_accuracy": dict(zip(trained.tasks, trained.task_accuracy("test"), strict=True)),
        "task_exit_accuracy": {
            t: trained.accuracy("test", i)[:-1] for i, t in enumerate(trained.tasks)
        },
        "cached": trained.cached,
        "key": trained.key,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from dse.nets import Cache, NetworkSpec, TrainConfig, train_network
    from dse.report import fmt

    auto = {
        k: v
        for k, v in (("patience", args.patience), ("max_epochs", args.max_epochs))
        if v is not None
    }
    if auto and args.epochs != "auto":
        flag = "--patience" if "patience" in auto else "--max-epochs"
        raise InputError(
            "command line", flag, "only used with --epochs auto", "pass --epochs auto, or drop it"
        )
    data = _data_from_args(args)
    exits: tuple[str, ...] | None = None
    if args.exits not in (None, "all"):
        exits = () if args.exits == "none" else tuple(args.exits.split(","))
    tasks = (
        data.check_tasks(
            tuple(t for t in args.tasks.split(",") if t), where="command line", field="--tasks"
        )
        if args.tasks
        else None
    )
    spec = NetworkSpec(
        model=args.model,
        data=data,
        method=args.method,
        density=args.density,
        exits=exits,
        model_options={} if args.output is None else {"output": args.output},
        train=TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, **auto
        ),
        tasks=tasks,
    )
    trained = train_network(spec, cache=Cache(args.cache_dir), progress=not args.quiet)
    info = network_summary(trained)
    state = "loaded from cache" if trained.cached else f"trained in {trained.train_seconds:.1f} s"
    print(
        f"{args.model} on {data.name} ({args.method}, density {args.density:g}): {state}, "
        f"{trained.epochs_text()}"
    )
    if len(info["tasks"]) == 1:
        for site, acc in zip(info["exit_sites"], info["exit_accuracy"], strict=True):
            print(f"  exit after {site:12s} test accuracy {fmt.percent(acc)}")
        print(f"  final                    test accuracy {fmt.percent(info['accuracy'])}")
        found = " (the last layer before the output)" if info["classifier_found"] else ""
        print(f"  final classifier {info['classifier'] or '(none found)'}{found} kept dense")
    else:
        for task in info["tasks"]:
            exits = "".join(
                f", exit after {site} {fmt.percent(a)}"
                for site, a in zip(
                    info["exit_sites"], info["task_exit_accuracy"][task], strict=True
                )
            )
            print(
                f"  task {task}: final test accuracy "
                f"{fmt.percent(info['task_accuracy'][task])}{exits}"
            )
        print(f"  one head per task ({trained.spec.head.describe()}), kept dense")
    print(
        f"  realised density {info['realised_density']:.4f} of the dense network's weights "
        f"(requested {args.density:g}); non-zero params "
        f"{fmt.count(info['nonzero_params'])} of {fmt.count(info['params'])}; FLOPs "
        f"{fmt.count(info['flops'])} (dense {fmt.count(info['dense_flops'])})"
    )
    print(
        f"  stored {fmt.nbytes(info['stored_bytes'])} with explicit indices, "
        f"{fmt.nbytes(info['stored_bytes_seed_form'])} with seed-regenerated indices, "
        f"dense float32 {fmt.nbytes(info['dense_bytes'])}"
    )
    if info["learning_problem"]:
        print(
            f"dse: warning: {args.model} ({args.method}, density {args.density:g}): "
            f"{info['learning_problem']}; {trained.learning_fix()}",
            file=sys.stderr,
        )
    if args.json:
        _write_json(args.json, info)
        print(f"wrote {args.json}")
    return 0


def _epochs(text: str) -> int | str:
    """``--epochs``: a number of epochs or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'auto'") from None


# --------------------------------------------------------------------------------------
# study, front, verify, compare, report
# --------------------------------------------------------------------------------------


def _print_status(info: dict[str, Any]) -> None:
    trials = ", ".join(f"{k.lower()} {v}" for k, v in info["trials"].items()) or "none"
    workers = f"; {info['workers']} worker(s) running" if info.get("workers") else ""
    used, run = info["networks_used"], info["trainings_run"]
    trainings = (
        f"{run} training(s) run by this study ({info['training_seconds']:.1f} s)"
        if run
        else "no training run by this study"
    )
    print(
        f"study {info['name']}: trials {trials}; {used} network(s) used by trials, "
        f"{trainings}{workers}"
    )
    coded = info.get("coded") or []
    if coded:
        passes = sum(v["evaluation_passes"] for v in coded)
        per_cut = sum(v["evaluation_passes"] / max(1, v["cuts"]) for v in coded) / len(coded)
        nets = len({v["network"] for v in coded})
        print(
            f"codec outputs built for {nets} network(s): {sum(v['payloads'] for v in coded)} "
            f"payloads coded, {passes:.1f} evaluation passes' worth of forward passes "
            f"(validation and test; {per_cut:.2f} per network and cut), "
            f"{sum(v['seconds'] for v in coded):.1f} s"
        )
    line = f"hypervolume {info['hypervolume']:.4f} (ruler from {info['ruler']})"
    if "hv_fraction_of_grid" in info:
        line += f", {100 * info['hv_fraction_of_grid']:.1f}% of the grid front's"
    print(line)
    if info.get("unreadable"):
        print(
            f"{info['unreadable']} complete trial(s) left out: their values are not finite "
            f"(first: {info['first_unreadable']})"
        )


def _with_helpers(
    args: argparse.Namespace,
    command: list[str],
    run: Callable[[int | None, Callable[[], None] | None], Any],
) -> tuple[Any, int]:
    """``run(worker_index, on_start)`` here, with ``args.workers - 1`` helper processes
    running ``dse COMMAND --quiet --worker-index I`` on the same study; they are started
    once this process holds the study, so none races its start-up. Returns run's result
    and 0, or a failed helper's exit code."""
    import subprocess

    from dse.search import die_with_parent

    if args.workers < 1:
        raise InputError(
            "--workers",
            "workers",
            f"must be >= 1, got {args.workers}",
            "pass the number of processes to run, e.g. the free cores",
        )
    helpers: list[subprocess.Popen[bytes]] = []

    def start_helpers() -> None:
        argv = [sys.executable, "-m", "dse.cli", *command, "--quiet"]
        preexec = die_with_parent()
        for flag, value in (("--n-trials", args.n_trials), ("--storage", args.storage)):
            if value is not None:
                argv += [flag, str(value)]
        for i in range(1, args.workers):
            helpers.append(
                subprocess.Popen(
                    [*argv, "--worker-index", str(i)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    preexec_fn=preexec,
                )
            )

    try:
        result = run(args.worker_index, start_helpers if args.workers > 1 else None)
    finally:
        codes = [p.wait() for p in helpers]
    failed = [c for c in codes if c != 0]
    if failed:
        print(
            f"dse: error: {len(failed)} of {len(codes)} helper worker(s) failed "
            f"(exit {failed[0]}); see their messages above",
            file=sys.stderr,
        )
        return result, failed[0]
    return result, 0


def cmd_study_run(args: argparse.Namespace) -> int:
    from dse.search import load_spec

    spec = load_spec(args.spec)
    rc = _run_study(args, spec, ["study", "run", args.spec])
    if rc == 0:
        print(f"next: dse front {spec.name}   |   dse report {spec.name}")
    return rc


def cmd_study_resume(args: argparse.Namespace) -> int:
    from dse.search import load_study

    _, spec = load_study(args.name, storage=args.storage)
    return _run_study(args, spec, ["study", "resume", args.name])


def cmd_study_worker(args: argparse.Namespace) -> int:
    from dse.search import load_study

    if args.storage is None:
        raise InputError(
            "--storage",
            "storage",
            "a worker joins a study in a shared storage",
            "pass the study's URL, e.g. --storage "
            "postgresql+psycopg://user@host/db or grpc://host:13000",
        )
    _, spec = load_study(args.name, storage=args.storage)
    return _run_study(args, spec, ["study", "worker", args.name])


def cmd_storage_serve(args: argparse.Namespace) -> int:
    """Optuna's gRPC storage proxy in front of ``--storage``, until SIGTERM or Ctrl-C."""
    import signal

    import optuna

    from dse.search import storage_for

    if "://" not in args.storage or args.storage.startswith("grpc://"):
        raise InputError(
            "--storage",
            "storage",
            f"{args.storage!r} is not a database URL",
            "serve a database shared by the workers, e.g. postgresql+psycopg://user@host/db",
        )
    storage = storage_for("", args.storage)
    try:
        from optuna.storages import run_grpc_proxy_server
    except ImportError as exc:
        raise InputError(
            "--storage", "grpc", f"gRPC is not installed ({exc})", "pip install grpcio protobuf"
        ) from None

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"serving {args.storage.split('@')[-1]} as grpc://{args.host}:{args.port} (Ctrl-C stops)",
        flush=True,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        run_grpc_proxy_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # grpc: the port is taken
        raise InputError(
            "--port",
            "port",
            f"cannot serve on {args.host}:{args.port}: {exc}",
            "choose a free port",
        ) from None
    return 0


def _run_study(args: argparse.Namespace, spec: Any, command: list[str]) -> int:
    """Run (or continue) ``spec``'s study with ``args.workers`` processes; print its status
    and a warning if its reference network has not learned."""
    from dse.search import Explorer, run_study, status

    if args.workers > 1 and (args.storage or spec.storage) == "memory":
        raise InputError(
            "--workers",
            "storage",
            "an in-memory study is private to one process",
            "use the journal (default) or sqlite storage",
        )
    explorer = Explorer(spec, progress=not args.quiet)
    study, rc = _with_helpers(
        args,
        command,
        lambda index, on_start: run_study(
            spec,
            n_trials=args.n_trials,
            storage=args.storage,
            progress=not args.quiet,
            explorer=explorer,
            worker=index,
            on_start=on_start,
        ),
    )
    if rc != 0:
        return rc
    info = status(study, spec, args.storage)
    _print_status(info)
    if args.worker_index is not None:
        return 0  # a helper: the first process judges the study
    for line in explorer.learning_warnings():
        print(f"dse: warning: {line}", file=sys.stderr)  # once, not once per helper
    complete = info["trials"].get("COMPLETE", 0)
    if complete == 0 and info["trials"].get("FAIL", 0):
        print(
            f"dse: error: every trial failed; the first: {info['first_failure']}", file=sys.stderr
        )
        return 1
    if complete and not info["feasible"] and spec.constraints:
        text = ", ".join(str(c) for c in spec.constraints)
        raise InputError(
            spec.path or spec.name,
            "constraints",
            f"none of the {complete} complete trials meets {text}",
            "loosen the constraints or widen the space; `dse front "
            f"{spec.name}` lists no point until one does",
        )
    return 0


def cmd_study_status(args: argparse.Namespace) -> int:
    from dse.search import load_study, status

    study, spec = load_study(args.name, storage=args.storage)
    info = status(study, spec, args.storage)
    if args.json:
        _write_json(args.json, info)
    _print_status(info)
    return 0


def cmd_study_grid(args: argparse.Namespace) -> int:
    from dse.report import fmt
    from dse.search import (
        Explorer,
        create_study,
        ensure_grid,
        grid_paths,
        load_spec,
        study_hypervolume,
    )

    spec = load_spec(args.spec)
    explorer = Explorer(spec, progress=not args.quiet)
    study, _ = create_study(spec, storage=args.storage, explorer=explorer)  # checks first
    grid = ensure_grid(study, explorer, rescore=True)
    hv = grid.hypervolume
    print(
        f"grid of {spec.name}: {len(grid.frame)} candidates scored in "
        f"{fmt.seconds(grid.seconds)}, {int(grid.frame.pareto.sum())} on the front, "
        f"hypervolume {hv:.4f}; wrote {grid_paths(spec.name)[0]}"
    )
    shv = study_hypervolume(study, spec, grid.ruler)
    if shv:
        print(f"the study's trials reach {100 * shv / hv:.1f}% of it")
    return 0


def _knob_text(row: Any) -> str:
    exits = ",".join(str(e) for e in row.knob_exits) or "none"
    per_task = getattr(row, "knob_task_thresholds", None)
    tau = (
        ",".join(f"{x:g}" for x in per_task)
        if isinstance(per_task, tuple | list) and len(per_task)
        else f"{row.knob_threshold:g}"
    )
    policy = getattr(row, "knob_policy", None)
    policy = f" {policy}" if isinstance(policy, str) and policy != "all" else ""
    return (
        f"{row.knob_method}@{row.knob_density:g} cut {row.knob_split} exits {exits} "
        f"tau {tau}{policy}"
    )


def cmd_front(args: argparse.Namespace) -> int:
    from dse.report import fmt
    from dse.search import csv_text, front_frame, load_study, status

    study, spec = load_study(args.name, storage=args.storage)
    front = front_frame(study, spec)
    if args.format in ("json", "csv"):
        if args.format == "csv":
            text = csv_text(front)
        else:
            knob_cols = [c for c in front.columns if c.startswith("knob_")]
            data = [
                {
                    "trial": int(r["trial"]),
                    "knobs": {c[5:]: r[c] for c in knob_cols},
                    "metrics": {
                        c: r[c] for c in front.columns if c not in knob_cols and c != "trial"
                    },
                }
                for r in front.to_dict("records")
            ]
            text = json.dumps(data, indent=2, default=_jsonable) + "\n"
        if args.out:
            from dse.nets import atomic_write_bytes

            atomic_write_bytes(Path(args.out), text.encode())
        else:
            print(text, end="")
        return 0
    if front.empty:
        print(
            f"study {spec.name}: no feasible trial on the front (constraints: "
            f"{', '.join(map(str, spec.constraints)) or 'none'})"
        )
        return 0
    table = pd_table(front, fmt)
    print(table.to_string(index=False))
    _print_status(status(study, spec, args.storage))
    return 0


def pd_table(front: Any, fmt: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "trial": front.trial,
            "config": [_knob_text(r) for r in front.itertuples(index=False)],
            "accuracy": front.accuracy.map(fmt.percent),
            "test acc": front.test_accuracy.map(fmt.percent),
            "latency": front.latency_mean.map(fmt.seconds),
            "p95": front.latency_p95.map(fmt.seconds),
            "sent": front.bandwidth.map(fmt.nbytes),
            "edge energy": front.edge_energy.map(fmt.joules),
            "edge memory": front.edge_memory.map(fmt.nbytes),
            "storage": front.storage.map(fmt.nbytes),
            "realised density": front.realised_density.map(lambda d: f"{d:.3g}")
            if "realised_density" in front
            else "",
            # several tasks: each one's test accuracy (the accuracy columns are their mean)
            **{
                f"test {c[len('test_accuracy.') :]}": front[c].map(fmt.percent)
                for c in front.columns
                if c.startswith("test_accuracy.")
                and len([x for x in front.columns if x.startswith("test_accuracy.")]) > 1
            },
        }
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from dse.report import fmt
    from dse.search import load_study, verify

    study, spec = load_study(args.name, storage=args.storage)
    results = verify(study, spec, top=args.top, progress=not args.quiet)
    for r in results:
        k = r["knobs"]
        print(
            f"trial {r['trial']:4d} {k['method']}@{k['density']:g} cut {k['split']} exits "
            f"{list(k['exits'])} tau {k['threshold']:g}: test accuracy "
            f"{fmt.percent(r['old_test_accuracy'])} (shared training) -> "
            f"{fmt.percent(r['new_test_accuracy'])} (retrained alone), "
            f"{100 * r['delta']:+.1f} points"
        )
        for task, (before, after) in r.get("tasks", {}).items():
            print(
                f"    task {task}: {fmt.percent(before)} -> {fmt.percent(after)}, "
                f"{100 * (after - before):+.1f} points"
            )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from dse.report import fmt
    from dse.search import (
        Explorer,
        compare,
        create_study,
        ensure_grid,
        load_grid,
        load_spec,
        stored_study,
        trials_frame,
        verdicts,
    )

    spec = load_spec(args.spec)
    grid = load_grid(spec.name, spec)  # a saved grid of this very spec: nothing to write
    grid_explorer = None
    if grid is None:
        explorer = grid_explorer = Explorer(spec, progress=not args.quiet)
        study, _ = create_study(spec, storage=args.storage, explorer=explorer)  # checks first
        grid = ensure_grid(study, explorer)
    else:
        study = stored_study(spec, storage=args.storage)
    table = compare(grid, spec, trials_frame(study) if study is not None else None)
    said = verdicts(table)
    ref = table.attrs["reference_accuracy"]
    print(
        f"{spec.name}: each baseline's exhaustive front on the same trained networks "
        f"against the study's {table.attrs['trials']} trials (joint); matched accuracy = "
        f"within 1 point of dense server-only ({fmt.percent(ref)} validation)"
    )
    shown = table.assign(
        hv=table.hv.map(lambda v: f"{v:.4f}"),
        latency=table.latency_s.map(fmt.seconds),
        test_acc=table.test_accuracy.map(fmt.percent),
        sent=table.bytes.map(fmt.nbytes),
        energy=table.edge_energy_j.map(fmt.joules),
        **{
            "latency x": table.latency_s_ratio.map(_ratio),
            "sent x": table.bytes_ratio.map(_ratio),
            "energy x": table.edge_energy_j_ratio.map(_ratio),
        },
    )[
        [
            "candidates",
            "hv",
            "matched",
            "latency",
            "test_acc",
            "latency x",
            "sent",
            "sent x",
            "energy",
            "energy x",
        ]
    ]
    print(shown.to_string())
    print(
        "(x: baseline / joint at matched accuracy; above 1 the study's trials are better, "
        "below 1 the baseline is; test_acc: test accuracy of the lowest-latency matched "
        "point)"
    )
    for line in said:
        print(line)
    if not table.loc["edgent", "in_space"]:
        print(
            "edgent's right-sized points (threshold 0) lie outside the study's space; "
            "start the spec's thresholds at 0 to search them."
        )
    tasks_out = None
    if len(spec.tasks) > 1:
        from dse.search import compare_tasks

        if grid_explorer is None:
            grid_explorer = Explorer(spec, progress=not args.quiet)
        tasks_out = compare_tasks(grid_explorer)
        _print_tasks(tasks_out, fmt)
    if args.json:
        _write_json(
            args.json,
            {
                "reference_accuracy": ref,
                "trials": table.attrs["trials"],
                "verdicts": said,
                "baselines": table.reset_index().to_dict(orient="records"),
                **({"tasks": _tasks_json(tasks_out)} if tasks_out else {}),
            },
        )
    return 0


def _print_tasks(c: Any, fmt: Any) -> None:
    """The multi-task comparison of ``dse compare`` (see dse.search.tasks)."""
    print()
    print(
        f"one backbone for {', '.join(c.tasks)} (MTL) against one network per task (STL, "
        f"{c.schedule}), dense, no exit taken; test accuracy per task:"
    )
    f = c.frame()
    shown = pd_frame(
        {
            "cuts": f.cuts,
            "edge FLOPs": f.edge_flops.map(lambda v: f"{v:.3g}"),
            "sent": f.bytes.map(fmt.nbytes),
            "latency": f.latency_mean.map(fmt.seconds),
            "edge energy": f.edge_energy.map(fmt.joules),
            "edge memory": f.edge_memory.map(fmt.nbytes),
            **{t: f[f"test_accuracy.{t}"].map(fmt.percent) for t in c.tasks},
        },
        f.index,
    )
    print(shown.to_string())
    for line in c.verdicts():
        print(line)


def _tasks_json(c: Any) -> dict[str, Any]:
    return {
        "tasks": list(c.tasks),
        "schedule": c.schedule,
        "verdicts": c.verdicts(),
        "designs": c.frame().reset_index().to_dict(orient="records"),
    }


def pd_frame(columns: dict[str, Any], index: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(columns, index=index)


def _ratio(x: float) -> str:
    import math

    return "-" if x is None or math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.2f}")


def cmd_report(args: argparse.Namespace) -> int:
    from dse.report import write_report

    index = write_report(
        args.name,
        Path(args.out) if args.out else None,
        storage=args.storage,
        progress=not args.quiet,
        sweep=args.sweep,
    )
    print(f"report written: {index}")
    print(f"  markdown: {index.with_name('report.md')}")
    return 0


# --------------------------------------------------------------------------------------
# sweep: one spec's space on many deployments
# --------------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    """Score the spec's space on every edge x link (x server) from cached networks and
    print each combination's best configuration."""
    import pandas as pd

    from dse.report import fmt
    from dse.search import load_spec, profile_names, run_sweep

    spec = load_spec(args.spec)
    edges = profile_names(args.edge, option="--edge")
    links = profile_names(args.link, option="--link")
    servers = profile_names(args.server, option="--server") if args.server else None

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"sweep: {msg}", file=sys.stderr, flush=True)

    sw = run_sweep(spec, edges, links, servers, train=args.train, progress=not args.quiet, say=say)
    rows = []
    for r in sw.results:
        b = r.best
        if b is None:
            rows.append(
                {
                    "edge": r.edge,
                    "link": r.link,
                    "server": r.server,
                    "best": f"nothing feasible ({r.candidates} candidates)",
                }
            )
            continue
        k = b.knobs
        exits = (
            "+".join(sw.exit_names[j] if j < len(sw.exit_names) else str(j) for j in k["exits"])
            or "none"
        )
        rows.append(
            {
                "edge": r.edge,
                "link": r.link,
                "server": r.server,
                "best": f"{k['method']}@{k['density']:g} cut {k['split']} ({r.where}) exits "
                f"{exits}"
                + (f" tau {k['threshold']:g}" if k["exits"] else "")
                + (f" codec {k['codec']}" if k.get("codec") else ""),
                "accuracy": fmt.percent(b.metrics["accuracy"]),
                "latency": fmt.seconds(b.metrics["latency_mean"]),
                "sent": fmt.nbytes(b.metrics["bandwidth"]),
                "edge energy": fmt.joules(b.metrics["edge_energy"]),
                "split wins": "yes" if r.split_wins else "no",
                "best edge-only": _versus(b, r.edge_only, fmt),
                "best server-only": _versus(b, r.server_only, fmt),
            }
        )
    with pd.option_context("display.max_colwidth", 80, "display.width", 250):
        print(pd.DataFrame(rows).fillna("").to_string(index=False))
    n = len(sw.results)
    wins = sum(r.split_wins for r in sw.results)
    print(
        f"\n{spec.name}: {n} deployment(s), a split wins on {wins}; best = the knee of "
        f"each one's feasible front (constraints: "
        f"{', '.join(sw.constraints) or 'none'}, and the edge's memory); "
        f"{sw.setup_seconds:.2f} s to load and decide, "
        f"{sum(r.seconds for r in sw.results) / max(n, 1):.3f} s per deployment"
    )
    if args.json:
        _write_json(args.json, sw.as_dict())
    return 0


def _versus(best: Any, end: Any, fmt: Any) -> str:
    """The best configuration at one end (edge-only, server-only): accuracy, latency,
    edge energy; ``same`` where it is the best overall."""
    if end is None:
        return "none feasible"
    if end.knobs == best.knobs:
        return "same"
    m = end.metrics
    return (
        f"{fmt.percent(m['accuracy'])}, {fmt.seconds(m['latency_mean'])}, "
        f"{fmt.joules(m['edge_energy'])}"
    )


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo study (resuming if it exists), write its report, and say what its front
    spans (cuts, exits, bandwidth regimes)."""
    from dse.report import front_summary

    spec_path = Path(DEMO_SPEC)
    if not spec_path.exists():
        raise InputError(spec_path, "<file>", "missing", "run `make demo` from the repository")
    name = spec_path.stem
    print(f"== dse demo: the {name} study ({DEMO_SPEC}) ==")
    steps = [
        ["study", "run", str(spec_path)],
        ["compare", str(spec_path)],
        ["front", name],
        ["verify", name, "--top", "3", "--quiet"],
        ["report", name],
    ]
    parser = build_parser()  # each step with its command's own defaults
    for argv in steps:
        if argv[0] == "verify":
            print("\n== retraining the top 3 front configurations alone (dse verify) ==")
        step = parser.parse_args(argv)
        rc = step.func(step)
        if rc:
            return rc
    print("\n== what the front spans ==")
    for line in front_summary(name).lines():
        print(line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write one trial of a study as an edge and a server program (a bundle folder)."""
    from dse.deploy import export_bundle

    done = export_bundle(
        args.name,
        args.out,
        trial=args.trial,
        best=args.best,
        force=args.force,
        storage=args.storage,
        progress=not args.quiet,
    )
    m = done.manifest
    where = (
        "edge only"
        if m["edge_only"]
        else "server only"
        if m["server_only"]
        else f"cut {m['cut']} after {m['cut_after']}"
    )
    print(
        f"exported trial {m['trial']} of {m['study']} to {done.folder}: {where}, "
        f"{len(m['exits'])} exit(s), codec {m['codec'] or 'none (float32)'}"
    )
    for name in sorted(m["files"]):
        print(f"  {name}  {(done.folder / name).stat().st_size} bytes")
    for note in done.notes:
        print(f"note: {note}")
    return 0


# --------------------------------------------------------------------------------------
# serve, run-split: the exported split, run
# --------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """The bundle's server part as a TCP service until Ctrl-C or SIGTERM."""
    from dse.deploy import run_server

    if not 0 <= args.port < 65536:
        raise InputError(
            "command line",
            "--port",
            f"{args.port} is not a port",
            "give 0..65535 (0: any free port)",
        )
    run_server(args.dir, args.host, args.port)
    # Stopped cleanly (connections closed, threads joined, "stopped" printed): leave now.
    # Tearing the interpreter down after torch ran on several threads may abort it
    # ("terminate called without an active exception") once the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_run_split(args: argparse.Namespace) -> int:
    """Run the bundle on its test split, print measured against predicted and the checks;
    exit 1 when a check fails."""
    from dse.deploy import run_split

    run = run_split(args.dir, data=args.data, server=args.server, link=args.link, limit=args.limit)
    print(run.text(title=f"run-split {args.dir}"))
    if args.json:
        _write_json(args.json, run.as_dict())
    return 0 if run.passed else 1


def build_parser() -> argparse.ArgumentParser:
    from dse.costmodel import TIMED_RUNTIMES  # light: no torch

    # plain text: Python 3.14's argparse colours help on a terminal unless told not to
    # (its subcommands take the setting from here)
    plain = {"color": False} if sys.version_info >= (3, 14) else {}
    parser = argparse.ArgumentParser(
        prog="dse",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **plain,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="per-layer and per-cut costs of a model")
    p.add_argument(
        "model",
        help="zoo name, package.module:factory, file.py:factory, or a torchvision/timm name",
    )
    p.add_argument("--edge", default=DEFAULT_EDGE, help="edge device profile (name or .toml)")
    p.add_argument("--server", default=DEFAULT_SERVER, help="server profile (name or .toml)")
    p.add_argument("--link", default=DEFAULT_LINK, help="link profile (name or .toml)")
    p.add_argument("--input-shape", help="e.g. 1x3x32x32 (default: the model's own)")
    p.add_argument(
        "--classes",
        type=int,
        default=None,
        help="number of classes (default: the model's own; the zoo's is 10)",
    )
    p.add_argument(
        "--output",
        default=None,
        help="of a model returning a tuple or dict: the index or key of the logits",
    )
    p.add_argument("--clean-only", action="store_true", help="list only clean cuts")
    p.add_argument(
        "--no-tail",
        action="store_true",
        help="do not charge the radio tail energy (back-to-back inferences)",
    )
    p.add_argument(
        "--csv",
        help="write the layer table here (cuts beside it); with "
        "--measure, the measurement CSV (schema: README, dse/costmodel/measure.py)",
    )
    p.add_argument("--json", help="write the whole profile as JSON here")
    p.add_argument(
        "--measure",
        action="store_true",
        help="time every layer on this machine (warm-up, interleaved rounds, "
        "median and 10th percentile) beside the edge profile's prediction",
    )
    p.add_argument(
        "--runtime",
        default="torch-export",
        choices=TIMED_RUNTIMES,
        help="with --measure: run each layer eager or as a torch.export program",
    )
    p.add_argument("--threads", type=int, default=1, help="with --measure: intra-op threads")
    p.add_argument(
        "--repeats", type=int, default=30, help="with --measure: timed interleaved rounds"
    )
    p.set_defaults(func=cmd_profile)

    cal = sub.add_parser(
        "calibrate",
        help="measure this machine and write a fitted device profile (run it on the edge device)",
    )
    cal.add_argument(
        "--base",
        required=True,
        help="profile to start from: its peak (unless --gemm-peak), power and capacity are kept",
    )
    cal.add_argument("--out", required=True, help="the device profile file to write")
    cal.add_argument("--name", default=None, help="profile name (default: the file's stem)")
    cal.add_argument(
        "--models",
        default="mlp,vgg-s,resnet-s,mobilenet-s",
        help="comma-separated networks to measure (default: the zoo)",
    )
    cal.add_argument("--repeats", type=int, default=20, help="timed runs per network")
    cal.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads (default: torch's, usually the core count; with --runtime, 1)",
    )
    cal.add_argument(
        "--gemm-peak",
        action="store_true",
        help="take peak FLOP/s from the best measured matmul, not the base",
    )
    cal.add_argument("--force", action="store_true", help="replace --out if it exists")
    cal.add_argument("--json", help="write the figures as JSON here")
    cal.add_argument(
        "--runtime",
        default=None,
        choices=TIMED_RUNTIMES,
        help="fit a kernel predictor for this runtime from sampled kernels and "
        "the --models' layers, timed here (written beside --out)",
    )
    cal.add_argument(
        "--kernels",
        type=int,
        default=150,
        help="with --runtime: sampled kernel configurations to time",
    )
    cal.add_argument(
        "--from-csv",
        default=None,
        help="fit the kernel predictor from a measurement CSV (dse profile "
        "--measure --csv, e.g. written on the device) instead of timing here",
    )
    cal.add_argument("--seed", type=int, default=0, help="kernel sampling and tree seed")
    cal.set_defaults(func=cmd_calibrate)

    for kind in ("devices", "links"):
        k = sub.add_parser(kind, help=f"list, show and validate {kind[:-1]} profiles")
        k.set_defaults(func=cmd_profiles)
        ks = k.add_subparsers(dest="action", required=True)
        ks.add_parser("list", help=f"shipped {kind}")
        ks.add_parser("show", help="one profile with its sources").add_argument(
            "name", help=f"a shipped {kind[:-1]} profile's name, or a .toml file"
        )
        ks.add_parser("validate", help="check profile files").add_argument(
            "files", nargs="+", help="profile .toml files"
        )

    m = sub.add_parser("models", help="the built-in model zoo")
    ms = m.add_subparsers(dest="action", required=True)
    ms.add_parser("list", help="the zoo's models with their exit sites").set_defaults(
        func=cmd_models_list
    )

    t = sub.add_parser("train", help="train one network (or load it from the cache)")
    t.add_argument(
        "model", help="zoo name (dse models list), package.module:factory or file.py:factory"
    )
    _add_data_args(t)
    t.add_argument(
        "--method",
        default="predefined",
        help="predefined | channels | nm (N:M: density 0.5 is 2:4)",
    )
    t.add_argument("--density", type=float, default=1.0, help="fraction of weights kept")
    t.add_argument("--exits", default="all", help="all | none | comma-separated exit sites")
    t.add_argument(
        "--tasks",
        default=None,
        help="several tasks of the data set on one "
        "backbone, one head each: comma-separated (e.g. object_shape,object_hue)",
    )
    t.add_argument(
        "--output",
        default=None,
        help="of a model returning a tuple or dict: the index or key of the logits",
    )
    t.add_argument(
        "--epochs",
        type=_epochs,
        default=10,
        help="a number, or auto: until the validation accuracy stops improving "
        "(the best epoch's weights kept; default 10)",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=None,
        help="with --epochs auto: stop after this many epochs without improvement (default 5)",
    )
    t.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="with --epochs auto: at most this many epochs (default 100)",
    )
    t.add_argument("--batch-size", type=int, default=64, help="samples per step (default 64)")
    t.add_argument(
        "--lr", type=float, default=3e-3, help="peak learning rate of AdamW (default 0.003)"
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the batch order (default 0)",
    )
    t.add_argument("--cache-dir", default=None, help="default: $DSE_CACHE or .dse-cache")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", help="write the summary as JSON here")
    t.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="run, resume, inspect a search study")
    sts = st.add_subparsers(dest="action", required=True)
    for action, what, func, text in (
        ("run", "spec", cmd_study_run, "run a study spec (resumes if it exists)"),
        ("resume", "name", cmd_study_resume, "continue a stored study by name"),
        (
            "worker",
            "name",
            cmd_study_worker,
            "join a study in a shared storage (--storage URL) as one more worker, from any machine",
        ),
    ):
        r = sts.add_parser(action, help=text)
        r.add_argument(
            what, help="the study spec (.toml)" if what == "spec" else "the study's name"
        )
        r.add_argument(
            "--n-trials",
            type=int,
            default=None,
            help="finished trials to reach, all workers together (default: the spec's n_trials)",
        )
        r.add_argument("--storage", default=None, help=STORAGE_HELP)
        r.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes sharing the study (trainings run in parallel)",
        )
        r.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
        r.add_argument("--quiet", action="store_true", help=QUIET_HELP)
        r.set_defaults(func=func)
    r = sts.add_parser("status", help="trials per state, networks used, trainings run, hypervolume")
    r.add_argument("name", help="the study's name")
    r.add_argument("--storage", default=None, help=STORAGE_HELP)
    r.add_argument("--json", default=None, help="write the status as JSON here")
    r.set_defaults(func=cmd_study_status)
    r = sts.add_parser("grid", help="score the whole discretised space: the reference front")
    r.add_argument("spec", help="the study spec (.toml)")
    r.add_argument("--storage", default=None, help=STORAGE_HELP)
    r.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    r.set_defaults(func=cmd_study_grid)

    sg = sub.add_parser("storage", help="serve a study database to workers on many machines")
    sgs = sg.add_subparsers(dest="action", required=True)
    r = sgs.add_parser(
        "serve",
        help="Optuna's gRPC storage proxy in front of a database: "
        "workers then pass --storage grpc://HOST:PORT",
    )
    r.add_argument(
        "--storage", required=True, help="the database, e.g. postgresql+psycopg://user@host/db"
    )
    r.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    r.add_argument("--port", type=int, default=13000, help="port to listen on")
    r.set_defaults(func=cmd_storage_serve)

    f = sub.add_parser("front", help="the Pareto trials of a study")
    f.add_argument("name", help="the study's name")
    f.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="a table for people (default), or every column as CSV or JSON",
    )
    f.add_argument("--out", default=None, help="write csv/json here instead of stdout")
    f.add_argument("--storage", default=None, help=STORAGE_HELP)
    f.set_defaults(func=cmd_front)

    v = sub.add_parser("verify", help="retrain top front configurations alone, compare")
    v.add_argument("name", help="the study's name")
    v.add_argument(
        "--top",
        type=int,
        default=3,
        help="distinct front networks (sparsity and exits) to retrain (default 3)",
    )
    v.add_argument("--storage", default=None, help=STORAGE_HELP)
    v.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    v.set_defaults(func=cmd_verify)

    c = sub.add_parser("compare", help="baselines as restricted spaces of the same search")
    c.add_argument("spec", help="the study spec (.toml)")
    c.add_argument("--storage", default=None, help=STORAGE_HELP)
    c.add_argument("--json", default=None, help="write the comparison table as JSON here")
    c.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    c.set_defaults(func=cmd_compare)

    rp = sub.add_parser("report", help="figures and an HTML + Markdown report of a study")
    rp.add_argument("name", help="the study's name")
    rp.add_argument("--out", default=None, help="the report's folder (default: reports/NAME)")
    rp.add_argument("--storage", default=None, help=STORAGE_HELP)
    rp.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    rp.add_argument(
        "--sweep",
        default=None,
        help="a file `dse sweep --json` wrote for this study's spec: the "
        "deployment map (default: scored over the shipped edge devices and links)",
    )
    rp.set_defaults(func=cmd_report)

    sw = sub.add_parser(
        "sweep",
        help="score a spec's space on every edge x link (x server) from cached "
        "networks and print each one's best configuration",
        description="Score a study spec's space on every combination of edge devices, links "
        "and servers, from the networks the study trained (no training: a network not in "
        "the cache is named, with the command that trains it, unless --train). Per "
        "combination: the knee of the feasible front under the spec's constraints and "
        "the edge device's memory, and whether a cut inside the network beats the best "
        "edge-only and server-only configurations.",
    )
    sw.add_argument("spec", help="the study spec (.toml) whose space and networks to use")
    sw.add_argument(
        "--edge", required=True, help="edge device profiles, comma-separated names or .toml paths"
    )
    sw.add_argument(
        "--link", required=True, help="link profiles, comma-separated names or .toml paths"
    )
    sw.add_argument(
        "--server",
        default=None,
        help="server profiles, comma-separated (default: the spec's server)",
    )
    sw.add_argument(
        "--train",
        action="store_true",
        help="train the space's networks that are not cached (once; cached)",
    )
    sw.add_argument(
        "--json", default=None, help="write every combination's result here (what the report reads)"
    )
    sw.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sw.set_defaults(func=cmd_sweep)

    d = sub.add_parser("demo", help="what `make demo` runs")
    d.set_defaults(func=cmd_demo)

    ex = sub.add_parser("export", help="one trial of a study as edge and server programs")
    ex.add_argument("name", help="the study")
    pick = ex.add_mutually_exclusive_group(required=True)
    pick.add_argument("--trial", type=int, default=None, help="the trial's number")
    pick.add_argument(
        "--best", default=None, metavar="OBJECTIVE", help="the front's best trial by this objective"
    )
    ex.add_argument("--out", required=True, help="the bundle folder to write")
    ex.add_argument("--force", action="store_true", help="replace a bundle in --out")
    ex.add_argument("--storage", default=None, help=STORAGE_HELP)
    ex.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    ex.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="serve an exported bundle's server part over TCP")
    sv.add_argument("dir", help="the bundle folder (dse export)")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only)",
    )
    sv.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    sv.set_defaults(func=cmd_serve)

    rs = sub.add_parser(
        "run-split",
        help="run an exported bundle on its test split, edge "
        "and server, and check it against the study's prediction",
    )
    rs.add_argument("dir", help="the bundle folder (dse export)")
    rs.add_argument(
        "--data",
        default=None,
        help="a spec .toml whose [data] table to use (default: the bundle's own spec)",
    )
    rs.add_argument(
        "--server",
        default=None,
        help="HOST:PORT of a `dse serve` (default: the server part in this process)",
    )
    rs.add_argument(
        "--link",
        default=None,
        help="link profile (name or .toml) to pace transfers with (an emulation, not a real radio)",
    )
    rs.add_argument("--limit", type=int, default=None, help="only the first N test samples")
    rs.add_argument("--json", default=None, help="write every figure and check here")
    rs.set_defaults(func=cmd_run_split)
    _add_train_modes_parser(sub)
    return parser


def _add_train_modes_parser(sub: Any) -> None:
    tm = sub.add_parser(
        "train-modes",
        help="what training a model costs centrally, split "
        "and hierarchically at each exit's cut (or --cut), and optionally one "
        "epoch run for real over loopback",
    )
    tm.add_argument(
        "model", help="zoo name (dse models list), package.module:factory or file.py:factory"
    )
    _add_data_args(tm)
    tm.add_argument("--edge", default="jetson-nano", help="edge device profile")
    tm.add_argument("--server", default="a100", help="server device profile")
    tm.add_argument("--link", default="lte", help="link profile")
    tm.add_argument("--cut", type=int, default=None, help="one cut (default: each exit's)")
    tm.add_argument("--batch-size", type=int, default=64, help="samples per step (default 64)")
    tm.add_argument("--epochs", type=int, default=10, help="epochs the totals are for")
    tm.add_argument(
        "--loopback",
        type=int,
        default=0,
        metavar="SAMPLES",
        help="also train one epoch of split and hierarchical over this many "
        "samples as two processes over loopback, the link paced (0: no)",
    )
    tm.set_defaults(func=cmd_train_modes)


def cmd_train_modes(args: argparse.Namespace) -> int:
    from dse.costmodel import build_graph, load_device, load_link, training_cost
    from dse.nets import NetworkSpec, TrainConfig, build_network, example_input
    from dse.report import fmt

    data = _data_from_args(args)
    net = build_network(NetworkSpec(model=args.model, data=data))
    graph = build_graph(net, example_input(data), name=args.model)
    edge, server, link = load_device(args.edge), load_device(args.server), load_link(args.link)
    cuts = [args.cut] if args.cut is not None else [e.position for e in graph.exits]
    if not cuts:
        raise InputError(
            "command line", "--cut", f"{args.model} has no exit", "give the cut to train at"
        )
    if not all(0 <= k < len(graph.cuts) for k in cuts):
        raise InputError(
            "command line",
            "--cut",
            f"cut {args.cut} is outside 0..{len(graph.cuts) - 1}",
            "see `dse profile` for the cuts",
        )
    samples = len(data.train.x)
    print(
        f"{args.model} on {data.name} ({samples} training samples, batch "
        f"{args.batch_size}, {args.epochs} epochs): edge {edge.name}, server {server.name}, "
        f"link {link.name}"
    )
    for k in cuts:
        print(
            f"cut {k} (after {graph.cuts[k].after}, {fmt.nbytes(graph.cuts[k].bytes)} per sample):"
        )
        for mode in ("central", "split", "hierarchical"):
            c = training_cost(
                graph,
                edge,
                server,
                link,
                mode=mode,
                cut=k,
                samples=samples,
                batch_size=args.batch_size,
            )
            print(
                f"  {mode:12s} epoch {c.epoch_s:9.3g} s  training {c.time_s(args.epochs):9.3g}"
                f" s  edge {c.edge_energy_j(args.epochs):9.3g} J  link "
                f"{fmt.nbytes(c.bytes(args.epochs))}  edge memory "
                f"{fmt.nbytes(c.edge_memory_bytes)}"
            )
        if args.loopback > 0:
            from dse.deploy import train_loopback

            for mode in ("split", "hierarchical"):
                spec = NetworkSpec(
                    model=args.model,
                    data=data,
                    cut=k,
                    train=TrainConfig(epochs=1, batch_size=args.batch_size, mode=mode),
                )
                print("  " + train_loopback(spec, link=link, samples=args.loopback).text())
    return 0


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", default="digits", help="digits | shapes | mnist | fashion-mnist | cifar10 | npz"
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with the data files (mnist, cifar10), or the .npz file (npz)",
    )
    p.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="seed of the train/validation/test split (default 0)",
    )
    p.add_argument("--size", type=int, default=None, help="resize images to SIZE x SIZE")
    p.add_argument("--n", type=int, default=None, help="number of samples (shapes) or cap")
    p.add_argument("--noise", type=float, default=None, help="salt-and-pepper fraction")
    p.add_argument("--channels", type=int, default=None, help="force 1 or 3 channels")


#: Subcommands whose positional NAME is a stored study's name.
_STUDY_NAMED = frozenset(
    {cmd_study_resume, cmd_study_status, cmd_front, cmd_verify, cmd_report, cmd_export}
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.func in _STUDY_NAMED:  # a NAME from the command line names files
            from dse.search import check_name

            check_name(args.name, where="<command line>", field="NAME")
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"dse: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and closed early
        sys.stderr.close()
        return 0
    except OSError as exc:  # a write the disk refused where no writer said so itself
        refused = write_refused(exc.filename or "a file", exc)
        if refused is None:
            raise
        print(f"dse: error: {refused}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
