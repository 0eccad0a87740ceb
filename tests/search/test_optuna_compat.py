"""What dse.search.optuna_compat relies on, one test per behaviour, run against the
installed Optuna; and the range of Optuna versions dse supports."""

from __future__ import annotations

import re
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.storages import InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from dse.search import optuna_compat as oc

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _journal(tmp_path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))


def _sqlite(tmp_path: Path, **kw: int) -> RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(f"sqlite:///{tmp_path / 's.db'}", **kw)


def test_pyproject_states_the_supported_range_and_the_installed_optuna_is_inside() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (optuna_dep,) = [d for d in deps if re.match(r"optuna\b", d)]
    assert optuna_dep == "optuna>=4.2,<7" == "optuna" + ",".join(oc.SUPPORTED)
    assert Version(optuna.__version__) in SpecifierSet(",".join(oc.SUPPORTED))


def test_storage_of_and_study_id_of_name_the_studys_storage_and_its_id() -> None:
    storage = InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage)
    assert oc.storage_of(study) is storage
    assert oc.study_id_of(study) == storage.get_study_id_from_name("s")
    assert oc.in_memory(study)


def test_rdb_of_finds_the_rdb_storage_a_study_wraps_and_nothing_else(tmp_path: Path) -> None:
    rdb = _sqlite(tmp_path)
    study = optuna.create_study(storage=rdb)
    assert oc.storage_of(study) is not rdb  # Optuna wraps it in its cache
    assert oc.rdb_of(oc.storage_of(study)) is rdb
    journal = optuna.create_study(storage=_journal(tmp_path))
    assert oc.rdb_of(oc.storage_of(journal)) is None and not oc.in_memory(journal)


def test_trial_id_of_reads_the_storage_id_of_a_trial_and_of_its_frozen_copy() -> None:
    study = optuna.create_study()
    study.ask()  # a first trial: ids and numbers need not agree in every storage
    trial = study.ask()
    (_, frozen) = study.get_trials(deepcopy=False)
    assert oc.trial_id_of(trial) == oc.trial_id_of(frozen)
    assert oc.get_trial(study, oc.trial_id_of(trial)).number == trial.number == 1


def test_system_attributes_written_through_the_storage_are_read_back(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_journal(tmp_path))
    trial = study.ask()
    oc.set_trial_system_attr(study, oc.trial_id_of(trial), "dse:x", [1, 2])
    oc.set_study_system_attr(study, "dse:y", {"a": 1})
    again = optuna.load_study(study_name=study.study_name, storage=_journal(tmp_path))
    assert again.trials[0].system_attrs["dse:x"] == [1, 2]
    assert oc.study_system_attrs(again)["dse:y"] == {"a": 1}


def test_a_finished_trial_refuses_writes_with_the_named_error() -> None:
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(oc.UpdateFinishedTrialError):
        oc.set_trial_system_attr(study, oc.trial_id_of(trial), "dse:x", 1)
    with pytest.raises(oc.UpdateFinishedTrialError):
        oc.set_trial_failed(study, oc.trial_id_of(trial))


def test_set_trial_failed_fails_a_running_trial() -> None:
    study = optuna.create_study()
    trial = study.ask()
    assert oc.set_trial_failed(study, oc.trial_id_of(trial))
    assert study.trials[0].state == TrialState.FAIL


@pytest.mark.filterwarnings("ignore:.*constraints_func.*:FutureWarning")
def test_constraints_are_stored_under_the_key_optunas_samplers_use() -> None:
    sampler = optuna.samplers.NSGAIISampler(seed=0, constraints_func=lambda t: [0.5, -1.0])
    theirs = optuna.create_study(sampler=sampler, directions=["minimize", "minimize"])
    theirs.optimize(lambda t: [t.suggest_float("x", 0, 1), 0.0], n_trials=1)
    assert list(theirs.trials[0].system_attrs[oc.CONSTRAINTS_KEY]) == [0.5, -1.0]
    ours = optuna.create_study()
    trial = ours.ask()
    oc.store_constraints(trial, (0.25,))
    assert ours.trials[0].system_attrs[oc.CONSTRAINTS_KEY] == [0.25]


def test_next_trial_id_runs_an_enqueued_trial_first_then_a_new_one() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"x": 0.125})
    first = oc.next_trial_id(study)
    trial = oc.trial_of(study, first)
    assert trial.suggest_float("x", 0, 1) == 0.125  # the enqueued parameters
    second = oc.next_trial_id(study)
    assert second != first
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.RUNNING, TrialState.RUNNING]
    assert oc.trial_of(study, second).number == 1


def test_next_trial_id_lets_the_sampler_see_trials_other_processes_added(tmp_path: Path) -> None:
    """The sampler reads a per-study cache of the trials; next_trial_id empties it, as
    Study.ask does, or a worker's sampler would never see the other workers' trials."""
    ours = optuna.create_study(study_name="s", storage=_journal(tmp_path))
    theirs = optuna.load_study(study_name="s", storage=_journal(tmp_path))
    trial = oc.trial_of(ours, oc.next_trial_id(ours))
    trial.suggest_float("x", 0, 1)
    cached = ours._get_trials(deepcopy=False, use_cache=True)  # what samplers read
    assert len(cached) == 1
    theirs.tell(theirs.ask(), 1.0)
    assert len(ours._get_trials(deepcopy=False, use_cache=True)) == 1  # still the cache
    oc.next_trial_id(ours)
    assert len(ours._get_trials(deepcopy=False, use_cache=True)) == 3


def test_tell_unless_finished_tells_a_running_trial_and_skips_a_failed_one() -> None:
    study = optuna.create_study()
    trial = study.ask()
    assert oc.tell_unless_finished(study, trial, [1.0])
    assert study.trials[0].state == TrialState.COMPLETE
    lost = study.ask()
    oc.set_trial_failed(study, oc.trial_id_of(lost))  # another worker judged it lost
    assert not oc.tell_unless_finished(study, lost, [2.0])
    assert not oc.tell_unless_finished(study, lost, state=TrialState.FAIL)
    assert study.trials[1].state == TrialState.FAIL and study.trials[1].values is None


def test_tell_unless_finished_still_raises_other_errors() -> None:
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(ValueError, match="Cannot tell with state"):
        oc.tell_unless_finished(study, trial, [1.0], state=TrialState.RUNNING)
    with pytest.raises(ValueError, match="Values cannot be specified"):
        oc.tell_unless_finished(study, trial, [1.0], state=TrialState.FAIL)
    assert study.trials[0].state == TrialState.RUNNING


def test_the_retry_callback_enqueues_a_copy_that_names_its_original() -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    oc.set_trial_failed(study, oc.trial_id_of(trial))
    retry = oc.retry_callback(1)
    retry(study, study.trials[0])
    copy = study.trials[1]
    assert copy.state == TrialState.WAITING
    assert oc.retried_numbers(copy) == [0] and oc.retried_numbers(study.trials[0]) == []
    again = oc.trial_of(study, oc.next_trial_id(study))
    assert again.number == 1 and again.suggest_float("x", 0, 1) == trial.params["x"]
    oc.set_trial_failed(study, oc.trial_id_of(again))
    retry(study, study.trials[1])  # max_retry 1: no third try
    assert len(study.trials) == 2


def test_only_a_storage_opened_with_an_interval_keeps_optunas_heartbeat(tmp_path: Path) -> None:
    beating = _sqlite(tmp_path, heartbeat_interval=1, grace_period=2)
    assert oc.heartbeat_enabled(beating)
    study = optuna.create_study(storage=beating)
    assert oc.heartbeat_enabled(oc.storage_of(study))  # through Optuna's cache too
    assert not oc.heartbeat_enabled(_journal(tmp_path))
    assert not oc.heartbeat_enabled(InMemoryStorage())


def test_stale_trial_ids_are_the_running_trials_silent_past_the_grace_period(
    tmp_path: Path,
) -> None:
    storage = _sqlite(tmp_path, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage)
    silent = oc.next_trial_id(study)
    storage.record_heartbeat(silent)
    time.sleep(3)
    beating = oc.next_trial_id(study)
    storage.record_heartbeat(beating)
    assert oc.stale_trial_ids(study) == [silent]


def test_is_pareto_front_keeps_every_copy_of_a_front_point() -> None:
    losses = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.0, 1.0], [0.6, 0.6]])
    assert oc.is_pareto_front(losses).tolist() == [True, True, True, False, True, False]


def test_compute_hypervolume_counts_each_dominated_region_once() -> None:
    ref = np.array([1.0, 1.0])
    assert oc.compute_hypervolume(np.array([[0.0, 0.0]]), ref) == pytest.approx(1.0)
    corners = np.array([[0.0, 0.5], [0.5, 0.0], [0.5, 0.0], [0.75, 0.75]])
    assert oc.compute_hypervolume(corners, ref) == pytest.approx(0.75)
