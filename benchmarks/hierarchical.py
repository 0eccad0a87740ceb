"""Hierarchical training against split and central training: time, edge energy, bytes, accuracy.

Sepehri et al. (Hierarchical Training of DNNs Using Early Exiting, 2024) train a split
network with the edge part on an early exit's loss and the cloud part on the forwarded
activations: no gradient crosses the link. Their abstract reports training runtime cut by
29% (VGG-16) and 61% (ResNet-18) on CIFAR-10 over a low bit-rate channel at "negligible"
accuracy loss. This benchmark asks the same question of dse's cost model and its real
two-part training, on vgg-s and resnet-s, on the procedural ``shapes`` set at 32x32 (or on
CIFAR-10 from its binary batches with ``--cifar10 DIR``), edge ``jetson-nano``, server
``a100``, links ``3g`` and ``lte`` (both with sourced downlinks: split training's gradient
comes back on the downlink, several times faster than the uplink on cellular links).

For each model, every network is trained for the same number of epochs (the last epoch's
weights kept), through the training cache (a rerun is instant):

- ``central``: the whole network on the server (the raw training set uploaded once);
- ``hierarchical`` and ``split`` at each exit site's cut (hierarchical: the exit's head on
  the edge trains the edge part; split: the gradient of the cut's tensors goes back).

Both two-part modes get the same tries: each exit's cut at each edge learning rate of
``--edge-lr`` (default only the network's own, 0.003). Training runs 16 epochs by default
(one-cycle): at 8, resnet-s's edge part, trained on its stage-0 exit's loss alone, sat on
a plateau for the first four epochs while the rate warmed up, and the server learned on
features that kept moving (53% final validation accuracy at cut 19; central training
99.8% in 8 epochs); at 16 epochs it reaches 99.6% (split 99.8%). A slower edge
(``--edge-lr 0.0003``) helps at 8 epochs (91%) and stays behind at 16 (98.9%). Each
mode's try is chosen by one rule (:func:`choose_cut`), the project's own: the best
final-classifier *validation* accuracy, tries within one standard error of it tie, and
ties go to the cut that trains faster on the link at hand, then to the rate listed
first. Split training's accuracy hardly depends on the cut (its gradients are central
training's), so its ties are usually decided by time; before, split ran once at
hierarchical's kept cut.

Per (model, link, mode) it prints the modelled training time per epoch and for the whole
training, the edge energy, the bytes over the link (both ways), the *test* accuracy of the
final classifier and of the exit at the mode's cut, and where the time goes
(:func:`time_split`: edge, uplink, downlink, server, waits; the pipeline of hierarchical
training overlaps them). Costs come from ``dse.costmodel.training_cost`` (its docstring
states every rule: backward = 2 x forward, AdamW's traffic and state, the sequential and
pipelined schedules).

Target (:func:`verdict`, PASS/FAIL), the paper's direction on a low bit-rate channel, per
model on ``3g``: hierarchical training takes at least 25% less modelled time than split
training, each at its chosen cut, with at most 1 point of test accuracy lost against it.
Every case where it does not hold (on either link) is printed. Exit 0 when the target
holds for every model, 1 when it fails for one.

No loopback run is part of the evidence: ``dse train-modes --loopback`` paces split
training's exchanges to the cost model's own formula with the run's own stage times, so
its measured/modelled ratio is x1.00 by construction, and this machine is neither the
edge device nor the server the cost model is fed with.

    flock /work/heavy.lock python benchmarks/hierarchical.py [--quick] [--json FILE]
        [--cifar10 DIR] [--epochs 16] [--edge-lr net] [--n 3000]

``--json FILE`` writes ``{"cases": [{"model", "link", "mode", "cut", "train_time_s",
"epoch_s", "train_bytes", "edge_energy_j", "accuracy", "exit_accuracy", "time_split"}],
"target": ...}`` with ``train_time_s``, ``train_bytes`` and ``edge_energy_j`` for the
whole training (central: the upload once plus the server's epochs) and ``accuracy`` the
final classifier's test accuracy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verdict import Check, conclude, judge

from dse.costmodel import (
    LinkProfile,
    TrainingCost,
    build_graph,
    load_device,
    load_link,
    training_cost,
)
from dse.nets import (
    Cache,
    DataSet,
    NetworkSpec,
    TrainConfig,
    TrainedNetwork,
    build_network,
    chance_accuracy,
    example_input,
    learning_floor,
    load_data,
    train_network,
)
from dse.search.decision import standard_error

MODELS = ("vgg-s", "resnet-s")
LINKS = ("3g", "lte")
TARGET_LINK = "3g"
MIN_TIME_CUT = 0.25  # hierarchical's time at most 75% of split's
MAX_ACCURACY_LOSS = 0.01  # one point
TWO_PART = ("split", "hierarchical")
#: The parts of a training's time, in the order printed.
PARTS = ("edge", "uplink", "downlink", "server", "waits")


def train(
    model: str,
    data: DataSet,
    mode: str,
    cut: int | None,
    args: argparse.Namespace,
    cache: Cache,
    edge_lr: float | None = None,
) -> TrainedNetwork:
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        mode=mode,
        head=args.head,
        edge_lr=edge_lr if mode != "central" else None,
    )
    spec = NetworkSpec(model=model, data=data, train=cfg, cut=cut, exits=_exits(args))
    t0 = time.perf_counter()
    trained = train_network(spec, cache=cache, progress=False)
    how = "cached" if trained.cached else f"trained in {time.perf_counter() - t0:.0f} s"
    rate = "" if edge_lr is None else f", edge learning rate {edge_lr:g}"
    print(f"  {model} {mode}{'' if cut is None else f' @ cut {cut}'}{rate}: {how}", flush=True)
    return trained


def _exits(args: argparse.Namespace) -> tuple[str, ...] | str | None:
    """``--exits``: all (the model's marks), auto, or comma-separated module paths."""
    if args.exits == "all":
        return None
    return args.exits if args.exits == "auto" else tuple(args.exits.split(","))


def edge_rates(text: str) -> list[float | None]:
    """``--edge-lr``: comma-separated peak learning rates of the edge part, ``net`` for
    the network's own (None); the first listed wins a tie."""
    rates: list[float | None] = []
    for word in text.split(","):
        word = word.strip()
        rate = None if word == "net" else float(word)
        if rate is not None and not rate > 0:
            raise ValueError(f"--edge-lr: {word!r} is not a learning rate > 0")
        if rate not in rates:
            rates.append(rate)
    return rates


def choose_cut(val: Mapping[Any, float], seconds: Mapping[Any, float], n_val: int) -> Any:
    """One rule for every training mode: the try (a cut, or a cut and the edge's learning
    rate as ``(cut, rate index)``) with the best validation accuracy (``val``), where tries
    within one standard error of the best (on ``n_val`` samples,
    ``dse.search.decision.standard_error``) tie, and ties go to the fewest training
    ``seconds``, then to the earlier cut (then the rate listed first)."""
    best = max(val.values())
    tied = [k for k, a in val.items() if a >= best - standard_error(best, n_val)]
    return min(tied, key=lambda k: (seconds[k], k))


def time_split(
    cost: TrainingCost, link: LinkProfile, *, samples: int, epochs: int
) -> dict[str, Any]:
    """Where a whole training's modelled time goes, s: the edge computing, the uplink and
    the downlink carrying bytes, the server computing, and the waits on the critical path
    (round trips); ``overlapped`` when the parts run at once (the pipeline) and so add up
    to more than ``total``. Split training runs them one after another: they add up to its
    time. Hierarchical training's pipeline waits one round trip to fill, then the slowest
    stage (``pace``) sets the time."""
    n = cost.batches
    total = cost.time_s(epochs)
    if cost.mode == "central":
        upload = cost.once_s - link.rtt_s if cost.once_s > 0 else 0.0
        parts = {"edge": 0.0, "uplink": upload, "downlink": 0.0}
        parts |= {"server": epochs * cost.epoch_s, "waits": total - upload - epochs * cost.epoch_s}
        return {**parts, "total": total, "overlapped": False, "pace": None}
    per_batch = cost.batch_size / samples
    up = 8.0 * cost.up_bytes * per_batch / link.uplink_bps
    down = 8.0 * cost.down_bytes * per_batch / link.downlink_bps
    stages = {"edge": cost.edge_s, "uplink": up, "downlink": down, "server": cost.server_s}
    parts = {k: epochs * n * v for k, v in stages.items()}
    sent = cost.up_bytes > 0
    if cost.mode == "split" or not sent:
        parts["waits"] = epochs * n * link.rtt_s if sent else 0.0
        return {**parts, "total": total, "overlapped": False, "pace": None}
    parts["waits"] = epochs * link.rtt_s
    pace = max(("edge", "uplink", "server"), key=lambda k: stages[k])  # nothing comes down
    return {**parts, "total": total, "overlapped": True, "pace": pace}


def _cost(
    graph: Any,
    args: argparse.Namespace,
    link: LinkProfile,
    mode: str,
    cut: int,
    samples: int,
) -> TrainingCost:
    return training_cost(
        graph,
        load_device(args.edge),
        load_device(args.server),
        link,
        mode=mode,
        cut=cut,
        samples=samples,
        batch_size=args.batch_size,
    )


def run_model(
    model: str, data: DataSet, args: argparse.Namespace, cache: Cache
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train every network of ``model``; per link, each mode at the cut :func:`choose_cut`
    picks: the rows of the table, and which cut each mode kept (with why)."""
    net = build_network(
        NetworkSpec(model=model, data=data, exits=_exits(args), train=TrainConfig(head=args.head))
    )
    graph = build_graph(net, example_input(data), name=model)
    exit_cuts = [e.position for e in graph.exits]
    central = train(model, data, "central", None, args, cache)
    rates = edge_rates(args.edge_lr)
    # every two-part mode gets the same tries: each exit's cut at each edge learning rate
    trained = {
        mode: {
            (k, i): train(model, data, mode, k, args, cache, rate)
            for k in exit_cuts
            for i, rate in enumerate(rates)
        }
        for mode in TWO_PART
    }
    samples = len(data.train.x)
    n_val = int(central.val_labels[0].numel())
    # the learned floor on the test split: chance (the most frequent class) + the margin of
    # the learning rule; a mode at or under it learned nothing
    floor = learning_floor(chance_accuracy(central.test_labels[0], data.classes[data.task]))
    rows, kept = [], []
    for link_name in LINKS:
        link = load_link(link_name)
        tries: dict[str, tuple[int, int]] = {}
        for mode in TWO_PART:
            val = {k: t.accuracy("val")[-1] for k, t in trained[mode].items()}
            seconds = {
                k: _cost(graph, args, link, mode, k[0], samples).time_s(t.epochs_run)
                for k, t in trained[mode].items()
            }
            tries[mode] = choose_cut(val, seconds, n_val)
            cut, rate = tries[mode]
            kept.append(
                {
                    "model": model,
                    "link": link_name,
                    "mode": mode,
                    "cut": cut,
                    "edge_lr": rates[rate],
                    "after": graph.cuts[cut].after,
                    "cut_bytes": graph.cuts[cut].bytes,
                    "exit": net.exit_sites[exit_cuts.index(cut)],
                    "val_accuracy": {_where(c, rates[i]): a for (c, i), a in val.items()},
                    "train_time_s": {_where(c, rates[i]): t for (c, i), t in seconds.items()},
                }
            )
        # each mode at its try; central trains everything on the server (its row shows
        # hierarchical's cut)
        runs = [("central", central, tries["hierarchical"][0], None)] + [
            (mode, trained[mode][tries[mode]], tries[mode][0], rates[tries[mode][1]])
            for mode in TWO_PART
        ]
        for mode, net_of, cut, edge_lr in runs:
            c = _cost(graph, args, link, mode, cut, samples)
            epochs = net_of.epochs_run
            test = net_of.accuracy("test")
            rows.append(
                {
                    "model": model,
                    "link": link_name,
                    "mode": mode,
                    "cut": cut,
                    "edge_lr": edge_lr,
                    "epochs": epochs,
                    "epoch_s": c.epoch_s,
                    "train_time_s": c.time_s(epochs),
                    "train_bytes": c.bytes(epochs),
                    "edge_energy_j": c.edge_energy_j(epochs),
                    "edge_memory_bytes": c.edge_memory_bytes,
                    "accuracy": test[-1],
                    "exit_accuracy": test[exit_cuts.index(cut)],
                    "val_accuracy": net_of.accuracy("val")[-1],
                    "floor": floor,
                    "time_split": time_split(c, link, samples=samples, epochs=epochs),
                }
            )
    return rows, kept


def _where(cut: int, edge_lr: float | None) -> str:
    """Where a mode trained: its cut, and the edge's learning rate where one was set."""
    return f"cut {cut}" + ("" if edge_lr is None else f", edge lr {edge_lr:g}")


def _at(r: Mapping[str, Any]) -> str:
    """:func:`_where` of a row of the table or of the kept tries."""
    return _where(r["cut"], r.get("edge_lr"))


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def print_kept(kept: Sequence[Mapping[str, Any]]) -> None:
    for k in kept:
        per_try = ", ".join(
            f"{c}: {100 * a:.1f}% / {_si(k['train_time_s'][c], 's')}"
            for c, a in k["val_accuracy"].items()
        )
        print(
            f"  {k['model']} over {k['link']}, {k['mode']}: {_at(k)} (after "
            f"{k['after']}, {k['cut_bytes']} B per sample; validation / training time "
            f"{per_try})"
        )


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'model':9} {'link':4} {'mode':12} {'cut':>3} {'epoch':>10} {'training':>10} "
        f"{'edge energy':>11} {'bytes':>9} {'edge mem':>9} {'final':>6} {'exit':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:9} {r['link']:4} {r['mode']:12} {r['cut']:>3} "
            f"{_si(r['epoch_s'], 's'):>10} "
            f"{_si(r['train_time_s'], 's'):>10} {_si(r['edge_energy_j'], 'J'):>11} "
            f"{_si(r['train_bytes'], 'B'):>9} {_si(r['edge_memory_bytes'], 'B'):>9} "
            f"{100 * r['accuracy']:5.1f}% {100 * r['exit_accuracy']:5.1f}%"
        )


def print_time_split(rows: list[dict[str, Any]]) -> None:
    print(
        f"where the training time goes: {', '.join(PARTS)} (the whole training; the "
        "pipeline overlaps them)"
    )
    for r in rows:
        t = r["time_split"]
        parts = "  ".join(f"{k} {_si(t[k], 's'):>8}" for k in PARTS)
        how = f"; overlapped, paced by the {t['pace']}" if t["overlapped"] else ""
        print(
            f"  {r['model']:9} {r['link']:4} {r['mode']:12} {parts}  = {_si(t['total'], 's')}{how}"
        )


def _pairs(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, Any, Any]]:
    by = {(r["model"], r["link"], r["mode"]): r for r in rows}
    return [
        (model, link, by[(model, link, "split")], by[(model, link, "hierarchical")])
        for model, link in sorted({(r["model"], r["link"]) for r in rows})
    ]


def explain(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per (model, link): how hierarchical compares with split, and why the
    target does not hold where it does not."""
    lines = []
    for model, link, s, h in _pairs(rows):
        cut = 1 - h["train_time_s"] / s["train_time_s"]
        lost = s["accuracy"] - h["accuracy"]
        why = []
        if cut < MIN_TIME_CUT:
            why.append(f"time cut {100 * cut:.0f}% < {100 * MIN_TIME_CUT:.0f}%")
        if lost > MAX_ACCURACY_LOSS + 1e-9:
            why.append(
                f"{100 * lost:.1f} points of test accuracy lost > {100 * MAX_ACCURACY_LOSS:.0f}"
            )
        floor = s.get("floor", 0.0)
        for mode, r in (("split", s), ("hierarchical", h)):
            if r["accuracy"] <= floor:
                why.append(
                    f"{mode} training stayed at or under the learned floor ({100 * floor:.1f}%)"
                )
        if h["exit_accuracy"] < s["exit_accuracy"] - 0.05:
            why.append(
                f"the training exit itself reaches {100 * h['exit_accuracy']:.1f}% "
                f"(split training's exit at its cut: {100 * s['exit_accuracy']:.1f}%): "
                "trained on its own loss alone it did not learn, nor did the server on the "
                "features it shaped"
            )
        verdict_text = "holds" if not why else "does not hold: " + "; ".join(why)
        tag = " (target link)" if link == TARGET_LINK else ""
        lines.append(
            f"{model} over {link}{tag}: hierarchical ({_at(h)}) takes "
            f"{_less(cut)} time than split ({_at(s)}), test accuracy "
            f"{100 * h['accuracy']:.1f}% vs {100 * s['accuracy']:.1f}% "
            f"({-100 * lost:+.1f} points): {verdict_text}"
        )
    return lines


def _less(cut: float) -> str:
    """A time cut as words: "30% less" or, when it is negative, "42% more"."""
    return f"{100 * cut:.0f}% less" if cut >= 0 else f"{-100 * cut:.0f}% more"


def verdict(rows: Sequence[Mapping[str, Any]]) -> list[Check]:
    """Per model on the target link: hierarchical training at least 25% faster than split
    training (each at its chosen cut) with at most 1 point of test accuracy lost, and both
    above the learned floor (two trainings that both stayed at chance are not "within one
    point" of each other in any sense that matters)."""
    checks = []
    for model, link, s, h in _pairs(rows):
        if link != TARGET_LINK:
            continue
        cut = 1 - h["train_time_s"] / s["train_time_s"]
        lost = s["accuracy"] - h["accuracy"]
        floor = s.get("floor", 0.0)
        learned = s["accuracy"] > floor and h["accuracy"] > floor
        under = [
            f"{mode} {100 * r['accuracy']:.1f}%"
            for mode, r in (("split", s), ("hierarchical", h))
            if r["accuracy"] <= floor
        ]
        checks.append(
            judge(
                learned and cut >= MIN_TIME_CUT and lost <= MAX_ACCURACY_LOSS + 1e-9,
                f"{model} over {link}: hierarchical ({_at(h)}) takes {_less(cut)} "
                f"training time than split ({_at(s)}; target >= "
                f"{100 * MIN_TIME_CUT:.0f}% less), {100 * lost:+.1f} points of test accuracy "
                f"lost (target <= {100 * MAX_ACCURACY_LOSS:.0f})"
                + (
                    f"; at or under the learned floor of {100 * floor:.1f}%: {', '.join(under)}"
                    if under
                    else ""
                ),
            )
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="shapes images (all splits)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=16)
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
        default="net",
        help="the edge part's peak learning rates tried in split and hierarchical training, "
        "comma-separated, net for the network's own (0.003); validation chooses among "
        "them (default net)",
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
        f", edge learning rates tried {args.edge_lr}; "
        f"edge {args.edge}, server {args.server}, links {', '.join(LINKS)}"
    )
    for name in LINKS:
        link = load_link(name)
        print(
            f"  {name}: uplink {link.uplink_bps / 1e6:g} Mbit/s, downlink "
            f"{link.downlink_bps / 1e6:g} Mbit/s ({link.sources['downlink'].split(':')[0]}), "
            f"RTT {1e3 * link.rtt_s:g} ms"
        )
    cache = Cache(args.cache)
    rows, kept = [], []
    for model in args.models.split(","):
        r, k = run_model(model, data, args, cache)
        rows += r
        kept += k
    print("\ncuts kept, one rule for both modes (best validation accuracy, ties to the faster):")
    print_kept(kept)
    print()
    print_table(rows)
    print()
    print_time_split(rows)
    lines = explain(rows)
    print()
    for line in lines:
        print(line)
    checks = verdict(rows)
    if args.json:
        doc = {
            "cases": rows,
            "kept": kept,
            "target": {
                "pass": all(c.status == "PASS" for c in checks),
                "checks": [str(c) for c in checks],
                "lines": lines,
            },
            "quick": args.quick,
            "epochs": args.epochs,
            "data": what,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(
        f"\nTARGET (on {TARGET_LINK}: hierarchical >= {100 * MIN_TIME_CUT:.0f}% less "
        f"training time than split, <= {100 * MAX_ACCURACY_LOSS:.0f} point of accuracy lost)"
    )
    return conclude(checks, note="quick run: not the target" if args.quick else "")


if __name__ == "__main__":
    sys.exit(main())
