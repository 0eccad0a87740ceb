"""Every use dse makes of Optuna's private names, and of names that moved between the
Optuna versions dse supports (:data:`SUPPORTED`), in one place.

Optuna has no public way to reach a study's storage and ids (to write system attributes
and heartbeats, fail a trial another worker lost, claim a training for one worker), to
start a trial in two steps as :meth:`optuna.Study.ask` does (so that the sampler need not
hold the study's lock), to list a study's stale trials, or to compute a Pareto front and
a hypervolume on arrays. Each function here says which Optuna API it stands for and
since which Optuna version that has been there; ``tests/search/test_optuna_compat.py``
checks every behaviour relied on against the installed Optuna, so an Optuna release that
changes one fails there, by name, rather than somewhere in a study.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna import _hypervolume
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage, _heartbeat
from optuna.storages._cached_storage import _CachedStorage
from optuna.study import _multi_objective
from optuna.trial import FrozenTrial, TrialState

#: The Optuna versions dse supports, as pyproject.toml's ``optuna>=4.0,<7`` says: the
#: journal storage's public home (optuna.storages.journal) is 4.0's, and Optuna 7 removes
#: the samplers' ``constraints_func`` that dse passes (see dse.search.study.make_sampler).
SUPPORTED = (">=4.2", "<7")

#: The system attribute Optuna's samplers store a trial's constraint values under
#: (``optuna.study._constrained_optimization._CONSTRAINTS_KEY``, since Optuna 3.0), which
#: tools that read the storage (optuna-dashboard) show as feasibility.
CONSTRAINTS_KEY = "constraints"

#: Raised when a finished trial is written to: ``optuna.exceptions.UpdateFinishedTrialError``
#: since Optuna 4.3, a plain RuntimeError (which that class extends) before.
UpdateFinishedTrialError: type[Exception] = getattr(
    optuna.exceptions, "UpdateFinishedTrialError", RuntimeError
)


# --------------------------------------------------------------------------------------
# a study's storage and ids
# --------------------------------------------------------------------------------------


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes: ``Study._storage`` (since Optuna 1.0; an RDB
    storage comes wrapped in Optuna's cache, see :func:`rdb_of`)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """``study``'s id in its storage: ``Study._study_id`` (since Optuna 1.0)."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (its ``number`` counts within the study only):
    ``Trial._trial_id`` and ``FrozenTrial._trial_id`` (since Optuna 1.5)."""
    return trial._trial_id


def rdb_of(storage: BaseStorage) -> RDBStorage | None:
    """The RDB storage under ``storage``, or None for any other storage. A study wraps one
    in Optuna's cache (``optuna.storages._cached_storage._CachedStorage._backend``, since
    Optuna 2.0), which dse wraps in its retries (``RetryingStorage._backend``)."""
    inner = storage
    for _ in range(3):
        if isinstance(inner, RDBStorage):
            return inner
        if not isinstance(inner, _CachedStorage) and type(inner).__name__ != "RetryingStorage":
            return None
        inner = inner._backend
    return None


def cached_rdb(rdb: RDBStorage) -> BaseStorage:
    """``rdb`` in Optuna's in-process cache, as :func:`optuna.storages.get_storage` wraps an
    RDB storage (``_CachedStorage``, since Optuna 2.0): a storage that wraps the RDB one
    again would otherwise reach the database for every read."""
    return _CachedStorage(rdb)


def journal_file(storage: BaseStorage) -> str | None:
    """The path of the file under a journal storage (None for any other storage):
    ``JournalStorage._backend`` (since Optuna 3.1) and ``JournalFileBackend._file_path``
    (since Optuna 4.0)."""
    if not isinstance(storage, JournalStorage):
        return None
    path = getattr(storage._backend, "_file_path", None)
    return str(path) if path is not None else None


def in_memory(study: optuna.Study) -> bool:
    """Whether ``study`` lives in this process's memory only (Optuna's
    :class:`~optuna.storages.InMemoryStorage`), seen by no other worker."""
    return isinstance(storage_of(study), InMemoryStorage)


# --------------------------------------------------------------------------------------
# system attributes (Study.system_attrs and Trial.set_system_attr are deprecated since
# Optuna 3.1; the storage's methods of the same names are not)
# --------------------------------------------------------------------------------------


def get_trial(study: optuna.Study, trial_id: int) -> FrozenTrial:
    """The trial as stored now: ``BaseStorage.get_trial`` through :func:`storage_of`."""
    return storage_of(study).get_trial(trial_id)


def set_trial_system_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """Write a system attribute of a trial (raises :data:`UpdateFinishedTrialError` once
    it has finished): ``BaseStorage.set_trial_system_attr`` through :func:`storage_of`."""
    storage_of(study).set_trial_system_attr(trial_id, key, value)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attributes as stored now (no cache):
    ``BaseStorage.get_study_system_attrs`` through :func:`storage_of`."""
    return storage_of(study).get_study_system_attrs(study_id_of(study))


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Write a system attribute of the study: ``BaseStorage.set_study_system_attr``
    through :func:`storage_of`."""
    storage_of(study).set_study_system_attr(study_id_of(study), key, value)


def store_constraints(trial: optuna.Trial, values: Sequence[float]) -> None:
    """Store a trial's constraint values where Optuna's samplers store theirs
    (:data:`CONSTRAINTS_KEY`), for a sampler that stores none: ``Trial.storage`` (since
    Optuna 1.5) and :func:`trial_id_of`."""
    trial.storage.set_trial_system_attr(trial_id_of(trial), CONSTRAINTS_KEY, list(values))


# --------------------------------------------------------------------------------------
# starting and ending trials
# --------------------------------------------------------------------------------------


def next_trial_id(study: optuna.Study) -> int:
    """Start the next trial, an enqueued (WAITING) one first, and return its id: the first
    half of :meth:`optuna.Study.ask`, the half that must run one worker at a time. It reads
    the storage afresh (``Study._thread_local.cached_all_trials``, since Optuna 3.2), pops
    a waiting trial (``Study._pop_waiting_trial_id``, since 2.9), else creates one
    (``BaseStorage.create_new_trial``)."""
    study._thread_local.cached_all_trials = None
    trial_id = study._pop_waiting_trial_id()
    if trial_id is None:
        trial_id = storage_of(study).create_new_trial(study_id_of(study))
    return trial_id


def trial_of(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The :class:`optuna.Trial` of a started trial, whose first suggestion runs the
    sampler: the second half of :meth:`optuna.Study.ask` (Optuna's docs advise against
    calling this constructor directly; ask does, since Optuna 2.x)."""
    return optuna.Trial(study, trial_id)


def set_trial_failed(study: optuna.Study, trial_id: int) -> bool:
    """Move a RUNNING trial to FAIL; False if the storage left its state as it was.
    Raises :data:`UpdateFinishedTrialError` if it had finished: ``BaseStorage.
    set_trial_state_values`` (since Optuna 3.0) through :func:`storage_of`."""
    return bool(storage_of(study).set_trial_state_values(trial_id, TrialState.FAIL))


def tell_unless_finished(
    study: optuna.Study,
    trial: optuna.Trial,
    values: list[float] | None = None,
    *,
    state: TrialState | None = None,
) -> bool:
    """:meth:`optuna.Study.tell` the trial's result; False, telling nothing, if the trial
    had finished meanwhile (another worker failed it as lost). Optuna says so with
    :data:`UpdateFinishedTrialError` when the trial finishes while tell writes, and with a
    ValueError when it had finished before (``Cannot tell a FAIL trial.``, since Optuna
    3.0); a ValueError for a trial still running (bad values or state) is raised."""
    try:
        study.tell(trial, values, state=state)
    except UpdateFinishedTrialError:
        return False
    except ValueError:
        if not get_trial(study, trial_id_of(trial)).state.is_finished():
            raise
        return False
    return True


def retry_callback(max_retry: int) -> Any:
    """Optuna's retry of a lost trial, called with (study, failed trial): it enqueues a
    WAITING copy with the same parameters, up to ``max_retry`` times per trial.
    :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` since Optuna 4.9, its older
    name ``RetryFailedTrialCallback`` (deprecated in 4.9, removed in 6.0) before."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:
        cls = optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(max_retry=max_retry)


def retried_numbers(trial: FrozenTrial) -> list[int]:
    """The numbers of the failed trials ``trial`` retries (empty for a first try): the
    ``retry_history`` system attribute that :func:`retry_callback` writes, read as the
    callback's own ``retry_history`` does (since Optuna 2.8)."""
    return list(trial.system_attrs.get("retry_history", ()))


# --------------------------------------------------------------------------------------
# heartbeats
# --------------------------------------------------------------------------------------


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether ``storage`` keeps Optuna's own heartbeat (an RDB or gRPC storage opened with
    a ``heartbeat_interval``): ``optuna.storages._heartbeat.is_heartbeat_enabled`` (since
    Optuna 3.0)."""
    return _heartbeat.is_heartbeat_enabled(storage)


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of the study's RUNNING trials whose heartbeat is older than the storage's
    grace period (only where :func:`heartbeat_enabled`): ``BaseHeartbeat.
    _get_stale_trial_ids`` (since Optuna 3.0), what ``optuna.storages.fail_stale_trials``
    reads before it fails them."""
    return list(storage_of(study)._get_stale_trial_ids(study_id_of(study)))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Pareto fronts and hypervolume on arrays
# --------------------------------------------------------------------------------------


def is_pareto_front(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``losses`` [n, m] (n >= 1, every column
    minimised), equal rows all kept: ``optuna.study._multi_objective._is_pareto_front``
    with ``assume_unique_lexsorted=False`` (since Optuna 4.0)."""
    return _multi_objective._is_pareto_front(losses, assume_unique_lexsorted=False)


def compute_hypervolume(losses: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``losses`` [n, m] (n >= 1, minimised) up to
    ``reference``; duplicate and dominated rows add nothing:
    ``optuna._hypervolume.compute_hypervolume`` (since Optuna 4.0)."""
    return float(_hypervolume.compute_hypervolume(losses, reference))


def gp_sampler(**kw: Any) -> optuna.samplers.BaseSampler:
    """Optuna's GP sampler that draws the parameters not every trial has (a dynamic search
    space) at random without a warning per trial: ``warn_independent_sampling=False``
    where the installed ``GPSampler`` takes that argument (Optuna 5.1 does)."""
    import inspect

    if "warn_independent_sampling" in inspect.signature(optuna.samplers.GPSampler).parameters:
        kw["warn_independent_sampling"] = False
    return optuna.samplers.GPSampler(**kw)
