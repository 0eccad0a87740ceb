"""The ``dse`` command line: each subcommand parses, calls one library function, prints.

Exit codes: 0 success, 2 bad input (one line naming the file, the field and the fix),
1 internal failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dse.errors import InputError

DEFAULT_EDGE = "raspberry-pi-4"
DEFAULT_SERVER = "a100"
DEFAULT_LINK = "lte"


def parse_shape(text: str, *, field: str = "--input-shape") -> tuple[int, ...]:
    """``1x3x32x32`` or ``3x32x32`` (batch 1 added) -> a shape tuple."""
    try:
        dims = tuple(int(p) for p in text.lower().replace(",", "x").split("x") if p)
    except ValueError:
        raise InputError("command line", field, f"cannot read shape {text!r}",
                         "write it as 1x3x32x32") from None
    if not dims or any(d <= 0 for d in dims):
        raise InputError("command line", field, f"bad shape {text!r}", "write it as 1x3x32x32")
    if len(dims) == 3:
        dims = (1, *dims)
    return dims


def _write_json(path: str, data: Any) -> None:
    from dse.cache import atomic_write_bytes

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

    from dse import fmt
    from dse.devices import load_device, load_link
    from dse.models import default_input, load_model
    from dse.profiler import profile_model, to_json

    edge, server, link = load_device(args.edge), load_device(args.server), load_link(args.link)
    shape = parse_shape(args.input_shape) if args.input_shape else (1, *default_input(args.model))
    model = load_model(args.model, in_channels=shape[1], input_size=shape[-1],
                       num_classes=args.classes)
    p = profile_model(model, torch.zeros(shape), edge, server, link, name=args.model,
                      tail=not args.no_tail)
    g = p.graph
    print(f"{args.model} at {'x'.join(map(str, shape))}: {fmt.count(g.params)} params, "
          f"{fmt.count(g.macs)} MACs, {fmt.count(g.flops)} FLOPs")
    print(f"edge {edge.name}, server {server.name}, link {link.name} "
          f"({link.uplink_bps / 1e6:g} Mbit/s up, rtt {fmt.seconds(link.rtt_s)})\n")
    layers = p.layers.assign(
        output_shape=p.layers.output_shape.map(lambda s: "x".join(map(str, s))),
        output_bytes=p.layers.output_bytes.map(fmt.nbytes),
        params=p.layers.params.map(fmt.count),
        flops=p.layers.flops.map(fmt.count),
        edge=p.layers.edge_latency_s.map(fmt.seconds),
        server=p.layers.server_latency_s.map(fmt.seconds),
    )[["name", "kind", "output_shape", "output_bytes", "params", "flops", "edge", "server"]]
    print(layers.to_string(index=False))
    print()
    cuts = p.cuts
    if args.clean_only:
        cuts = cuts[cuts.clean]
    mark = {p.best_cut: "<- min latency", 0: "server-only", len(p.cuts) - 1: "edge-only"}
    table = cuts.assign(
        tensors=cuts.tensors.map(len),
        bytes=cuts.bytes.map(fmt.nbytes),
        edge=cuts.edge_s.map(fmt.seconds),
        transfer=cuts.transfer_s.map(fmt.seconds),
        server=cuts.server_s.map(fmt.seconds),
        total=cuts.total_s.map(fmt.seconds),
        edge_energy=cuts.edge_energy_j.map(fmt.joules),
        note=[mark.get(i, "") if i != 0 or p.best_cut != 0 else "server-only <- min latency"
              for i in cuts["index"]],
    )[["index", "after", "tensors", "bytes", "edge", "transfer", "server", "total",
       "edge_energy", "note"]]
    print(table.to_string(index=False))
    best = p.cuts.iloc[p.best_cut]
    print(f"\nmin-latency cut {p.best_cut} (after {best.after}): {fmt.seconds(best.total_s)}; "
          f"edge-only {fmt.seconds(p.edge_only.total_s)}, "
          f"server-only {fmt.seconds(p.server_only.total_s)}")
    if g.unsupported:
        print(f"ops with no FLOP rule (counted as 0): {dict(g.unsupported)}")
    if args.csv:
        p.layers.to_csv(args.csv, index=False)
        p.cuts.to_csv(Path(args.csv).with_suffix(".cuts.csv"), index=False)
        print(f"wrote {args.csv} and {Path(args.csv).with_suffix('.cuts.csv')}")
    if args.json:
        _write_json(args.json, to_json(p))
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------------------
# devices / links / models
# --------------------------------------------------------------------------------------


def _profile_cmds(kind: str) -> dict[str, Callable[[argparse.Namespace], int]]:
    from dse import devices

    lister = devices.list_devices if kind == "devices" else devices.list_links
    loader = devices.load_device if kind == "devices" else devices.load_link

    def cmd_list(args: argparse.Namespace) -> int:
        for name in lister():
            prof = loader(name)
            print(f"{name:20s} {getattr(prof, 'kind', 'link'):7s} {prof.description}")
        return 0

    def cmd_show(args: argparse.Namespace) -> int:
        prof = loader(args.name)
        print(devices.describe(prof))
        return 0

    def cmd_validate(args: argparse.Namespace) -> int:
        for f in args.files:
            prof = devices.validate_file(f)
            print(f"{f}: ok ({prof.name} v{prof.version})")
        return 0

    return {"list": cmd_list, "show": cmd_show, "validate": cmd_validate}


def cmd_models_list(args: argparse.Namespace) -> int:
    import torch

    from dse import fmt
    from dse.graph import build_graph
    from dse.models import default_input, list_models, load_model, model_entry

    for name in list_models():
        shape = (1, *default_input(name))
        g = build_graph(load_model(name), torch.zeros(shape), name=name)
        sites = getattr(load_model(name), "exit_sites", ())
        print(f"{name:12s} {fmt.count(g.params):>6s} params {fmt.count(g.flops):>6s} FLOPs "
              f"at {'x'.join(map(str, shape[1:]))}, exits after {', '.join(sites)}: "
              f"{model_entry(name).description}")
    return 0


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------


def _data_from_args(args: argparse.Namespace) -> Any:
    from dse.data import load_data

    opts = {k: getattr(args, k) for k in ("size", "n", "channels") if getattr(args, k, None)}
    if getattr(args, "noise", None):
        opts["noise"] = args.noise
    return load_data(args.data, root=args.data_root, seed=args.data_seed, **opts)


def network_summary(trained: Any) -> dict[str, Any]:
    """Accuracy, sizes and arithmetic of a trained network (what ``dse train`` prints)."""
    from dse import sparsity
    from dse.graph import build_graph
    from dse.training import example_input

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
        "params": graph.params,
        "nonzero_params": sum(n.nonzero_params for n in graph.nodes.values()),
        "flops": sum(n.sparse_flops for n in graph.nodes.values()),
        "dense_flops": graph.flops,
        "stored_bytes": sparsity.stored_bytes(net, form="indices"),
        "stored_bytes_seed_form": sparsity.stored_bytes(net, form="seed")
        if trained.spec.method == "predefined" else sparsity.stored_bytes(net),
        "dense_bytes": sparsity.dense_bytes(net),
        "train_seconds": trained.train_seconds,
        "cached": trained.cached,
        "key": trained.key,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from dse import fmt
    from dse.cache import Cache
    from dse.training import NetworkSpec, TrainConfig, train_network

    data = _data_from_args(args)
    exits: tuple[str, ...] | None = None
    if args.exits not in (None, "all"):
        exits = () if args.exits == "none" else tuple(args.exits.split(","))
    spec = NetworkSpec(
        model=args.model, data=data, method=args.method, density=args.density, exits=exits,
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed),
    )
    trained = train_network(spec, cache=Cache(args.cache_dir), progress=not args.quiet)
    info = network_summary(trained)
    state = "loaded from cache" if trained.cached else f"trained in {trained.train_seconds:.1f} s"
    print(f"{args.model} on {data.name} ({args.method}, density {args.density:g}): {state}")
    for site, acc in zip(info["exit_sites"], info["exit_accuracy"], strict=True):
        print(f"  exit after {site:12s} test accuracy {fmt.percent(acc)}")
    print(f"  final                    test accuracy {fmt.percent(info['accuracy'])}")
    print(f"  realised density {info['density']:.4f}; non-zero params "
          f"{fmt.count(info['nonzero_params'])} of {fmt.count(info['params'])}; FLOPs "
          f"{fmt.count(info['flops'])} (dense {fmt.count(info['dense_flops'])})")
    print(f"  stored {fmt.nbytes(info['stored_bytes'])} with explicit indices, "
          f"{fmt.nbytes(info['stored_bytes_seed_form'])} with seed-regenerated indices, "
          f"dense float32 {fmt.nbytes(info['dense_bytes'])}")
    if args.json:
        _write_json(args.json, info)
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    ns = argparse.Namespace(model="resnet-s", edge=DEFAULT_EDGE, server=DEFAULT_SERVER,
                            link=DEFAULT_LINK, input_shape=None, classes=10, csv=None,
                            json=None, clean_only=True, no_tail=False)
    return cmd_profile(ns)


# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="per-layer and per-cut costs of a model")
    p.add_argument("model", help="zoo name, package.module:factory, file.py:factory, "
                   "or a torchvision/timm name")
    p.add_argument("--edge", default=DEFAULT_EDGE, help="edge device profile (name or .toml)")
    p.add_argument("--server", default=DEFAULT_SERVER, help="server profile (name or .toml)")
    p.add_argument("--link", default=DEFAULT_LINK, help="link profile (name or .toml)")
    p.add_argument("--input-shape", help="e.g. 1x3x32x32 (default: the model's own)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--clean-only", action="store_true", help="list only clean cuts")
    p.add_argument("--no-tail", action="store_true",
                   help="do not charge the radio tail energy (back-to-back inferences)")
    p.add_argument("--csv", help="write the layer table here (cuts beside it)")
    p.add_argument("--json", help="write the whole profile as JSON here")
    p.set_defaults(func=cmd_profile)

    for kind in ("devices", "links"):
        cmds = _profile_cmds_lazy(kind)
        k = sub.add_parser(kind, help=f"list, show and validate {kind} profiles")
        ks = k.add_subparsers(dest="action", required=True)
        ks.add_parser("list", help=f"shipped {kind}").set_defaults(func=cmds("list"))
        s = ks.add_parser("show", help="one profile with its sources")
        s.add_argument("name")
        s.set_defaults(func=cmds("show"))
        v = ks.add_parser("validate", help="check profile files")
        v.add_argument("files", nargs="+")
        v.set_defaults(func=cmds("validate"))

    m = sub.add_parser("models", help="the built-in model zoo")
    ms = m.add_subparsers(dest="action", required=True)
    ms.add_parser("list").set_defaults(func=cmd_models_list)

    t = sub.add_parser("train", help="train one network (or load it from the cache)")
    t.add_argument("model")
    _add_data_args(t)
    t.add_argument("--method", default="predefined", help="predefined | channels")
    t.add_argument("--density", type=float, default=1.0, help="fraction of weights kept")
    t.add_argument("--exits", default="all", help="all | none | comma-separated exit sites")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--cache-dir", default=None, help="default: $DSE_CACHE or .dse-cache")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", help="write the summary as JSON here")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("demo", help="what `make demo` runs")
    d.set_defaults(func=cmd_demo)
    return parser


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help="digits | shapes | mnist | "
                   "fashion-mnist | cifar10")
    p.add_argument("--data-root", default=None, help="folder with the data files (file sets)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=None, help="resize images to SIZE x SIZE")
    p.add_argument("--n", type=int, default=None, help="number of samples (shapes) or cap")
    p.add_argument("--noise", type=float, default=None, help="salt-and-pepper fraction")
    p.add_argument("--channels", type=int, default=None, help="force 1 or 3 channels")


def _profile_cmds_lazy(kind: str) -> Callable[[str], Callable[[argparse.Namespace], int]]:
    def get(action: str) -> Callable[[argparse.Namespace], int]:
        return lambda args: _profile_cmds(kind)[action](args)

    return get


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"dse: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
