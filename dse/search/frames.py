"""A study read back: each trial's stored record, the complete trials and the Pareto
front as tables (and as CSV), the study's hypervolume ruler, knob importances, and values
made storable as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from dse.search.pareto import Ruler, hypervolume, pareto_mask
from dse.search.spec import StudySpec


def record_of(trial: FrozenTrial) -> dict[str, Any] | None:
    """The trial's ``dse`` record (knobs, metrics, constraint violations), or None.

    It is stored as one JSON string: Optuna deep-copies every trial's attributes whenever
    a sampler reads the history, and a string copies for free where a nested dict of some
    thirty metrics does not. A record stored as a dict (older studies) is read as it is.
    """
    d = trial.user_attrs.get("dse")
    return json.loads(d) if isinstance(d, str) else d


def _non_finite(metrics: Mapping[str, Any]) -> list[str]:
    """``name = value`` of every metric (or list element) that is not a finite number."""
    bad = []
    for name, value in metrics.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int | float) and not math.isfinite(v):
                bad.append(f"{name} = {v}")
    return bad


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per complete trial: number, knobs, metrics, feasibility.

    A trial whose stored values are not all finite numbers (one stored by an older dse, or
    written into the storage by hand) is left out, as a failed one is: see
    :func:`unreadable_trials`.
    """
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        d, why = _record_and_problem(t)
        if d is None or why:
            continue
        row = {"trial": t.number, **flat_row(d["knobs"], d["metrics"])}
        row["feasible"] = all(c <= 0 for c in d["constraints"])
        rows.append(row)
    return pd.DataFrame(rows)


def _record_and_problem(t: FrozenTrial) -> tuple[dict[str, Any] | None, str | None]:
    """A complete trial's record (None without one) and why its values or record cannot
    be read as finite numbers (None if they can)."""
    try:
        d = record_of(t)
    except (ValueError, TypeError):
        return None, "a malformed record"
    values = t.values or []
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        return d, f"objective values {values}"
    if d is None:
        return None, None
    try:
        bad = _non_finite(d["metrics"]) + [
            f"constraint {c}" for c in d["constraints"] if not math.isfinite(c)
        ]
        d["knobs"].items()
    except (TypeError, KeyError, AttributeError):
        return d, "a malformed record"
    return d, (f"non-finite {', '.join(bad)}" if bad else None)


def unreadable_trials(study: optuna.Study) -> dict[int, str]:
    """Complete trials left out of every table, front and hypervolume: number -> why."""
    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        why = _record_and_problem(t)[1]
        if why:
            out[t.number] = why
    return out


def flat_row(knobs: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One table row: ``knob_*`` columns, then metrics; lists become (hashable) tuples."""
    row = {f"knob_{k}": v for k, v in knobs.items()}
    row.update(metrics)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def csv_text(df: pd.DataFrame) -> str:
    """``df`` as CSV, its tuple cells (exits, exit rates) as JSON lists (see load_grid)."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, tuple)).any():
            out[col] = out[col].map(lambda v: json.dumps(list(v)) if isinstance(v, tuple) else v)
    return out.to_csv(index=False)


def front_frame(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """The Pareto trials (feasible, complete), best accuracy first where it is an objective.

    Computed from the stored metrics and constraint values, so it holds for every sampler
    whether or not the sampler itself knows the constraints.
    """
    df = trials_frame(study)
    if df.empty:
        return df
    feasible = df[df.feasible]
    losses = Ruler.fit(spec.objectives, feasible[list(spec.objectives)].to_numpy()).loss(
        feasible[list(spec.objectives)].to_numpy()
    )
    return tidy_front(feasible[pareto_mask(losses)], spec).reset_index(drop=True)


def tidy_front(front: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Front rows once per configuration (a point sampled twice), best accuracy first
    (or the first objective's best, without accuracy), then by trial."""
    knobs = [c for c in front.columns if c.startswith("knob_")]
    front = front.drop_duplicates(subset=knobs, keep="first")
    first = "accuracy" if "accuracy" in spec.objectives else next(iter(spec.objectives))
    return front.sort_values(
        [first, "trial"], ascending=[spec.objectives[first] == "minimize", True]
    )


def importances(
    study: optuna.Study, names: Sequence[str], *, seed: int = 0
) -> dict[str, dict[str, float] | str]:
    """fANOVA importance of each knob per objective, or why it could not be computed.

    A trial draws no threshold without an exit and no codec at a cut that sends nothing
    (:meth:`~dse.search.space.Space.suggest`); fANOVA reads only the parameters every trial
    has, so such a trial is read with the knob at its canonical value (the lowest
    threshold, the first policy, the fp32 codec), as its configuration holds it.
    """
    source = _with_every_knob(study)
    out: dict[str, dict[str, float] | str] = {}
    for i, name in enumerate(names):
        try:
            ev = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            res = optuna.importance.get_param_importances(
                source, evaluator=ev, target=lambda t, i=i: t.values[i]
            )
            out[name] = {k: float(v) for k, v in res.items()}
            if not out[name]:
                out[name] = "no parameter varied across the complete trials"
        except Exception as exc:  # e.g. too few trials, a single distinct value
            out[name] = f"{type(exc).__name__}: {exc}".strip()
    return out


def _with_every_knob(study: optuna.Study) -> optuna.Study:
    """``study`` itself when every complete trial has every parameter; else an in-memory
    copy of its complete trials with each missing parameter at its canonical value (a
    trial whose stored values are not all finite, as a foreign writer may leave, is left
    out of the copy: fANOVA cannot read it)."""
    from optuna.distributions import CategoricalDistribution

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    every: dict[str, Any] = {}
    for t in trials:
        for k, d in t.distributions.items():
            every.setdefault(k, d)
    if all(set(t.params) == set(every) for t in trials):
        return study
    filled = []
    for t in trials:
        if t.values is None or not all(math.isfinite(v) for v in t.values):
            continue
        params, dists = dict(t.params), dict(t.distributions)
        for k, d in every.items():
            if k in params:
                continue
            if isinstance(d, CategoricalDistribution):
                params[k] = "fp32" if "fp32" in d.choices else d.choices[0]
            else:
                params[k] = d.low
            dists[k] = d
        filled.append(
            optuna.trial.create_trial(params=params, distributions=dists, values=t.values)
        )
    copy = optuna.create_study(directions=study.directions)
    copy.add_trials(filled)
    return copy


def study_ruler(study: optuna.Study, spec: StudySpec) -> tuple[Ruler, str]:
    """The study's written-down hypervolume ruler, or one fitted to its own trials."""
    stored = study.user_attrs.get("ruler")
    if stored is not None:
        try:
            ruler = Ruler.from_dict(stored)
            ruler.loss(np.zeros((1, len(spec.objectives))))  # numbers, one per objective
            if ruler.names == tuple(spec.objectives):
                return ruler, "grid"
        except (KeyError, TypeError, ValueError):
            pass  # a ruler no dse wrote: fitted to the trials instead
    df = trials_frame(study)
    values = df[list(spec.objectives)].to_numpy() if not df.empty else np.zeros((0, 0))
    return Ruler.fit(spec.objectives, values), "trials"


def study_hypervolume(study: optuna.Study, spec: StudySpec, ruler: Ruler) -> float:
    df = trials_frame(study)
    if df.empty:
        return 0.0
    df = df[df.feasible]
    return hypervolume(ruler.loss(df[list(spec.objectives)].to_numpy()))


def plain(x: Any) -> Any:
    """``x`` as JSON (and Optuna's user attributes) can store it: numpy scalars as Python
    numbers, numpy arrays, tuples and sets as lists, keys as strings, at any depth.

    dse's one JSON normaliser: ``json.dumps(plain(x))`` for whatever a command writes,
    a study stores or an export records. Anything else is left as it is, for
    :func:`json.dumps` to refuse.
    """
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x
