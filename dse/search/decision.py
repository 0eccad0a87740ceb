"""The answer: which configuration to deploy, decided once, for every view.

Every view (``dse recommend``, the report's first section and its star, the deployment
map, ``dse sweep``, ``dse front``, ``dse study status``, the demo's summary) calls
:func:`decide` on the same points, so no two views can disagree. The rules, in order:

1. **Candidates** are every point scored for the study (its trials, the exhaustive grid,
   each baseline's restricted space) that meets the spec's constraints.
2. **The learned floor.** A point whose accuracy on any task is below that task's floor
   (chance + the learning rule's margin, or the spec's own accuracy constraint) answers no
   better than a guess would: it is listed apart, never a candidate.
3. **Distinct points.** Configurations with the same metrics (to :data:`SAME_DIGITS`
   significant digits) are one point, shown by its simplest configuration (the fewest
   exits, the smallest cut, no threshold without an exit).
4. **Beyond noise.** An accuracy carries its standard error on the validation split
   (Agresti-Coull: ``p~ = (k + 2) / (n + 4)``, ``se = sqrt(p~ (1 - p~) / (n + 4))``). A
   point whose accuracy is within one standard error of another's is tied with it on
   accuracy, and the cheaper of the two wins: a point is dropped when another is at least
   as cheap on every cost and tied or better on every accuracy.
5. **The knee** of what is left: the point closest to the ideal, with each accuracy
   measured in standard errors below the best and each cost scaled to [0, 1] across the
   Pareto front.

The answer is never beaten on every objective by a candidate: it is taken from the Pareto
front of the candidates, and rule 4 drops a front point only for another front point.
Metrics are compared as rounded to :data:`SAME_DIGITS` digits, so two ways of scoring
the same configuration (one by one, or a deployment sweep's batch) decide alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dse.search.baselines import BASELINES
from dse.search.pareto import pareto_mask
from dse.search.space import Candidate
from dse.vocab import metric as metric_info

#: Significant digits to which two metrics must agree for their configurations to be one
#: point (and to which every comparison of the decision rounds them).
SAME_DIGITS = 9

#: How many standard errors apart two accuracies must be to differ (rule 4).
TIE_SE = 1.0

#: Costs within this share of the lowest count as tied on it when the alternatives name
#: the front's best point on each cost (19.9 ms against 19.91 ms is no faster answer).
COST_TIE = 0.01

#: Where a point came from, the most telling first: a trial of the study, a baseline's
#: restricted front (the simplest baseline first), else the exhaustive grid.
SOURCE_ORDER: tuple[str, ...] = ("study", *(b for b in BASELINES if b != "joint"), "grid")


@dataclass(frozen=True)
class Floor:
    """The learned floor of one accuracy column: below it a point is no better than a
    guess. ``chance`` is what always answering the commonest label reaches; ``floor`` is
    chance + the learning rule's margin, or the spec's accuracy constraint if higher
    (``constraint`` then names it)."""

    column: str  # "accuracy" (one task) or "accuracy.TASK"
    chance: float
    floor: float
    task: str = ""
    constraint: str = ""  # the spec's constraint that set the floor; "" for the rule's

    def text(self) -> str:
        """``accuracy 41.8% (chance 27.2%)``: the floor in words, percents to one decimal."""
        why = (
            f"the spec's constraint {self.constraint}"
            if self.constraint
            else f"chance {100 * self.chance:.1f}%"
        )
        return f"{self.column} {100 * self.floor:.1f}% ({why})"


@dataclass(frozen=True)
class Unlearned:
    """One output of one network whose validation accuracy is below its task's floor: an
    exit (or the final classifier) that answers no better than a guess."""

    network: str  # "dense", "predefined@0.5"
    output: str  # "exit stages.0" or "final classifier"
    accuracy: float
    chance: float
    floor: float
    task: str = ""  # several tasks: whose accuracy

    def text(self, *, network: bool = True) -> str:
        """``dense, exit stages.0: 22.8%, chance 27.2%`` (``network`` False: without the
        network's name, for a study of one network)."""
        task = f" ({self.task})" if self.task else ""
        who = f"{self.network}, {self.output}" if network else self.output
        return f"{who}{task}: {100 * self.accuracy:.1f}%, chance {100 * self.chance:.1f}%"


@dataclass(frozen=True)
class Point:
    """A distinct point: its metrics and every configuration that scored them."""

    metrics: Mapping[str, float]
    configurations: tuple[Candidate, ...]  # canonical (simplest) first
    trials: tuple[int, ...]  # the study's trials among them, ascending
    sources: tuple[str, ...]  # "study", "grid", a baseline's name; unique, SOURCE_ORDER
    row: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def config(self) -> Candidate:
        """The canonical configuration: the simplest of those with these metrics."""
        return self.configurations[0]

    @property
    def trial(self) -> int | None:
        """The first of the study's trials that scored this point, or None."""
        return self.trials[0] if self.trials else None

    @property
    def source(self) -> str:
        """Where the point came from: ``study`` when a trial reached it, else the first
        baseline whose restricted front holds it, else ``grid``."""
        return self.sources[0] if self.sources else "grid"

    def found_by(self) -> str:
        """Who found the point, in words: the study's search (with its trial), or the
        exhaustive grid (on a baseline's front), which the search did not reach."""
        if self.source == "study":
            return f"found by the study's search (trial {self.trial})"
        if self.source == "grid":
            return "found by the exhaustive grid; the search did not reach it"
        return (
            f"found by the exhaustive grid, on the {self.source} baseline's front; the "
            "search did not reach it"
        )


@dataclass(frozen=True)
class Decision:
    """What to deploy and everything a view needs to say why."""

    recommended: Point | None
    front: tuple[Point, ...]  # distinct Pareto points of the candidates, best accuracy first
    #: distinct points that would be on the front but lie under the learned floor
    below_floor: tuple[Point, ...]
    floors: tuple[Floor, ...]
    validation_samples: int
    objectives: Mapping[str, str]
    candidates: int  # feasible configurations above the floor
    rule: str  # one sentence: how the choice was made
    reason: str = ""  # why nothing is recommended (empty when something is)
    distinct: int = 0  # distinct points among the candidates
    #: the networks' outputs under their floor, each named once (see recommend)
    not_learned: tuple[Unlearned, ...] = ()
    grid_note: str = ""  # whether the exhaustive grid is among the points, and why
    #: the feasible, finite rows decided on (one per configuration): the alternatives
    #: are decided on subsets of them
    rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def standard_error(self, accuracy: float) -> float:
        """The standard error of an accuracy measured on the validation split."""
        return standard_error(accuracy, self.validation_samples)

    @property
    def configurations(self) -> int:
        """Configurations on the front, all points' equivalent ones counted."""
        return sum(len(p.configurations) for p in self.front)


@dataclass(frozen=True)
class Alternative:
    """A configuration a user would weigh against the answer: ``labels`` say what it is
    the best of (``recommended``, ``most accurate``, ``edge-only``, ...); ``point`` None
    when nothing of that kind clears the floor and the constraints (``why`` says so)."""

    labels: tuple[str, ...]
    point: Point | None
    why: str = ""


def standard_error(accuracy: float, n: int) -> float:
    """Agresti-Coull standard error of an accuracy measured on ``n`` samples: never 0,
    so a perfect score on a small split still carries the doubt of its size."""
    if n <= 0 or not math.isfinite(accuracy):
        return math.inf
    k = accuracy * n
    p = (k + 2.0) / (n + 4.0)
    return math.sqrt(p * (1.0 - p) / (n + 4.0))


def accuracy_objectives(objectives: Mapping[str, str]) -> list[str]:
    """The objectives that are accuracies (maximised fractions)."""
    return [
        name
        for name, direction in objectives.items()
        if metric_info(name).quantity == "%" and direction == "maximize"
    ]


def place(split: int, bandwidth: float) -> str:
    """Where a configuration runs: ``server-only`` (cut 0), ``edge-only`` (nothing sent:
    the last cut, or every sample answered on the edge) or ``split``."""
    return "server-only" if split == 0 else "edge-only" if bandwidth <= 0 else "split"


def rounded(values: Any) -> np.ndarray:
    """``values`` rounded to :data:`SAME_DIGITS` significant digits (0 and non-finite
    values as they are): what the decision compares."""
    v = np.array(values, dtype=float)
    ok = np.isfinite(v) & (v != 0)
    if ok.any():
        exponent = np.clip(np.floor(np.log10(np.abs(v[ok]))), -290, 290)
        scale = 10.0 ** (SAME_DIGITS - 1 - exponent)
        v[ok] = np.round(v[ok] * scale) / scale
    return v


def _simplicity(c: Candidate, trial: float) -> tuple[Any, ...]:
    """Sort key: the fewest exits, the smallest cut, the lowest threshold with exits, then
    the earliest trial (a grid row after every trial)."""
    return (
        len(c.exits),
        c.split,
        c.exits,
        c.threshold if c.exits else 0.0,
        tuple(c.task_thresholds) if c.exits else (),
        c.codec or "",
        math.inf if trial != trial else trial,
    )


def _source_rank(source: str) -> int:
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)


def distinct_points(rows: pd.DataFrame, columns: Sequence[str]) -> list[Point]:
    """Rows grouped by their values in ``columns`` (rounded to :data:`SAME_DIGITS`
    digits): one :class:`Point` per group, its configurations simplest first."""
    if rows.empty:
        return []
    keys = rounded(rows[list(columns)].to_numpy(dtype=float))
    groups: dict[tuple[float, ...], list[tuple[Candidate, float, dict[str, Any]]]] = {}
    for key, row in zip(map(tuple, keys), rows.to_dict("records"), strict=True):
        trial = row.get("trial", math.nan)
        trial = math.nan if trial is None else float(trial)
        groups.setdefault(key, []).append((Candidate.from_row(row), trial, row))
    points = []
    for members in groups.values():
        members.sort(key=lambda m: _simplicity(m[0], m[1]))
        first = members[0][2]
        trials = sorted({int(t) for _, t, _ in members if t == t})
        sources = sorted({str(r.get("source", "study")) for _, _, r in members}, key=_source_rank)
        metrics = {c: float(first[c]) for c in columns}
        points.append(
            Point(metrics, tuple(m[0] for m in members), tuple(trials), tuple(sources), first)
        )
    return points


def _below(values: np.ndarray, columns: Sequence[str], floors: Sequence[Floor]) -> np.ndarray:
    """Per row of ``values`` (one column per name of ``columns``): under a floor."""
    out = np.zeros(len(values), dtype=bool)
    for f in floors:
        out |= ~(values[:, list(columns).index(f.column)] >= f.floor - 1e-12)
    return out


def _values(points: Sequence[Point], names: Sequence[str]) -> np.ndarray:
    v = np.array([[p.metrics[n] for n in names] for p in points], dtype=float)
    return rounded(v.reshape(len(points), len(names)))


def _as_losses(values: np.ndarray, objectives: Mapping[str, str]) -> np.ndarray:
    """Each objective (a column of ``values``) as a loss to minimise (maximised ones
    negated)."""
    v = np.array(values, dtype=float).reshape(-1, len(objectives))
    flip = np.array([d == "maximize" for d in objectives.values()], dtype=bool)
    v[:, flip] = -v[:, flip]
    return v


def _losses(points: Sequence[Point], objectives: Mapping[str, str]) -> np.ndarray:
    return _as_losses(_values(points, list(objectives)), objectives)


def _tie_survivors(points: Sequence[Point], objectives: Mapping[str, str], n: int) -> list[int]:
    """Indices of the points no other beats with accuracy ties counted (rule 4)."""
    accs = accuracy_objectives(objectives)
    costs = [m for m in objectives if m not in accs]
    a = _values(points, accs)
    c = _losses(points, {m: objectives[m] for m in costs})
    se = np.vectorize(lambda x: standard_error(x, n))(a) if a.size else a
    keep = []
    for i in range(len(points)):
        beaten = False
        for j in range(len(points)):
            if i == j:
                continue
            tol = TIE_SE * np.maximum(se[i], se[j]) if a.size else a
            acc_ok = bool(np.all(a[j] >= a[i] - tol)) if a.size else True
            cost_ok = bool(np.all(c[j] <= c[i])) if c.size else True
            strictly = (bool(np.any(c[j] < c[i])) if c.size else False) or (
                bool(np.any(a[j] > a[i] + tol)) if a.size else False
            )
            if acc_ok and cost_ok and strictly:
                beaten = True
                break
        if not beaten:
            keep.append(i)
    return keep


def _knee(
    points: Sequence[Point], among: Sequence[int], objectives: Mapping[str, str], n: int
) -> int:
    """The index (into ``points``) of the knee of ``among`` (rule 5)."""
    accs = accuracy_objectives(objectives)
    costs = [m for m in objectives if m not in accs]
    parts = []
    if accs:
        a = _values(points, accs)
        best = a[list(among)].max(axis=0)
        se = np.array([standard_error(b, n) for b in best])
        parts.append((best - a) / np.where(se > 0, se, 1.0))
    if costs:
        c = _losses(points, {m: objectives[m] for m in costs})
        lo, hi = c.min(axis=0), c.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        parts.append((c - lo) / span)
    dist = np.linalg.norm(np.hstack(parts), axis=1)
    return min(among, key=lambda i: (dist[i], _simplicity(points[i].config, math.inf)))


def _rule_sentence(distinct: int, objectives: Mapping[str, str], n: int, acc: float) -> str:
    accs = accuracy_objectives(objectives)
    se_pts = 100 * standard_error(acc, n)
    if not accs:
        return (
            f"Chosen among {distinct} distinct configurations above the learned floor that "
            "meet the constraints: the one closest to the ideal with each objective scaled "
            "to [0, 1] across the Pareto front."
        )
    return (
        f"Chosen among {distinct} distinct configurations above the learned floor that meet "
        f"the constraints: accuracies within one standard error (about ±{se_pts:.1f} points "
        f"on {n} validation samples) count as tied and the cheaper wins; of the rest, the "
        "one closest to the ideal, with accuracy counted in standard errors below the best "
        "and each cost scaled to [0, 1] across the front."
    )


def _usable(points: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The rows that may be decided on: feasible, every metric of ``columns`` finite."""
    if points.empty:
        return points
    missing = [c for c in columns if c not in points]
    if missing:
        raise ValueError(f"the points have no column {', '.join(missing)}")
    finite = np.isfinite(points[list(columns)].to_numpy(dtype=float)).all(axis=1)
    feasible = points["feasible"].astype(bool).to_numpy() if "feasible" in points else True
    return points[finite & feasible].reset_index(drop=True)


def decide(
    points: pd.DataFrame,
    *,
    objectives: Mapping[str, str],
    floors: Sequence[Floor],
    validation_samples: int,
) -> Decision:
    """The decision over ``points`` (one row per scored configuration: ``knob_*`` columns,
    the objectives' and the floors' metric columns, ``feasible``, ``source``, ``trial``
    (NaN for a configuration no trial scored))."""
    objectives = dict(objectives)
    n = int(validation_samples)
    names = list(objectives)
    columns = list(dict.fromkeys([*names, *(f.column for f in floors)]))
    rows = _usable(points, columns)
    values = (
        rounded(rows[columns].to_numpy(dtype=float)) if len(rows) else np.zeros((0, len(columns)))
    )
    below = _below(values, columns, floors)
    losses = _as_losses(values[:, : len(names)], objectives)
    above = np.flatnonzero(~below)
    on_front_all = pareto_mask(losses)
    below_front = distinct_points(rows.iloc[np.flatnonzero(below & on_front_all)], columns)
    distinct = len(np.unique(values[above], axis=0)) if len(above) else 0
    common: dict[str, Any] = dict(
        floors=tuple(floors),
        validation_samples=n,
        objectives=objectives,
        candidates=len(above),
        distinct=distinct,
        rows=rows,
    )
    below_front.sort(key=lambda p: _simplicity(p.config, p.trial or math.inf))
    if not len(above):
        reason = (
            "no configuration learned: every one that meets the constraints is below its "
            "learned floor of " + "; ".join(f.text() for f in floors)
            if len(rows)
            else "no configuration meets the constraints"
        )
        return Decision(None, (), tuple(below_front), rule="", reason=reason, **common)
    front_rows = above[pareto_mask(losses[above])]
    front = distinct_points(rows.iloc[front_rows], columns)
    survivors = _tie_survivors(front, objectives, n)
    pick = front[_knee(front, survivors, objectives, n)]
    first = next(iter(accuracy_objectives(objectives)), names[0])
    sign = -1.0 if objectives[first] == "maximize" else 1.0
    front.sort(key=lambda p: (sign * p.metrics[first], _simplicity(p.config, math.inf)))
    acc = pick.metrics.get(first, math.nan)
    return Decision(
        pick,
        tuple(front),
        tuple(below_front),
        rule=_rule_sentence(distinct, objectives, n, acc),
        **common,
    )


def best_label(name: str, direction: str) -> str:
    """What the front's best point on objective ``name`` is called: ``most accurate``,
    ``lowest mean latency``, ``highest accuracy of shape``."""
    if name == "accuracy":
        return "most accurate"
    words = metric_info(name).words
    return f"{'highest' if direction == 'maximize' else 'lowest'} {words}"


def _best_on(decision: Decision, name: str) -> Point:
    """The front point best on objective ``name``; among several tied on it (equal on an
    accuracy, within :data:`COST_TIE` of the lowest on a cost), the one the rule takes
    (rule 4 and the knee). An accuracy is not widened by its standard error here: the
    most accurate point is shown as it is, the rule saying why the answer may be
    another."""
    front = list(decision.front)
    direction = decision.objectives[name]
    v = _values(front, [name])[:, 0]
    n = decision.validation_samples
    best = v.max() if direction == "maximize" else v.min()
    slack = 0.0 if name in accuracy_objectives(decision.objectives) else COST_TIE * abs(best)
    tied = [
        i
        for i in range(len(front))
        if (v[i] >= best - slack if direction == "maximize" else v[i] <= best + slack)
    ]
    among = [front[i] for i in tied]
    keep = _tie_survivors(among, decision.objectives, n)
    return among[_knee(among, keep, decision.objectives, n)]


def where_of(rows: pd.DataFrame) -> np.ndarray:
    """:func:`place` of every row of a points frame (``knob_split``, ``bandwidth``)."""
    if rows.empty:
        return np.zeros(0, dtype=object)
    return np.array(
        [
            place(int(k), float(b))
            for k, b in zip(rows["knob_split"], rows["bandwidth"], strict=True)
        ],
        dtype=object,
    )


def alternatives(decision: Decision) -> list[Alternative]:
    """The answer and the alternatives a user would weigh, each decided by the same rule:
    the front's best point on each objective, and the decision restricted to edge-only
    and to server-only configurations. A point that is several of them is one
    alternative with several labels, the answer's first. Empty when nothing is
    recommended."""
    rec = decision.recommended
    if rec is None:
        return []
    picks: list[tuple[str, Point | None, str]] = [("recommended", rec, "")]
    for name, direction in decision.objectives.items():
        picks.append((best_label(name, direction), _best_on(decision, name), ""))
    rows = decision.rows if decision.rows is not None else pd.DataFrame()
    where = where_of(rows)
    for label in ("edge-only", "server-only"):
        sub = rows[where == label] if len(rows) else rows
        if sub.empty:
            picks.append((label, None, f"no {label} configuration meets the constraints"))
            continue
        found = decide(
            sub,
            objectives=decision.objectives,
            floors=decision.floors,
            validation_samples=decision.validation_samples,
        ).recommended
        picks.append((label, found, "" if found else f"no {label} configuration learned"))
    out: list[Alternative] = []
    for label, point, why in picks:
        same = next(
            (
                i
                for i, a in enumerate(out)
                if a.point is not None and point is not None and _same(a.point, point)
            ),
            None,
        )
        if same is None:
            out.append(Alternative((label,), point, why))
        else:
            out[same] = Alternative((*out[same].labels, label), out[same].point, out[same].why)
    return out


def _same(a: Point, b: Point) -> bool:
    """Whether two points are one (the same metrics, rounded)."""
    names = list(a.metrics)
    return bool(np.array_equal(_values([a], names), _values([b], names)))
