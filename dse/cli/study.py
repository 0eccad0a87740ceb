"""``dse study``, ``dse storage``, ``dse front``, ``dse verify``, ``dse compare``: run a
search study (with helper workers), serve its storage, read its front, retrain its chosen
configurations alone and compare it with the baselines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import json_text, write_json
from dse.errors import InputError


def add_parser(sub: Any) -> None:
    """Register ``study``, ``storage``, ``front``, ``verify`` and ``compare``."""
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

    f = sub.add_parser("front", help="the Pareto trials of a study", parents=[options.storage()])
    f.add_argument("name", help="the study's name")
    f.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="a table for people (default), or every column as CSV or JSON",
    )
    f.add_argument("--out", default=None, help="write csv/json here instead of stdout")
    f.set_defaults(func=cmd_front, names_study=True)

    v = sub.add_parser(
        "verify",
        help="retrain top front configurations alone, compare",
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
        help="trials per state, networks used, trainings run, hypervolume",
        parents=[options.storage(), options.json_out("write the status as JSON here")],
    )
    r.add_argument("name", help="the study's name")
    r.set_defaults(func=cmd_study_status, names_study=True)
    r = sts.add_parser(
        "grid",
        help="score the whole discretised space: the reference front",
        parents=[options.storage(), options.quiet()],
    )
    r.add_argument("spec", help="the study spec (.toml)")
    r.set_defaults(func=cmd_study_grid)


# --------------------------------------------------------------------------------------
# study run, resume, worker: one process, its helpers, a status
# --------------------------------------------------------------------------------------


def cmd_study_run(args: argparse.Namespace) -> int:
    """``dse study run SPEC``: run (or continue) the spec's study."""
    from dse.search import load_spec

    spec = load_spec(args.spec)
    rc = _run_study(args, spec, ["study", "run", args.spec])
    if rc == 0:
        print(f"next: dse front {spec.name}   |   dse report {spec.name}")
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

    if args.workers > 1 and (args.storage or spec.storage) == "memory":
        raise InputError(
            "--workers",
            "storage",
            "an in-memory study is private to one process",
            "use the journal (default) or sqlite storage",
        )
    explorer = Explorer(spec, progress=not args.quiet)
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
    info = status(study, spec, args.storage)
    _print_status(info)
    if args.worker_index is not None:
        return 0  # a helper: the first process judges the study
    for line in explorer.learning_warnings():
        print(f"dse: warning: {line}", file=sys.stderr)  # once, not once per helper
    complete = info["trials"].get("COMPLETE", 0)
    if complete == 0 and info["trials"].get("FAIL", 0):
        print(
            f"dse: error: every trial failed; the first: {info['first_failure']}", file=sys.stderr
        )
        return 1
    if complete and not info["feasible"] and spec.constraints:
        text = ", ".join(str(c) for c in spec.constraints)
        raise InputError(
            spec.path or spec.name,
            "constraints",
            f"none of the {complete} complete trials meets {text}",
            "loosen the constraints or widen the space; `dse front "
            f"{spec.name}` lists no point until one does",
        )
    return 0


def _print_status(info: dict[str, Any]) -> None:
    """A study's status in a few lines: trials by state, networks and trainings, codec
    outputs built, hypervolume, and the complete trials left out as unreadable (times in
    seconds with one decimal, which scripts read)."""
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


def cmd_study_status(args: argparse.Namespace) -> int:
    """``dse study status NAME``: the stored study's status."""
    from dse.search import load_study, status

    study, spec = load_study(args.name, storage=args.storage)
    info = status(study, spec, args.storage)
    if args.json:
        write_json(args.json, info)
    _print_status(info)
    return 0


def cmd_study_grid(args: argparse.Namespace) -> int:
    """``dse study grid SPEC``: every candidate of the discretised space scored, the
    reference front the study's trials are measured against."""
    from dse.report import fmt
    from dse.search import (
        Explorer,
        create_study,
        ensure_grid,
        grid_paths,
        load_spec,
        study_hypervolume,
    )

    spec = load_spec(args.spec)
    explorer = Explorer(spec, progress=not args.quiet)
    study, _ = create_study(spec, storage=args.storage, explorer=explorer)  # checks first
    grid = ensure_grid(study, explorer, rescore=True)
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


def config_text(row: Any) -> str:
    """A front trial's configuration in the front table's words
    (``predefined@0.5 cut 7 exits 0,1 tau 0.8``), with no threshold or policy where no
    exit is used, since then they decide nothing (as ``Candidate.label`` leaves them out)."""
    text = f"{row.knob_method}@{row.knob_density:g} cut {row.knob_split}"
    exits = ",".join(str(e) for e in row.knob_exits)
    if not exits:
        return f"{text} exits none"
    per_task = getattr(row, "knob_task_thresholds", None)
    tau = (
        ",".join(f"{x:g}" for x in per_task)
        if isinstance(per_task, tuple | list) and len(per_task)
        else f"{row.knob_threshold:g}"
    )
    policy = getattr(row, "knob_policy", None)
    policy = f" {policy}" if isinstance(policy, str) and policy != "all" else ""
    return f"{text} exits {exits} tau {tau}{policy}"


def cmd_front(args: argparse.Namespace) -> int:
    """``dse front NAME``: the study's Pareto trials as a table, CSV or JSON."""
    from dse.search import csv_text, front_frame, load_study, status

    study, spec = load_study(args.name, storage=args.storage)
    front = front_frame(study, spec)
    if args.format in ("json", "csv"):
        text = csv_text(front) if args.format == "csv" else _front_json(front)
        if args.out:
            from dse.nets import atomic_write_bytes

            atomic_write_bytes(Path(args.out), text.encode())
        else:
            print(text, end="")
        return 0
    if front.empty:
        print(
            f"study {spec.name}: no feasible trial on the front (constraints: "
            f"{', '.join(map(str, spec.constraints)) or 'none'})"
        )
        return 0
    print(front_table(front).to_string(index=False))
    _print_status(status(study, spec, args.storage))
    return 0


def _front_json(front: Any) -> str:
    """The front as JSON: per trial its number, knobs and every metric."""
    knob_cols = [c for c in front.columns if c.startswith("knob_")]
    data = [
        {
            "trial": int(r["trial"]),
            "knobs": {c[5:]: r[c] for c in knob_cols},
            "metrics": {c: r[c] for c in front.columns if c not in knob_cols and c != "trial"},
        }
        for r in front.to_dict("records")
    ]
    return json_text(data) + "\n"


def front_table(front: Any) -> Any:
    """The front for people: configuration and metrics in human units (several tasks:
    each one's test accuracy too; the accuracy columns are their mean)."""
    import pandas as pd

    from dse.report import fmt

    tasks = [c for c in front.columns if c.startswith("test_accuracy.")]
    return pd.DataFrame(
        {
            "trial": front.trial,
            "config": [config_text(r) for r in front.itertuples(index=False)],
            "accuracy": front.accuracy.map(fmt.percent),
            "test acc": front.test_accuracy.map(fmt.percent),
            "latency": front.latency_mean.map(fmt.seconds),
            "p95": front.latency_p95.map(fmt.seconds),
            "sent": front.bandwidth.map(fmt.nbytes),
            "edge energy": front.edge_energy.map(fmt.joules),
            "edge memory": front.edge_memory.map(fmt.nbytes),
            "storage": front.storage.map(fmt.nbytes),
            "realised density": front.realised_density.map(lambda d: f"{d:.3g}")
            if "realised_density" in front
            else "",
            **{
                f"test {c[len('test_accuracy.') :]}": front[c].map(fmt.percent)
                for c in (tasks if len(tasks) > 1 else [])
            },
        }
    )


def cmd_verify(args: argparse.Namespace) -> int:
    """``dse verify NAME``: the top front configurations retrained with only their exits,
    their test accuracy beside the shared training's."""
    from dse.report import fmt
    from dse.search import load_study, verify

    study, spec = load_study(args.name, storage=args.storage)
    results = verify(study, spec, top=args.top, progress=not args.quiet)
    for r in results:
        k = r["knobs"]
        tau = f" tau {k['threshold']:g}" if k["exits"] else ""  # no exit: it decides nothing
        print(
            f"trial {r['trial']:4d} {k['method']}@{k['density']:g} cut {k['split']} exits "
            f"{list(k['exits'])}{tau}: test accuracy "
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
