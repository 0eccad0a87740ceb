"""``dse profile``, ``dse models``, ``dse devices``, ``dse links``, ``dse calibrate``: a
model's per-layer and per-cut costs on the device profiles, the zoo, the shipped profiles,
and a profile fitted to this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import write_json
from dse.errors import InputError

#: The cut table's first columns as printed (its edge energy and notes follow).
CUT_COLUMNS = ["index", "after", "tensors", "bytes", "edge", "transfer", "server", "total"]
#: The parts of a cut's edge energy: column in the cut table -> printed name.
ENERGY_PARTS = {
    "edge_energy_j": "edge_energy",
    "compute_j": "compute",
    "radio_up_j": "radio_up",
    "radio_down_j": "radio_down",
    "radio_wait_j": "radio_wait",
    "radio_tail_j": "radio_tail",
    "idle_j": "idle",
}


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


def add_parser(sub: Any) -> None:
    """Register ``profile``, ``calibrate``, ``devices``, ``links`` and ``models``."""
    _add_profile(sub)
    _add_calibrate(sub)
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


def _add_profile(sub: Any) -> None:
    from dse.costmodel import TIMED_RUNTIMES  # light: no torch

    p = sub.add_parser(
        "profile",
        help="per-layer and per-cut costs of a model",
        parents=[options.devices(), options.json_out("write the whole profile as JSON here")],
    )
    p.add_argument(
        "model",
        help="zoo name, package.module:factory, file.py:factory, or a torchvision/timm name",
    )
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


def cmd_profile(args: argparse.Namespace) -> int:
    """``dse profile MODEL``: the model's layers and cuts priced on the edge, link and
    server profiles (or, with ``--measure``, its layers timed here)."""
    import torch

    from dse.costmodel import load_device, load_link, profile_model
    from dse.nets import default_input, load_model
    from dse.report import fmt

    edge, server, link = load_device(args.edge), load_device(args.server), load_link(args.link)
    shape = parse_shape(args.input_shape) if args.input_shape else (1, *default_input(args.model))
    # --classes reaches the model only when given: a factory keeps its own default
    model_options = {} if args.output is None else {"output": args.output}
    model = load_model(
        args.model,
        in_channels=shape[1],
        input_size=shape[-1],
        num_classes=args.classes,
        **model_options,
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
        f"({fmt.mbps(link.uplink_bps)} up, rtt {fmt.seconds(link.rtt_s)})\n"
    )
    _print_layers(p)
    _print_cuts(p, clean_only=args.clean_only)
    best = p.cuts.iloc[p.best_cut]
    print(
        f"\nmin-latency cut {p.best_cut} (after {best.after}): {fmt.seconds(best.total_s)}; "
        f"edge-only {fmt.seconds(p.edge_only.total_s)}, "
        f"server-only {fmt.seconds(p.server_only.total_s)}"
    )
    if g.unsupported:
        print(f"ops with no FLOP rule (counted as 0): {dict(g.unsupported)}")
    _write_profile_files(args, p)
    return 0


def _print_layers(p: Any) -> None:
    """The layer table: shape, bytes, params, FLOPs and latency on each side; a column on
    the kernels sparse layers run with where any layer is sparse."""
    from dse.costmodel import sparse_kernel_summary
    from dse.report import fmt

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


def _print_cuts(p: Any, *, clean_only: bool) -> None:
    """The cut table (bytes sent, latency of each part, edge energy; server-only,
    edge-only and the min-latency cut marked) and the edge energy of each cut by part."""
    from dse.report import fmt

    cuts = p.cuts[p.cuts.clean] if clean_only else p.cuts
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
    )
    print(table[[*CUT_COLUMNS, "edge_energy", "note"]].to_string(index=False))
    energy = cuts.assign(**{c: cuts[c].map(fmt.joules) for c in ENERGY_PARTS})
    energy = energy.rename(columns=ENERGY_PARTS)
    print(
        "\nedge energy by part (radio: sending, receiving the result, connected through "
        "the RTT and the server, tail; idle: the board waiting):"
    )
    print(energy[["index", *ENERGY_PARTS.values()]].to_string(index=False))


def _write_profile_files(args: argparse.Namespace, p: Any) -> None:
    """``--csv``: the layer table and, beside it, the cut table; ``--json``: the whole
    profile."""
    from dse.costmodel import to_json

    if args.csv:
        cuts_csv = Path(args.csv).with_suffix(".cuts.csv")
        p.layers.assign(
            output_shape=p.layers.output_shape.map(lambda sh: "x".join(map(str, sh)))
        ).to_csv(args.csv, index=False)
        p.cuts.assign(tensors=p.cuts.tensors.map(" ".join)).to_csv(cuts_csv, index=False)
        print(f"wrote {args.csv} and {cuts_csv}")
    if args.json:
        write_json(args.json, to_json(p))
        print(f"wrote {args.json}")


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
        write_json(args.json, table.to_dict(orient="records"))
        print(f"wrote {args.json}")
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
    """``dse models list``: each zoo model's size, FLOPs and exit sites."""
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
# calibrate: a profile fitted to this machine
# --------------------------------------------------------------------------------------


def _add_calibrate(sub: Any) -> None:
    from dse.costmodel import TIMED_RUNTIMES  # light: no torch

    cal = sub.add_parser(
        "calibrate",
        help="measure this machine and write a fitted device profile (run it on the edge device)",
        parents=[options.json_out("write the figures as JSON here")],
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
    cal.add_argument(
        "--force",
        action="store_true",
        help="replace --out if it exists, and write a fit that is not clearly better than "
        "the base profile, or whose timings spread wider than its error (exit 1 all the same)",
    )
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
        "--sampled",
        type=int,
        default=16,
        help="with --runtime: networks drawn from the zoo's families (other widths, depths "
        "and input sizes) timed beside --models, so the fit knows more programs (default "
        "16; 0: the --models alone)",
    )
    cal.add_argument(
        "--from-csv",
        default=None,
        help="fit the kernel predictor from a measurement CSV (dse profile "
        "--measure --csv, e.g. written on the device) instead of timing here",
    )
    cal.add_argument("--seed", type=int, default=0, help="kernel sampling and tree seed")
    cal.set_defaults(func=cmd_calibrate)


def _check_calibrate(args: argparse.Namespace) -> tuple[Path, str, list[str]]:
    """The profile file to write, its name and the networks to measure, each checked."""
    import re

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
    if args.sampled < 0:
        raise InputError(
            "--sampled", "sampled", f"must be >= 0, got {args.sampled}", "pass e.g. --sampled 16"
        )
    return out, name, names


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``dse calibrate``: time the networks here and write the base profile with its peak,
    overhead, memory bandwidth, per-kind efficiencies and codec rates fitted (or, with
    ``--runtime`` or ``--from-csv``, a kernel latency predictor)."""
    import torch

    from dse.costmodel import calibrate, load_device
    from dse.nets import atomic_write_bytes, default_input, load_model

    base = load_device(args.base)
    out, name, names = _check_calibrate(args)
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
    _print_fit(c, base)
    problems = fit_problems(c.table)
    for problem in problems:
        print(f"dse: calibration not kept: {problem}", file=sys.stderr)
    if problems and not args.force:
        print(f"dse: {out} not written; pass --force to keep such a fit anyway", file=sys.stderr)
    else:
        atomic_write_bytes(out, calibrate.profile_toml(c).encode())
        load_device(out)  # what was written must load as a profile
        print(f"\nwrote {out}; use it with: dse profile MODEL --edge {out}")
    if args.json:
        f = c.fit
        write_json(
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
                "networks": c.table.to_dict(orient="records"),
                "problems": problems,
                "written": not problems or args.force,
            },
        )
    return 1 if problems else 0


#: A fitted profile is kept when its median error is at most this share of the base
#: profile's, on the networks it was fitted on and on networks it was not.
CLEARLY_BETTER = 0.8


def fit_problems(table: Any) -> list[str]:
    """Why a calibration's fit should not be trusted (empty when it should): it is not
    clearly better than the base profile (median |error| above :data:`CLEARLY_BETTER` of
    the base's, fitted or on unseen networks), or the timings spread wider than the error
    it claims (the median over the networks of (p90 - p10) / median of their runs)."""
    import math

    base = float(table.base_error.abs().median())
    fitted = float(table.fitted_error.abs().median())
    unseen = float(table.unseen_error.abs().median())
    expected = unseen if math.isfinite(unseen) else fitted
    out = []
    if not (fitted <= CLEARLY_BETTER * base and expected <= CLEARLY_BETTER * base):
        out.append(
            f"the fit is not clearly better than the base profile: median |error| "
            f"{100 * fitted:.0f}% fitted, {100 * unseen:.0f}% on unseen networks, against "
            f"{100 * base:.0f}% for the base (a fit is kept at "
            f"{100 * CLEARLY_BETTER:.0f}% of the base's or less)"
        )
    spread = float(table.spread.median()) if "spread" in table else 0.0
    if spread > expected:
        out.append(
            f"the timings spread wider ({100 * spread:.0f}% between the 10th and 90th "
            f"percentile runs, median over the networks) than the error the fit claims "
            f"({100 * expected:.0f}%): time again on an idle machine, with more --repeats"
        )
    return out


def _print_fit(c: Any, base: Any) -> None:
    """What the calibration fitted, beside the base profile's figures, and how well the
    fitted profile predicts each whole network (also one it was not fitted on)."""
    from dse.report import fmt

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
    times = ("measured_s", "base_s", "fitted_s", "unseen_s")
    errors = ("base_error", "fitted_error", "unseen_error")
    shown = t.assign(
        **{col: t[col].map(fmt.seconds) for col in times},
        **{col: t[col].map(lambda v: f"{100 * v:+.0f}%") for col in errors},
        spread=t["spread"].map(lambda v: f"{100 * v:.0f}%") if "spread" in t else "-",
    )
    print(
        "\nwhole networks, measured end to end vs predicted edge-only latency "
        "(unseen: fitted on the other networks):"
    )
    columns = ["model", "input", "kernels", "measured_s", "spread", "base_s", "base_error"]
    columns += ["fitted_s", "fitted_error", "unseen_s", "unseen_error"]
    print(shown[columns].to_string(index=False))
    print(
        f"median |error|: base profile {100 * t.base_error.abs().median():.0f}%, "
        f"fitted {100 * t.fitted_error.abs().median():.0f}%, "
        f"on unseen networks {100 * t.unseen_error.abs().median():.0f}%"
    )


def _calibrate_predictor(args: argparse.Namespace, base: Any, out: Path, name: str) -> int:
    """``dse calibrate --runtime R`` or ``--from-csv FILE``: a kernel predictor profile."""
    from dse.costmodel import MIN_SAMPLES, calibrate, load_device
    from dse.nets import atomic_write_bytes
    from dse.report import fmt

    fitted, runtime, how = _fit_from_csv(args) if args.from_csv else _fit_by_timing(args)
    if not fitted.predictor.models:
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
        write_json(
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


def _fit_from_csv(args: argparse.Namespace) -> tuple[Any, str, str]:
    """The kernel predictor fitted to a measurement CSV (``--from-csv``): the fit, its
    runtime and how it was made (for the profile's source)."""
    import torch

    from dse.costmodel import calibrate, measure
    from dse.nets import load_model

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
    nets = calibrate.networks_from_table(table, graphs)
    fitted = calibrate.fit_kernel_predictor(
        [],
        [],
        nets,
        runtime=str(table.runtime.iloc[0]),
        call_s=calibrate.call_floor_of(table),
        seed=args.seed,
        threads=int(table.threads.iloc[0]),
    )
    how = f"from {args.from_csv}: {', '.join(sorted(set(table.device)))}"
    return fitted, str(table.runtime.iloc[0]), how


def _fit_by_timing(args: argparse.Namespace) -> tuple[Any, str, str]:
    """The kernel predictor fitted to sampled kernels and the ``--models``' layers timed
    here as ``--runtime`` programs: the fit, its runtime and how it was made."""
    import torch

    from dse.costmodel import calibrate
    from dse.nets import default_input, load_model, sampled_networks

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models = [(n, load_model(n), torch.zeros((1, *default_input(n)))) for n in names]
    models += sampled_networks(args.sampled, seed=args.seed)
    drawn = f" and {args.sampled} sampled networks" if args.sampled else ""
    print(
        f"timing {args.kernels} sampled kernels and every layer of {', '.join(names)}{drawn} "
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
    how = (
        f"{args.kernels} sampled kernels and {', '.join(names)}{drawn}, {args.threads or 1} "
        f"thread(s), p10 of {args.repeats} interleaved rounds"
    )
    return fitted, args.runtime, how
