"""How fast the built-in ``shapes`` data set renders: its default size (the one a study
of it loads) timed after one small warm-up render, the median of ``--runs``.

Target: under 3 s (it renders in ~0.2 s on one idle core of a laptop); a render this slow
would make every study of ``shapes`` slow to start. A wall-clock figure, so it lives here
and not in the test suite, where other work on the machine would decide it.

    python benchmarks/data_speed.py [--runs N] [--json FILE]

Exit status 1 when the target fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from dse.nets import load_data

TARGET_S = 3.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    load_data("shapes", n=100)  # warm-up: imports and the first render's set-up
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        load_data("shapes")
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    ok = median < TARGET_S
    print(f"shapes (default size): {median:.3f} s median of {args.runs} (target < {TARGET_S} s)")
    print("PASS" if ok else "FAIL")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"median_s": median, "runs_s": times, "target_s": TARGET_S, "ok": ok}, f)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
