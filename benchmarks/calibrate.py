"""How well a device profile fitted by ``dse calibrate`` predicts this machine.

Runs the calibration ``--runs`` times (every zoo network, ``--repeats`` timed passes,
``--threads`` threads) and prints, per network, the median over runs of the error of the
predicted edge-only latency against the measured forward pass: with the base profile
(estimates), with the profile fitted on every network, and fitted on the other networks
only (the error on an unseen network). The figures say how far the per-kind roofline
carries; the one target (:func:`verdict`) is that calibrating pays where it is meant to,
on networks the fit did not see: their median |error| below the base profile's (exit 1
when it is not).

    python benchmarks/calibrate.py [--base raspberry-pi-4] [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from verdict import Check, conclude, judge

from dse.costmodel.calibrate import calibrate, machine
from dse.costmodel.devices import load_device
from dse.nets.models import default_input, load_model

ZOO = ("mlp", "vgg-s", "resnet-s", "mobilenet-s")


def verdict(summary: dict[str, float]) -> list[Check]:
    """Calibration pays on unseen networks: the median over networks of |error| fitted on
    the other networks (``unseen_error``) below that of the base profile (``base_error``)."""
    unseen, base = summary["unseen_error"], summary["base_error"]
    return [
        judge(
            unseen < base,
            f"on networks the fit did not see, median |error| {100 * unseen:.0f}% against "
            f"the base profile's {100 * base:.0f}% (target: lower)",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="raspberry-pi-4")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    base = load_device(args.base)
    models = [(n, load_model(n), torch.zeros((1, *default_input(n)))) for n in ZOO]
    tables = [
        calibrate(models, base, name="bench", repeats=args.repeats, threads=args.threads).table
        for _ in range(args.runs)
    ]
    print(
        f"{machine()}; {args.threads} thread(s); base {base.name}; "
        f"median of {args.runs} calibrations"
    )
    rows = []
    for i, name in enumerate(ZOO):
        row = {"model": name}
        for col in ("measured_s", "base_error", "fitted_error", "unseen_error"):
            row[col] = statistics.median(float(t[col].iloc[i]) for t in tables)
        rows.append(row)
        print(
            f"{name:12s} measured {row['measured_s'] * 1e3:7.3f} ms   error: base "
            f"{100 * row['base_error']:+5.0f}%  fitted {100 * row['fitted_error']:+5.0f}%  "
            f"unseen {100 * row['unseen_error']:+5.0f}%"
        )
    summary = {
        col: statistics.median(abs(r[col]) for r in rows)
        for col in ("base_error", "fitted_error", "unseen_error")
    }
    print(
        f"median |error| over networks: base {100 * summary['base_error']:.0f}%, "
        f"fitted {100 * summary['fitted_error']:.0f}%, "
        f"unseen {100 * summary['unseen_error']:.0f}%"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "threads": args.threads,
                    "base": base.name,
                    "runs": args.runs,
                    "networks": rows,
                    "median_abs_error": summary,
                },
                indent=2,
            )
        )
        print(f"wrote {args.json}")
    return conclude(verdict(summary))


if __name__ == "__main__":
    sys.exit(main())
