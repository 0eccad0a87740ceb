"""Hierarchical training against split and central training: time, edge energy, bytes, accuracy.

Sepehri et al. (Hierarchical Training of DNNs Using Early Exiting, 2024) train a split
network with the edge part on an early exit's loss and the cloud part on the forwarded
activations: no gradient crosses the link. Their abstract reports training runtime cut by
29% (VGG-16) and 61% (ResNet-18) on CIFAR-10 over a low bit-rate channel at "negligible"
accuracy loss. This benchmark asks the same question of dse's cost model and its real
two-part training, on vgg-s and resnet-s, on the procedural ``shapes`` set at 32x32 (or on
CIFAR-10 from its binary batches with ``--cifar10 DIR``), edge ``jetson-nano``, server
``a100``, links ``3g`` and ``lte``.

For each model, every network is trained for the same number of epochs (the last epoch's
weights kept), through the training cache (a rerun is instant):

- ``central``: the whole network on the server (the raw training set uploaded once);
- ``hierarchical`` at each exit site's cut (the exit's head on the edge trains the edge
  part); the cut kept is the one whose final classifier has the best *validation*
  accuracy;
- ``split`` at that cut (split learning: the gradient of the cut's tensors goes back).

Per (model, link, mode) it prints the modelled training time per epoch and for the whole
training, the edge energy, the bytes over the link (both ways), and the *test* accuracy
of the final classifier and of the training exit. Costs come from
``dse.costmodel.training_cost`` (its docstring states every rule: backward = 2 x forward,
AdamW's traffic and state, the sequential and pipelined schedules).

Target (PASS/FAIL), the paper's direction on a low bit-rate channel, per model on ``3g``:
hierarchical training takes at least 25% less modelled time than split training, with at
most 1 point of test accuracy lost against it. Every case where it does not hold (on
either link) is printed.

    flock /work/heavy.lock python benchmarks/hierarchical.py [--quick] [--json FILE]
        [--cifar10 DIR] [--epochs 8] [--n 3000] [--loopback]

``--json FILE`` writes ``{"cases": [{"model", "link", "mode", "cut", "train_time_s",
"epoch_s", "train_bytes", "edge_energy_j", "accuracy", "exit_accuracy"}], "target": ...}``
with ``train_time_s``, ``train_bytes`` and ``edge_energy_j`` for the whole training
(central: the upload once plus the server's epochs) and ``accuracy`` the final
classifier's test accuracy. ``--loopback`` also runs vgg-s's kept cut for real as two
processes over loopback with the link paced to ``lte`` and prints the measured epoch time
beside the modelled one (see ``dse.deploy.train_loopback``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from dse.costmodel import build_graph, load_device, load_link, training_cost
from dse.nets import (
    Cache,
    DataSet,
    NetworkSpec,
    TrainConfig,
    TrainedNetwork,
    build_network,
    example_input,
    load_data,
    train_network,
)

MODELS = ("vgg-s", "resnet-s")
LINKS = ("3g", "lte")
TARGET_LINK = "3g"
MIN_TIME_CUT = 0.25  # hierarchical's time at most 75% of split's
MAX_ACCURACY_LOSS = 0.01  # one point


def train(
    model: str, data: DataSet, mode: str, cut: int | None, args: argparse.Namespace, cache: Cache
) -> TrainedNetwork:
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        mode=mode,
        head=args.head,
        edge_lr=args.edge_lr if mode != "central" else None,
    )
    spec = NetworkSpec(model=model, data=data, train=cfg, cut=cut, exits=_exits(args))
    t0 = time.perf_counter()
    trained = train_network(spec, cache=cache, progress=False)
    how = "cached" if trained.cached else f"trained in {time.perf_counter() - t0:.0f} s"
    print(f"  {model} {mode}{'' if cut is None else f' @ cut {cut}'}: {how}", flush=True)
    return trained


def _exits(args: argparse.Namespace) -> tuple[str, ...] | str | None:
    """``--exits``: all (the model's marks), auto, or comma-separated module paths."""
    if args.exits == "all":
        return None
    return args.exits if args.exits == "auto" else tuple(args.exits.split(","))


def run_model(
    model: str, data: DataSet, args: argparse.Namespace, cache: Cache
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    net = build_network(
        NetworkSpec(model=model, data=data, exits=_exits(args), train=TrainConfig(head=args.head))
    )
    graph = build_graph(net, example_input(data), name=model)
    exit_cuts = [e.position for e in graph.exits]
    central = train(model, data, "central", None, args, cache)
    hier = {k: train(model, data, "hierarchical", k, args, cache) for k in exit_cuts}
    kept = max(exit_cuts, key=lambda k: (hier[k].accuracy("val")[-1], -k))
    j = exit_cuts.index(kept)  # the training exit: the one at the kept cut
    split = train(model, data, "split", kept, args, cache)
    print(
        f"  {model}: hierarchical cut kept on validation: {kept} (after "
        f"{graph.cuts[kept].after}, {graph.cuts[kept].bytes} B per sample; validation "
        + ", ".join(f"cut {k}: {100 * hier[k].accuracy('val')[-1]:.1f}%" for k in exit_cuts)
        + ")"
    )
    edge, server = load_device(args.edge), load_device(args.server)
    samples = len(data.train.x)
    rows = []
    for link_name in LINKS:
        link = load_link(link_name)
        for mode, trained in (("central", central), ("split", split), ("hierarchical", hier[kept])):
            c = training_cost(
                graph,
                edge,
                server,
                link,
                mode=mode,
                cut=kept,
                samples=samples,
                batch_size=args.batch_size,
            )
            epochs = trained.epochs_run
            test = trained.accuracy("test")
            rows.append(
                {
                    "model": model,
                    "link": link_name,
                    "mode": mode,
                    "cut": kept,
                    "epochs": epochs,
                    "epoch_s": c.epoch_s,
                    "train_time_s": c.time_s(epochs),
                    "train_bytes": c.bytes(epochs),
                    "edge_energy_j": c.edge_energy_j(epochs),
                    "edge_memory_bytes": c.edge_memory_bytes,
                    "accuracy": test[-1],
                    "exit_accuracy": test[j],
                    "val_accuracy": trained.accuracy("val")[-1],
                }
            )
    return rows, {
        "model": model,
        "cut": kept,
        "exit": net.exit_sites[j],
        "cut_bytes": graph.cuts[kept].bytes,
    }


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'model':9} {'link':4} {'mode':12} {'epoch':>10} {'training':>10} "
        f"{'edge energy':>11} {'bytes':>9} {'edge mem':>9} {'final':>6} {'exit':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:9} {r['link']:4} {r['mode']:12} {_si(r['epoch_s'], 's'):>10} "
            f"{_si(r['train_time_s'], 's'):>10} {_si(r['edge_energy_j'], 'J'):>11} "
            f"{_si(r['train_bytes'], 'B'):>9} {_si(r['edge_memory_bytes'], 'B'):>9} "
            f"{100 * r['accuracy']:5.1f}% {100 * r['exit_accuracy']:5.1f}%"
        )


def judge(rows: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    """Whether the target holds on the target link for every model, and one line per
    (model, link) saying how it went."""
    lines, ok = [], True
    by = {(r["model"], r["link"], r["mode"]): r for r in rows}
    for model, link in sorted({(r["model"], r["link"]) for r in rows}):
        s, h = by[(model, link, "split")], by[(model, link, "hierarchical")]
        cut = 1 - h["train_time_s"] / s["train_time_s"]
        lost = s["accuracy"] - h["accuracy"]
        holds = cut >= MIN_TIME_CUT and lost <= MAX_ACCURACY_LOSS + 1e-9
        if link == TARGET_LINK:
            ok &= holds
        why = []
        if cut < MIN_TIME_CUT:
            why.append(f"time cut {100 * cut:.0f}% < {100 * MIN_TIME_CUT:.0f}%")
        if lost > MAX_ACCURACY_LOSS + 1e-9:
            why.append(
                f"{100 * lost:.1f} points of test accuracy lost > {100 * MAX_ACCURACY_LOSS:.0f}"
            )
        if h["exit_accuracy"] < s["exit_accuracy"] - 0.05:
            why.append(
                f"the training exit itself reaches {100 * h['exit_accuracy']:.1f}% "
                f"(the same exit under split training: "
                f"{100 * s['exit_accuracy']:.1f}%): trained on its own loss alone it "
                "did not learn, nor did the server on the features it shaped"
            )
        verdict = "holds" if holds else "does not hold: " + "; ".join(why)
        tag = " (target link)" if link == TARGET_LINK else ""
        lines.append(
            f"{model} over {link}{tag}: hierarchical takes {100 * cut:.0f}% less "
            f"time than split, test accuracy {100 * h['accuracy']:.1f}% vs "
            f"{100 * s['accuracy']:.1f}% ({-100 * lost:+.1f} points): {verdict}"
        )
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="shapes images (all splits)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edge", default="jetson-nano")
    ap.add_argument("--server", default="a100")
    ap.add_argument("--cifar10", type=Path, help="a folder with CIFAR-10's binary batches")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument(
        "--head",
        default=TrainConfig().head,
        help=f"exit head kind: linear, sdn or conv (default {TrainConfig().head})",
    )
    ap.add_argument(
        "--edge-lr",
        type=float,
        default=None,
        help="the edge part's own peak learning rate in split and hierarchical training "
        "(default: the network's, 0.003)",
    )
    ap.add_argument(
        "--exits",
        default="all",
        help="all (the sites the model marks), auto, or comma-separated module paths: each "
        "one's cut is tried",
    )
    ap.add_argument("--cache", default=os.environ.get("DSE_CACHE"))
    ap.add_argument(
        "--quick",
        action="store_true",
        help="600 images at 16x16, 2 epochs: a smoke run, not the target",
    )
    ap.add_argument(
        "--loopback",
        action="store_true",
        help="also run the kept vgg-s cut as two processes over loopback",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.size, args.epochs = 600, 16, 2
    logging.basicConfig(level=logging.WARNING)
    if args.cifar10 is not None:
        data = load_data("cifar10", root=args.cifar10, n=args.n, seed=args.seed)
        what = f"cifar10 ({len(data.train.x)} training images)"
    else:
        data = load_data("shapes", n=args.n, size=args.size, seed=args.seed)
        what = f"shapes {args.size}x{args.size} ({len(data.train.x)} training images)"
    print(
        f"{what}, task {data.task}; {args.epochs} epochs, batch {args.batch_size}, exit head "
        f"{args.head}, exits {args.exits}"
        f"{'' if args.edge_lr is None else f', edge learning rate {args.edge_lr:g}'}; "
        f"edge {args.edge}, server {args.server}, links {', '.join(LINKS)}"
    )
    cache = Cache(args.cache)
    rows, kept = [], []
    for model in args.models.split(","):
        r, k = run_model(model, data, args, cache)
        rows += r
        kept.append(k)
    print()
    print_table(rows)
    ok, lines = judge(rows)
    print()
    for line in lines:
        print(line)
    if args.loopback:
        from dse.deploy import train_loopback

        k = next(k for k in kept if k["model"] == "vgg-s")
        for mode in ("split", "hierarchical"):
            spec = NetworkSpec(
                model="vgg-s",
                data=data,
                cut=k["cut"],
                exits=_exits(args),
                train=TrainConfig(
                    epochs=1, batch_size=args.batch_size, seed=args.seed, mode=mode, head=args.head
                ),
            )
            print(train_loopback(spec, link="lte").text())
    quick = " (quick run: not the target)" if args.quick else ""
    print(
        f"\nTARGET (on {TARGET_LINK}: hierarchical >= {100 * MIN_TIME_CUT:.0f}% less "
        f"training time than split, <= {100 * MAX_ACCURACY_LOSS:.0f} point of accuracy "
        f"lost): {'PASS' if ok else 'FAIL'}{quick}"
    )
    if args.json:
        doc = {
            "cases": rows,
            "kept": kept,
            "target": {"pass": ok, "lines": lines},
            "quick": args.quick,
            "epochs": args.epochs,
            "data": what,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
