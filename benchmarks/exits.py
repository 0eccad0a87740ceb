"""Do the early exits learn, and what do they save on the edge?

SDN (Kaya et al., ICML'19) reports internal classifiers that save over 50% of the
inference cost at unchanged accuracy on CIFAR-10; InfoPro (Wang et al., ICLR'21) shows
that a global-average-pool + linear head on early features learns little. This benchmark
asks both questions of dse's exits on vgg-s, resnet-s and mobilenet-s, on the procedural
``shapes`` set at 32x32 and on ``digits`` (16x16), once per exit head kind (``linear``:
global average pool + linear; ``sdn``: SDN's learned max/avg mix to a 4x4 grid + linear;
``conv``: InfoPro's conv3x3/2 + BN + ReLU + pool + 2 linear), every network trained with
an exit at each site the zoo marks, through the training cache (a rerun is instant):

- every exit's validation and test accuracy beside its *learned floor* (chance + the
  margin of the learning rule, ``dse.nets.training.learning_floor``, from the validation
  labels): an exit below it has not learned;
- the share of the edge-only FLOPs (the network without heads, all on the edge) the exits
  save: the subset of the exits above their floor and the threshold (max softmax
  probability, 0 to 1 in steps of 0.01) are chosen on *validation*, as the largest saving
  whose exits are non-inferior to the final classifier within 1 point there (the accuracy
  lost plus 1.645 standard errors of the paired difference, a one-sided 95% bound, at
  most 1 point: choosing the threshold where the validation loss is exactly 1 point
  lets the test split's loss land past it about half the time); the test split's saving
  and accuracy loss at that choice are reported. A sample pays for the
  backbone up to where it leaves and for every head it passed, its own included.

The default head is chosen on validation: the kind with the largest mean validation
saving over the cases (ties: the cheaper head). Targets (PASS/FAIL, for the library's
default head, ``TrainConfig().head``): that default is the head chosen here; every exit
above its floor on validation, in every case; >= 40% of the edge-only FLOPs saved on test,
at <= 1 point of test accuracy lost, for vgg-s and resnet-s on shapes. A target a run did
not measure (a case or the default head left out) is SKIP. Exit code: 1 on any FAIL, else
3 on any SKIP, else 0.

    python benchmarks/exits.py [--quick] [--json FILE] [--cases vgg-s/shapes,...]
        [--heads linear,sdn,conv] [--seed 0] [recipe options: --exit-schedule ramp ...]

``--json FILE`` writes ``{"cases": [{"model", "data", "head", "edge_flops_saved",
"val_flops_saved", "test_accuracy_lost", "threshold", "exits_used", "final_val_accuracy",
"final_test_accuracy", "epochs", "exits": [{"site", "val_accuracy", "test_accuracy",
"floor"}]}], "chosen_head", "default_head", "verdict", "quick"}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from verdict import Check, conclude, judge, skipped

MODELS = ("vgg-s", "resnet-s", "mobilenet-s")
HEADS = ("linear", "sdn", "conv")
MAX_LOSS = 0.01  # one point of accuracy
SAVING_TARGET = 0.40
SAVING_CASES = (("vgg-s", "shapes"), ("resnet-s", "shapes"))
THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(101))
Z = 1.645  # one-sided 95%
_TOL = 1e-9  # accuracies are fractions k/N: a bound met exactly is met


@dataclass(frozen=True)
class Data:
    """A data set of the benchmark, and the augmentations that keep its labels."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    augment: tuple[str, ...] = ()


DATA = (
    # a shape keeps its label mirrored or shifted by a few pixels; a digit is not mirrored
    Data("shapes", {"size": 32, "n": 3000}, ("crop", "flip")),
    Data("digits", {"size": 16}, ("crop",)),
)
QUICK_DATA = (
    Data("shapes", {"size": 16, "n": 600}, ("crop", "flip")),
    Data("digits", {"size": 16, "n": 600}, ("crop",)),
)


def train_config(head: str, data: Data, args: argparse.Namespace) -> Any:
    """The training settings of one network: ``epochs = "auto"`` (or ``--epochs``) and the
    recipe options given."""
    from dse.nets import TrainConfig

    epochs: dict[str, Any] = (
        {"epochs": args.epochs}
        if args.epochs is not None
        else {"epochs": "auto", "patience": args.patience, "max_epochs": args.max_epochs}
    )
    return TrainConfig(
        **epochs,
        head=head,
        seed=args.seed,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        augment=data.augment if args.augment == "data" else _list(args.augment),
        exit_schedule=args.exit_schedule,
        exit_weight=args.exit_weight,
        distill=args.distill,
    )


def _list(text: str) -> tuple[str, ...]:
    return tuple(a for a in text.split(",") if a and a != "none")


def savings(
    conf: list[torch.Tensor],
    correct: list[torch.Tensor],
    final_correct: torch.Tensor,
    cost: dict[tuple[int, ...], list[float]],
    subset: tuple[int, ...],
    threshold: float,
) -> tuple[float, float]:
    """(mean FLOPs, accuracy) of one split when a sample leaves at the first exit of
    ``subset`` whose confidence reaches ``threshold``; ``cost[subset]``: the FLOPs of
    leaving at each exit of the subset, then of reaching the final classifier."""
    flops, right = routed(conf, correct, final_correct, cost, subset, threshold)
    return float(flops.mean()), float(right.float().mean())


def loss_bound(final_correct: torch.Tensor, right: torch.Tensor) -> float:
    """The accuracy the exits lose against the final classifier, plus :data:`Z` standard
    errors of that paired difference (a one-sided 95% bound: the exits are non-inferior
    within a margin when this bound is within it)."""
    d = final_correct.double() - right.double()
    n = len(d)
    se = float(d.std(unbiased=True)) / n**0.5 if n > 1 else 0.0
    return float(d.mean()) + Z * se


def routed(
    conf: list[torch.Tensor],
    correct: list[torch.Tensor],
    final_correct: torch.Tensor,
    cost: dict[tuple[int, ...], list[float]],
    subset: tuple[int, ...],
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: the FLOPs it costs and whether its answer is right (see
    :func:`savings`)."""
    n = len(final_correct)
    left = torch.ones(n, dtype=torch.bool)
    flops = torch.zeros(n, dtype=torch.float64)
    right = torch.zeros(n, dtype=torch.bool)
    for k, j in enumerate(subset):
        leave = left & (conf[j] >= threshold)
        flops[leave] = cost[subset][k]
        right[leave] = correct[j][leave]
        left &= ~leave
    flops[left] = cost[subset][-1]
    right[left] = final_correct[left]
    return flops, right


def measure(model: str, data: Data, loaded: Any, head: str, args: argparse.Namespace) -> dict:
    """Train (or load) one network and measure its exits and what they save."""
    from dse.costmodel import build_graph
    from dse.nets import (
        Cache,
        NetworkSpec,
        chance_accuracy,
        confidence,
        example_input,
        train_network,
    )
    from dse.nets.training import learning_floor

    spec = NetworkSpec(model=model, data=loaded, train=train_config(head, data, args))
    t0 = time.perf_counter()
    trained = train_network(spec, cache=Cache(args.cache_dir), progress=False)
    took = "cached" if trained.cached else f"trained in {time.perf_counter() - t0:.0f} s"
    graph = build_graph(trained.network(), example_input(loaded), name=model)
    prefix = [0.0]
    for name in graph.backbone:
        prefix.append(prefix[-1] + graph.nodes[name].flops)
    edge_only = prefix[-1]  # the whole network on the edge, no head
    heads = [sum(n.flops for n in graph.exit_nodes(e.index)) for e in graph.exits]
    positions = [e.position for e in graph.exits]
    classes = trained.classes[0]
    floor = learning_floor(chance_accuracy(trained.val_labels[0], classes))
    val_acc, test_accs = trained.accuracy("val"), trained.accuracy("test")
    # an exit below its floor has not learned: it is no candidate (as in a study)
    learned = [j for j in range(len(graph.exits)) if val_acc[j] >= floor - _TOL]
    subsets = [
        s
        for r in range(1, len(learned) + 1)
        for s in itertools.combinations(sorted(learned, key=positions.__getitem__), r)
    ]
    cost = {
        s: [
            *(prefix[positions[j]] + sum(heads[i] for i in s[: k + 1]) for k, j in enumerate(s)),
            edge_only + sum(heads[i] for i in s),
        ]
        for s in subsets
    }
    splits = {}
    for split in ("val", "test"):
        logits = (trained.val_logits if split == "val" else trained.test_logits)[0]
        labels = (trained.val_labels if split == "val" else trained.test_labels)[0]
        correct = [(lg.argmax(-1) == labels) for lg in logits]
        splits[split] = ([confidence(lg) for lg in logits[:-1]], correct[:-1], correct[-1])
    final_val = float(splits["val"][2].float().mean())
    final_test = float(splits["test"][2].float().mean())
    best = (0.0, (), 2.0)  # validation saving, subset, threshold (none: nothing leaves)
    for s in subsets:
        for tau in THRESHOLDS:
            flops, right = routed(*splits["val"], cost, s, tau)
            saved = 1 - float(flops.mean()) / edge_only
            if loss_bound(splits["val"][2], right) <= MAX_LOSS + _TOL and saved > best[0] + 1e-12:
                best = (saved, s, tau)
    val_saved, subset, tau = best
    if subset:
        flops, test_acc = savings(*splits["test"], cost, subset, tau)
        test_saved = 1 - flops / edge_only
    else:
        test_saved, test_acc = 0.0, final_test
    exits = [
        {
            "site": site,
            "val_accuracy": val_acc[j],
            "test_accuracy": test_accs[j],
            "floor": floor,
            "head_flops": heads[j],
        }
        for j, site in enumerate(trained.exit_sites)
    ]
    print(
        f"  {model}/{data.name} head {head}: {took}, {trained.epochs_text()}; final "
        f"{100 * final_val:.1f}% val, {100 * final_test:.1f}% test",
        flush=True,
    )
    return {
        "model": model,
        "data": data.name,
        "head": head,
        "epochs": trained.epochs_text(),
        "final_val_accuracy": final_val,
        "final_test_accuracy": final_test,
        "edge_only_flops": edge_only,
        "val_flops_saved": val_saved,
        "edge_flops_saved": test_saved,
        "test_accuracy_lost": final_test - test_acc,
        "threshold": tau if subset else None,
        "exits_used": [trained.exit_sites[j] for j in subset],
        "exits": exits,
        "key": trained.key,
    }


def choose_head(cases: list[dict]) -> str | None:
    """The head kind with the largest mean validation saving over the cases every head was
    measured on (ties: the one with the fewest head FLOPs); None with no case."""
    by_head: dict[str, list[dict]] = {}
    for c in cases:
        by_head.setdefault(c["head"], []).append(c)
    if not by_head:
        return None

    def score(head: str) -> tuple[float, float]:
        got = by_head[head]
        mean = sum(c["val_flops_saved"] for c in got) / len(got)
        cheap = sum(e["head_flops"] for c in got for e in c["exits"])
        return (round(mean, 9), -cheap)

    return max(by_head, key=score)


def verdict(cases: list[dict], *, default_head: str, chosen_head: str | None) -> list[Check]:
    """One check per target (see the module docstring), from the figures."""
    text = f"the default head ({default_head}) is the one chosen on validation"
    checks = [
        skipped(f"{text} (not every head measured)")
        if chosen_head is None
        else judge(chosen_head == default_head, f"{text} ({chosen_head})")
    ]
    mine = [c for c in cases if c["head"] == default_head]
    if not mine:
        checks.append(skipped(f"every exit above its floor (no case with the {default_head} head)"))
    for c in mine:
        low = [e for e in c["exits"] if e["val_accuracy"] < e["floor"] - _TOL]
        shown = ", ".join(
            f"{e['site']} {100 * e['val_accuracy']:.1f}% (floor {100 * e['floor']:.1f}%)"
            for e in c["exits"]
        )
        checks.append(
            judge(
                not low,
                f"{c['model']}/{c['data']}: every exit above its floor on validation: "
                f"{shown or 'no exit'}",
            )
        )
    for model, data in SAVING_CASES:
        got = [c for c in mine if (c["model"], c["data"]) == (model, data)]
        if not got:
            checks.append(skipped(f"{model}/{data} saves >= 40% of the edge-only FLOPs (not run)"))
            continue
        c = got[0]
        ok = (
            c["edge_flops_saved"] >= SAVING_TARGET - _TOL
            and c["test_accuracy_lost"] <= MAX_LOSS + _TOL
        )
        checks.append(
            judge(
                ok,
                f"{model}/{data}: exits save {100 * c['edge_flops_saved']:.1f}% of the "
                f"edge-only FLOPs on test at {100 * c['test_accuracy_lost']:+.2f} points of "
                f"test accuracy lost (target >= {100 * SAVING_TARGET:.0f}% at <= "
                f"{100 * MAX_LOSS:.0f} point; validation {100 * c['val_flops_saved']:.1f}%)",
            )
        )
    return checks


def table(cases: list[dict]) -> str:
    """Per case and head: every exit's accuracies beside its floor, and the saving."""
    head = (
        f"{'model':12s} {'data':7s} {'head':6s} {'exit':12s} {'val':>6s} {'test':>6s} "
        f"{'floor':>6s}  saved (val / test), test points lost, exits, threshold"
    )
    out = [head, "-" * len(head)]
    for c in cases:
        for k, e in enumerate(c["exits"]):
            mark = "" if e["val_accuracy"] >= e["floor"] - _TOL else "  <- below its floor"
            tail = ""
            if k == 0:
                used = "+".join(c["exits_used"]) or "none"
                thr = "-" if c["threshold"] is None else f"{c['threshold']:.2f}"
                tail = (
                    f"  {100 * c['val_flops_saved']:5.1f}% / {100 * c['edge_flops_saved']:5.1f}%"
                    f", {100 * c['test_accuracy_lost']:+.2f}, {used}, {thr}"
                )
            out.append(
                f"{c['model']:12s} {c['data']:7s} {c['head']:6s} {e['site']:12s} "
                f"{100 * e['val_accuracy']:5.1f}% {100 * e['test_accuracy']:5.1f}% "
                f"{100 * e['floor']:5.1f}%{tail}{mark}"
            )
        out.append(
            f"{c['model']:12s} {c['data']:7s} {c['head']:6s} {'final':12s} "
            f"{100 * c['final_val_accuracy']:5.1f}% {100 * c['final_test_accuracy']:5.1f}%"
            f"        {c['epochs']}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None, help="comma-separated model/data, e.g. vgg-s/shapes")
    ap.add_argument("--heads", default=",".join(HEADS), help="comma-separated head kinds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help='default "auto"')
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--max-epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--lr-schedule", default=None, help="default: plateau with auto epochs")
    ap.add_argument(
        "--augment",
        default="data",
        help="comma-separated flip,crop, none, or data: what keeps each set's labels (default)",
    )
    ap.add_argument("--exit-schedule", default=None, help="constant or ramp (default ramp)")
    ap.add_argument("--exit-weight", type=float, default=1.0)
    ap.add_argument("--distill", type=float, default=0.0)
    ap.add_argument("--cache-dir", default=os.environ.get("DSE_CACHE", ".dse-cache"))
    ap.add_argument(
        "--quick", action="store_true", help="600 images at 16x16, 3 epochs: a smoke run"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from dse.nets import TrainConfig, load_data

    if args.quick and args.epochs is None:
        args.epochs = 3
    heads = tuple(h for h in args.heads.split(",") if h)
    data_sets = QUICK_DATA if args.quick else DATA
    wanted = None if args.cases is None else set(args.cases.split(","))
    start = time.perf_counter()
    cases = []
    for data in data_sets:
        loaded = load_data(data.name, **data.options)
        for model in MODELS:
            if wanted is not None and f"{model}/{data.name}" not in wanted:
                continue
            for head in heads:
                cases.append(measure(model, data, loaded, head, args))
    print()
    print(table(cases))
    chosen = choose_head(cases) if set(heads) == set(HEADS) else None
    default = TrainConfig().head
    for h in heads:
        got = [c for c in cases if c["head"] == h]
        if got:
            mean = sum(c["val_flops_saved"] for c in got) / len(got)
            print(f"head {h}: mean validation saving {100 * mean:.1f}% over {len(got)} case(s)")
    checks = verdict(cases, default_head=default, chosen_head=chosen)
    lines = [str(c) for c in checks]
    print()
    took = f"{time.perf_counter() - start:.0f} s"
    code = conclude(checks, note=f"quick run: not the target; {took}" if args.quick else took)
    if args.json:
        doc = {
            "cases": cases,
            "chosen_head": chosen,
            "default_head": default,
            "verdict": lines,
            "quick": args.quick,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
