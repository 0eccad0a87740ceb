"""How long a sweep over deployments takes once the networks are trained.

Question: with the quickstart study's networks in the cache, does ``dse sweep`` score the
whole space (every network, cut, exit subset and threshold) on 3 edge devices x 3 links in
seconds, and how does that compare with scoring every candidate one by one?

Method: ``studies/quickstart.toml`` with its networks from the cache (``--cache``, default
``$DSE_CACHE`` or ``.dse-cache``; a missing one is trained first only with ``--train``).
The sweep runs once over ``--edges`` x ``--links`` (default raspberry-pi-4, jetson-nano,
snapdragon-855 x lte, wifi, 3g, server a100). Printed: the one-time set-up (loading the
data and the networks, building their layer graphs, deciding every candidate once), and
per combination the seconds to cost and rank every candidate, its best configuration and
whether a split wins. For scale, the first combination is scored again one candidate at a
time with ``Scorer.score`` (what a study's grid does) and the two results compared.

Target (PASS/FAIL, :func:`verdict`): the combinations together take under 10 s (after
set-up) and the batched scores equal the one-by-one scores; exit 1 when either fails.

    python benchmarks/sweep.py [--spec FILE] [--edges A,B,C] [--links X,Y,Z]
                               [--cache DIR] [--train] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from verdict import Check, conclude, judge

from dse.costmodel import load_device, load_link
from dse.nets import Cache
from dse.search import COST_FIELDS, Explorer, batch, load_spec, run_sweep

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 10.0
#: Largest relative difference between batched and one-by-one scores that counts as equal.
SAME = 1e-9


def verdict(*, combinations: int, total_s: float, max_rel_diff: float) -> list[Check]:
    """The sweep's targets: every combination scored in under 10 s in all, and the batched
    costs equal to scoring one candidate at a time."""
    return [
        judge(
            total_s < TARGET_S,
            f"{combinations} combinations in {total_s:.2f} s (target < {TARGET_S:g} s)",
        ),
        judge(
            max_rel_diff < SAME,
            f"batched costs equal one-by-one scores: largest relative difference "
            f"{max_rel_diff:.1e} (target < {SAME:g})",
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=str(REPO / "studies/quickstart.toml"), help="the study spec")
    ap.add_argument(
        "--edges",
        default="raspberry-pi-4,jetson-nano,snapdragon-855",
        help="edge device profiles, comma-separated",
    )
    ap.add_argument("--links", default="lte,wifi,3g", help="link profiles, comma-separated")
    ap.add_argument(
        "--cache", default=None, help="training cache (default: $DSE_CACHE or .dse-cache)"
    )
    ap.add_argument("--train", action="store_true", help="train networks not in the cache")
    ap.add_argument("--json", default=None, help="write the timings here")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    start = time.perf_counter()
    ex = Explorer(spec, cache=Cache(args.cache) if args.cache else Cache(), progress=False)
    explorer_s = time.perf_counter() - start
    edges, links = args.edges.split(","), args.links.split(",")
    sw = run_sweep(spec, edges, links, explorer=ex, train=args.train)
    print(
        f"{spec.name}: {sw.results[0].candidates} candidates per deployment, "
        f"{len(sw.results)} deployments"
    )
    print(
        f"set-up: explorer {explorer_s:.2f} s, networks and decisions "
        f"{sw.setup_seconds:.2f} s (once)"
    )
    print(f"{'edge':>16} {'link':>6} {'seconds':>8}  best")
    for r in sw.results:
        b = r.best
        what = (
            "nothing feasible"
            if b is None
            else (
                f"{b.knobs['method']}@{b.knobs['density']:g} cut {b.knobs['split']} "
                f"exits {b.knobs['exits']} ({r.where}{', split wins' if r.split_wins else ''})"
            )
        )
        print(f"{r.edge:>16} {r.link:>6} {r.seconds:8.3f}  {what}")
    total = sum(r.seconds for r in sw.results)
    print(
        f"per combination: mean {total / len(sw.results):.3f} s, max "
        f"{max(r.seconds for r in sw.results):.3f} s; all {total:.2f} s"
    )

    # the first combination again, one candidate at a time
    edge, link = load_device(edges[0]), load_link(links[0])
    server = load_device(spec.server)
    one_s = batched_s = 0.0
    worst = 0.0
    for net in ex.space.networks():
        scorer = ex.scorer(*net).redeployed(edge, server, link)
        cands = [c for c in ex.space.enumerate() if c.network == net]
        t0 = time.perf_counter()
        ms = [scorer.score(c) for c in cands]
        one_s += time.perf_counter() - t0
        b = batch(scorer, cands)
        t0 = time.perf_counter()
        costs = b.costs(scorer)
        batched_s += time.perf_counter() - t0
        for name in COST_FIELDS:
            ref = np.array([getattr(m, name) for m in ms])
            worst = max(
                worst, float(np.max(np.abs(costs[name] - ref) / np.maximum(np.abs(ref), 1e-300)))
            )
    print(
        f"{edges[0]} / {links[0]} one by one: {one_s:.2f} s; batched costs {batched_s:.3f} s "
        f"({one_s / max(batched_s, 1e-9):.0f}x); largest relative difference {worst:.1e}"
    )
    checks = verdict(combinations=len(sw.results), total_s=total, max_rel_diff=worst)
    ok = all(c.status == "PASS" for c in checks)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "setup_s": sw.setup_seconds,
                    "explorer_s": explorer_s,
                    "per_combination_s": {f"{r.edge}/{r.link}": r.seconds for r in sw.results},
                    "one_by_one_s": one_s,
                    "batched_s": batched_s,
                    "max_rel_diff": worst,
                    "pass": ok,
                },
                indent=2,
            )
        )
    return conclude(checks)


if __name__ == "__main__":
    sys.exit(main())
