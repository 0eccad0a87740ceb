"""One backbone for several tasks (MTL-Split) against one network per task, with numbers.

MTL-Split (Capogrosso et al., DAC 2024) runs one shared backbone on the device and one head
per task on the server. Does it keep each task's accuracy, and what does it save? On the
3D-Shapes-like set (``shapes3d``), for 2 and 3 tasks, this trains (through the cache, so a
rerun is instant) the multi-task network and one single-task network per task from the same
backbone, head kind (MTL-Split's two-layer MLP) and training settings, every one with
``epochs = "auto"``: trained until the validation accuracy stops improving, the best
validation epoch kept. Validation selects; test accuracy is reported.

Costs come from ``dse.search.compare_tasks`` on one deployment (default a Jetson Nano to an
A100 over Wi-Fi), dense networks, no exit taken, the single-task networks' requests in
flight together as they run (``dse.search.tasks.run_together``: each sent when its edge
part is done, the link's airtime shared, the round trips' waits overlapped, the radio's
tail once), for latency and edge energy alike:

- the headline: each design at its own best cut (the lowest mean latency; for the
  single-task side the combination of cuts that answers soonest together): what a user
  would deploy;
- at MTL-Split's cut (the shared layers on the edge, the heads on the server; the
  single-task networks cut at the same layer): edge FLOPs, bytes sent per input, mean
  latency, edge energy. The edge FLOPs and bytes there are a T-th of the single-task
  networks' *by construction* (one backbone instead of T, the same tensor): printed as a
  check of the build, informative only, never a target.

The single-task side runs its edge parts one after another on the device (``--stl
sequential``, the spec's default) or all at once (``parallel``, an optimistic bound).

The multi-task loss is the plain sum of the tasks' losses or Kendall et al.'s learned
uncertainty weighting; by default both are trained and the one with the higher mean
validation accuracy is kept (``--task-weighting``), so the test split never chooses. Each
single-task network gets the same tries (both weightings, the better on its validation
accuracy kept): neither side is handed an extra draw.

Targets (:func:`verdict`, PASS/FAIL) per case: every task above its learned floor
(``dse.nets.training.learning_floor``: chance + the learning rule's margin, on validation)
on both sides, and its MTL test accuracy within 1 point of (or above) its single-task
network's; and at each design's own best cut, one backbone needs no more mean latency and
edge energy than the T networks together. Where MTL loses (a task whose accuracy drops, a
cut where the heads cost more than the shared layers, a deployment where one network per
task is faster) is printed as plainly as where it wins. Exit 0 when every target holds, 1
when one fails.

    python benchmarks/mtl.py [--quick] [--json FILE] [--link lte] [--stl parallel]

``--json FILE`` writes, for the 3-task case, ``{"tasks": [{"task", "mtl_accuracy",
"stl_accuracy"}], "latency_ratio", "energy_ratio"}`` (MTL over STL, each at its best cut;
test accuracy) and ``"same_cut": {"edge_flops_ratio", "bytes_ratio", "latency_ratio",
"energy_ratio"}``, with every case's full figures under ``"cases"``. The full run trains
12 networks (each weighting of each), about 25 minutes on 2 CPU cores.
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

from verdict import Check, conclude, judge

# The 2-task case pairs the hardest task here (scale: 8 sizes, some a few pixels apart) with
# an easy one; shape and hue alone reach 100% either way and would show nothing.
CASES = (("object_scale", "object_hue"), ("object_shape", "object_scale", "object_hue"))


def spec_text(tasks: tuple[str, ...], args: argparse.Namespace, weighting: str = "fixed") -> str:
    epochs = (
        f'epochs = "auto"\npatience = {args.patience}\nmax_epochs = {args.max_epochs}'
        if not args.quick
        else "epochs = 3"
    )
    if weighting != "fixed":
        epochs += f'\ntask_weighting = "{weighting}"'
    epochs += recipe_text(args)
    return f"""
name = "mtl-bench-{len(tasks)}"
n_trials = 1
storage = "memory"
[model]
name = "{args.model}"
[data]
name = "shapes3d"
n = {args.n}
size = {args.size}
seed = {args.seed}
tasks = {json.dumps(list(tasks))}
[training]
{epochs}
seed = {args.seed}
[deployment]
edge = "{args.edge}"
server = "{args.server}"
link = "{args.link}"
stl = "{args.stl}"
[space]
exits = "none"
[objectives]
accuracy = "maximize"
latency_mean = "minimize"
"""


def recipe_text(args: argparse.Namespace) -> str:
    """The ``[training]`` lines of the recipe options (none given: none, the settings of
    before); both sides, MTL and STL, train with them."""
    lines = ""
    if args.augment:
        lines += f"\naugment = {json.dumps(args.augment.split(','))}"
    if args.weight_decay is not None:
        lines += f"\nweight_decay = {args.weight_decay!r}"
    if args.lr_schedule is not None:
        lines += f'\nlr_schedule = "{args.lr_schedule}"'
    return lines


def run_case(tasks: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    from dse.nets import Cache
    from dse.nets.training import chance_accuracy, learning_floor
    from dse.search import Explorer, compare_tasks, parse_spec
    from dse.search.tasks import SHARED_MTL, SHARED_STL

    t0 = time.perf_counter()
    weightings = (
        ("fixed", "uncertainty") if args.task_weighting == "select" else (args.task_weighting,)
    )
    chosen = None
    for weighting in weightings:  # the validation split chooses; test is only reported
        spec = parse_spec(spec_text(tasks, args, weighting), where=f"mtl-bench-{len(tasks)}")
        explorer = Explorer(spec, cache=Cache(args.cache), progress=False)
        val = sum(explorer.scorer("dense", 1.0).trained.task_accuracy("val"))
        print(
            f"  {len(tasks)} tasks, task weighting {weighting}: mean validation accuracy "
            f"{100 * val / len(tasks):.2f}%"
        )
        if chosen is None or val > chosen[0]:
            chosen = (val, weighting, explorer)
    assert chosen is not None
    _, weighting, explorer = chosen
    comparison = compare_tasks(explorer, stl_weightings=weightings)  # the same tries
    seconds = time.perf_counter() - t0
    mtl, stl = comparison.design(SHARED_MTL), comparison.design(SHARED_STL)
    best_m, best_s = comparison.design("MTL, best cut"), comparison.design("STL, best cuts")
    trained = explorer.scorer("dense", 1.0).trained
    T = len(tasks)

    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 0 else None

    floors = [
        learning_floor(chance_accuracy(trained.val_labels[t], trained.classes[t])) for t in range(T)
    ]
    rows = [
        {
            "task": t,
            "mtl_accuracy": m,
            "stl_accuracy": s,
            "mtl_val": mv,
            "stl_val": sv,
            "floor": f,
            "stl_weighting": w,
        }
        for t, m, s, mv, sv, f, w in zip(
            tasks,
            mtl.test_accuracy,
            stl.test_accuracy,
            mtl.accuracy,
            stl.accuracy,
            floors,
            comparison.stl_weightings,
            strict=True,
        )
    ]
    out = {
        "tasks": rows,
        "n_test": int(trained.test_labels[0].numel()),
        "mtl_epochs": trained.epochs_text(),
        "task_weighting": weighting,
        "T": T,
        "cut": mtl.cuts[0],
        "same_cut": {
            "edge_flops_ratio": ratio(mtl.edge_flops, stl.edge_flops),
            "bytes_ratio": ratio(mtl.bytes, stl.bytes),
            "latency_ratio": ratio(mtl.latency_mean, stl.latency_mean),
            "energy_ratio": ratio(mtl.edge_energy, stl.edge_energy),
        },
        "best_cut": {
            "mtl": best_m.cuts,
            "stl": best_s.cuts,
            "latency_ratio": ratio(best_m.latency_mean, best_s.latency_mean),
            "energy_ratio": ratio(best_m.edge_energy, best_s.edge_energy),
            "bytes": [best_m.bytes, best_s.bytes],
        },
        "designs": comparison.frame().reset_index().to_dict(orient="records"),
        "verdicts": comparison.verdicts(),
        "seconds": seconds,
    }
    _print_case(tasks, out, comparison, args)
    return out


def verdict(results: dict[int, dict[str, Any]]) -> list[Check]:
    """Per case (T tasks): every task above its learned floor on validation on both sides
    and its MTL test accuracy within 1 point of its single-task network's; and at each
    design's own best cut, MTL's latency and edge energy ratios over STL at most 1."""
    checks = []
    for T, out in sorted(results.items()):
        rows = out["tasks"]
        below = [
            f"{r['task']} ({side} {100 * r[key]:.1f}% < floor {100 * r['floor']:.1f}%)"
            for r in rows
            for side, key in (("MTL", "mtl_val"), ("STL", "stl_val"))
            if r[key] < r["floor"] - 1e-9
        ]
        behind = [
            f"{r['task']} ({100 * (r['mtl_accuracy'] - r['stl_accuracy']):+.1f} points)"
            for r in rows
            if r["mtl_accuracy"] < r["stl_accuracy"] - 0.01 - 1e-9
        ]
        problems = (["below the learned floor: " + ", ".join(below)] if below else []) + (
            ["MTL more than 1 point behind: " + ", ".join(behind)] if behind else []
        )
        checks.append(
            judge(
                not problems,
                f"{T} tasks: every task above its learned floor on both sides and MTL's test "
                "accuracy within 1 point of STL's"
                + (f" ({'; '.join(problems)})" if problems else ""),
            )
        )
        b = out["best_cut"]
        lat, energy = b["latency_ratio"], b["energy_ratio"]
        checks.append(
            judge(
                None if lat is None or energy is None else lat <= 1 + 1e-9 and energy <= 1 + 1e-9,
                f"{T} tasks, each design at its own best cut: MTL over STL latency "
                f"{_r(lat)}, edge energy {_r(energy)} (target <= 1 each)",
                why_skipped="the single-task side costs nothing to divide by",
            )
        )
    return checks


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _print_case(
    tasks: tuple[str, ...], out: dict[str, Any], comparison: Any, args: argparse.Namespace
) -> None:
    from dse.report import fmt

    T = len(tasks)
    print(
        f"\n== {T} tasks: {', '.join(tasks)} ({args.model}, shapes3d {args.size}x{args.size}, "
        f"n={args.n}; {args.edge} -> {args.server} over {args.link}; STL {args.stl}) =="
    )
    print(
        f"multi-task network: task weighting {out['task_weighting']} (chosen on "
        f"validation), {out['mtl_epochs']}; {out['n_test']} test samples "
        f"(one sample = {100 / out['n_test']:.2f} points)"
    )
    print(
        f"{'task':<14} {'floor':>6} {'MTL val':>8} {'STL val':>8} {'MTL test':>9} "
        f"{'STL test':>9} {'diff':>7}  STL weighting"
    )
    for r in out["tasks"]:
        diff = 100 * (r["mtl_accuracy"] - r["stl_accuracy"])
        flag = "  <- MTL loses more than 1 point" if diff < -1 - 1e-9 else ""
        if min(r["mtl_val"], r["stl_val"]) < r["floor"] - 1e-9:
            flag += "  <- below the learned floor"
        print(
            f"{r['task']:<14} {fmt.percent(r['floor']):>6} {fmt.percent(r['mtl_val']):>8} "
            f"{fmt.percent(r['stl_val']):>8} {fmt.percent(r['mtl_accuracy']):>9} "
            f"{fmt.percent(r['stl_accuracy']):>9} {diff:>+6.1f}  {r['stl_weighting']}{flag}"
        )
    f = comparison.frame()
    print(
        f"\n{'design':<28} {'cuts':>10} {'edge FLOPs':>11} {'sent':>9} {'latency':>9} "
        f"{'edge energy':>11} {'edge mem':>9}"
    )
    for name, row in f.iterrows():
        print(
            f"{name:<28} {row.cuts:>10} {row.edge_flops:>11.3g} {fmt.nbytes(row.bytes):>9} "
            f"{fmt.seconds(row.latency_mean):>9} {fmt.joules(row.edge_energy):>11} "
            f"{fmt.nbytes(row.edge_memory):>9}"
        )

    b = out["best_cut"]
    print(
        f"\neach at its best cut (MTL cut {b['mtl'][0]}, STL cuts "
        f"{','.join(map(str, b['stl']))}), MTL over STL: latency {_r(b['latency_ratio'])}, "
        f"edge energy {_r(b['energy_ratio'])}"
    )
    same = out["same_cut"]
    print(
        f"informative only: at MTL-Split's cut (cut {out['cut']}), MTL over STL: edge FLOPs "
        f"{_r(same['edge_flops_ratio'])}, bytes {_r(same['bytes_ratio'])} "
        f"(<= 1/T = {1 / T:.3f} by construction), latency {_r(same['latency_ratio'])}, "
        f"edge energy {_r(same['energy_ratio'])}"
    )
    for line in out["verdicts"]:
        print(f"  - {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg-s")
    ap.add_argument("--n", type=int, default=3000, help="images in shapes3d (all splits)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--max-epochs", type=int, default=60)
    ap.add_argument("--edge", default="jetson-nano")
    ap.add_argument("--server", default="a100")
    ap.add_argument("--link", default="wifi")
    ap.add_argument("--stl", default="sequential", choices=("sequential", "parallel"))
    ap.add_argument(
        "--task-weighting",
        default="select",
        choices=("fixed", "uncertainty", "select"),
        help="the multi-task loss weights; select: train both, keep the one with "
        "the higher mean validation accuracy (default)",
    )
    ap.add_argument(
        "--augment",
        default="",
        help="comma-separated flip,crop for both sides' training (default none)",
    )
    ap.add_argument("--weight-decay", type=float, default=None, help="default 1e-4")
    ap.add_argument(
        "--lr-schedule", default=None, help="cosine, step, plateau (default with auto epochs)"
    )
    ap.add_argument("--cache", default=os.environ.get("DSE_CACHE", ".dse-cache"))
    ap.add_argument(
        "--quick",
        action="store_true",
        help="600 images at 16x16, 3 epochs: a smoke run, not the target",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.size = 600, 16
    logging.basicConfig(level=logging.WARNING)
    results = {len(t): run_case(t, args) for t in CASES}
    checks = verdict(results)
    if args.json:
        three = results[3]
        doc = {
            "tasks": [
                {k: r[k] for k in ("task", "mtl_accuracy", "stl_accuracy", "floor")}
                for r in three["tasks"]
            ],
            "latency_ratio": three["best_cut"]["latency_ratio"],
            "energy_ratio": three["best_cut"]["energy_ratio"],
            "same_cut": three["same_cut"],
            "pass": all(c.status == "PASS" for c in checks),
            "checks": [str(c) for c in checks],
            "quick": args.quick,
            "cases": {str(k): v for k, v in results.items()},
        }
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    print()
    return conclude(checks, note="quick run: not the target" if args.quick else "")


if __name__ == "__main__":
    sys.exit(main())
