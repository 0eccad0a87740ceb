"""``dse report``, ``dse sweep``, ``dse demo``: a study's report, its space scored on many
deployments, and the demo that runs a whole study end to end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import write_json
from dse.errors import InputError

#: The study `dse demo` (and `make demo`) runs: a microcontroller over Wi-Fi, where the cut
#: matters.
DEMO_SPEC = "studies/tiny-esp32.toml"


def add_parser(sub: Any) -> None:
    """Register ``report``, ``sweep`` and ``demo``."""
    rp = sub.add_parser(
        "report",
        help="figures and an HTML + Markdown report of a study",
        parents=[options.storage(), options.quiet()],
    )
    rp.add_argument("name", help="the study's name")
    rp.add_argument("--out", default=None, help="the report's folder (default: reports/NAME)")
    rp.add_argument(
        "--sweep",
        default=None,
        help="a file `dse sweep --json` wrote for this study's spec: the "
        "deployment map (default: scored over the shipped edge devices and links)",
    )
    rp.set_defaults(func=cmd_report, names_study=True)
    _add_sweep(sub)
    d = sub.add_parser("demo", help="what `make demo` runs")
    d.set_defaults(func=cmd_demo)


def _add_sweep(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep",
        help="score a spec's space on every edge x link (x server) from cached "
        "networks and print each one's best configuration",
        description="Score a study spec's space on every combination of edge devices, links "
        "and servers, from the networks the study trained (no training: a network not in "
        "the cache is named, with the command that trains it, unless --train). Per "
        "combination: the answer, decided as a study's is (dse recommend), under the "
        "spec's constraints and the edge device's memory, the same rule's answer among "
        "the edge-only and among the server-only configurations, and whether the answer "
        "is a split.",
        parents=[
            options.json_out("write every combination's result here (what the report reads)"),
            options.quiet("no progress lines on stderr"),
        ],
    )
    sw.add_argument("spec", help="the study spec (.toml) whose space and networks to use")
    # lists of profiles, unlike the one profile each of options.devices()
    sw.add_argument(
        "--edge", required=True, help="edge device profiles, comma-separated names or .toml paths"
    )
    sw.add_argument(
        "--link", required=True, help="link profiles, comma-separated names or .toml paths"
    )
    sw.add_argument(
        "--server",
        default=None,
        help="server profiles, comma-separated (default: the spec's server)",
    )
    sw.add_argument(
        "--train",
        action="store_true",
        help="train the space's networks that are not cached (once; cached)",
    )
    sw.set_defaults(func=cmd_sweep)


def cmd_report(args: argparse.Namespace) -> int:
    """``dse report NAME``: the study's HTML and Markdown report with its figures."""
    from dse.nets import check_writable
    from dse.report import write_report

    check_writable(Path(args.out) if args.out else Path("reports") / args.name, field="--out")
    index = write_report(
        args.name,
        Path(args.out) if args.out else None,
        storage=args.storage,
        progress=not args.quiet,
        sweep=args.sweep,
    )
    print(f"report written: {index}")
    print(f"  markdown: {index.with_name('report.md')}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Score the spec's space on every edge x link (x server) from cached networks and
    print each combination's best configuration."""
    import pandas as pd

    from dse.report import fmt
    from dse.search import load_spec, profile_names, run_sweep

    spec = load_spec(args.spec)
    edges = profile_names(args.edge, option="--edge")
    links = profile_names(args.link, option="--link")
    servers = profile_names(args.server, option="--server") if args.server else None

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"sweep: {msg}", file=sys.stderr, flush=True)

    sw = run_sweep(spec, edges, links, servers, train=args.train, progress=not args.quiet, say=say)
    rows = [sweep_row(r, sw.exit_names) for r in sw.results]
    with pd.option_context("display.max_colwidth", 80, "display.width", 250):
        print(pd.DataFrame(rows).fillna("").to_string(index=False))
    n = len(sw.results)
    wins = sum(r.split_wins for r in sw.results)
    print(
        f"\n{spec.name}: {n} deployment(s), a split wins on {wins}; best = each one's "
        "answer, decided as a study's is (the learned floor, accuracies within one "
        "standard error tied and the cheaper winning; constraints: "
        f"{', '.join(sw.constraints) or 'none'}, and the edge's memory); "
        f"{fmt.seconds(sw.setup_seconds)} to load and decide, "
        f"{fmt.seconds(sum(r.seconds for r in sw.results) / max(n, 1))} per deployment"
    )
    if args.json:
        write_json(args.json, sw.as_dict())
    return 0


def sweep_row(r: Any, exit_names: tuple[str, ...]) -> dict[str, str]:
    """One deployment's line of the sweep table: its best configuration, its metrics, and
    the best edge-only and server-only configurations beside it."""
    from dse.report import fmt
    from dse.search import Candidate

    b = r.best
    if b is None:
        nothing = (
            "nothing learned"
            if getattr(r, "reason", "").startswith("no configuration learned")
            else "nothing feasible"
        )
        best = f"{nothing} ({r.candidates} candidates)"
        return {"edge": r.edge, "link": r.link, "server": r.server, "best": best}
    # the label every view gives (a codec decides nothing where nothing is sent)
    cand = Candidate.from_row({f"knob_{k}": v for k, v in b.knobs.items()})
    config = f"{cand.label(exit_names, sends=r.where != 'edge-only')} ({r.where})"
    return {
        "edge": r.edge,
        "link": r.link,
        "server": r.server,
        "best": config,
        "accuracy": fmt.percent(b.metrics["accuracy"]),
        "latency": fmt.seconds(b.metrics["latency_mean"]),
        "sent": fmt.nbytes(b.metrics["bandwidth"]),
        "edge energy": fmt.joules(b.metrics["edge_energy"]),
        "split wins": "yes" if r.split_wins else "no",
        "best edge-only": _versus(b, r.edge_only),
        "best server-only": _versus(b, r.server_only),
    }


def _versus(best: Any, end: Any) -> str:
    """The best configuration at one end (edge-only, server-only): accuracy, latency,
    edge energy; ``same`` where it is the best overall."""
    from dse.report import fmt

    if end is None:
        return "none feasible"
    if end.knobs == best.knobs:
        return "same"
    m = end.metrics
    return (
        f"{fmt.percent(m['accuracy'])}, {fmt.seconds(m['latency_mean'])}, "
        f"{fmt.joules(m['edge_energy'])}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo study (resuming if it exists), write its report, and say what its front
    spans (cuts, exits, bandwidth regimes)."""
    from dse.cli import build_parser

    spec_path = Path(DEMO_SPEC)
    if not spec_path.exists():
        raise InputError(spec_path, "<file>", "missing", "run `make demo` from the repository")
    name = spec_path.stem
    from dse.nets import check_writable

    check_writable(Path("reports") / name, field="reports")  # before the study, not after
    print(f"== dse demo: the {name} study ({DEMO_SPEC}) ==")
    steps = [
        ["study", "run", str(spec_path)],
        ["compare", str(spec_path)],
        ["front", name],
        ["verify", name, "--top", "3", "--quiet"],
        ["report", name],
    ]
    parser = build_parser()  # each step with its command's own defaults
    for argv in steps:
        if argv[0] == "verify":
            print("\n== retraining the top 3 front configurations alone (dse verify) ==")
        step = parser.parse_args(argv)
        rc = step.func(step)
        if rc:
            return rc
    for line in demo_summary(name):
        print(line)
    return 0


def demo_summary(name: str) -> list[str]:
    """What ``dse demo`` ends with (and ``make docs`` copies into the README): the
    answer, as the report's first section and ``dse recommend`` say it, and what the
    front spans."""
    from dse.report import answer_lines, front_summary
    from dse.search import Explorer, load_study, recommend

    study, spec = load_study(name)
    explorer = Explorer(spec, progress=False)
    decision = recommend(study, spec, explorer)
    return [
        "",
        "== what to do ==",
        *answer_lines(decision, explorer, spec),
        "",
        "== what the front spans ==",
        *front_summary(name, explorer=explorer, decision=decision).lines(),
    ]
