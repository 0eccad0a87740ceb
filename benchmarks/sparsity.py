"""Does predefined sparsity cut storage and FLOPs by >= 4x at unchanged accuracy?

The reproducible question of Capogrosso et al. (2024), whose abstract claims "reductions
exceeding 4x in storage and computational complexity without compromising performance".
For each model/data case (``mlp`` on ``digits``; ``vgg-s`` on ``digits`` at 16x16 and on
``shapes`` at 16x16 with 3000 samples), every density in 1, 1/2, 1/4, 1/8, 1/16, both
methods (``predefined``: fixed regular connection patterns, ``channels``: whole channels
removed before training, a smaller dense net) and several seeds are trained through
``dse.nets.training.train_network`` with a :class:`dse.nets.cache.Cache` (default
``.dse-cache``, so a rerun is instant), and measured:

- accuracy: final-classifier validation accuracy (what selects) and test accuracy (what is
  reported), mean and std over seeds;
- realised density: non-zero Linear/conv weights over those of the dense network (a
  density a layer cannot meet exactly leaves that layer dense, so this can exceed the
  requested one; the classifier is never sparsified);
- non-zero params (weights, biases, norms), FLOPs (``sum(node.sparse_flops)`` of
  ``dse.costmodel.graph.build_graph``: non-zero arithmetic, 1 MAC = 2 FLOP; plain dense FLOPs for
  the channels method's smaller net) and stored bytes (``dse.nets.sparsity.stored_bytes``,
  values plus explicit indices);
- reduction factors vs dense, and the headline: per case and method, the largest
  reduction (the smaller of the storage and FLOP factors) at which mean *validation*
  accuracy stays within 1 point of dense, with that density's test accuracy beside it,
  and whether the 4x claim holds (PASS/FAIL: the factor, and the test accuracy also within
  1 point of dense's).

Every network is trained as long as it needs: ``epochs = "auto"`` (until its validation
accuracy has not improved for ``--patience`` epochs, at most ``--max-epochs``, the best
epoch's weights kept), with weight decay 5e-4 and the augmentations that keep the case's
labels (shapes: flips and crops; digits: crops of a pixel or two). ``--epochs case`` trains
each case for the fixed number of epochs chosen on validation by ``--sweep-epochs`` (dense
and 1/8 predefined, seeds 0 and 1: the fewest epochs within 0.5 point of the best), the
recipe of before (no augmentation, weight decay 1e-4); ``--epochs N`` for N epochs.

The verdict (:func:`verdict`): one PASS/FAIL line per case for the predefined method (the
claim is about predefined sparsity; the channels method is the comparison, shown in the
headline, not judged); exit 0 when the claim holds on every case, 1 when it fails on one.

Networks are trained without exit heads by default (``--exits none``): the claim is about
the network, and the paper's public code has none; ``--exits all`` adds the (dense) heads,
which then count in storage and FLOPs.

    python benchmarks/sparsity.py [--seeds 3] [--epochs auto|case|N] [--quick] [--json FILE]
    python benchmarks/sparsity.py --sweep-epochs 10,20,30 [--cases mlp/digits]

The full default run trains 3 x 27 networks (the dense one is shared by both methods) in
about 20 minutes on 2 CPU cores; torch runs on one thread (``--threads``), which is much
faster for nets this small when the cores are shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from verdict import Check, conclude, judge, skipped

from dse.costmodel.graph import build_graph
from dse.nets import sparsity
from dse.nets.cache import Cache, atomic_write_bytes
from dse.nets.data import DataSet, load_data
from dse.nets.training import NetworkSpec, TrainConfig, example_input, train_network

CLAIM_FACTOR = 4.0
TOLERANCE_POINTS = 1.0
DENSITIES = ("1", "1/2", "1/4", "1/8", "1/16")
QUICK_DENSITIES = ("1", "1/4", "1/16")
METHODS = ("predefined", "channels")
CLAIM_METHOD = "predefined"  # the method the paper's claim is about; channels compares


@dataclass(frozen=True)
class Case:
    """One model on one data set, with the epochs at which its dense accuracy has converged."""

    model: str
    data: str
    data_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    augment: tuple[str, ...] = ()  # what keeps the labels (with the recipe, not "case")

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.data_options.items())
        return f"{self.model} on {self.data}" + (f" ({opts})" if opts else "")


# Epochs from `--sweep-epochs`: mean final-classifier validation accuracy (%), seeds 0 and
# 1, no exits, dense / predefined 1/8; the fewest epochs within 0.5 point of the best of both:
#   mlp/digits    10: 97.96/96.48  20: 98.15/97.04  30: 98.15/97.41  50: 98.15/97.22  -> 20
#   vgg-s/digits   5: 99.26/99.44  10: 99.44/99.63  20: 99.63/99.44  30: 99.63/99.44  -> 5
#   vgg-s/shapes  10: 89.11/85.44  20: 90.78/85.78  30: 90.89/87.56  40: 91.00/86.44  -> 30
# (digits' validation split is 270 images: one image is 0.37 point.)
CASES: tuple[Case, ...] = (
    Case("mlp", "digits", {}, epochs=20, augment=("crop",)),
    Case("vgg-s", "digits", {"size": 16}, epochs=5, augment=("crop",)),
    Case("vgg-s", "shapes", {"size": 16, "n": 3000}, epochs=30, augment=("crop", "flip")),
)


def train_config(case: Case, seed: int, epochs: int | str, args: argparse.Namespace) -> Any:
    """How one network of ``case`` is trained: ``epochs`` a number (the settings of
    before: no augmentation, weight decay 1e-4) or ``"auto"`` with the recipe."""
    if epochs != "auto":
        return TrainConfig(epochs=int(epochs), seed=seed)
    return TrainConfig(
        epochs="auto",
        patience=args.patience,
        max_epochs=args.max_epochs,
        seed=seed,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        augment=case.augment if args.augment == "data" else (),
    )


def measure(
    case: Case,
    data: DataSet,
    method: str,
    density: Fraction,
    seed: int,
    *,
    epochs: int | str,
    exits: tuple[str, ...] | None,
    cache: Cache,
    args: argparse.Namespace | None = None,
) -> dict[str, Any]:
    """Train (or load) one network and measure accuracy, params, FLOPs and storage."""
    spec = NetworkSpec(
        model=case.model,
        data=data,
        method=method,
        density=float(density),
        exits=exits,
        train=train_config(case, seed, epochs, args) if args else TrainConfig(epochs=int(epochs)),
    )
    trained = train_network(spec, cache=cache, progress=False)
    net = trained.network()
    graph = build_graph(net, example_input(data), name=case.model)
    stats = sparsity.layer_stats(net).values()
    acc = trained.accuracy("test")
    return {
        "model": case.model,
        "data": case.data,
        "data_options": dict(case.data_options),
        "method": method,
        "density": float(density),
        "density_label": str(density),
        "seed": seed,
        "epochs": trained.epochs_run,
        "epoch_kept": trained.epoch_kept,
        "accuracy": acc[-1],
        "exit_accuracy": acc[:-1],
        "val_accuracy": trained.accuracy("val")[-1],
        "weights": sum(s.total for s in stats),
        "nonzero_weights": sum(s.nonzero for s in stats),
        "params": graph.params,
        "nonzero_params": sum(n.nonzero_params for n in graph.nodes.values()),
        "flops": sum(n.sparse_flops for n in graph.nodes.values()),
        "dense_flops": graph.flops,
        "stored_bytes": sparsity.stored_bytes(net, form="indices"),
        "stored_bytes_seed_form": sparsity.stored_bytes(net, form="seed"),
        "test_size": len(data.test),
        "train_seconds": trained.train_seconds,
        "cached": trained.cached,
        "key": trained.key,
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The per-density table of one case, and its headline per method (selected on
    validation accuracy; the test accuracy of the selected density is reported)."""
    df = pd.DataFrame(rows)
    dense = df[df.density == 1.0].drop_duplicates("seed")
    dense_val = 100 * dense.val_accuracy.mean()
    dense_test = 100 * dense.accuracy.mean()
    dense_weights = int(dense.weights.iloc[0])
    dense_stored = float(dense.stored_bytes.iloc[0])
    dense_flops = float(dense.flops.iloc[0])
    table = []
    for (method, density), g in df.groupby(["method", "density"], sort=False):
        if density == 1.0 and method != METHODS[0]:
            continue  # the dense network is the same for both methods: one row
        g = g.drop_duplicates("seed")
        val, val_std = _mean_std([100 * a for a in g.val_accuracy])
        test, test_std = _mean_std([100 * a for a in g.accuracy])
        first = g.iloc[0]
        table.append(
            {
                "method": "dense" if density == 1.0 else method,
                "density": first.density_label,
                "realised": first.nonzero_weights / dense_weights,
                "val %": f"{val:.2f} ± {val_std:.2f}",
                "Δ val": val - dense_val,
                "test %": f"{test:.2f} ± {test_std:.2f}",
                "Δ test": test - dense_test,
                "nonzero params": int(first.nonzero_params),
                "FLOPs": int(first.flops),
                "stored B": int(first.stored_bytes),
                "storage x": dense_stored / first.stored_bytes,
                "FLOP x": dense_flops / first.flops,
                "storage x seed": dense_stored / first.stored_bytes_seed_form,
                "_density": density,
                "_method": method,
            }
        )
    t = pd.DataFrame(table)
    verdicts = []
    for method in METHODS:
        sub = t[(t._method == method) | (t.method == "dense")]
        ok = sub[sub["Δ val"] >= -TOLERANCE_POINTS]  # selected on validation
        reduction = ok[["storage x", "FLOP x"]].min(axis=1)
        best = ok.loc[reduction.idxmax()]
        factor = float(reduction.max())
        test_ok = best["Δ test"] >= -TOLERANCE_POINTS
        verdicts.append(
            {
                "method": method,
                "best density": best.density,
                "realised": best.realised,
                "storage x": best["storage x"],
                "FLOP x": best["FLOP x"],
                "reduction x": factor,
                "Δ val": best["Δ val"],
                "Δ test": best["Δ test"],
                "4x claim": "PASS" if factor >= CLAIM_FACTOR and test_ok else "FAIL",
            }
        )
    return t, verdicts


def verdict(headline: list[dict[str, Any]]) -> list[Check]:
    """One check per case of the claim's method (``predefined``): the largest reduction
    (the smaller of the storage and FLOP factors) with mean validation accuracy within 1
    point of dense must reach 4x with the test accuracy also within 1 point. The rows are
    :func:`summarise`'s verdicts with their ``case``; other methods are not judged."""
    checks = []
    for row in headline:
        if row["method"] != CLAIM_METHOD:
            continue
        holds = row["reduction x"] >= CLAIM_FACTOR and row["Δ test"] >= -TOLERANCE_POINTS - 1e-9
        checks.append(
            judge(
                holds,
                f"{row['case']} {row['method']}: {row['reduction x']:.2f}x fewer stored bytes "
                f"and FLOPs at density {row['best density']} (realised "
                f"{row['realised']:.3f}), {row['Δ val']:+.2f} points validation, "
                f"{row['Δ test']:+.2f} test against dense (claim: >= {CLAIM_FACTOR:g}x within "
                f"{TOLERANCE_POINTS:g} point)",
            )
        )
    return checks


def sweep_epochs(
    case: Case,
    data: DataSet,
    counts: list[int],
    seeds: list[int],
    *,
    exits: tuple[str, ...] | None,
    cache: Cache,
) -> int:
    """Mean validation accuracy of dense and 1/8 predefined per epoch count; the fewest
    epochs within 0.5 point of the best for both (test accuracy is printed, never used)."""
    rows = []
    for epochs in counts:
        row: dict[str, Any] = {"epochs": epochs}
        for density in (Fraction(1), Fraction(1, 8)):
            got = [
                measure(
                    case, data, "predefined", density, s, epochs=epochs, exits=exits, cache=cache
                )
                for s in seeds
            ]
            row[f"val {density}"] = 100 * statistics.fmean(r["val_accuracy"] for r in got)
            row[f"test {density}"] = 100 * statistics.fmean(r["accuracy"] for r in got)
        rows.append(row)
    df = pd.DataFrame(rows)
    val_cols = [c for c in df.columns if c.startswith("val")]
    close = (df[val_cols] >= df[val_cols].max() - 0.5).all(axis=1)
    chosen = int(df[close].epochs.min()) if close.any() else int(df.epochs.max())
    print(f"\n== {case.label}: epochs sweep, seeds {seeds} (selection on val only)")
    print(df.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"chosen: {chosen} epochs")
    return chosen


def parse_density(text: str) -> Fraction:
    value = Fraction(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"density {text} is outside (0, 1]")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (3)")
    parser.add_argument(
        "--epochs",
        default="auto",
        help="auto (default: as long as each network needs, with the recipe), case (each "
        "case's converged fixed epochs, the settings of before) or a number",
    )
    parser.add_argument("--patience", type=int, default=8, help="with auto (default 8)")
    parser.add_argument("--max-epochs", type=int, default=100, help="with auto (default 100)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="with auto")
    parser.add_argument("--lr-schedule", default=None, help="with auto (default plateau)")
    parser.add_argument(
        "--augment", choices=("data", "none"), default="data", help="with auto (default data)"
    )
    parser.add_argument(
        "--densities",
        default=None,
        help=f"comma-separated, fractions allowed (default {','.join(DENSITIES)})",
    )
    parser.add_argument(
        "--cases", default=None, help="comma-separated model/data filters, e.g. mlp/digits"
    )
    parser.add_argument(
        "--exits",
        choices=("none", "all"),
        default="none",
        help="exit heads attached while training (default none)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: 1 seed, densities {','.join(QUICK_DENSITIES)}",
    )
    parser.add_argument("--cache-dir", default=".dse-cache", help="default .dse-cache")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", help="write one row per trained network here")
    parser.add_argument(
        "--init",
        choices=sparsity.INITS,
        default=None,
        help="force this init of the sparse layers (the library's default is "
        "'auto'); the cache key does not record it, so give its own "
        "--cache-dir",
    )
    parser.add_argument(
        "--sweep-epochs",
        default=None,
        help="comma-separated epoch counts: print the validation sweep that "
        "chooses each case's epochs, and stop",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, args.threads))
    os.environ["DSE_THREADS"] = str(max(1, args.threads))  # what train_network uses
    seeds = list(range(1 if args.quick else max(1, args.seeds)))
    labels = QUICK_DENSITIES if args.quick else DENSITIES
    if args.densities:
        labels = tuple(d.strip() for d in args.densities.split(","))
    densities = sorted({parse_density(d) for d in labels} | {Fraction(1)}, reverse=True)
    cases = CASES
    if args.cases:
        wanted = {c.strip() for c in args.cases.split(",")}
        cases = tuple(c for c in CASES if f"{c.model}/{c.data}" in wanted)
        if not cases:
            known = ", ".join(f"{c.model}/{c.data}" for c in CASES)
            parser.error(f"no case matches {args.cases!r} (known: {known})")
    exits: tuple[str, ...] | None = () if args.exits == "none" else None
    cache = Cache(args.cache_dir)
    if args.init is not None:
        if Path(args.cache_dir).resolve() == Path(".dse-cache").resolve():
            parser.error("--init needs its own --cache-dir (the key does not record the init)")
        plain = sparsity.apply_sparsity
        sparsity.apply_sparsity = lambda model, plan, **kw: plain(model, plan, init=args.init)

    if args.sweep_epochs:
        counts = sorted({int(x) for x in args.sweep_epochs.split(",")})
        for case in cases:
            data = load_data(case.data, **case.data_options)
            sweep_epochs(
                case, data, counts, seeds if args.seeds != 3 else [0, 1], exits=exits, cache=cache
            )
        print()
        return conclude([skipped("the 4x claim: --sweep-epochs only chooses the epochs")])
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    all_rows: list[dict[str, Any]] = []
    headline: list[dict[str, Any]] = []
    start = time.perf_counter()
    for case in cases:
        data = load_data(case.data, **case.data_options)
        epochs: int | str = (
            case.epochs
            if args.epochs == "case"
            else (args.epochs if args.epochs == "auto" else int(args.epochs))
        )
        rows: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        trained = 0
        for method in METHODS:
            for density in densities:
                for seed in seeds:
                    row = measure(
                        case,
                        data,
                        method,
                        density,
                        seed,
                        epochs=epochs,
                        exits=exits,
                        cache=cache,
                        args=args,
                    )
                    trained += not row["cached"]
                    rows.append(row)
        all_rows += rows
        table, verdicts = summarise(rows)
        ran = f"epochs run {min(r['epochs'] for r in rows)}-{max(r['epochs'] for r in rows)}"
        print(
            f"\n== {case.label}: {epochs} epochs ({ran}), seeds {seeds}, exits {args.exits}, "
            f"test n={len(data.test)} (1 sample = {100 / len(data.test):.2f} pts); "
            f"{trained} trained, {len(rows) - trained} from cache, "
            f"{time.perf_counter() - t0:.0f} s"
        )
        shown = table.drop(columns=[c for c in table.columns if c.startswith("_")])
        print(shown.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        for v in verdicts:
            headline.append({"case": f"{case.model}/{case.data}", **v})

    print(
        f"\n== Headline: largest reduction (min of storage and FLOP factors) with mean "
        f"validation accuracy within {TOLERANCE_POINTS:g} point of dense (test shown beside; "
        f"PASS needs it within {TOLERANCE_POINTS:g} point too); claim: >= {CLAIM_FACTOR:g}x"
    )
    print(pd.DataFrame(headline).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        atomic_write_bytes(Path(args.json), (json.dumps(all_rows, indent=1) + "\n").encode())
        print(f"wrote {len(all_rows)} rows to {args.json}")
    print()
    return conclude(verdict(headline), note="quick run: not the target" if args.quick else "")


if __name__ == "__main__":
    sys.exit(main())
