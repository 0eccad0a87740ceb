"""The answer for a stored study, gathered once for every view.

:func:`recommend` collects every point dse has scored for the study: its complete trials
(source ``study``), the exhaustive grid when the decision includes it (source ``grid``,
or the name of the first baseline whose restricted front holds the row), the learned
floor of each task (:func:`task_floors`), the validation size and the networks' outputs
under their floor (:func:`not_learned`), then hands them to
:func:`~dse.search.decision.decide`. ``dse recommend``, the report, ``dse front``, ``dse
study status``, ``dse verify`` and the demo all call it, so they show one answer.

The grid is part of the answer whenever it can be had without surprise
(:func:`decision_grid`): a grid saved for this very spec is always read; a space of at
most :data:`GRID_BUDGET` candidates whose networks are all trained is scored (and saved)
by whichever view needs it first; otherwise the answer is decided on the study's trials
alone until ``dse study grid`` has scored it (training what it lacks), and every view
says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from dse.nets import chance_accuracy, learning_floor
from dse.search.baselines import BASELINES, Grid, ensure_grid, load_grid, restrict
from dse.search.decision import Decision, Floor, Point, Unlearned, alternatives, decide
from dse.search.explorer import Explorer
from dse.search.frames import plain, trials_frame
from dse.search.pareto import pareto_mask
from dse.search.spec import StudySpec
from dse.vocab import network_label

#: The most candidates a view scores the exhaustive grid of by itself (a few seconds to a
#: minute on two cores); a larger space needs ``dse study grid SPEC`` once.
GRID_BUDGET = 20_000

#: The columns every table of points starts with (front.csv, ``dse front --format csv``,
#: ``dse study grid --out``), before the knobs and the metrics.
POINT_COLUMNS = ("trial", "source", "configurations", "feasible", "below_floor")


class _Auto:
    """The default of :func:`recommend`'s ``grid``: :func:`decision_grid` decides."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


def task_floors(spec: StudySpec, explorer: Explorer) -> tuple[Floor, ...]:
    """Each task's learned floor: chance (the commonest validation label's share, or
    1/classes) + the learning rule's margin (:func:`dse.nets.learning_problem`), raised to
    the spec's own ``accuracy`` (one task), ``accuracy.TASK`` or ``accuracy_min``
    constraint where that is higher. One task: the ``accuracy`` column; several: one
    ``accuracy.TASK`` column each (their mean, ``accuracy``, stays a constraint)."""
    tasks = _tasks(explorer)
    several = len(tasks) > 1
    out = []
    for task in tasks:
        chance = chance_accuracy(explorer.data.val.y[task], explorer.data.classes[task])
        floor, why = learning_floor(chance), ""
        own = {"accuracy_min", f"accuracy.{task}", *(() if several else ("accuracy",))}
        for c in spec.constraints:
            if c.op == ">=" and c.metric in own and c.bound > floor:
                floor, why = float(c.bound), str(c)
        column = f"accuracy.{task}" if several else "accuracy"
        out.append(Floor(column, chance, floor, task=task if several else "", constraint=why))
    return tuple(out)


def _tasks(explorer: Explorer) -> tuple[str, ...]:
    return tuple(explorer.tasks or (explorer.task or explorer.data.task,))


def validation_size(explorer: Explorer) -> int:
    """Samples in the validation split: what every accuracy's standard error is of."""
    return len(explorer.data.val)


def not_learned(explorer: Explorer) -> tuple[Unlearned, ...]:
    """Every exit and final classifier of the space's cached networks whose validation
    accuracy (every sample answered there) is below the learning rule's floor for its
    task, each named once. Nothing is trained: a network not in the cache is skipped."""
    tasks = _tasks(explorer)
    chances = {t: chance_accuracy(explorer.data.val.y[t], explorer.data.classes[t]) for t in tasks}
    out = []
    for (method, density), cut in [
        (n, c) for n in explorer.space.networks() for c in explorer.network_cuts()
    ]:
        if not explorer.cache.path(explorer.network_spec(method, density, cut=cut).key).exists():
            continue
        try:
            trained = explorer.scorer(method, density, cut).trained
        except Exception:  # noqa: BLE001 - a network that fails is reported by its trials
            continue
        name = network_label(method, density) + (f" trained at cut {cut}" if cut else "")
        outputs = [f"exit {site}" for site in trained.exit_sites] + ["final classifier"]
        for t, task in enumerate(tasks):
            floor = learning_floor(chances[task])
            for output, acc in zip(outputs, trained.accuracy("val", t), strict=True):
                if acc < floor - 1e-9:
                    out.append(
                        Unlearned(
                            name,
                            output,
                            float(acc),
                            chances[task],
                            floor,
                            task=task if len(tasks) > 1 else "",
                        )
                    )
    return tuple(out)


def decision_grid(
    study: Any, explorer: Explorer, *, say: Callable[[str], None] | None = None
) -> tuple[Grid | None, str]:
    """The exhaustive grid the decision includes, and a sentence saying so: the grid
    saved for this spec; else, for a space of at most :data:`GRID_BUDGET` candidates
    whose networks are all trained, the grid scored and saved now; else None (a view
    never trains a network to score the grid: ``dse study grid`` does)."""
    spec = explorer.spec
    size = explorer.space.size()
    if load_grid(spec.name, spec) is None:
        untrained = untrained_networks(explorer)
        if size > GRID_BUDGET or untrained:
            return None, grid_note(None, size=size, spec=spec, untrained=untrained)
    grid = ensure_grid(study, explorer, say=say)
    return grid, grid_note(grid, size=size, spec=spec)


def untrained_networks(explorer: Explorer) -> list[str]:
    """The space's networks not in the training cache (``dense``, ``channels@0.5``, with
    the cut in split or hierarchical training)."""
    out = []
    for (method, density), cut in [
        (n, c) for n in explorer.space.networks() for c in explorer.network_cuts()
    ]:
        key = explorer.network_spec(method, density, cut=cut).key
        if not explorer.cache.path(key).exists():
            out.append(network_label(method, density) + (f" at cut {cut}" if cut else ""))
    return out


def grid_note(
    grid: Grid | None, *, size: int, spec: StudySpec, untrained: Sequence[str] = ()
) -> str:
    """Whether the answer includes the exhaustive grid, in one sentence."""
    if grid is not None:
        return (
            f"The exhaustive grid ({len(grid.frame):,} candidates, every configuration of "
            "the space) is among the points decided on."
        )
    where = spec.path.as_posix() if spec.path is not None else f"studies/{spec.name}.toml"
    why = (
        f"the space has {size:,} candidates, more than the {GRID_BUDGET:,} a view scores by itself"
        if size > GRID_BUDGET
        else f"{len(untrained)} of its networks {'is' if len(untrained) == 1 else 'are'} not "
        f"trained yet ({', '.join(untrained)})"
    )
    return (
        f"The exhaustive grid is not among the points decided on: {why}; run dse study "
        f"grid {where} once to include it."
    )


def _seq(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value) if isinstance(value, list | tuple) else ()


def config_keys(frame: pd.DataFrame) -> pd.Series:
    """One text key per row naming its configuration (its ``knob_*`` columns), so that a
    trial and the grid's row of the same configuration are known as one."""

    def num(v: Any) -> str:
        return f"{float(v):.9g}"

    parts = [
        frame["knob_method"].astype(str),
        frame["knob_density"].map(num),
        frame["knob_split"].map(lambda v: str(int(v))),
        frame["knob_exits"].map(lambda v: ",".join(str(int(e)) for e in _seq(v))),
        frame["knob_threshold"].map(num),
        frame["knob_criterion"].astype(str),
    ]
    if "knob_policy" in frame:
        parts.append(frame["knob_policy"].map(lambda v: v if isinstance(v, str) else "all"))
    if "knob_task_thresholds" in frame:
        parts.append(frame["knob_task_thresholds"].map(lambda v: ",".join(map(num, _seq(v)))))
    if "knob_codec" in frame:
        parts.append(frame["knob_codec"].map(lambda v: v if isinstance(v, str) else ""))
    key = parts[0]
    for p in parts[1:]:
        key = key + "|" + p
    return key


def grid_sources(grid: Grid, objectives: Mapping[str, str]) -> pd.Series:
    """Per grid row, where it comes from: the first baseline (in :data:`BASELINES`'s
    order) whose restricted front (:func:`~dse.search.baselines.restrict`, its feasible
    rows) holds it, else ``grid``; Edgent's right-sized points scored beside the space
    are Edgent's."""
    frame = grid.frame
    source = pd.Series(
        np.where(frame["source"] == "space", "grid", frame["source"]), index=frame.index
    )
    names = list(objectives)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.values()])
    for b in BASELINES:
        if b == "joint":
            continue
        sub = restrict(frame, b)
        sub = sub[sub["feasible"].astype(bool)]
        if sub.empty:
            continue
        on = sub.index[pareto_mask(sub[names].to_numpy(dtype=float) * sign)]
        mine = source.loc[on] == "grid"
        source.loc[on[mine.to_numpy()]] = b
    return source


def candidate_points(
    trials: pd.DataFrame, grid: Grid | None, objectives: Mapping[str, str]
) -> pd.DataFrame:
    """Every scored configuration once: the complete trials (source ``study``; a
    configuration two trials drew, by its first), then the grid's rows no trial scored
    (see :func:`grid_sources`), with ``trial`` NaN."""
    frames = []
    if len(trials):
        trials = trials.sort_values("trial").reset_index(drop=True)
        trials = trials[~config_keys(trials).duplicated().to_numpy()]
        frames.append(trials.assign(source="study"))
    if grid is not None and len(grid.frame):
        rows = grid.frame.assign(source=grid_sources(grid, objectives), trial=math.nan)
        rows = rows.drop(columns=[c for c in ("pareto",) if c in rows])
        if len(trials):
            rows = rows[~config_keys(rows).isin(set(config_keys(trials)))]
        frames.append(rows)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def recommend(
    study: Any,
    spec: StudySpec,
    explorer: Explorer,
    *,
    grid: Any = AUTO,
    say: Callable[[str], None] | None = None,
) -> Decision:
    """What to deploy for ``study``: :func:`~dse.search.decision.decide` on every point
    scored for it. ``grid``: the exhaustive grid to include (None: none); by default
    :func:`decision_grid` decides, scoring it when the space is small enough."""
    if isinstance(grid, _Auto):
        grid, note = decision_grid(study, explorer, say=say)
    else:
        note = grid_note(
            grid, size=explorer.space.size(), spec=spec, untrained=untrained_networks(explorer)
        )
    points = candidate_points(trials_frame(study), grid, spec.objectives)
    decision = decide(
        points,
        objectives=spec.objectives,
        floors=task_floors(spec, explorer),
        validation_samples=validation_size(explorer),
    )
    return replace(decision, not_learned=not_learned(explorer), grid_note=note)


def points_frame(points: Sequence[Point], decision: Decision) -> pd.DataFrame:
    """Distinct points as a table (front.csv, ``dse front --format csv``): per point its
    first trial (or NaN), source, count of equivalent configurations, feasibility and
    floor, then its canonical configuration's knobs and every metric of its row."""
    rows = []
    below = {id(p) for p in decision.below_floor}
    for p in points:
        knobs = {f"knob_{k}": v for k, v in p.config.as_dict().items()}
        metrics = {
            k: v
            for k, v in p.row.items()
            if not k.startswith("knob_") and k not in (*POINT_COLUMNS, "pareto")
        }
        rows.append(
            {
                "trial": p.trial if p.trial is not None else math.nan,
                "source": p.source,
                "configurations": len(p.configurations),
                "feasible": True,
                "below_floor": id(p) in below,
                **{k: tuple(v) if isinstance(v, list) else v for k, v in knobs.items()},
                **metrics,
            }
        )
    return pd.DataFrame(rows, columns=_columns(rows))


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(POINT_COLUMNS)
    for r in rows:
        seen.update(dict.fromkeys(r))
    return list(seen)


def rows_frame(frame: pd.DataFrame, floors: Sequence[Floor]) -> pd.DataFrame:
    """Scored configurations (a grid's rows) with :data:`POINT_COLUMNS` first: one
    configuration each, its feasibility and whether it is under a floor."""
    out = frame.drop(columns=[c for c in ("pareto",) if c in frame]).copy()
    below = np.zeros(len(out), dtype=bool)
    for f in floors:
        below |= ~(out[f.column].to_numpy(dtype=float) >= f.floor - 1e-12)
    if "trial" not in out:
        out["trial"] = math.nan
    out["configurations"] = 1
    out["below_floor"] = below
    if "source" in out:
        out["source"] = np.where(out["source"] == "space", "grid", out["source"])
    head = [c for c in POINT_COLUMNS if c in out]
    return out[[*head, *[c for c in out.columns if c not in head]]]


def _split_metrics(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A point's row as (validation metrics, test metrics), numbers and lists only."""
    val: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for k, v in row.items():
        if k.startswith("knob_") or k in (*POINT_COLUMNS, "pareto"):
            continue
        if not isinstance(v, int | float | list | tuple | np.number) or isinstance(v, bool):
            continue
        if k.startswith("test_"):
            test[k[5:]] = v
        else:
            val[k] = v
    return val, test


def point_record(
    p: Point, decision: Decision, *, exit_names: Sequence[str], tasks: Sequence[str] = ()
) -> dict[str, Any]:
    """One distinct point as JSON: where it came from, its canonical configuration (and
    label) and every equivalent one, its metrics on validation and on test, and its
    accuracy's standard error."""
    val, test = _split_metrics(p.row)
    sends = float(p.row.get("bandwidth", 1.0)) > 0
    acc = float(p.metrics.get("accuracy", p.row.get("accuracy", math.nan)))
    return {
        "trial": p.trial,
        "trials": list(p.trials),
        "source": p.source,
        "found_by": p.found_by(),
        "config": p.config.as_dict(),
        "label": p.config.label(exit_names, tasks, sends=sends),
        "configurations": [c.as_dict() for c in p.configurations],
        "metrics": val,
        "test_metrics": test,
        "accuracy_standard_error": decision.standard_error(acc),
    }


def decision_record(
    decision: Decision, *, exit_names: Sequence[str], tasks: Sequence[str] = ()
) -> dict[str, Any]:
    """The decision as JSON (``dse recommend --json``): the recommended point (or null,
    with the reason), the floor, the validation size, the front's distinct points, the
    points and network outputs under the floor, the alternatives and the rule."""

    def point(p: Point | None) -> dict[str, Any] | None:
        return None if p is None else point_record(p, decision, exit_names=exit_names, tasks=tasks)

    floors = decision.floors
    if len(floors) == 1:
        floor: dict[str, Any] = {
            "accuracy": floors[0].floor,
            "chance": floors[0].chance,
            "column": floors[0].column,
            "constraint": floors[0].constraint or None,
        }
    else:
        floor = {
            "accuracy": {f.task or f.column: f.floor for f in floors},
            "chance": {f.task or f.column: f.chance for f in floors},
            "column": {f.task or f.column: f.column for f in floors},
            "constraint": {f.task or f.column: f.constraint or None for f in floors},
        }
    return plain(
        {
            "recommended": point(decision.recommended),
            "reason": decision.reason or None,
            "rule": decision.rule,
            "floor": floor,
            "validation_samples": decision.validation_samples,
            "objectives": dict(decision.objectives),
            "candidates": decision.candidates,
            "distinct": decision.distinct,
            "grid": decision.grid_note,
            "front": [point(p) for p in decision.front],
            "alternatives": [
                {"labels": list(a.labels), "point": point(a.point), "why": a.why or None}
                for a in alternatives(decision)
            ],
            "below_floor": [point(p) for p in decision.below_floor],
            "not_learned": [
                {
                    "network": u.network,
                    "output": u.output,
                    "task": u.task or None,
                    "accuracy": u.accuracy,
                    "chance": u.chance,
                    "floor": u.floor,
                    "text": u.text(),
                }
                for u in decision.not_learned
            ],
        }
    )
