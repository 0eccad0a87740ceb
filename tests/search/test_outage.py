"""Workers ride out a storage outage: PostgreSQL restarted (``pg_ctl restart -m fast``)
and the gRPC proxy restarted mid-study lose no trial and kill no worker; an outage past
``DSE_OUTAGE_S`` is one line and exit code 2, and its trial in flight is retried."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import spec
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState
from outage import Proxy, dse_env, postgres, slow_dse
from pg import new_database

from dse.errors import InputError
from dse.search.storage import LOST_ATTR, storage_for
from dse.search.storage_retry import RetryingStorage, StorageUnreachable, unreachable

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # servers stopped and started, for seconds


def _states(name: str, storage: str) -> dict[str, int]:
    out: dict[str, int] = {}
    study = optuna.load_study(study_name=name, storage=storage_for(name, storage))
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _complete_soon(
    name: str, database: str, at_least: int, *, running: bool = False, timeout: float = 300
) -> None:
    """Wait until ``at_least`` trials of the study are complete (read from the database),
    and (``running``) one is running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            states = _states(name, database)
        except (KeyError, InputError):  # not created yet
            states = {}
        if states.get("COMPLETE", 0) >= at_least and (states.get("RUNNING") or not running):
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}: fewer than {at_least} complete trials after {timeout} s")


def _finish(workers: list[subprocess.Popen[str]]) -> list[str]:
    errs = []
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
        assert "Traceback" not in err, err
        errs.append(err)
    return errs


def _spec(folder: Path, name: str, n_trials: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(spec(name, n_trials=n_trials, sampler="random"))
    return path


def test_two_workers_ride_out_a_postgres_restart(study_folder: Path, shared_cache: Path) -> None:
    with postgres() as server:
        if server is None:
            pytest.skip("no PostgreSQL here (install Debian's postgresql)")
        db = new_database(server.url)
        path = _spec(study_folder, "restarted", 24)
        env = dse_env(DSE_CACHE=str(shared_cache))
        argv = ("study", "run", str(path), "--storage", db, "--quiet")
        workers = [slow_dse(0.4, *argv, env=env) for _ in range(2)]
        _complete_soon("restarted", db, 4)
        server.restart(down_s=3.0)  # every connection cut, the server away for seconds
        errs = _finish(workers)
        assert any("storage back after" in e for e in errs), errs
        assert _states("restarted", db) == {"COMPLETE": 24}  # none lost, none left RUNNING


def test_two_workers_ride_out_a_restart_of_the_grpc_proxy(
    study_folder: Path, postgres: str, shared_cache: Path
) -> None:
    env = dse_env(DSE_CACHE=str(shared_cache))
    proxy = Proxy(postgres, env)
    proxy.start()
    try:
        path = _spec(study_folder, "proxied", 24)
        argv = ("study", "run", str(path), "--storage", proxy.url, "--quiet")
        workers = [slow_dse(0.4, *argv, env=env) for _ in range(2)]
        _complete_soon("proxied", postgres, 4)
        proxy.stop()
        time.sleep(4.0)  # down for 4 s, as the probe restarted it
        proxy.start()
        errs = _finish(workers)
        assert any("storage back after" in e for e in errs), errs
    finally:
        proxy.stop()
    assert _states("proxied", postgres) == {"COMPLETE": 24}


def test_an_outage_past_the_limit_is_one_line_and_its_trial_is_retried(
    study_folder: Path, postgres: str, shared_cache: Path
) -> None:
    env = dse_env(DSE_CACHE=str(shared_cache), DSE_OUTAGE_S="3")
    proxy = Proxy(postgres, env)
    proxy.start()
    try:
        path = _spec(study_folder, "gone", 4)
        worker = slow_dse(
            3.0, "study", "run", str(path), "--storage", proxy.url, "--quiet", env=env
        )
        _complete_soon("gone", postgres, 1, running=True)  # 3 s into a trial at most
        proxy.stop()  # for good
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 2, err
        lines = [ln for ln in err.splitlines() if ln.startswith("dse: error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert "out of reach for 3 s" in lines[0] and "DSE_OUTAGE_S" in lines[0], lines[0]
        left = _states("gone", postgres)
        assert left.get("RUNNING") == 1  # its trial in flight, for the next worker to retry
        proxy.start()
        resumed = subprocess.run(
            [sys.executable, "-m", "dse.cli", "study", "resume", "gone", "--storage", proxy.url]
            + ["--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
    finally:
        proxy.stop()
    study = optuna.load_study(study_name="gone", storage=storage_for("gone", postgres))
    trials = study.get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert len(lost) == 1 and "ended without finishing it" in lost[0].system_attrs[LOST_ATTR]


# --------------------------------------------------------------------------------------
# what is retried, in this process
# --------------------------------------------------------------------------------------


class _Flaky(InMemoryStorage):
    """An in-memory storage whose reads fail ``fails`` times with ``error`` first."""

    def __init__(self, error: BaseException, fails: int):
        super().__init__()
        self.error, self.fails, self.calls = error, fails, 0

    def get_all_trials(self, *a: Any, **k: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error
        return super().get_all_trials(*a, **k)


def _sqlalchemy_error(message: str) -> BaseException:
    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, Exception(message))


def _pending_rollback() -> BaseException:
    """What a session whose connection broke raises at its next statement (Optuna's
    fallback query after a failed one, in the same session)."""
    from sqlalchemy.exc import PendingRollbackError

    err = PendingRollbackError("Can't reconnect until invalid transaction is rolled back.")
    err.__context__ = _sqlalchemy_error("server closed the connection unexpectedly")
    return err


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionRefusedError("refused"), True),
        (_sqlalchemy_error("server closed the connection unexpectedly"), True),
        (_sqlalchemy_error("terminating connection due to administrator command"), True),
        (_sqlalchemy_error("FATAL:  the database system is starting up"), True),
        (optuna.exceptions.StorageInternalError("commit failed"), False),
        (_sqlalchemy_error("no such table: trials"), False),
        (KeyError("no such study"), False),
        (optuna.exceptions.UpdateFinishedTrialError("finished"), False),
    ],
)
def test_only_an_unreachable_server_is_retried(error: BaseException, retried: bool) -> None:
    assert unreachable(error) is retried
    wrapped = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = error
    assert unreachable(wrapped) is retried


def test_a_call_is_retried_until_the_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_OUTAGE_S", "30")
    flaky = _Flaky(_sqlalchemy_error("server closed the connection unexpectedly"), fails=3)
    storage = RetryingStorage(flaky, where="db")
    study = optuna.create_study(storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert flaky.calls > 3 and len(study.get_trials()) == 2
    assert storage.back_at is not None


def test_an_outage_past_the_limit_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_OUTAGE_S", "0.5")
    storage = RetryingStorage(_Flaky(ConnectionRefusedError("refused"), fails=10**6), where="db")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    start = time.monotonic()
    with pytest.raises(StorageUnreachable) as caught:
        storage.get_all_trials(study_id)
    assert 0.5 <= time.monotonic() - start < 10
    text = str(caught.value)
    assert "\n" not in text and text.startswith("db: storage: out of reach for 0.5 s")
    assert "ConnectionRefusedError: refused" in text


def test_a_wrong_request_is_raised_at_once() -> None:
    storage = RetryingStorage(_Flaky(KeyError("gone"), fails=1), where="db")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    start = time.monotonic()
    with pytest.raises(KeyError):
        storage.get_all_trials(study_id)
    assert time.monotonic() - start < 1
