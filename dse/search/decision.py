"""The answer: which configuration to deploy, decided once, for every view.

Every view (``dse recommend``, the report's first section and its star, the deployment
map, ``dse sweep``, ``dse front``, the demo's summary) calls :func:`decide` on the same
points, so no two views can disagree. The rules, in order:

1. **Candidates** are every point scored for the study (its trials, the exhaustive grid,
   each baseline's restricted space) that meets the spec's constraints.
2. **The learned floor.** A point whose accuracy on any task is below that task's floor
   (chance + the learning rule's margin, or the spec's own accuracy constraint) answers no
   better than a guess would: it is listed apart, never a candidate.
3. **Distinct points.** Configurations with the same metrics are one point, shown by its
   simplest configuration (the fewest exits, the smallest cut, no threshold without an
   exit).
4. **Beyond noise.** An accuracy carries its standard error on the validation split
   (Agresti-Coull: ``p~ = (k + 2) / (n + 4)``, ``se = sqrt(p~ (1 - p~) / (n + 4))``). A
   point whose accuracy is within one standard error of another's is tied with it on
   accuracy, and the cheaper of the two wins: a point is dropped when another is at least
   as cheap on every cost and tied or better on every accuracy.
5. **The knee** of what is left: the point closest to the ideal, with each accuracy
   measured in standard errors below the best and each cost scaled to [0, 1] across the
   Pareto front.

The answer is never beaten on every objective by a candidate (rule 4 drops a point only
for one that is at least as good on every cost; a strictly better point always survives
where the point it beats would).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dse.search.pareto import pareto_mask
from dse.search.space import Candidate
from dse.vocab import metric as metric_info

#: Relative digits to which two metrics must agree for their configurations to be one point.
SAME_DIGITS = 9

#: How many standard errors apart two accuracies must be to differ (rule 4).
TIE_SE = 1.0


@dataclass(frozen=True)
class Floor:
    """The learned floor of one accuracy column: below it a point is no better than a
    guess. ``chance`` is what always answering the commonest label reaches; ``floor`` is
    chance + the learning rule's margin, or the spec's accuracy constraint if higher."""

    column: str  # "accuracy" (one task) or "accuracy.TASK"
    chance: float
    floor: float


@dataclass(frozen=True)
class Point:
    """A distinct point: its metrics and every configuration that scored them."""

    metrics: Mapping[str, float]
    configurations: tuple[Candidate, ...]  # canonical (simplest) first
    trials: tuple[int, ...]  # the study's trials among them, ascending
    sources: tuple[str, ...]  # "study", "grid", a baseline's name; sorted, unique
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
        baseline whose space holds it, else ``grid``."""
        if "study" in self.sources:
            return "study"
        named = [s for s in self.sources if s not in ("grid", "study")]
        return named[0] if named else "grid"


@dataclass(frozen=True)
class Decision:
    """What to deploy and everything a view needs to say why."""

    recommended: Point | None
    front: tuple[Point, ...]  # distinct Pareto points of the candidates, best accuracy first
    below_floor: tuple[Point, ...]  # distinct points under the learned floor
    floors: tuple[Floor, ...]
    validation_samples: int
    objectives: Mapping[str, str]
    candidates: int  # feasible configurations considered (rows), above the floor
    rule: str  # one sentence: how the choice was made
    reason: str = ""  # why nothing is recommended (empty when something is)

    def standard_error(self, accuracy: float) -> float:
        """The standard error of an accuracy measured on the validation split."""
        return standard_error(accuracy, self.validation_samples)


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


def _key(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[float, ...]:
    out = []
    for c in columns:
        v = float(row[c])
        out.append(float(f"{v:.{SAME_DIGITS}g}") if math.isfinite(v) else v)
    return tuple(out)


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


def distinct_points(rows: pd.DataFrame, columns: Sequence[str]) -> list[Point]:
    """Rows grouped by their values in ``columns`` (to :data:`SAME_DIGITS` digits): one
    :class:`Point` per group, its configurations simplest first."""
    if rows.empty:
        return []
    groups: dict[tuple[float, ...], list[tuple[Candidate, float, dict[str, Any]]]] = {}
    for row in rows.to_dict("records"):
        trial = row.get("trial", math.nan)
        trial = math.nan if trial is None else float(trial)
        groups.setdefault(_key(row, columns), []).append((Candidate.from_row(row), trial, row))
    points = []
    for members in groups.values():
        members.sort(key=lambda m: _simplicity(m[0], m[1]))
        first = members[0][2]
        trials = sorted({int(t) for _, t, _ in members if t == t})
        sources = sorted({str(r.get("source", "study")) for _, _, r in members})
        metrics = {c: float(first[c]) for c in columns}
        points.append(
            Point(metrics, tuple(m[0] for m in members), tuple(trials), tuple(sources), first)
        )
    return points


def _below(point_row: Mapping[str, Any], floors: Sequence[Floor]) -> bool:
    for f in floors:
        v = point_row.get(f.column)
        if v is None or not (float(v) >= f.floor - 1e-12):
            return True
    return False


def _values(points: Sequence[Point], names: Sequence[str]) -> np.ndarray:
    return np.array([[p.metrics[n] for n in names] for p in points], dtype=float).reshape(
        len(points), len(names)
    )


def _losses(points: Sequence[Point], objectives: Mapping[str, str]) -> np.ndarray:
    """Each objective as a loss to minimise (maximised ones negated)."""
    v = _values(points, list(objectives))
    flip = np.array([d == "maximize" for d in objectives.values()])
    v[:, flip] = -v[:, flip]
    return v


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


def _rule_sentence(decision_n: int, objectives: Mapping[str, str], n: int, acc: float) -> str:
    accs = accuracy_objectives(objectives)
    se_pts = 100 * standard_error(acc, n)
    if not accs:
        return (
            f"Chosen among {decision_n} distinct configurations that meet the constraints: "
            "the one closest to the ideal with each objective scaled to [0, 1] across the "
            "Pareto front."
        )
    return (
        f"Chosen among {decision_n} distinct configurations above the learned floor that meet "
        f"the constraints: accuracies within one standard error (about ±{se_pts:.1f} points "
        f"on {n} validation samples) count as tied and the cheaper wins; of the rest, the "
        "one closest to the ideal, with accuracy counted in standard errors below the best "
        "and each cost scaled to [0, 1] across the front."
    )


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
    columns = list(dict.fromkeys([*objectives, *(f.column for f in floors)]))
    rows = points
    if not rows.empty:
        finite = np.isfinite(rows[columns].to_numpy(dtype=float)).all(axis=1)
        rows = rows[finite & rows["feasible"].astype(bool).to_numpy()]
    distinct = distinct_points(rows, columns)
    below = [p for p in distinct if _below(p.row, floors)]
    above = [p for p in distinct if not _below(p.row, floors)]
    considered = sum(len(p.configurations) for p in above)
    if not above:
        reason = (
            "no configuration learned: every one that meets the constraints is below its "
            "learned floor ("
            + "; ".join(
                f"{f.column} {100 * f.floor:.1f}%, chance {100 * f.chance:.1f}%" for f in floors
            )
            + ")"
            if below
            else "no configuration meets the constraints"
        )
        return Decision(
            None, (), tuple(below), tuple(floors), n, objectives, considered, "", reason
        )
    mask = pareto_mask(_losses(above, objectives))
    front = [p for p, m in zip(above, mask, strict=True) if m]
    survivors = _tie_survivors(front, objectives, n)
    pick = front[_knee(front, survivors, objectives, n)]
    first = next(iter(accuracy_objectives(objectives)), next(iter(objectives)))
    sign = -1.0 if objectives[first] == "maximize" else 1.0
    front.sort(key=lambda p: (sign * p.metrics[first], _simplicity(p.config, math.inf)))
    acc = pick.metrics.get(first, math.nan)
    return Decision(
        pick,
        tuple(front),
        tuple(below),
        tuple(floors),
        n,
        objectives,
        considered,
        _rule_sentence(len(above), objectives, n, acc),
    )
