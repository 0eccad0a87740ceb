"""The joint search: one multi-objective Optuna study over the four knobs, created or
loaded from its storage and run by one worker or many.

A trial draws a :class:`~dse.search.space.Candidate`; its network comes from the training cache
(trained at most once per key, with every allowed exit attached) and everything else is
scored post hoc by the :class:`~dse.search.explorer.Explorer`. Metrics go into the trial's
user attributes in one write (``trial.user_attrs["dse"]``, one JSON string, read back by
:func:`~dse.search.frames.record_of`); constraint violations reach the sampler through
Optuna's ``constraints_func``. The spec's text is stored with the study, so a study can be
resumed, listed and reported by name alone. Reading a study back is :mod:`dse.search.frames`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from dse.errors import InputError, environment_error
from dse.search.claims import StorageClaims
from dse.search.evaluate import Metrics
from dse.search.explorer import CandidateFailed, Explorer
from dse.search.frames import _non_finite, record_of
from dse.search.grid_limit import check_grid_size
from dse.search.life import WorkerLife
from dse.search.optuna_compat import gp_sampler, store_constraints, trial_of
from dse.search.space import Candidate, Space
from dse.search.spec import StudySpec, parse_spec
from dse.search.storage import (
    STUDIES_DIR,
    budget_used,
    find_storage,
    shared_across_hosts,
    storage_for,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# samplers
# --------------------------------------------------------------------------------------


def _constraints_func(trial: FrozenTrial) -> list[float]:
    """Constraint values from the trial's one ``dse`` record (infeasible if missing)."""
    d = record_of(trial)
    return list(d["constraints"]) if d is not None else [1.0]


#: Samplers that take ``constraints_func`` (and store each trial's constraint values).
SAMPLERS_WITH_CONSTRAINTS = ("nsga2", "nsga3", "tpe", "gp")


def make_sampler(spec: StudySpec, space: Space, *, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded with the spec's seed plus ``worker`` (0 for the first
    worker of a study; parallel workers with one seed would all draw the same points).

    Constraints reach the samplers that use them through ``constraints_func``, which reads
    the values already stored with the trial's metrics: ``trial.set_constraint`` would cost
    one more storage write per constraint and trial, about 10% of a trial's time with the
    journal storage. (Optuna 5 marks ``constraints_func`` deprecated, for removal in 7.)
    """
    s = spec.sampler
    seed = spec.seed + worker
    kw: dict[str, Any] = {"seed": seed}
    if spec.constraints and s in SAMPLERS_WITH_CONSTRAINTS:
        kw["constraints_func"] = _constraints_func
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constraints_func.*", category=FutureWarning)
        if s == "nsga2":
            return optuna.samplers.NSGAIISampler(**kw)
        if s == "nsga3":
            return optuna.samplers.NSGAIIISampler(**kw)
        # A trial draws a threshold only when it uses an exit, a codec only at a cut that
        # sends (Space.suggest): TPE decomposes that changing space into groups; GP draws
        # what not every trial has at random, as it must, without a warning per trial.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if s == "tpe":
            return optuna.samplers.TPESampler(multivariate=True, group=True, **kw)
        if s == "gp":
            return gp_sampler(**kw)
    if s == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid = space.grid_params()  # Optuna's grid sampler lists every combination up front
    check_grid_size(math.prod(len(v) for v in grid.values()), where=spec.path or spec.name)
    return optuna.samplers.GridSampler(grid, seed=seed)


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------


def objective_for(
    explorer: Explorer, evaluate: Callable[[Candidate], Metrics] | None = None
) -> Callable[[optuna.Trial], list[float]]:
    """The study's objective; ``evaluate`` defaults to post-hoc scoring (the explorer's)."""
    spec = explorer.spec
    names = list(spec.objectives)
    score = evaluate or explorer.evaluate

    def objective(trial: optuna.Trial) -> list[float]:
        cand = explorer.space.suggest(trial)
        try:
            m = score(cand)
        except Exception as exc:  # a failing candidate is a failed trial
            if environment_error(exc) is not None:
                raise  # the machine's fault, not the candidate's (see WorkerLife.running)
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            raise CandidateFailed(reason) from exc
        metrics = m.as_dict()
        violations = [c.violation(metrics[c.metric]) for c in spec.constraints]
        bad = _non_finite(metrics) + [
            f"constraint {c.metric}"
            for c, v in zip(spec.constraints, violations, strict=True)
            if not math.isfinite(v)
        ]
        if bad:  # Optuna would store inf and a front, a ruler, a hypervolume break on it
            reason = (
                f"non-finite metrics: {', '.join(bad)} (a cost overflowed: check the "
                "profiles' figures and units)"
            )
            trial.set_user_attr("fail_reason", reason)
            raise CandidateFailed(reason)
        trial.set_user_attr(
            "dse",
            json.dumps({"knobs": cand.as_dict(), "metrics": metrics, "constraints": violations}),
        )
        if violations and spec.sampler not in SAMPLERS_WITH_CONSTRAINTS:
            # where no sampler stores them, stored as Optuna's samplers do, so that tools
            # reading the storage (optuna-dashboard) show feasibility
            store_constraints(trial, violations)
        return [metrics[k] for k in names]

    return objective


def _check_same_spec(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse a stored study of the same name that was run with another spec text."""
    old = study.user_attrs.get("spec")
    if old is not None and old != spec.text:
        raise InputError(
            spec.path or spec.name,
            "name",
            f"a different study named {spec.name!r} exists in its storage",
            f"rename the study in the spec, or delete studies/{spec.name}.journal",
        )


def stored_study(spec: StudySpec, *, storage: str | None = None) -> optuna.Study | None:
    """The spec's study if it has been run, else None (nothing is created); a study of the
    same name run with another spec is refused."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.name, storage=find_storage(spec.name, storage))
    except (InputError, KeyError):  # no storage file, or no such study in it
        return None
    _check_same_spec(study, spec)
    return study


def create_study(
    spec: StudySpec,
    *,
    storage: str | None = None,
    explorer: Explorer | None = None,
    progress: bool = True,
    worker: int = 0,
) -> tuple[optuna.Study, Explorer]:
    """Create (or load, if it exists) the study of ``spec`` in its storage.

    ``worker`` counts the other processes already running the study (it offsets the seed).
    """
    explorer = explorer or Explorer(spec, progress=progress)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = storage_for(spec.name, storage or spec.storage)
    study = optuna.create_study(
        study_name=spec.name,
        storage=st,
        directions=spec.directions,
        sampler=make_sampler(spec, explorer.space, worker=worker),
        load_if_exists=True,
    )
    _check_same_spec(study, spec)
    if study.metric_names is None:  # named axes in Optuna's own tools (optuna-dashboard)
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objectives))
    if study.user_attrs.get("spec") is None:
        study.set_user_attr("spec", spec.text)
        study.set_user_attr("spec_path", str(spec.path.resolve()) if spec.path else "")
    explorer.study = study
    return study, explorer


def run_study(
    spec: StudySpec,
    *,
    n_trials: int | None = None,
    storage: str | None = None,
    progress: bool = True,
    explorer: Explorer | None = None,
    worker: int | None = None,
    on_start: Callable[[], None] | None = None,
) -> optuna.Study:
    """Run the study until it has ``n_trials`` trials that count (resuming where it
    stopped; see :meth:`~dse.search.life.WorkerLife.trials`).

    Any number of processes, on any number of machines sharing the storage, may run one
    study at once; together they stop at ``n_trials``. ``worker`` is this process's index
    among them (default: the smallest no live worker of the study holds; it offsets the
    sampler's seed); ``on_start`` runs once this process is registered and the study is
    ready (it starts the other workers of ``dse study run --workers``). Before the first
    trial, the training cache is checked to be writable where the study has networks to
    train (one line, not a budget of failed trials).
    """
    kind = storage or spec.storage
    explorer = explorer or Explorer(spec, progress=progress)
    explorer.check_cache()  # before the study is created or joined
    study, explorer = create_study(spec, storage=storage, explorer=explorer, progress=progress)
    with WorkerLife(study, local=not shared_across_hosts(kind), index=worker) as life:
        offset = life.seed_offset(unlocked=worker is None and kind.startswith("grpc://"))
        if offset:  # parallel workers with one seed would all draw the same points
            study.sampler = make_sampler(spec, explorer.space, worker=offset)
        if not life.private:  # trainings are claimed in the study's storage, which every host sees
            explorer.cache.claims = StorageClaims(study)
        if on_start is not None:
            on_start()
        target = n_trials if n_trials is not None else spec.n_trials
        several = life.others or on_start is not None or offset > 0
        # share the trainings out first
        if several and budget_used(study.get_trials(deepcopy=False)) < target:
            explorer.train_free()
        _run_trials(study, objective_for(explorer), target, life, progress=progress)
    return study


def _run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], list[float]],
    target: int,
    life: WorkerLife,
    *,
    progress: bool,
) -> None:
    """Ask, score and tell the trials ``life`` hands this worker until ``target`` trials
    count. Every trial created ends: a candidate that fails is a FAIL trial with its
    reason; a trial another worker took over is dropped; an interruption fails the trial,
    enqueues its retry and stops (see :class:`~dse.search.life.WorkerLife`)."""
    bar = tqdm(
        total=max(0, target - budget_used(study.get_trials(deepcopy=False))),
        disable=not progress,
        desc=study.study_name,
        leave=False,
    )
    try:
        for trial_id in life.trials(target):
            with life.running(trial_id):
                trial = trial_of(study, trial_id)  # the sampler's work, outside the lock
                try:
                    values = objective(trial)
                except CandidateFailed as exc:
                    log.warning("trial %d failed: %s", trial.number, exc)
                    life.tell(trial, state=TrialState.FAIL)
                else:
                    life.tell(trial, values)
            bar.update()
    finally:
        bar.close()


def storage_place(spec: StudySpec, storage: str | None = None) -> tuple[str, str]:
    """The storage a run of ``spec`` opens: its kind (``journal``, ``sqlite``, ``memory``,
    a URL, a file) and where it is, as a person reads it (a URL's password hidden)."""
    kind = storage or spec.storage
    if kind in ("journal", "sqlite"):
        path = STUDIES_DIR / f"{spec.name}.{'journal' if kind == 'journal' else 'db'}"
        return kind, str(path)
    if kind == "memory":
        return kind, "memory (this process only)"
    if "://" in kind:
        return "url", re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", kind)
    return "file", kind


def stored_elsewhere(spec: StudySpec, storage: str | None = None) -> Path | None:
    """The file of ``spec``'s study in the ``studies/`` folder beside its spec (or beside
    the spec's folder), when a run from here would not open it and would start the study
    over in this folder's ``studies/`` instead; None when there is no such file, when a
    study of that name is stored here already, or when a storage is named."""
    if storage is not None or spec.path is None or spec.storage not in ("journal", "sqlite"):
        return None
    name = f"{spec.name}.{'journal' if spec.storage == 'journal' else 'db'}"
    here = (STUDIES_DIR / name).resolve()
    if here.exists():
        return None
    folder = spec.path.resolve().parent
    for base in (folder, folder.parent / STUDIES_DIR.name):
        if base.name != STUDIES_DIR.name:
            continue
        there = base / name
        if there.resolve() != here and there.exists():
            return there
    return None


def load_study(name: str, *, storage: str | None = None) -> tuple[optuna.Study, StudySpec]:
    """A stored study and the spec it was run with."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = find_storage(name, storage)
    try:
        study = optuna.load_study(study_name=name, storage=st)
    except KeyError:
        raise InputError(
            name, "study", "not found in its storage", "run `dse study run SPEC` first"
        ) from None
    text = study.user_attrs.get("spec")
    if text is None:
        raise InputError(name, "spec", "the study has no stored spec", "it was not made by dse")
    path = study.user_attrs.get("spec_path") or None
    spec = parse_spec(text, where=f"{name} (stored spec)", path=Path(path) if path else None)
    return study, spec


def resume_study(
    name: str, *, n_trials: int | None = None, storage: str | None = None, progress: bool = True
) -> optuna.Study:
    """Continue a stored study by name (see :func:`run_study`)."""
    _, spec = load_study(name, storage=storage)
    return run_study(spec, n_trials=n_trials, storage=storage, progress=progress)
