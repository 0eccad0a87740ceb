"""``dse recommend`` and ``dse front``: the answer of a stored study and its front's
distinct points, both from the one decision every view shows (``dse.search.recommend``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import json_text, write_json


def add_parser(sub: Any) -> None:
    """Register ``recommend`` and ``front``."""
    r = sub.add_parser(
        "recommend",
        help="what to deploy: the answer of a study, its alternatives and why",
        description="What to deploy for a stored study, decided on every point dse has "
        "scored for it (its trials, the exhaustive grid, the baselines): never one another "
        "point beats on every objective, never one below the learned floor (chance + the "
        "learning rule's margin), accuracies within one standard error counted as tied. "
        "Exit 1, with the reason, when nothing clears the floor or the constraints.",
        parents=[
            options.storage(),
            options.json_out("write the decision as JSON here"),
            options.quiet("no progress lines on stderr"),
        ],
    )
    r.add_argument("name", help="the study's name")
    r.set_defaults(func=cmd_recommend, names_study=True)

    f = sub.add_parser(
        "front",
        help="the front's distinct points of a study",
        description="The study's Pareto front as the answer sees it: its distinct points "
        "above the learned floor (configurations with the same metrics are one point, "
        "shown by the simplest, with their count), who found each (a trial, or the "
        "exhaustive grid), and the points below the floor apart.",
        parents=[options.storage(), options.quiet("no progress lines on stderr")],
    )
    f.add_argument("name", help="the study's name")
    f.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="a table for people (default), or every column as CSV or JSON",
    )
    f.add_argument("--out", default=None, help="write csv/json here instead of stdout")
    f.set_defaults(func=cmd_front, names_study=True)


def decided(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The stored study ``args.name``, its spec, explorer and decision."""
    from dse.search import Explorer, load_study, recommend

    study, spec = load_study(args.name, storage=args.storage)
    explorer = Explorer(spec, progress=not args.quiet)
    decision = recommend(study, spec, explorer, say=_say(args))
    return study, spec, explorer, decision


def _say(args: argparse.Namespace) -> Any:
    def say(msg: str) -> None:
        if not args.quiet:
            print(f"dse: {msg}", file=sys.stderr, flush=True)

    return say


def cmd_recommend(args: argparse.Namespace) -> int:
    """``dse recommend NAME``: the answer, the alternatives, the rule, the points under the
    floor; exit 1 when nothing is recommended."""
    from dse.report import answer_lines
    from dse.search import decision_record

    _, spec, explorer, decision = decided(args)
    tasks = spec.tasks if len(spec.tasks) > 1 else ()
    if args.json:
        write_json(
            args.json,
            {
                "study": spec.name,
                **decision_record(decision, exit_names=explorer.exit_names, tasks=tasks),
            },
        )
    lines = answer_lines(decision, explorer, spec)
    if decision.recommended is None:
        print(f"dse: {spec.name}: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(line, file=sys.stderr)
        return 1
    print(f"{spec.name}: {lines[0]}")
    print()
    print(alternatives_table(decision, explorer.exit_names, tasks).to_string(index=False))
    print()
    for line in lines[1:]:
        print(line)
    print(
        f"front: {len(decision.front)} distinct point(s), {decision.configurations} "
        f"configuration(s) (dse front {spec.name})"
    )
    return 0


def found_text(point: Any) -> str:
    """Who found a point: ``trial 12``, ``grid``, ``grid (edge-only)``."""
    if point.source == "study":
        return f"trial {point.trial}"
    return "grid" if point.source == "grid" else f"grid ({point.source})"


def point_cells(point: Any, decision: Any, exit_names: Any, tasks: Any) -> dict[str, str]:
    """One distinct point as a table row for people: its configuration, where it runs,
    accuracy with its standard error, test accuracy, costs, and who found it."""
    from dse.report import fmt
    from dse.search import place

    row = point.row
    sends = float(row.get("bandwidth", 1.0)) > 0
    acc = float(row["accuracy"])
    return {
        "configuration": point.config.label(exit_names, tasks, sends=sends),
        "runs": place(point.config.split, float(row["bandwidth"])),
        "accuracy": fmt.accuracy_pm(acc, decision.standard_error(acc)),
        "test acc": fmt.percent(float(row["test_accuracy"])),
        "latency": fmt.seconds(float(row["latency_mean"])),
        "sent": fmt.nbytes(float(row["bandwidth"])),
        "edge energy": fmt.joules(float(row["edge_energy"])),
        "found by": found_text(point),
    }


def alternatives_table(decision: Any, exit_names: Any, tasks: Any) -> Any:
    """The answer and its alternatives (``dse.search.alternatives``) as a table."""
    import pandas as pd

    from dse.search import alternatives

    rows = []
    for a in alternatives(decision):
        cells = (
            point_cells(a.point, decision, exit_names, tasks)
            if a.point is not None
            else {"configuration": a.why}
        )
        rows.append({"": ", ".join(a.labels), **cells})
    return pd.DataFrame(rows).fillna("")


def cmd_front(args: argparse.Namespace) -> int:
    """``dse front NAME``: the front's distinct points as a table, CSV or JSON."""
    from dse.cli.study import print_status
    from dse.search import csv_text, point_record, points_frame, status

    study, spec, explorer, decision = decided(args)
    tasks = spec.tasks if len(spec.tasks) > 1 else ()
    if args.format in ("json", "csv"):
        if args.format == "csv":
            text = csv_text(points_frame(decision.front, decision))
        else:
            text = (
                json_text(
                    [
                        point_record(p, decision, exit_names=explorer.exit_names, tasks=tasks)
                        for p in decision.front
                    ]
                )
                + "\n"
            )
        if args.out:
            from dse.nets import atomic_write_bytes

            atomic_write_bytes(Path(args.out), text.encode())
        else:
            print(text, end="")
        return 0
    if not decision.front:
        what = "no feasible trial" if not status(study, spec)["feasible"] else "nothing"
        print(
            f"study {spec.name}: {what} on the front: {decision.reason} (constraints: "
            f"{', '.join(map(str, spec.constraints)) or 'none'})"
        )
        return 0
    print(front_table(decision, explorer.exit_names, tasks).to_string(index=False))
    print(
        f"\n{len(decision.front)} distinct point(s), {decision.configurations} "
        "configuration(s): configurations with the same metrics are one point, shown by "
        "the simplest; * marks the recommended one (dse recommend "
        f"{spec.name})"
    )
    if decision.below_floor:
        from dse.report import answer_lines

        below = [x for x in answer_lines(decision, explorer, spec) if x.startswith("Below")]
        for line in below:
            print(line)
    print_status(
        status(study, spec, args.storage, decision=decision, exit_names=explorer.exit_names)
    )
    return 0


def front_table(decision: Any, exit_names: Any, tasks: Any) -> Any:
    """The front's distinct points for people: the answer starred, the count of
    equivalent configurations, configuration and metrics in human units."""
    import pandas as pd

    from dse.report import fmt

    rows = []
    for p in decision.front:
        cells = point_cells(p, decision, exit_names, tasks)
        row = p.row
        rows.append(
            {
                "": "*" if p is decision.recommended else "",
                **cells,
                "p95": fmt.seconds(float(row["latency_p95"])),
                "edge memory": fmt.nbytes(float(row["edge_memory"])),
                "storage": fmt.nbytes(float(row["storage"])),
                "configurations": len(p.configurations),
                **{
                    f"test {t}": fmt.percent(float(row[f"test_accuracy.{t}"]))
                    for t in (tasks if len(tasks) > 1 else ())
                },
            }
        )
    return pd.DataFrame(rows)
