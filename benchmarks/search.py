"""How well and how fast the joint search works, against the plain way and bare Optuna.

On a spec (default: studies/quickstart.toml), in one run:

1. cold: the study's sampler and storage, ``--trials`` trials, with an empty training
   cache, so the wall time includes every training; every training is counted (each
   call of the training loop) and must equal the number of distinct training keys;
2. warm: the same number of trials again into a fresh storage with the networks trained
   (median of ``--repeats``): our trials per second, against
3. bare Optuna: the same sampler and storage kind, the same parameters suggested, a
   trivial objective (median of ``--repeats``, interleaved with 2); target ratio >= 0.8;
4. the exhaustive grid of the space: the sampler's hypervolume as a fraction of the grid
   front's (target >= 0.98), on the grid's ruler, and the baselines table: each baseline's
   exhaustive front against the cold run's trials (the joint row), which must beat every
   baseline's hypervolume;
5. naive: an Optuna loop (same sampler) that trains every trial's network from scratch,
   with only its exits, given the cold run's wall time; the hypervolume it reaches and
   the ratio of the times both need to reach 90% of the grid front's hypervolume;
6. on ``--cut-spec`` (resnet-s at 32x32, Raspberry Pi 4 -> A100 over LTE): the spec's
   study is run (its ``n_trials``); at matched validation accuracy, the best mean latency
   its trials found against the best Neurosurgeon split (target: >= 1.5x lower, and the
   chosen trial's test accuracy within 1 point of the dense network's), beside the best of
   the whole joint space (the grid). Points are selected on the validation split; their
   test accuracy is printed beside them. Its networks are cached in the default cache.

Print the figures and one PASS/FAIL/SKIP line per target (:func:`verdict`); exit 0 when
every target holds, 1 when one fails, 3 when one was not measured (``--skip-cut``).
``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from verdict import Check, conclude, judge

import dse.nets.training
from dse.nets.cache import Cache
from dse.search.baselines import compare, grid_hypervolume, restrict, run_grid, verdicts
from dse.search.explorer import Explorer
from dse.search.frames import record_of, trials_frame
from dse.search.pareto import Ruler, hypervolume
from dse.search.spec import StudySpec, load_spec
from dse.search.storage import storage_for
from dse.search.study import make_sampler, objective_for

#: Targets: warm trials/s against bare Optuna's, the sampler's share of the grid front's
#: hypervolume, and the joint search's latency gain over the best Neurosurgeon split.
MIN_RATIO_VS_BARE = 0.8
MIN_HV_FRACTION = 0.98
MIN_CUT_GAIN = 1.5

REPO = Path(__file__).resolve().parent.parent


def _study(spec: StudySpec, explorer: Explorer, storage_name: str) -> optuna.Study:
    return optuna.create_study(
        study_name=storage_name,
        storage=storage_for(storage_name, spec.storage),
        directions=spec.directions,
        sampler=make_sampler(spec, explorer.space),
    )


def run_timed(
    spec: StudySpec, explorer: Explorer, n: int, name: str, objective=None
) -> tuple[optuna.Study, list[float], float]:
    """Run ``n`` trials; return the study, each trial's finish time (s from start), wall."""
    study = _study(spec, explorer, name)
    start = time.perf_counter()
    stamps: list[float] = []
    study.optimize(
        objective or objective_for(explorer),
        n_trials=n,
        callbacks=[lambda s, t: stamps.append(time.perf_counter() - start)],
    )
    return study, stamps, time.perf_counter() - start


def bare(spec: StudySpec, explorer: Explorer, n: int, name: str) -> float:
    """Trials per second of bare Optuna: same sampler, storage, parameters; no work."""
    k = len(spec.objectives)

    def trivial(trial: optuna.Trial) -> list[float]:
        explorer.space.suggest(trial)
        return [0.0] * k

    _, _, wall = run_timed(spec, explorer, n, name, trivial)
    return n / wall


def hv_curve(
    study: optuna.Study, stamps: list[float], ruler: Ruler, names: list[str]
) -> list[tuple[float, float]]:
    """(time, hypervolume so far) after each complete trial, on ``ruler``."""
    points = []
    vals = []
    trials = study.get_trials(deepcopy=False)
    last = trials[-1].number if trials else -1
    for t, stamp in zip(trials, stamps, strict=False):
        d = record_of(t)
        if t.state != optuna.trial.TrialState.COMPLETE or d is None:
            continue
        if all(c <= 0 for c in d["constraints"]):
            vals.append([d["metrics"][m] for m in names])
        if vals and (len(points) < 50 or len(vals) % 10 == 0 or t.number == last):
            points.append((stamp, hypervolume(ruler.loss(np.array(vals)))))
    return points


def time_to(curve: list[tuple[float, float]], level: float) -> float | None:
    return next((t for t, hv in curve if hv >= level), None)


def naive_objective(explorer: Explorer):
    """The study's own objective, but every trial trains its network from scratch."""
    return objective_for(explorer, lambda cand: explorer.evaluate_alone(cand, cache=None)[0])


def verdict(figures: Mapping[str, Any]) -> list[Check]:
    """The targets, judged on the figures ``main`` gathers (the ``--json`` document):
    every distinct training key trained once in the cold run; warm trials/s at least
    0.8x bare Optuna's; the sampler at least 98% of the grid front's hypervolume; the
    joint search's trials above every baseline's exhaustive front; on the cut spec, the
    best mean latency at matched validation accuracy at least 1.5x lower than the best
    Neurosurgeon split with its test accuracy within 1 point of dense. A part that was
    not run is a SKIP."""
    checks = [
        judge(
            figures.get("trained_once"),
            f"cold run: {figures.get('trainings')} training(s) for "
            f"{figures.get('training_keys')} distinct training key(s), each trained once",
        )
    ]
    ratio = figures.get("ratio_vs_bare")
    checks.append(
        judge(
            None if ratio is None else ratio >= MIN_RATIO_VS_BARE,
            f"warm trials/s over bare Optuna's: median paired ratio "
            f"{'-' if ratio is None else f'{ratio:.2f}'} (target >= {MIN_RATIO_VS_BARE})",
        )
    )
    frac = figures.get("hv_fraction_of_grid")
    checks.append(
        judge(
            None if frac is None else frac >= MIN_HV_FRACTION,
            f"the sampler reaches {'-' if frac is None else f'{100 * frac:.1f}%'} of the grid "
            f"front's hypervolume (target >= {100 * MIN_HV_FRACTION:.0f}%)",
        )
    )
    hv = figures.get("joint_search_hv")
    checks.append(
        judge(
            figures.get("joint_beats_baselines"),
            f"the joint search's trials (hypervolume {'-' if hv is None else f'{hv:.4f}'}) "
            "beat every baseline's exhaustive front",
        )
    )
    cut_ratio = figures.get("latency_ratio_vs_neurosurgeon")
    search = figures.get("cut_search") or {}
    if cut_ratio is None:
        checks.append(
            judge(
                None,
                f"joint search >= {MIN_CUT_GAIN}x lower latency than Neurosurgeon at matched "
                "accuracy on the cut spec",
                why_skipped="--skip-cut: not run",
            )
        )
    else:
        test_ok = search["test_accuracy"] >= search["dense_test_accuracy"] - 0.01
        checks.append(
            judge(
                cut_ratio >= MIN_CUT_GAIN and test_ok,
                f"{figures.get('cut_spec')}: joint search's mean latency at matched accuracy "
                f"{cut_ratio:.2f}x lower than the best Neurosurgeon split (target >= "
                f"{MIN_CUT_GAIN}x), test accuracy {100 * search['test_accuracy']:.1f}% "
                f"{'within' if test_ok else 'NOT within'} 1 point of dense's "
                f"{100 * search['dense_test_accuracy']:.1f}%",
            )
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "studies/quickstart.toml"))
    ap.add_argument("--cut-spec", default=str(REPO / "studies/resnet-shapes-lte.toml"))
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-cut", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.json:
        args.json = str(Path(args.json).resolve())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.spec)
    cut_spec = None if args.skip_cut else load_spec(args.cut_spec)
    default_cache = Cache(REPO / ".dse-cache")
    work = Path(tempfile.mkdtemp(prefix="dse-bench-"))
    os.chdir(work)  # storages go to work/studies
    names = list(spec.objectives)
    out: dict = {
        "spec": spec.name,
        "trials": args.trials,
        "sampler": spec.sampler,
        "storage": spec.storage,
    }

    # 1. cold run, counting every run of the training loop (not distinct keys)
    trained: list[str] = []
    train_loop = dse.nets.training._train

    def counted(nspec, **kw):  # type: ignore[no-untyped-def]
        trained.append(nspec.key)
        return train_loop(nspec, **kw)

    dse.nets.training._train = counted
    explorer = Explorer(spec, cache=Cache(work / "cache"), progress=False)
    study, stamps, wall = run_timed(spec, explorer, args.trials, "cold")
    dse.nets.training._train = train_loop
    keys = explorer.training_keys()
    once = len(trained) == len(keys) and set(trained) == keys
    out.update(
        wall_s=wall,
        trainings=len(trained),
        training_keys=len(keys),
        training_s=sum(explorer.trained_now.values()),
        trained_once=once,
    )
    print(
        f"cold run: {args.trials} trials in {wall:.1f} s, {len(trained)} "
        f"trainings ({out['training_s']:.1f} s) for {len(keys)} distinct training keys"
    )

    # 2 + 3. warm trials/s against bare Optuna, interleaved
    ours, theirs = [], []
    for r in range(args.repeats):
        _, _, w = run_timed(spec, explorer, args.trials, f"warm{r}")
        ours.append(args.trials / w)
        theirs.append(bare(spec, explorer, args.trials, f"bare{r}"))
    tps, bare_tps = statistics.median(ours), statistics.median(theirs)
    # each of our runs is paired with the bare run right after it (same machine state)
    ratio = statistics.median(o / b for o, b in zip(ours, theirs, strict=True))
    out.update(
        trials_per_s=tps,
        bare_optuna_trials_per_s=bare_tps,
        trials_per_s_runs=ours,
        bare_runs=theirs,
        ratio_vs_bare=ratio,
    )
    print(
        f"warm: {tps:.0f} trials/s (runs {', '.join(f'{x:.0f}' for x in ours)}); bare "
        f"Optuna {bare_tps:.0f} trials/s (runs {', '.join(f'{x:.0f}' for x in theirs)}); "
        f"median paired ratio {ratio:.2f}"
    )

    # 4. grid and baselines
    grid = run_grid(explorer)
    ghv = grid_hypervolume(grid)
    curve = hv_curve(study, stamps, grid.ruler, names)
    frac = curve[-1][1] / ghv if curve else 0.0
    out.update(
        grid_candidates=len(grid.frame), grid_s=grid.seconds, grid_hv=ghv, hv_fraction_of_grid=frac
    )
    print(
        f"grid: {len(grid.frame)} candidates in {grid.seconds:.1f} s; sampler reaches "
        f"{100 * frac:.1f}% of the grid front's hypervolume"
    )
    table = compare(grid, spec, trials_frame(study))
    print(
        table[
            [
                "candidates",
                "hv",
                "matched",
                "latency_s",
                "test_accuracy",
                "bytes",
                "edge_energy_j",
                "latency_s_ratio",
            ]
        ].to_string(float_format=lambda v: f"{v:.4g}")
    )
    for line in verdicts(table):
        print(f"  {line}")
    # the joint row is the cold run's trials; every baseline is its own exhaustive front
    searched = float(table.loc["joint", "hv"])
    beats = all(searched > table.loc[b, "hv"] for b in table.index if b != "joint")
    out["joint_search_hv"] = searched
    out["joint_beats_baselines"] = beats
    print(f"joint search: its trials' hypervolume {searched:.4g}; every baseline's beaten: {beats}")
    out["baselines"] = {
        b: {
            "hv": float(r.hv),
            "latency_s": float(r.latency_s),
            "test_accuracy": float(r.test_accuracy),
            "bytes": float(r.bytes),
            "edge_energy_j": float(r.edge_energy_j),
        }
        for b, r in table.iterrows()
    }
    out["reference_accuracy"] = table.attrs["reference_accuracy"]

    # 5. naive
    level = 0.9 * ghv
    ours_t = time_to(curve, level)
    if not args.skip_naive:
        nstudy = _study(spec, explorer, "naive")
        start = time.perf_counter()
        nstamps: list[float] = []
        nstudy.optimize(
            naive_objective(explorer),
            timeout=wall,
            callbacks=[lambda s, t: nstamps.append(time.perf_counter() - start)],
        )
        ncurve = hv_curve(nstudy, nstamps, grid.ruler, names)
        nfrac = ncurve[-1][1] / ghv if ncurve else 0.0
        naive_t = time_to(ncurve, level)
        n_done = len(nstudy.trials)
        out["naive"] = {
            "trials": n_done,
            "hv_fraction_of_grid": nfrac,
            "wall_s": time.perf_counter() - start,
            "time_to_90pct_s": naive_t,
        }
        if ours_t is not None and naive_t is not None:
            speed = naive_t / ours_t
            speed_text = f"{speed:.1f}x"
        elif ours_t is not None:
            speed = wall / ours_t  # lower bound: naive never got there within the budget
            speed_text = f"> {speed:.1f}x (naive never reached 90% in {wall:.0f} s)"
        else:
            speed, speed_text = None, "n/a (neither reached 90%)"
        out["speedup_to_90pct_hv"] = speed
        out["time_to_90pct_s"] = ours_t
        print(
            f"naive (train every trial): {n_done} trials in {wall:.0f} s, "
            f"{100 * nfrac:.1f}% of the grid hypervolume; ours reached 90% after "
            f"{ours_t if ours_t is None else round(ours_t, 1)} s; speed-up to 90%: "
            f"{speed_text}"
        )

    # 6. where the cut matters
    if cut_spec is not None:
        cx = Explorer(cut_spec, cache=default_cache, progress=True)
        cgrid = run_grid(cx)
        cstudy, _, _ = run_timed(cut_spec, cx, cut_spec.n_trials, "cut")
        found = trials_frame(cstudy)
        ctable = compare(cgrid, cut_spec, found)
        reference = ctable.attrs["reference_accuracy"]
        dense = restrict(cgrid.frame, "server-only")
        dense_test = float(dense.test_accuracy.iloc[0])
        joint, neuro = ctable.loc["joint"], ctable.loc["neurosurgeon"]
        searched_s = float(joint.latency_s)
        ratio = float(neuro.latency_s) / searched_s
        test_ok = bool(joint.test_accuracy >= dense_test - 0.01)
        space = cgrid.feasible()
        space = space[(space.source == "space") & (space.accuracy >= reference - 0.01)]
        grid_best = space.loc[space.latency_mean.idxmin()] if len(space) else None
        out["cut_spec"] = cut_spec.name
        out["cut_baselines"] = {
            b: {
                "hv": float(r.hv),
                "latency_s": float(r.latency_s),
                "test_accuracy": float(r.test_accuracy),
                "bytes": float(r.bytes),
            }
            for b, r in ctable.iterrows()
        }
        out["latency_ratio_vs_neurosurgeon"] = ratio
        out["cut_search"] = {
            "trials": len(found),
            "matched": int(joint.matched),
            "latency_s": searched_s,
            "test_accuracy": float(joint.test_accuracy),
            "dense_test_accuracy": dense_test,
        }
        print(
            f"\n{cut_spec.name}: reference (dense server-only) accuracy "
            f"{100 * reference:.1f}% validation, {100 * dense_test:.1f}% test"
        )
        print(
            ctable[
                [
                    "candidates",
                    "hv",
                    "matched",
                    "latency_s",
                    "test_accuracy",
                    "bytes",
                    "latency_s_ratio",
                ]
            ].to_string(float_format=lambda v: f"{v:.4g}")
        )
        for line in verdicts(ctable):
            print(f"  {line}")
        grid_text = (
            f"{grid_best.latency_mean:.4g} s at {100 * grid_best.test_accuracy:.1f}% test"
            if grid_best is not None
            else "none"
        )
        print(
            f"joint search ({len(found)} trials, {int(joint.matched)} at matched validation "
            f"accuracy): best mean latency {searched_s:.4g} s at "
            f"{100 * joint.test_accuracy:.1f}% test accuracy (the grid's best: {grid_text}); "
            f"neurosurgeon's best {float(neuro.latency_s):.4g} s at "
            f"{100 * neuro.test_accuracy:.1f}% test"
        )
        print(
            f"joint search's mean latency at matched accuracy is {ratio:.2f}x lower than "
            f"the best neurosurgeon split, its test accuracy "
            f"{'within' if test_ok else 'NOT within'} 1 point of dense"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
        print(f"wrote {args.json}")
    print()
    return conclude(verdict(out))


if __name__ == "__main__":
    sys.exit(main())
