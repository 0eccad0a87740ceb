"""Trials per second with 1, 2 and 4 workers on one study, and where their time goes.

On a spec (default: studies/quickstart.toml) whose networks are trained first (scoring
only: every trial reads the cache), for each storage (the journal file; PostgreSQL, a
throwaway server on loopback unless ``--postgres URL``) and each number of workers W:
W processes join one fresh study (``run_study``, as ``dse study worker`` does) and run
``--trials`` trials per worker between them; they start together (each loads the spec
and its networks first, then waits for a common start), and the time runs from the start
to the last worker's end. Each worker times its sampler (``study.ask``), its storage
writes (``tell`` and the trial's attributes) and its scoring (the objective). The median
of ``--repeats`` runs is quoted, with the speed-up over one worker measured in the same
run.

The scaling targets (PostgreSQL: 2 workers >= 1.5x one, 4 workers >= 2.5x one) need as
many free cores as workers: where the machine has fewer, 4 workers also run a
scoring-free objective (the same sampler and storage, one fixed result), which shows
what bounds them: the cores (scoring), or the sampler and storage.

The cold study (``--part cold``) is the figure users feel: the same spec on PostgreSQL
with a fresh cache, trainings included, run by 1 and by 2 workers (one torch thread
each), its wall time from the common start to the last worker's end, and how the
trainings spread over the workers (read from the study: each training is recorded with
its worker). A worker that would wait on another's claim trains another untrained key
of the space instead, so the trainings spread evenly and none runs twice. Target: 2
workers >= 1.7x one.

Print the figures and one PASS/FAIL/SKIP line per target (:func:`verdict`): exit 0 when
all hold, 1 when one fails, 3 when one could not be measured (no PostgreSQL here, the
worker counts or the part left out). ``--json FILE`` writes ``{"storage": {KIND: {"1":
trials_per_s, "2": ..., "4": ...}}, "cold": {"1": {"wall_s": ..., "trainings": {worker:
n}}, ...}, ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from verdict import Check, conclude, judge

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the throwaway PostgreSQL server of the tests

#: Scaling targets on PostgreSQL: workers -> least speed-up over one worker.
TARGETS: tuple[tuple[str, float], ...] = (("2", 1.5), ("4", 2.5))


def _worker(
    spec_path: str,
    storage: str,
    name: str,
    total: int,
    index: int,
    scoring: bool,
    cache: str,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One worker: load, wait for the start, run the study, report its timings."""
    os.environ["DSE_CACHE"] = cache
    import optuna

    from dse.costmodel import pinned_threads
    from dse.search.explorer import Explorer
    from dse.search.spec import load_spec
    from dse.search.study import run_study

    spec = dataclasses.replace(load_spec(spec_path), name=name)
    explorer = Explorer(spec, progress=False)
    explorer.train_free()  # every network from the cache, before the clock starts
    for method, density in explorer.space.networks():
        explorer.scorer(method, density)  # and its scorer built
    timers = {"sampler": 0.0, "storage": 0.0, "scoring": 0.0, "lock": 0.0, "liveness": 0.0}
    fixed: dict[str, Any] = {}
    score = explorer.evaluate

    def evaluate(cand: Any) -> Any:
        t = time.perf_counter()
        if scoring:
            m = score(cand)
        else:  # the sampler and the storage alone: one fixed result
            m = fixed.get("m") or fixed.setdefault("m", score(cand))
        timers["scoring"] += time.perf_counter() - t
        return m

    explorer.evaluate = evaluate  # type: ignore[method-assign]
    ask, tell = optuna.Study.ask, optuna.Study.tell
    set_attr = optuna.Trial.set_user_attr

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[key] += time.perf_counter() - t

        return wrapper

    import dse.search.life as life_mod
    from dse.search.space import Space

    lock = life_mod.study_lock

    @contextmanager
    def timed_lock(*a: Any, **k: Any) -> Iterator[None]:
        t = time.perf_counter()
        with lock(*a, **k):
            timers["lock"] += time.perf_counter() - t
            yield

    life_mod.study_lock = timed_lock  # type: ignore[assignment]
    life = life_mod.WorkerLife
    life.judge = timed("liveness", life.judge)  # type: ignore[method-assign]
    life._beat_trial = timed("liveness", life._beat_trial)  # type: ignore[method-assign]
    Space.suggest = timed("sampler", Space.suggest)  # type: ignore[method-assign]
    optuna.Study.ask = timed("sampler", ask)  # type: ignore[method-assign]
    optuna.Study.tell = timed("storage", tell)  # type: ignore[method-assign]
    optuna.Trial.set_user_attr = timed("storage", set_attr)  # type: ignore[method-assign]
    ready.put(index)
    go.wait()
    start = time.perf_counter()
    with pinned_threads(1):
        study = run_study(
            spec, n_trials=total, storage=storage, progress=False, explorer=explorer, worker=index
        )
    wall = time.perf_counter() - start
    from dse.search.workers import parse_worker

    mine = sum(
        1
        for t in study.get_trials(deepcopy=False)
        if parse_worker(str(t.system_attrs.get("dse:worker", "")))[1] == os.getpid()
    )
    out.put({"index": index, "wall": wall, "trials": mine, **timers})


#: Where a worker's time goes: the sampler (ask and suggest), the storage's writes (tell
#: and the trial's record), scoring, waiting for the study's lock, and liveness (judging
#: stale trials, beating a trial taken); "other" is the rest (reading trials, heartbeats).
PARTS = ("sampler", "storage", "scoring", "lock", "liveness")


def _run_together(
    procs: list[Any], ready: Any, go: Any, out: Any, *, timeout: float
) -> tuple[list[dict[str, Any]], float]:
    """Start the worker processes, wait until each is ready, let them go at once: what
    each reported and the wall time from the start to the last one's report."""
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=timeout) for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a worker failed (exit {p.exitcode})")
    return results, wall


def run_once(
    spec_path: str,
    storage: str,
    workers: int,
    per_worker: int,
    *,
    scoring: bool,
    cache: str,
    tag: str,
) -> dict[str, Any]:
    """One study with ``workers`` processes: trials/s and the time split."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    name = f"bench-workers-{tag}-{workers}-{int(time.time() * 1000) % 10**9}"
    total = per_worker * workers
    procs = [
        ctx.Process(
            target=_worker,
            args=(spec_path, storage, name, total, i, scoring, cache, ready, go, out),
        )
        for i in range(workers)
    ]
    results, wall = _run_together(procs, ready, go, out, timeout=1800)
    busy = sum(r["wall"] for r in results)
    split = {k: sum(r[k] for r in results) / busy for k in PARTS}
    split["other"] = max(0.0, 1 - sum(split.values()))
    return {
        "trials_per_s": total / wall,
        "wall_s": wall,
        "trials": total,
        "split": split,
        "per_worker": sorted(r["trials"] for r in results),
    }


def verdict(report: Mapping[str, Any]) -> list[Check]:
    """The scaling targets. Scoring, judged on ``report["storage"]["postgres"]`` (workers
    -> median trials/s): W workers at least the target's multiple of one worker's rate.
    The cold study, judged on ``report["cold"]["speedup"]``: 2 workers at least
    :data:`COLD_TARGET` times as fast as one. Without a PostgreSQL run, without the counts
    a target compares, or with its part left out, that target is a SKIP: the journal's
    figures say nothing about it."""
    checks = []
    if "storage" in report:  # the scoring part ran
        rates = report["storage"].get("postgres")
        for w, target in TARGETS:
            text = f"{w} workers on PostgreSQL >= {target}x one worker's trials/s"
            if not rates:
                checks.append(judge(None, text, why_skipped="no PostgreSQL server here"))
            elif w not in rates or "1" not in rates:
                checks.append(judge(None, text, why_skipped=f"--workers left out 1 or {w}"))
            else:
                x = rates[w] / rates["1"]
                checks.append(
                    judge(
                        x >= target, f"{w} workers on PostgreSQL x{x:.2f} one (target >= {target})"
                    )
                )
    if report.get("part", "all") in ("all", "cold"):
        text = f"a cold study on PostgreSQL, 2 workers >= {COLD_TARGET}x one"
        cold = report.get("cold")
        if not cold:
            checks.append(judge(None, text, why_skipped="no PostgreSQL server here"))
        else:
            x = cold["speedup"]
            one, two = cold["1"]["median_wall_s"], cold["2"]["median_wall_s"]
            checks.append(
                judge(
                    x >= COLD_TARGET,
                    f"a cold study on PostgreSQL, 2 workers x{x:.2f} one ({one:.1f} s -> "
                    f"{two:.1f} s; target >= {COLD_TARGET})",
                )
            )
    return checks


# --------------------------------------------------------------------------------------
# the cold study: trainings included
# --------------------------------------------------------------------------------------


def _cold_worker(
    spec_path: str,
    storage: str,
    name: str,
    n_trials: int,
    index: int,
    cache: str,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One worker of the cold study: load the spec (nothing trained), wait for the start,
    run the study with one torch thread, report its wall time."""
    os.environ["DSE_CACHE"] = cache
    from dse.costmodel import pinned_threads
    from dse.search.explorer import Explorer
    from dse.search.spec import load_spec
    from dse.search.study import run_study

    spec = dataclasses.replace(load_spec(spec_path), name=name)
    explorer = Explorer(spec, progress=False)  # the data and the graph; no training
    ready.put(index)
    go.wait()
    start, cpu = time.perf_counter(), time.process_time()
    with pinned_threads(1):
        run_study(
            spec,
            n_trials=n_trials,
            storage=storage,
            progress=False,
            explorer=explorer,
            worker=index,
        )
    out.put({"index": index, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu})


def run_cold(spec_path: str, storage: str, workers: int, n_trials: int) -> dict[str, Any]:
    """One cold study (a fresh cache) with ``workers`` processes: its wall time and the
    trainings each worker ran (from the study's records)."""
    import optuna

    from dse.search.explorer import TRAINED_PREFIX
    from dse.search.storage import storage_for

    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    name = f"bench-cold-{workers}-{int(time.time() * 1000) % 10**9}"
    with tempfile.TemporaryDirectory(prefix="dse-cold-cache-") as cache:
        procs = [
            ctx.Process(
                target=_cold_worker,
                args=(spec_path, storage, name, n_trials, i, cache, ready, go, out),
            )
            for i in range(workers)
        ]
        results, wall = _run_together(procs, ready, go, out, timeout=3600)
    study = optuna.load_study(study_name=name, storage=storage_for(name, storage))
    trained = [v for k, v in study.user_attrs.items() if k.startswith(TRAINED_PREFIX)]
    keys = [k[len(TRAINED_PREFIX) :].split(":", 1)[0] for k in study.user_attrs]
    per_worker: dict[str, dict[str, float]] = {}
    for v in trained:
        w = per_worker.setdefault(str(v.get("worker")), {"trainings": 0, "seconds": 0.0})
        w["trainings"] += 1
        w["seconds"] += float(v["seconds"])
    complete = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    return {
        "wall_s": wall,
        "worker_wall_s": sorted(r["wall"] for r in results),
        "worker_cpu_s": sorted(r["cpu"] for r in results),
        # cores the workers had on average: under the count of workers, the machine's
        # other load (not dse) bounded them
        "cores_used": sum(r["cpu"] for r in results) / wall,
        "trials": complete,
        "trainings": len(trained),
        "trained_twice": len(keys) - len(set(keys)),
        "per_worker": per_worker,
    }


def cold_section(args: argparse.Namespace, url: str, report: dict[str, Any]) -> None:
    """The cold study with 1 and 2 workers, ``--cold-repeats`` times each (interleaved),
    the median wall time quoted."""
    walls: dict[str, list[float]] = {"1": [], "2": []}
    runs: dict[str, Any] = {}
    for rep in range(args.cold_repeats):
        for w in (1, 2):
            r = run_cold(args.spec, url, w, args.cold_trials)
            walls[str(w)].append(r["wall_s"])
            runs[str(w)] = r
            spread = ", ".join(
                f"{v['trainings']} ({v['seconds']:.1f} s)" for v in r["per_worker"].values()
            )
            print(
                f"  cold, {w} worker(s), run {rep + 1}: {r['wall_s']:.1f} s for "
                f"{r['trials']} trials and {r['trainings']} trainings "
                f"(per worker: {spread}; trained twice: {r['trained_twice']}); "
                f"the workers had {r['cores_used']:.2f} core(s) of {os.cpu_count()}"
            )
    med = {w: statistics.median(v) for w, v in walls.items()}
    x = med["1"] / med["2"]
    report["cold"] = {
        w: {**runs[w], "median_wall_s": med[w], "walls": walls[w]} for w in ("1", "2")
    }
    report["cold"]["speedup"] = x
    print(f"cold study: 2 workers x{x:.2f} one ({med['1']:.1f} s -> {med['2']:.1f} s)")
    if x < COLD_TARGET and runs["2"]["cores_used"] < 1.5:
        print(
            f"  (2 workers had {runs['2']['cores_used']:.2f} core(s) between them: the "
            "machine's other load, not the study, bounded them; rerun on an idle machine)"
        )


#: The cold study's target: 2 workers at least this many times as fast as one.
COLD_TARGET = 1.7


# --------------------------------------------------------------------------------------
# scoring only
# --------------------------------------------------------------------------------------


def scoring_section(args: argparse.Namespace, url: str | None, report: dict[str, Any]) -> None:
    """Trials per second with warm networks, per storage and number of workers."""
    counts = [int(w) for w in args.workers.split(",")]
    cache = os.environ.get("DSE_CACHE", str(REPO / ".dse-cache"))
    os.environ["DSE_CACHE"] = cache
    from dse.search.explorer import Explorer
    from dse.search.spec import load_spec

    t = time.perf_counter()
    Explorer(load_spec(args.spec), progress=True).train_free()
    print(
        f"networks ready in {time.perf_counter() - t:.1f} s (cache {cache}); "
        f"{os.cpu_count()} cores here"
    )
    report.update(
        storage={}, split={}, scoring_free={}, trials_per_worker=args.trials, repeats=args.repeats
    )
    kinds = {"journal": "journal", **({"postgres": url} if url else {})}
    for kind, storage in kinds.items():
        rates: dict[str, list[float]] = {str(w): [] for w in counts}
        splits: dict[str, Any] = {}
        for rep in range(args.repeats):
            for w in counts:  # interleaved: the machine's noise hits every count alike
                r = run_once(
                    args.spec, storage, w, args.trials, scoring=True, cache=cache, tag=kind
                )
                rates[str(w)].append(r["trials_per_s"])
                splits[str(w)] = r["split"]
                print(
                    f"  {kind:8s} {w} worker(s), run {rep + 1}: "
                    f"{r['trials_per_s']:7.1f} trials/s  ({r['trials']} trials in "
                    f"{r['wall_s']:.1f} s; per worker {r['per_worker']})"
                )
        med = {w: statistics.median(v) for w, v in rates.items()}
        report["storage"][kind] = med
        report["split"][kind] = splits
        print(f"{kind}:")
        for w in med:
            sp = splits[w]
            parts = ", ".join(f"{k} {sp[k]:.0%}" for k in (*PARTS, "other"))
            speedup = f"x{med[w] / med['1']:.2f}" if "1" in med else ""
            print(f"  {w} worker(s): {med[w]:7.1f} trials/s  {speedup:>5}   time: {parts}")
        if max(counts) > (os.cpu_count() or 1):
            w = max(counts)
            free = [
                run_once(
                    args.spec,
                    storage,
                    n,
                    args.trials,
                    scoring=False,
                    cache=cache,
                    tag=f"{kind}-free",
                )["trials_per_s"]
                for n in (1, w)
            ]
            report["scoring_free"][kind] = {"1": free[0], str(w): free[1]}
            print(
                f"  scoring-free objective: 1 worker {free[0]:.1f} trials/s, {w} "
                f"workers {free[1]:.1f} trials/s (x{free[1] / free[0]:.2f}): with "
                f"{os.cpu_count()} cores, {w} scoring workers share them"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(REPO / "studies" / "quickstart.toml"))
    ap.add_argument(
        "--part",
        choices=("all", "scoring", "cold"),
        default="all",
        help="scoring only (warm networks), the cold study (trainings included), or both",
    )
    ap.add_argument("--trials", type=int, default=60, help="trials per worker and run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--cold-trials", type=int, default=100, help="trials of the cold study")
    ap.add_argument("--cold-repeats", type=int, default=1)
    ap.add_argument("--postgres", default=None, help="a server URL (default: start one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    spec = str(Path(args.spec).resolve())
    args.spec = spec
    report: dict[str, Any] = {"cores": os.cpu_count(), "part": args.part}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the journal studies land in tmp/studies
        url = args.postgres
        if url is None:
            from pg import new_database, server

            base = stack.enter_context(server())
            if base is None:
                print("SKIP: no PostgreSQL here: install Debian's postgresql or pass --postgres")
            else:
                url = new_database(base)
        if args.part in ("all", "scoring"):
            scoring_section(args, url, report)
        if args.part in ("all", "cold") and url is not None:
            cold_section(args, url, report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print()
    return conclude(verdict(report))


if __name__ == "__main__":
    raise SystemExit(main())
