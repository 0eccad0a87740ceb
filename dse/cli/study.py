"""``dse study``, ``dse storage``, ``dse verify``, ``dse compare``: run a search study (with
helper workers), serve its storage, score its exhaustive grid, retrain its chosen
configurations alone and compare it with the baselines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import write_json
from dse.errors import InputError


def add_parser(sub: Any) -> None:
    """Register ``study``, ``storage``, ``verify`` and ``compare``."""
    _add_study(sub)
    sg = sub.add_parser("storage", help="serve a study database to workers on many machines")
    sgs = sg.add_subparsers(dest="action", required=True)
    r = sgs.add_parser(
        "serve",
        help="Optuna's gRPC storage proxy in front of a database: "
        "workers then pass --storage grpc://HOST:PORT",
    )
    # the database itself, not a study's storage: a URL is required and the help differs
    r.add_argument(
        "--storage", required=True, help="the database, e.g. postgresql+psycopg://user@host/db"
    )
    r.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; the proxy has no "
        "authentication, so open it to other machines only on a network you trust)",
    )
    r.add_argument("--port", type=int, default=13000, help="port to listen on")
    r.set_defaults(func=cmd_storage_serve)

    v = sub.add_parser(
        "verify",
        help="retrain the answer and the next front points alone, compare",
        parents=[options.storage(), options.quiet()],
    )
    v.add_argument("name", help="the study's name")
    v.add_argument(
        "--top",
        type=int,
        default=3,
        help="distinct front networks (sparsity and exits) to retrain (default 3)",
    )
    v.set_defaults(func=cmd_verify, names_study=True)

    c = sub.add_parser(
        "compare",
        help="baselines as restricted spaces of the same search",
        parents=[
            options.storage(),
            options.json_out("write the comparison table as JSON here"),
            options.quiet(),
        ],
    )
    c.add_argument("spec", help="the study spec (.toml)")
    c.set_defaults(func=cmd_compare)


def _add_study(sub: Any) -> None:
    st = sub.add_parser("study", help="run, resume, inspect a search study")
    sts = st.add_subparsers(dest="action", required=True)
    for action, what, func, text in (
        ("run", "spec", cmd_study_run, "run a study spec (resumes if it exists)"),
        ("resume", "name", cmd_study_resume, "continue a stored study by name"),
        (
            "worker",
            "name",
            cmd_study_worker,
            "join a study in a shared storage (--storage URL) as one more worker, from any machine",
        ),
    ):
        r = sts.add_parser(action, help=text, parents=[options.storage(), options.quiet()])
        r.add_argument(
            what, help="the study spec (.toml)" if what == "spec" else "the study's name"
        )
        r.add_argument(
            "--n-trials",
            type=int,
            default=None,
            help="finished trials to reach, all workers together (default: the spec's n_trials)",
        )
        r.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes sharing the study (trainings run in parallel)",
        )
        r.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
        r.set_defaults(func=func, names_study=action == "resume")
    r = sts.add_parser(
        "status",
        help="trials per state, networks used, trainings run, hypervolume, the answer",
        parents=[
            options.storage(),
            options.json_out("write the status as JSON here"),
            options.quiet("no progress lines on stderr"),
        ],
    )
    r.add_argument("name", help="the study's name")
    r.set_defaults(func=cmd_study_status, names_study=True)
    r = sts.add_parser(
        "grid",
        help="score the whole discretised space: the reference front",
        parents=[options.storage(), options.quiet()],
    )
    r.add_argument("spec", help="the study spec (.toml)")
    r.add_argument(
        "--out",
        default=None,
        help="also write every candidate here as CSV, one row each, with front.csv's columns",
    )
    r.set_defaults(func=cmd_study_grid)


# --------------------------------------------------------------------------------------
# study run, resume, worker: one process, its helpers, a status
# --------------------------------------------------------------------------------------


def cmd_study_run(args: argparse.Namespace) -> int:
    """``dse study run SPEC``: run (or continue) the spec's study."""
    from dse.search import load_spec

    spec = load_spec(args.spec)
    rc = _run_study(args, spec, ["study", "run", args.spec])
    if rc == 0 and args.worker_index is None:
        print(
            f"next: dse recommend {spec.name}   |   dse front {spec.name}   |   "
            f"dse report {spec.name}"
        )
    return rc


def cmd_study_resume(args: argparse.Namespace) -> int:
    """``dse study resume NAME``: continue a stored study with its stored spec."""
    from dse.search import load_study

    _, spec = load_study(args.name, storage=args.storage)
    return _run_study(args, spec, ["study", "resume", args.name])


def cmd_study_worker(args: argparse.Namespace) -> int:
    """``dse study worker NAME --storage URL``: one more worker on a shared study."""
    from dse.search import load_study

    if args.storage is None:
        raise InputError(
            "--storage",
            "storage",
            "a worker joins a study in a shared storage",
            "pass the study's URL, e.g. --storage "
            "postgresql+psycopg://user@host/db or grpc://host:13000",
        )
    _, spec = load_study(args.name, storage=args.storage)
    return _run_study(args, spec, ["study", "worker", args.name])


def _with_helpers(
    args: argparse.Namespace,
    command: list[str],
    run: Callable[[int | None, Callable[[], None] | None], Any],
) -> tuple[Any, int]:
    """``run(worker_index, on_start)`` here, with ``args.workers - 1`` helper processes
    running ``dse COMMAND --quiet --worker-index I`` on the same study; they are started
    once this process holds the study, so none races its start-up. Returns run's result
    and 0, or a failed helper's exit code."""
    import subprocess

    from dse.search import die_with_parent

    if args.workers < 1:
        raise InputError(
            "--workers",
            "workers",
            f"must be >= 1, got {args.workers}",
            "pass the number of processes to run, e.g. the free cores",
        )
    helpers: list[subprocess.Popen[bytes]] = []

    def start_helpers() -> None:
        argv = [sys.executable, "-m", "dse.cli", *command, "--quiet"]
        preexec = die_with_parent()
        for flag, value in (("--n-trials", args.n_trials), ("--storage", args.storage)):
            if value is not None:
                argv += [flag, str(value)]
        for i in range(1, args.workers):
            helpers.append(
                subprocess.Popen(
                    [*argv, "--worker-index", str(i)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    preexec_fn=preexec,
                )
            )

    try:
        result = run(args.worker_index, start_helpers if args.workers > 1 else None)
    finally:
        codes = [p.wait() for p in helpers]
    failed = [c for c in codes if c != 0]
    if failed:
        print(
            f"dse: error: {len(failed)} of {len(codes)} helper worker(s) failed "
            f"(exit {failed[0]}); see their messages above",
            file=sys.stderr,
        )
        return result, failed[0]
    return result, 0


def _run_study(args: argparse.Namespace, spec: Any, command: list[str]) -> int:
    """Run (or continue) ``spec``'s study with ``args.workers`` processes; print its status
    and a warning if its reference network has not learned."""
    from dse.search import Explorer, run_study, status

    if args.n_trials is not None and args.n_trials < 0:
        raise InputError(
            "--n-trials",
            "n_trials",
            f"must be >= 0, got {args.n_trials}",
            "pass the number of finished trials to reach, e.g. --n-trials 100 "
            "(0: create the study and run nothing)",
        )
    if args.workers > 1 and (args.storage or spec.storage) == "memory":
        raise InputError(
            "--workers",
            "storage",
            "an in-memory study is private to one process",
            "use the journal (default) or sqlite storage",
        )
    explorer = Explorer(spec, progress=not args.quiet)
    explorer.train_config.torch_device()  # device = "cuda" without a GPU: refused before any trial
    explorer.check_cache()  # a cache it cannot write: refused before the storage is opened
    if args.worker_index is None:
        print(opened(spec, args.storage, explorer), flush=True)
    study, rc = _with_helpers(
        args,
        command,
        lambda index, on_start: run_study(
            spec,
            n_trials=args.n_trials,
            storage=args.storage,
            progress=not args.quiet,
            explorer=explorer,
            worker=index,
            on_start=on_start,
        ),
    )
    if rc != 0:
        return rc
    if args.worker_index is not None:
        return 0  # a helper: the first process judges the study and prints its answer
    info = status(study, spec, args.storage)
    for line in explorer.learning_warnings():
        print(f"dse: warning: {line}", file=sys.stderr)  # once, not once per helper
    complete = info["trials"].get("COMPLETE", 0)
    if complete == 0 and info["trials"].get("FAIL", 0):
        print_status(info)
        print(
            f"dse: error: every trial failed; the first: {info['first_failure']}", file=sys.stderr
        )
        return 1
    if complete and not info["feasible"] and spec.constraints:
        print_status(info)
        text = ", ".join(str(c) for c in spec.constraints)
        raise InputError(
            spec.path or spec.name,
            "constraints",
            f"none of the {complete} complete trials meets {text}",
            "loosen the constraints or widen the space; `dse front "
            f"{spec.name}` lists no point until one does",
        )
    _print_answer(study, spec, args.storage, explorer, quiet=args.quiet)
    return 0


def _print_answer(
    study: Any, spec: Any, storage: str | None, explorer: Any, *, quiet: bool
) -> None:
    """The study's status with its answer, as ``dse study status`` and ``dse recommend``
    give it (scoring the exhaustive grid first when the space is small enough)."""
    from dse.report import answer_lines
    from dse.search import recommend, status

    decision = recommend(study, spec, explorer, say=None if quiet else _stderr)
    print_status(status(study, spec, storage, decision=decision, exit_names=explorer.exit_names))
    for line in answer_lines(decision, explorer, spec):
        print(line)


def _stderr(msg: str) -> None:
    print(f"dse: {msg}", file=sys.stderr, flush=True)


def opened(spec: Any, storage: str | None, explorer: Any) -> str:
    """The first line ``dse study run`` prints: which storage and cache it opened, and
    whether the study is new or resumed. A spec whose study is stored beside it, in
    another folder than the one this run would open, is refused rather than started over
    (exit 2)."""
    from dse.search import storage_place, stored_elsewhere, stored_study

    where, shown = storage_place(spec, storage)
    elsewhere = stored_elsewhere(spec, storage)
    if elsewhere is not None:
        raise InputError(
            spec.path or spec.name,
            "storage",
            f"the study of this spec is stored in {elsewhere}, but run from here it would "
            f"start over in {shown}",
            f"run it from {elsewhere.parent.parent} (cd there), or pass --storage "
            + (str(elsewhere) if elsewhere.suffix == ".journal" else f"sqlite:///{elsewhere}"),
        )
    study = stored_study(spec, storage=storage or spec.storage) if where != "memory" else None
    cache = explorer.cache
    nets = [
        explorer.network_spec(m, d, cut=c)
        for (m, d) in explorer.space.networks()
        for c in explorer.network_cuts()
    ]
    cached = sum(cache.path(n.key).exists() for n in nets)
    if study is None:
        state = "a new study"
    else:
        from optuna.trial import TrialState

        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        state = f"resumed: {done} complete trial(s) already stored"
    return (
        f"study {spec.name}: storage {shown}; training cache {cache.root} ({cached} of "
        f"{len(nets)} network(s) cached); {state}"
    )


def print_status(info: dict[str, Any]) -> None:
    """A study's status in a few lines: trials by state, networks and trainings, codec
    outputs built, hypervolume, the complete trials left out as unreadable (times in
    seconds with one decimal, which scripts read) and, with the decision, the front's
    distinct points and the answer."""
    trials = ", ".join(f"{k.lower()} {v}" for k, v in info["trials"].items()) or "none"
    workers = f"; {info['workers']} worker(s) running" if info.get("workers") else ""
    used, run = info["networks_used"], info["trainings_run"]
    trainings = (
        f"{run} training(s) run by this study ({info['training_seconds']:.1f} s)"
        if run
        else "no training run by this study"
    )
    print(
        f"study {info['name']}: trials {trials}; {used} network(s) used by trials, "
        f"{trainings}{workers}"
    )
    if info.get("trained_twice"):
        per_worker = ", ".join(f"{w} {n}" for w, n in info["trainings_by_worker"].items())
        print(
            f"{info['trained_twice']} network(s) trained by more than one worker (each with a "
            f"cache of its own?); trainings per worker: {per_worker}"
        )
    coded = info.get("coded") or []
    if coded:
        passes = sum(v["evaluation_passes"] for v in coded)
        per_cut = sum(v["evaluation_passes"] / max(1, v["cuts"]) for v in coded) / len(coded)
        nets = len({v["network"] for v in coded})
        print(
            f"codec outputs built for {nets} network(s): {sum(v['payloads'] for v in coded)} "
            f"payloads coded, {passes:.1f} evaluation passes' worth of forward passes "
            f"(validation and test; {per_cut:.2f} per network and cut), "
            f"{sum(v['seconds'] for v in coded):.1f} s"
        )
    line = f"hypervolume {info['hypervolume']:.4f} (ruler from {info['ruler']})"
    if "hv_fraction_of_grid" in info:
        line += f", {100 * info['hv_fraction_of_grid']:.1f}% of the grid front's"
    print(line)
    if info.get("unreadable"):
        print(
            f"{info['unreadable']} complete trial(s) left out: their values are not finite "
            f"(first: {info['first_unreadable']})"
        )
    front = info.get("front")
    if front is not None:
        below = f"; {front['below_floor']} below the learned floor" if front["below_floor"] else ""
        print(
            f"front: {front['points']} distinct point(s), {front['configurations']} "
            f"configuration(s){below}"
        )
        rec = info.get("recommended")
        if rec is None:
            print(f"recommended: nothing ({info.get('reason')})")
        else:
            by = f"trial {rec['trial']}" if rec["source"] == "study" else f"{rec['source']}"
            print(f"recommended: {rec['label']} (found by {by})")


def cmd_study_status(args: argparse.Namespace) -> int:
    """``dse study status NAME``: the stored study's status and its answer."""
    from dse.search import Explorer, load_study, recommend, status

    study, spec = load_study(args.name, storage=args.storage)
    explorer = Explorer(spec, progress=not args.quiet)
    decision = recommend(study, spec, explorer, say=None if args.quiet else _stderr)
    info = status(study, spec, args.storage, decision=decision, exit_names=explorer.exit_names)
    if args.json:
        write_json(args.json, info)
    print_status(info)
    return 0


def cmd_study_grid(args: argparse.Namespace) -> int:
    """``dse study grid SPEC``: every candidate of the discretised space scored, the
    reference front the study's trials are measured against."""
    from dse.report import fmt
    from dse.search import (
        Explorer,
        check_grid_size,
        create_study,
        csv_text,
        ensure_grid,
        grid_paths,
        load_spec,
        rows_frame,
        study_hypervolume,
        task_floors,
    )

    spec = load_spec(args.spec)
    explorer = Explorer(spec, progress=not args.quiet)
    # a grid past the limit is refused before the study is created: nothing is stored
    check_grid_size(explorer.space.size(), where=spec.path or spec.name)
    study, _ = create_study(spec, storage=args.storage, explorer=explorer)  # checks first
    grid = ensure_grid(study, explorer, rescore=True)
    if args.out:
        from dse.nets import atomic_write_bytes

        rows = rows_frame(grid.frame, task_floors(spec, explorer))
        atomic_write_bytes(Path(args.out), csv_text(rows).encode())
        print(f"wrote {args.out}: {len(rows)} candidates, one row each")
    hv = grid.hypervolume
    print(
        f"grid of {spec.name}: {len(grid.frame)} candidates scored in "
        f"{fmt.seconds(grid.seconds)}, {int(grid.frame.pareto.sum())} on the front, "
        f"hypervolume {hv:.4f}; wrote {grid_paths(spec.name)[0]}"
    )
    shv = study_hypervolume(study, spec, grid.ruler)
    if shv:
        print(f"the study's trials reach {100 * shv / hv:.1f}% of it")
    return 0


def cmd_storage_serve(args: argparse.Namespace) -> int:
    """Optuna's gRPC storage proxy in front of ``--storage``, until SIGTERM or Ctrl-C."""
    import signal

    import optuna

    from dse.search import storage_for

    if "://" not in args.storage or args.storage.startswith("grpc://"):
        raise InputError(
            "--storage",
            "storage",
            f"{args.storage!r} is not a database URL",
            "serve a database shared by the workers, e.g. postgresql+psycopg://user@host/db",
        )
    storage = storage_for("", args.storage)
    try:
        from optuna.storages import run_grpc_proxy_server
    except ImportError as exc:
        raise InputError(
            "--storage", "grpc", f"gRPC is not installed ({exc})", "pip install grpcio protobuf"
        ) from None

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"serving {args.storage.split('@')[-1]} as grpc://{args.host}:{args.port} (Ctrl-C stops)",
        flush=True,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        run_grpc_proxy_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # grpc: the port is taken
        raise InputError(
            "--port",
            "port",
            f"cannot serve on {args.host}:{args.port}: {exc}",
            "choose a free port",
        ) from None
    return 0


# --------------------------------------------------------------------------------------
# front, verify, compare
# --------------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    """``dse verify NAME``: the answer and the next front points retrained with only their
    exits, their test accuracy beside the shared training's."""
    from dse.report import fmt
    from dse.search import Candidate, Explorer, load_study, verify

    study, spec = load_study(args.name, storage=args.storage)
    explorer = Explorer(spec, progress=not args.quiet)
    results = verify(study, spec, top=args.top, progress=not args.quiet, explorer=explorer)
    tasks = spec.tasks if len(spec.tasks) > 1 else ()
    for r in results:
        k = r["knobs"]
        config = Candidate.from_row({f"knob_{n}": v for n, v in k.items()})
        who = f"trial {r['trial']}" if r["trial"] is not None else f"{r['source']} point"
        mark = " (recommended)" if r.get("recommended") else ""
        print(
            f"{who}{mark}: {config.label(explorer.exit_names, tasks)}: test accuracy "
            f"{fmt.percent(r['old_test_accuracy'])} (shared training) -> "
            f"{fmt.percent(r['new_test_accuracy'])} (retrained alone), "
            f"{100 * r['delta']:+.1f} points"
        )
        for task, (before, after) in r.get("tasks", {}).items():
            print(
                f"    task {task}: {fmt.percent(before)} -> {fmt.percent(after)}, "
                f"{100 * (after - before):+.1f} points"
            )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``dse compare SPEC``: each baseline's exhaustive front (a restricted space of the
    same search, on the same trained networks) against the study's own trials; with
    several tasks, one backbone against one network per task too."""
    from dse.report import fmt
    from dse.search import (
        Explorer,
        compare,
        create_study,
        ensure_grid,
        load_grid,
        load_spec,
        stored_study,
        trials_frame,
        verdicts,
    )

    spec = load_spec(args.spec)
    grid = load_grid(spec.name, spec)  # a saved grid of this very spec: nothing to write
    grid_explorer = None
    if grid is None:
        explorer = grid_explorer = Explorer(spec, progress=not args.quiet)
        study, _ = create_study(spec, storage=args.storage, explorer=explorer)  # checks first
        grid = ensure_grid(study, explorer)
    else:
        study = stored_study(spec, storage=args.storage)
    table = compare(grid, spec, trials_frame(study) if study is not None else None)
    said = verdicts(table)
    ref = table.attrs["reference_accuracy"]
    print(
        f"{spec.name}: each baseline's exhaustive front on the same trained networks "
        f"against the study's {table.attrs['trials']} trials (joint); matched accuracy = "
        f"within 1 point of dense server-only ({fmt.percent(ref)} validation)"
    )
    print(baselines_table(table).to_string())
    print(
        "(x: baseline / joint at matched accuracy; above 1 the study's trials are better, "
        "below 1 the baseline is; test_acc: test accuracy of the lowest-latency matched "
        "point)"
    )
    for line in said:
        print(line)
    if not table.loc["edgent", "in_space"]:
        print(
            "edgent's right-sized points (threshold 0) lie outside the study's space; "
            "start the spec's thresholds at 0 to search them."
        )
    tasks_out = None
    if len(spec.tasks) > 1:
        from dse.search import compare_tasks

        if grid_explorer is None:
            grid_explorer = Explorer(spec, progress=not args.quiet)
        tasks_out = compare_tasks(grid_explorer)
        _print_tasks(tasks_out)
    if args.json:
        write_json(
            args.json,
            {
                "reference_accuracy": ref,
                "trials": table.attrs["trials"],
                "verdicts": said,
                "baselines": table.reset_index().to_dict(orient="records"),
                **({"tasks": _tasks_json(tasks_out)} if tasks_out else {}),
            },
        )
    return 0


def baselines_table(table: Any) -> Any:
    """The comparison for people: each baseline's hypervolume, its lowest-latency point
    at matched accuracy and its costs as ratios to the study's (``fmt.ratio``)."""
    from dse.report import fmt

    shown = table.assign(
        hv=table.hv.map(lambda v: f"{v:.4f}"),
        latency=table.latency_s.map(fmt.seconds),
        test_acc=table.test_accuracy.map(fmt.percent),
        sent=table.bytes.map(fmt.nbytes),
        energy=table.edge_energy_j.map(fmt.joules),
        **{
            "latency x": table.latency_s_ratio.map(fmt.ratio),
            "sent x": table.bytes_ratio.map(fmt.ratio),
            "energy x": table.edge_energy_j_ratio.map(fmt.ratio),
        },
    )
    columns = ["candidates", "hv", "matched", "latency", "test_acc", "latency x", "sent"]
    return shown[[*columns, "sent x", "energy", "energy x"]]


def _print_tasks(c: Any) -> None:
    """The multi-task comparison of ``dse compare`` (see dse.search.tasks)."""
    import pandas as pd

    from dse.report import fmt

    print()
    print(
        f"one backbone for {', '.join(c.tasks)} (MTL) against one network per task (STL, "
        f"{c.schedule}), dense, no exit taken; test accuracy per task:"
    )
    f = c.frame()
    shown = pd.DataFrame(
        {
            "cuts": f.cuts,
            "edge FLOPs": f.edge_flops.map(lambda v: f"{v:.3g}"),
            "sent": f.bytes.map(fmt.nbytes),
            "latency": f.latency_mean.map(fmt.seconds),
            "edge energy": f.edge_energy.map(fmt.joules),
            "edge memory": f.edge_memory.map(fmt.nbytes),
            **{t: f[f"test_accuracy.{t}"].map(fmt.percent) for t in c.tasks},
        },
        index=f.index,
    )
    print(shown.to_string())
    for line in c.verdicts():
        print(line)


def _tasks_json(c: Any) -> dict[str, Any]:
    """The multi-task comparison as ``dse compare --json`` writes it."""
    return {
        "tasks": list(c.tasks),
        "schedule": c.schedule,
        "verdicts": c.verdicts(),
        "designs": c.frame().reset_index().to_dict(orient="records"),
    }
