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
import time
import warnings
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from dse.errors import InputError
from dse.search.claims import StorageClaims
from dse.search.evaluate import Metrics
from dse.search.explorer import CandidateFailed, Explorer
from dse.search.frames import _non_finite, record_of
from dse.search.optuna_compat import (
    get_trial,
    gp_sampler,
    in_memory,
    next_trial_id,
    store_constraints,
    tell_unless_finished,
    trial_of,
)
from dse.search.space import Candidate, Space
from dse.search.spec import StudySpec, parse_spec
from dse.search.storage import (
    STUDIES_DIR,
    WAIT_S,
    assign_to_this_worker,
    beating,
    budget_used,
    fail_and_retry,
    fail_stale,
    find_storage,
    heartbeat_settings,
    shared_across_hosts,
    storage_for,
    study_lock,
    trial_heartbeat,
)
from dse.search.workers import Worker, registry_dir

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
    return optuna.samplers.GridSampler(space.grid_params(), seed=seed)


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
    stopped; see :func:`_run_trials`).

    Any number of processes, on any number of machines sharing the storage, may run one
    study at once; together they stop at ``n_trials``. ``worker`` is this process's index
    among them (default: how many are alive already on this host; it offsets the
    sampler's seed); ``on_start`` runs once this process is registered and the study is
    ready (it starts the other workers of ``dse study run --workers``). In a storage
    shared across machines, the seed is offset by a hash of this worker's host and
    process as well: two hosts' first workers must not draw the same points.
    """
    kind = storage or spec.storage
    folder = registry_dir(STUDIES_DIR, spec.name, kind)
    shared = kind != "memory"
    with Worker(folder) as registered:
        others = registered.others() if shared else []
        index = len(others) if worker is None else worker
        if worker is None and shared_across_hosts(kind):  # workers of other hosts are not seen here
            index += zlib.crc32(registered.path.stem.encode()) % 100_000
        study, explorer = create_study(
            spec, storage=storage, explorer=explorer, progress=progress, worker=index
        )
        if shared:  # trainings are claimed in the study's storage, which every host sees
            explorer.cache.claims = StorageClaims(study)
        if on_start is not None:
            on_start()
        target = n_trials if n_trials is not None else spec.n_trials
        several = others or on_start is not None or index > 0
        # share the trainings out first
        if several and budget_used(study.get_trials(deepcopy=False)) < target:
            explorer.train_free()
        _run_trials(
            study,
            objective_for(explorer),
            target,
            folder if shared else None,
            progress=progress,
            local=not shared_across_hosts(kind),
        )
    return study


def _run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], list[float]],
    target: int,
    folder: Path | None,
    *,
    progress: bool,
    local: bool = True,
) -> None:
    """Ask, score and tell trials until ``target`` trials count (:func:`budget_used`: running
    or finished, a lost trial's retry in its place), all workers' together, and none is
    running any more.

    Counting, judging stale trials and creating the next happen one worker at a time
    (:func:`study_lock`), so workers started together never overshoot; enqueued trials
    (retries first) run first. While the budget is spent but other workers still run
    trials, this one waits: if one of them dies, its trial is retried here. Every trial
    created ends: a candidate that fails is a FAIL trial with its reason; an interruption
    fails the trial, enqueues its retry and stops. ``local``: the storage is a file of
    this host (see :func:`~dse.search.storage.fail_stale`).
    """
    every, _ = heartbeat_settings()
    bar = tqdm(
        total=max(0, target - budget_used(study.get_trials(deepcopy=False))),
        disable=not progress,
        desc=study.study_name,
        leave=False,
    )
    private = folder is None and in_memory(study)
    judged = -float("inf")  # when stale trials were last looked for
    try:
        while True:
            with study_lock(study, folder):
                # a trial cannot go stale faster than a heartbeat: look once per interval
                if not private and time.monotonic() - judged >= every:
                    fail_stale(study, folder, local=local)
                    judged = time.monotonic()
                trials = study.get_trials(deepcopy=False)
                trial_id = None
                if budget_used(trials) < target:
                    trial_id = next_trial_id(study)
                    if not private:
                        assign_to_this_worker(study, trial_id)
                elif not any(t.state == TrialState.RUNNING for t in trials):
                    return
            if trial_id is None:  # the others' last trials: wait, in case one is lost
                time.sleep(WAIT_S)
                continue
            trial = trial_of(study, trial_id)  # the sampler's work, outside the lock
            with beating(every, trial_heartbeat(study, trial_id)) if not private else nullcontext():
                try:
                    values = objective(trial)
                except CandidateFailed as exc:
                    log.warning("trial %d failed: %s", trial.number, exc)
                    _tell_or_warn(study, trial, state=TrialState.FAIL)
                except BaseException:
                    fail_and_retry(study, get_trial(study, trial_id), "interrupted")
                    raise
                else:
                    _tell_or_warn(study, trial, values)
            bar.update()
    finally:
        bar.close()


def _tell_or_warn(
    study: optuna.Study,
    trial: optuna.Trial,
    values: list[float] | None = None,
    *,
    state: TrialState | None = None,
) -> None:
    """Tell ``trial``'s result, unless another worker judged it lost meanwhile (this
    worker stalled past the grace period): then its retry stands for it."""
    if not tell_unless_finished(study, trial, values, state=state):
        log.warning("trial %d was judged lost while it ran; its retry replaces it", trial.number)


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
