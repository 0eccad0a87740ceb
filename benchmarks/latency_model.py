"""How well a calibrated profile predicts the edge part of every cut, measured here.

1. Calibrate this machine for the ``torch-export`` runtime: sampled kernels and every layer
   of the zoo networks (mlp, vgg-s, resnet-s, mobilenet-s), timed as exported programs,
   one thread; both predictors (fitted roofline terms, extra-trees) are judged on
   held-out zoo networks and the better one is kept (``dse calibrate --runtime``).
2. For every zoo network (seen) and three it never saw (a wider VGG, a deeper ResNet, a
   MobileNet with expansion 6; unseen), dense and with predefined sparsity at density
   1/4 (masked weights: eager and exported programs run them dense, and the fitted
   profile has no sparse kernel), and for every cut: the edge part (the fx sub-graph of
   the backbone before the cut, returning the tensors that cross it) is exported with
   torch.export and run as an exported program; every cut of a network is timed in
   shuffled interleaved rounds after warm-up; the 10th percentile (the uncontended time)
   is the truth, the median is printed beside it.
3. Prints the share of cuts within +-10% and +-20%, MAPE, RMSE and the worst cases, seen
   and unseen apart; PASS when >= 90% of the unseen networks' cuts are within +-10%.

The machine may be shared: the spread of the timings is printed with them.

    python benchmarks/latency_model.py [--quick] [--seed 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.costmodel import build_graph, cost_table, load_device, load_link, trace  # noqa: E402
from dse.costmodel.calibrate import calibrate_predictor, machine  # noqa: E402
from dse.costmodel.measure import (  # noqa: E402
    pinned_threads,
    program,
    subgraph,
    time_interleaved,
)
from dse.nets import default_input, load_model, sparsity  # noqa: E402
from dse.nets.zoo import VGG, MobileNet, ResNet  # noqa: E402

TARGET = 0.90  # share of unseen cuts within +-10%
ZOO = ("mlp", "vgg-s", "resnet-s", "mobilenet-s")


def unseen() -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Networks the calibration never saw."""
    x = torch.zeros(1, 3, 32, 32)
    return [
        ("vgg-wide", VGG(stages=((48, 48), (96, 96), (192, 192))), x),
        ("resnet-deep", ResNet(channels=(16, 32, 64), blocks=(4, 4, 3)), x),
        ("mobilenet-e6", MobileNet(expand=6, channels=(16, 32, 48, 96)), x),
    ]


def sparse_copy(model: nn.Module, *, seed: int) -> nn.Module:
    """The same network with predefined sparsity at density 1/4 (classifier dense)."""
    import copy

    m = copy.deepcopy(model)
    exclude = (getattr(m, "classifier_name", "classifier"),)
    plan = sparsity.plan_sparsity(m, 0.25, seed=seed, exclude=exclude)
    sparsity.apply_sparsity(m, plan)
    return m


def edge_parts(model: nn.Module, example: torch.Tensor, graph, cuts: list[int]):  # type: ignore[no-untyped-def]
    """Per cut k: the exported program of the backbone before the cut (the tensors that
    cross it returned; the edge-only cut returns the backbone's last output)."""
    gm = trace(model.eval())
    calls = {}
    for k in cuts:
        cut = graph.cuts[k]
        outputs = [t for t in cut.tensors if t in graph.nodes] or [graph.backbone[k - 1]]
        sub = subgraph(gm, list(graph.backbone[:k]), outputs)
        calls[k] = program(sub, [example], runtime="torch-export")
    return calls


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rounds = 8 if args.quick else args.rounds
    kernels = 60 if args.quick else args.kernels
    zoo = [(n, load_model(n).eval(), torch.zeros((1, *default_input(n)))) for n in ZOO]
    print(machine())
    t0 = time.perf_counter()
    fitted = calibrate_predictor(
        zoo, runtime="torch-export", kernels=kernels, threads=1, rounds=rounds, seed=args.seed
    )
    print(
        f"calibrated in {time.perf_counter() - t0:.0f} s: {kernels} kernels + {len(zoo)} "
        f"zoo networks; per-call floor {fitted.call_s * 1e6:.2f} us"
    )
    for method, s in fitted.scores.items():
        mark = "  <- chosen" if method == fitted.chosen else ""
        print(
            f"  held-out zoo networks, {method:5s}: {100 * s['within_10']:.0f}% of cuts "
            f"within 10%, MAPE {100 * s['mape']:.1f}%{mark}"
        )
    base = load_device("raspberry-pi-4")
    edge = replace(
        base,
        name="this-machine",
        runtime="torch-export",
        predictor=fitted.predictor,
        sparse_efficiency={},
    )
    server, link = load_device("a100"), load_link("lte")

    rows = []
    nets = [(n, m, x, False) for n, m, x in zoo] + [(n, m, x, True) for n, m, x in unseen()]
    for name, model, x, is_unseen in nets:
        for variant in ("dense", "sparse"):
            net = model if variant == "dense" else sparse_copy(model, seed=args.seed)
            graph = build_graph(net, x, name=name)
            n = len(graph.backbone)
            cuts = list(range(1, n + 1))
            if args.quick:
                cuts = sorted(set(cuts[:: max(1, n // 8)]) | {n})
            table = cost_table(graph, edge, server, link)
            with pinned_threads(1):
                calls = edge_parts(net, x, graph, cuts)
                times = time_interleaved(calls, rounds=rounds, warmup=3, seed=args.seed)
            for k in cuts:
                t = times[k]
                pred = float(table.edge_s[k])
                rows.append(
                    {
                        "model": name,
                        "variant": variant,
                        "unseen": is_unseen,
                        "cut": k,
                        "after": graph.cuts[k].after,
                        "predicted_s": pred,
                        "p10_s": t.p10_s,
                        "median_s": t.median_s,
                        "spread": t.spread,
                        "error": pred / t.p10_s - 1.0,
                        "error_median": pred / t.median_s - 1.0,
                    }
                )
            print(f"  {name:13s} {variant:6s} {len(cuts):3d} cuts timed", flush=True)
    df = pd.DataFrame(rows)

    def stats(d: pd.DataFrame) -> dict:
        e = d.error.abs()
        return {
            "n": len(d),
            "within_10": float((e <= 0.10).mean()),
            "within_20": float((e <= 0.20).mean()),
            "mape": float(e.mean()),
            "rmse_s": float(math.sqrt(((d.predicted_s - d.p10_s) ** 2).mean())),
            "within_10_median": float((d.error_median.abs() <= 0.10).mean()),
            "spread_median": float(d.spread.median()),
        }

    seen_s, unseen_s, all_s = stats(df[~df.unseen]), stats(df[df.unseen]), stats(df)
    print("\nper network (p10 truth; median truth beside it):")
    for (name, variant), d in df.groupby(["model", "variant"], sort=False):
        s = stats(d)
        print(
            f"  {name:13s} {variant:6s} n={s['n']:3d} within10 {100 * s['within_10']:5.1f}% "
            f"within20 {100 * s['within_20']:5.1f}% MAPE {100 * s['mape']:5.1f}% "
            f"(vs median: within10 {100 * s['within_10_median']:5.1f}%) "
            f"spread {100 * s['spread_median']:.0f}%"
        )
    for label, s in (("seen", seen_s), ("unseen", unseen_s), ("all", all_s)):
        print(
            f"{label:6s} n={s['n']:4d}  within 10%: {100 * s['within_10']:.1f}%  "
            f"within 20%: {100 * s['within_20']:.1f}%  MAPE {100 * s['mape']:.1f}%  "
            f"RMSE {s['rmse_s'] * 1e6:.1f} us  (within 10% of the median: "
            f"{100 * s['within_10_median']:.1f}%; median spread {100 * s['spread_median']:.0f}%)"
        )
    worst = df.reindex(df.error.abs().sort_values(ascending=False).index).head(10)
    print("\nworst cuts:")
    for r in worst.itertuples():
        print(
            f"  {r.model:13s} {r.variant:6s} cut {r.cut:3d} after {r.after:22s} predicted "
            f"{r.predicted_s * 1e6:8.1f} us, p10 {r.p10_s * 1e6:8.1f} us, median "
            f"{r.median_s * 1e6:8.1f} us ({100 * r.error:+.0f}%)"
        )
    ok = unseen_s["within_10"] >= TARGET
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {100 * unseen_s['within_10']:.1f}% of unseen cuts "
        f"within +-10% (target >= {100 * TARGET:.0f}%)"
    )
    if not ok:
        bad = df[df.unseen & (df.error.abs() > 0.10)]
        over = (bad.error > 0).mean() if len(bad) else 0.0
        print(
            "between us and nn-Meter's 99%: "
            f"{len(bad)} unseen cuts miss, {100 * over:.0f}% of them over-predicted; "
            f"timing spread alone (median {100 * unseen_s['spread_median']:.0f}% between "
            "p10 and p90 on this shared machine) is larger than the +-10% band, and per-layer "
            "errors add up along a cut; nn-Meter times thousands of kernels per kind on an "
            "idle device and predicts fused kernels, where this run samples "
            f"{kernels} kernels on a busy 2-core VM."
        )
    worst_list = [
        {
            "model": r.model,
            "variant": r.variant,
            "cut": int(r.cut),
            "predicted_s": r.predicted_s,
            "p10_s": r.p10_s,
            "median_s": r.median_s,
            "error": r.error,
        }
        for r in worst.itertuples()
    ]
    return {
        "n": all_s["n"],
        "within_10": all_s["within_10"],
        "within_20": all_s["within_20"],
        "mape": all_s["mape"],
        "rmse_s": all_s["rmse_s"],
        "seen": {k: seen_s[k] for k in ("n", "within_10", "within_20", "mape")},
        "unseen": {k: unseen_s[k] for k in ("n", "within_10", "within_20", "mape")},
        "worst": worst_list,
        "pass": ok,
        "chosen": fitted.chosen,
        "held_out": {m: dict(s) for m, s in fitted.scores.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 kernels, 8 rounds, ~10 cuts/net")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kernels", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    out = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
        print(f"wrote {args.json}")
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
