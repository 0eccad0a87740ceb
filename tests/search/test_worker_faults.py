"""Workers that ride out faults other than an outage: a live worker is never judged dead
for its folder or its spelling of the storage; a worker paused past the grace period
drops the trial taken over from it and goes on; workers started together on a new
database all start; the machine's failures spend no budget; claims of a dead worker of
this host end at once; every training is counted, per worker; cache entries follow the
umask."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import torch
from helpers import assert_refused, spec
from optuna.trial import TrialState
from other_worker import hold_claim
from outage import dse_env, slow_dse

from dse.cli import main
from dse.errors import InputError
from dse.nets import cache as cache_mod
from dse.nets.cache import Cache, key_of
from dse.search.claims import PREFIX, StorageClaims
from dse.search.explorer import Explorer
from dse.search.life import WorkerLife
from dse.search.optuna_compat import set_trial_failed, trial_of
from dse.search.spec import parse_spec
from dse.search.storage import LOST_ATTR, budget_used, storage_for
from dse.search.study import create_study, load_study, run_study
from dse.search.workers import registered

FAST_BEAT = {"DSE_HEARTBEAT_S": "1", "DSE_GRACE_S": "3"}


def _spec(folder: Path, name: str, n_trials: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(spec(name, n_trials=n_trials, sampler="random"))
    return path


def _trials(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=storage_for(name, storage))
    return study.get_trials(deepcopy=False)


def _wait_running(name: str, storage: str, *, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if any(t.state == TrialState.RUNNING for t in _trials(name, storage)):
                return
        except KeyError:  # not created yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name}: no trial running after {timeout} s")


def _ok(p: subprocess.Popen[str]) -> str:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0 and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------------------
# liveness
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.heavy  # 9 to 14 s, processes waiting on each other
def test_workers_in_other_folders_spelling_the_journal_otherwise_see_each_other(
    tmp_path: Path, shared_cache: Path
) -> None:
    """One worker in folder a names the journal absolutely, the other in folder b by a
    relative path: neither judges the other dead, no trial is lost, none crashes."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    journal = a / "shared.journal"
    path = _spec(tmp_path, "folders", 4)
    env = dse_env(DSE_CACHE=str(shared_cache), DSE_HEARTBEAT_S="1", DSE_GRACE_S="60")
    first = slow_dse(
        3.0, "study", "run", str(path), "--storage", str(journal), "--quiet", env=env, cwd=a
    )
    _wait_running("folders", str(journal))
    second = slow_dse(
        0.0,
        *("study", "run", str(path), "--storage", "../a/shared.journal", "--quiet"),
        env=env,
        cwd=b,
    )
    _ok(second), _ok(first)
    trials = _trials("folders", str(journal))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert not [t for t in trials if LOST_ATTR in t.system_attrs]
    workers = {t.system_attrs["dse:worker"] for t in trials}
    assert len(workers) == 2  # both ran trials of the one study


@pytest.mark.slow
@pytest.mark.heavy  # 9 to 14 s, processes waiting on each other
def test_a_worker_paused_past_the_grace_period_drops_its_trial_and_goes_on(
    study_folder: Path, shared_cache: Path
) -> None:
    """SIGSTOP for longer than the grace period: the other worker takes the trial over;
    resumed, the paused worker finds out at its next write, drops it and ends cleanly."""
    path = _spec(study_folder, "paused", 3)
    env = dse_env(DSE_CACHE=str(shared_cache), **FAST_BEAT)
    paused = slow_dse(4.0, "study", "run", str(path), "--quiet", env=env)
    _wait_running("paused", "journal")
    paused.send_signal(signal.SIGSTOP)
    try:
        other = slow_dse(0.0, "study", "run", str(path), "--quiet", env=env)
        _ok(other)  # it waited for the paused trial, took it over, ran its retry
    finally:
        paused.send_signal(signal.SIGCONT)
    err = _ok(paused)
    assert "taken over by another worker" in err or "judged lost while it ran" in err, err
    trials = _trials("paused", "journal")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert len(lost) == 1 and "no heartbeat" in lost[0].system_attrs[LOST_ATTR]
    assert budget_used(trials) == 3


def test_a_trial_taken_over_before_its_first_suggestion_is_dropped(
    study_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The write that finds out may be the sampler's first suggestion."""
    parsed = parse_spec(spec("taken", n_trials=2, sampler="random"), where="t.toml")
    explorer = Explorer(parsed, progress=False)
    study, _ = create_study(parsed, explorer=explorer)
    with WorkerLife(study) as life:
        trial_id = next(life.trials(1))
        set_trial_failed(study, trial_id)  # another worker failed it meanwhile
        with life.running(trial_id):
            explorer.space.suggest(trial_of(study, trial_id))
        assert "taken over by another worker" in caplog.text
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


# --------------------------------------------------------------------------------------
# workers started together on a new database
# --------------------------------------------------------------------------------------

OPEN_TOGETHER = """
import sys, time
from pathlib import Path
from dse.errors import InputError
from dse.search.storage import storage_for
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
try:  # what every worker does first: open the storage, its tables created if missing
    storage_for("together", sys.argv[1])
except InputError as exc:
    sys.exit(f"dse: error: {exc}")
"""


def _open_together(url: str, folder: Path, n: int) -> list[subprocess.CompletedProcess[str]]:
    go = folder / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, url, str(go)],
            env=dse_env(),
            cwd=folder,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_workers_started_together_on_a_new_database_all_start(
    kind: str, study_folder: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        str(request.getfixturevalue("postgres"))
        if kind == "postgres"
        else f"sqlite:///{study_folder / 'new.db'}"
    )
    done = _open_together(url, study_folder, 6)
    assert [p.returncode for p in done] == [0] * 6, [p.stderr for p in done]
    assert optuna.get_all_study_names(storage_for("together", url)) == []


def test_a_database_that_refuses_is_not_blamed_on_the_url(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The URL reached a database that refused to set up the tables: the line says so."""
    db = study_folder / "ro.db"
    db.write_bytes(b"")
    os.chmod(db, 0o444)
    if os.access(db, os.W_OK):  # root writes anyway: a file that is no database instead
        db.write_bytes(b"not a database, " * 100)
    assert main(["study", "status", "x", "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused to set up the study tables" in err
    assert "check the URL" not in err


# --------------------------------------------------------------------------------------
# the machine's failures spend no budget
# --------------------------------------------------------------------------------------


def test_a_cache_under_a_file_is_one_line_before_any_trial(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (study_folder / "file").write_text("not a folder")
    monkeypatch.setenv("DSE_CACHE", str(study_folder / "file" / "cache"))
    path = _spec(study_folder, "nocache", 20)
    assert main(["study", "run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and f"DSE_CACHE: cannot write there: {study_folder / 'file'} is a file" in err
    )
    assert not (study_folder / "studies" / "nocache.journal").exists()  # no budget spent
    assert main(["train", "mlp", "--data", "digits", "--density", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err and "Traceback" not in err


def test_a_read_only_cache_is_refused_before_anything_is_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only disk (faked: as root, permissions do not stop a write)."""

    def read_only(*a: object, **k: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", read_only)
    assert_refused(
        Cache(tmp_path / "cache").check_writable,
        field="cache",
        where=tmp_path / "cache",
        words=["cannot write there: Read-only file system"],
    )
    assert not (tmp_path / "cache").exists()  # nothing created either


def test_a_trial_the_machine_fails_does_not_count_and_stops_the_worker(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = parse_spec(spec("denied", n_trials=6, sampler="random"), where="d.toml")
    explorer = Explorer(parsed, progress=False)
    plain = explorer.evaluate
    calls = []

    def third_is_denied(cand):  # type: ignore[no-untyped-def]
        calls.append(cand)
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied", "/cache/ab/ab.dse")
        return plain(cand)

    monkeypatch.setattr(explorer, "evaluate", third_is_denied)
    with pytest.raises(InputError, match="/cache/ab/ab.dse: environment: Permission denied"):
        run_study(parsed, progress=False, explorer=explorer)
    study, _ = load_study("denied")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.WAITING,  # its retry, with its parameters
    ]
    assert budget_used(trials) == 2 and "fail_reason" not in trials[2].user_attrs
    assert trials[3].params == trials[2].params
    study = run_study(parsed, progress=False, explorer=Explorer(parsed, progress=False))
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials()) == 6


# --------------------------------------------------------------------------------------
# claims and trainings
# --------------------------------------------------------------------------------------


def test_a_claim_of_another_hosts_worker_is_waited_out_for_the_grace_period(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its process cannot be seen from here: only its beats tell (the same host's dead
    claims end at once: tests/search/test_shared_storage.py)."""
    monkeypatch.setenv("DSE_HEARTBEAT_S", "1")
    monkeypatch.setenv("DSE_GRACE_S", "2")
    study = optuna.create_study(study_name="claims", storage=storage_for("claims"))
    key = "k" * 64
    study._storage.set_study_system_attr(  # a live claim as another host writes it
        study._study_id,
        f"{PREFIX}{key}:0000",
        {"worker": "elsewhere-12@00000000:1", "since": time.time(), "beat": time.time()},
    )
    claims = StorageClaims(study)
    assert claims.busy(key)
    start = time.monotonic()
    with claims.hold(key, ready=lambda: False):
        took = time.monotonic() - start
    assert 2.0 <= took <= 10.0


@pytest.mark.slow
@pytest.mark.heavy  # 9 to 14 s, processes waiting on each other
def test_status_counts_every_training_per_worker(
    study_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two workers with caches of their own each train the study's two networks: four
    trainings, each network trained twice, and the status says so."""
    path = _spec(study_folder, "twice", 4)
    for n_trials, cache in ((4, "a"), (8, "b")):
        env = dse_env(DSE_CACHE=str(tmp_path_factory.mktemp(cache)))
        done = subprocess.run(
            [sys.executable, "-m", "dse.cli", "study", "run", str(path), "--quiet"]
            + ["--n-trials", str(n_trials)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    assert main(["study", "status", "twice", "--json", "status.json"]) == 0
    info = json.loads((study_folder / "status.json").read_text())
    assert info["trainings_run"] == 4 and info["trained_twice"] == 2
    assert sorted(info["trainings_by_worker"].values()) == [2, 2]


def test_a_worker_that_would_wait_on_a_claim_trains_another_key_first(tmp_path: Path) -> None:
    """The network a trial needs is in training elsewhere: this worker trains the one no
    one has taken, then waits for the other's (here: takes it once the other gives up)."""
    parsed = parse_spec(spec("busy", sampler="random"), where="b.toml")
    cache = Cache(tmp_path / "fresh")
    explorer = Explorer(parsed, cache=cache, progress=False)
    networks = explorer.space.networks()
    keys = [explorer.network_spec(m, d).key for m, d in networks]
    other = hold_claim(cache.root, keys[0])  # another worker trains the first network

    def give_up_once_the_rest_is_trained() -> None:
        deadline = time.time() + 300
        while not all(cache.path(k).exists() for k in keys[1:]) and time.time() < deadline:
            time.sleep(0.05)
        assert other.stdin is not None
        other.stdin.close()  # it ends without storing the network

    waiter = threading.Thread(target=give_up_once_the_rest_is_trained)
    waiter.start()
    try:
        explorer.scorer(*networks[0])  # would wait on the other's claim
    finally:
        waiter.join()
        other.wait(timeout=30)
    assert list(explorer.trained_now) == [*keys[1:], keys[0]]  # the free ones first


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_cache_entries_follow_the_umask(tmp_path: Path, umask: int) -> None:
    cache = Cache(tmp_path)
    key = key_of({"umask": umask})
    old = os.umask(umask)
    try:
        path = cache.put(key, {"key": key, "x": torch.zeros(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert cache.get(key) is not None


def test_a_study_without_workers_registers_nobody(study_folder: Path) -> None:
    """In memory nobody else can see the study: nothing is registered, nothing beats."""
    parsed = parse_spec(spec("private", n_trials=2, sampler="random"), where="p.toml")
    study = run_study(parsed, storage="memory", progress=False)
    assert len(study.get_trials()) == 2 and registered(study) == {}
