"""The answer in words, the same in every view: what to deploy, where it runs, its accuracy
with its standard error, latency and edge energy (:func:`answer_sentence`), or why there is
none (:func:`no_answer_sentence`); and the same as plain lines for a terminal
(:func:`answer_lines`: ``dse recommend``, ``dse demo``). The report's first section, the
commands and the demo all print these, so no two say it differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dse import vocab
from dse.report import fmt
from dse.report.text import exits_text
from dse.search import Candidate, Decision, Point, StudySpec, place


def runs_text(candidate: Candidate, row: Mapping[str, Any], explorer: Any) -> str:
    """Where a configuration runs, in words: on the server (the input sent), on the edge
    alone (nothing sent), or split at its cut (what the edge sends, over which link)."""
    edge, link, server = explorer.edge.name, explorer.link.name, explorer.server.name
    k = candidate.split
    cuts = explorer.reference_graph.cuts
    where = place(k, float(row.get("bandwidth", 1.0)))
    if where == "server-only":
        return (
            f"run it all on the server ({server}): {edge} sends its input over {link} "
            f"({fmt.human('bandwidth', row.get('bandwidth'))})"
        )
    if where == "edge-only":
        how = (
            "edge-only"
            if k == len(cuts) - 1 or float(cuts[k].bytes) <= 0
            else "every sample is answered by an exit on the edge"
        )
        return f"run it all on {edge} ({how}: nothing is sent)"
    return (
        f"split it at cut {k} (after {cuts[k].after}): {edge} runs the first part and sends "
        f"{fmt.human('bandwidth', row.get('bandwidth'))} per inference over {link} to {server}"
    )


def _what(candidate: Candidate, row: Mapping[str, Any], explorer: Any, tasks: Sequence[str]) -> str:
    """``dense with exit stages.0 at threshold 0.8`` (and the codec where one is sent)."""
    exits = exits_text(candidate, explorer.exit_names, tasks=tasks)
    sends = float(row.get("bandwidth", 0.0)) > 0
    codec = (
        f", the tensors it sends coded as {candidate.codec}," if candidate.codec and sends else ""
    )
    return f"{vocab.network_name(*candidate.network)} with {exits}{codec}"


def metrics_text(point: Point, decision: Decision, objectives: Mapping[str, str]) -> str:
    """``validation accuracy 89.7% ± 1.6 (test 90.1%), latency 62.5 ms, edge energy
    12 mJ``, with any other objective after them."""
    row = point.row
    se = decision.standard_error(float(row["accuracy"]))
    parts = [
        f"validation accuracy {fmt.accuracy_pm(float(row['accuracy']), se)} (test "
        f"{fmt.human('accuracy', row.get('test_accuracy'))})",
        f"latency {fmt.human('latency_mean', row['latency_mean'])}",
        f"edge energy {fmt.human('edge_energy', row['edge_energy'])}",
    ]
    shown = {"accuracy", "latency_mean", "edge_energy"}
    for name in objectives:
        if name not in shown and name in row:
            parts.append(f"{vocab.metric(name).words} {fmt.human(name, row[name])}")
    return ", ".join(parts)


def answer_sentence(
    decision: Decision, explorer: Any, spec: StudySpec, *, tasks: Sequence[str] = ()
) -> tuple[str, str]:
    """The answer in one sentence, as (its head, the rest): ``Deploy dense with no exit``
    and `` and split it at cut 7 (...): validation accuracy 89.7% ± 1.6 ...``. Requires a
    recommended point."""
    point = decision.recommended
    assert point is not None
    head = f"Deploy {_what(point.config, point.row, explorer, tasks)}"
    rest = (
        f" and {runs_text(point.config, point.row, explorer)}: "
        f"{metrics_text(point, decision, spec.objectives)}."
    )
    if point.source != "study":
        rest += f" {point.found_by()[0].upper()}{point.found_by()[1:]}."
    return head, rest


def below_floor_text(decision: Decision) -> str:
    """The points and outputs under the learned floor, named once each; empty when none."""
    if not decision.below_floor and not decision.not_learned:
        return ""
    floors = "; ".join(f.text() for f in decision.floors)
    several = len({u.network for u in decision.not_learned}) > 1
    outputs = "; ".join(u.text(network=several) for u in decision.not_learned)
    n = len(decision.below_floor)
    return (
        f"Below the learned floor of {floors}, not candidates: "
        + (
            f"{n} point{'s' if n != 1 else ''} that would otherwise be on the front"
            if n
            else "no front point"
        )
        + (f"; outputs that answer no better than a guess: {outputs}" if outputs else "")
        + "."
    )


def no_answer_sentence(decision: Decision, spec: StudySpec) -> tuple[str, str]:
    """Why nothing is recommended and what to do, as (its head, the rest)."""
    where = spec.path.as_posix() if spec.path is not None else f"studies/{spec.name}.toml"
    if decision.reason.startswith("no configuration learned"):
        return (
            "No configuration learned: ",
            "every configuration that meets the constraints is below its learned floor of "
            + "; ".join(f.text() for f in decision.floors)
            + ", so its answers are no better than a guess and nothing is recommended. "
            'Train longer: epochs = "auto" (or more epochs) in the spec\'s [training], or '
            f"more data; then run dse study run {where} again under a new study name.",
        )
    return (
        "Nothing to deploy: ",
        f"{decision.reason}; relax the constraints ("
        + (", ".join(str(c) for c in spec.constraints) or "none")
        + "), or pick another device or link (dse sweep).",
    )


def answer_lines(decision: Decision, explorer: Any, spec: StudySpec) -> list[str]:
    """The answer as plain lines for a terminal: the sentence (or why there is none), the
    rule that chose it, what lies under the floor, and whether the grid was included."""
    tasks = spec.tasks if len(spec.tasks) > 1 else ()
    if decision.recommended is None:
        head, rest = no_answer_sentence(decision, spec)
        lines = [head + rest]
    else:
        head, rest = answer_sentence(decision, explorer, spec, tasks=tasks)
        lines = [head + rest, f"Why: {decision.rule}"]
    below = below_floor_text(decision)
    if below:
        lines.append(below)
    if decision.grid_note.startswith("The exhaustive grid is not"):
        lines.append(decision.grid_note)
    return lines
