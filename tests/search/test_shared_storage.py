"""Studies shared by many workers: PostgreSQL and the journal file, the gRPC proxy,
training claims in the study's storage, heartbeats, and workers killed with SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import spec, write_spec
from optuna.trial import TrialState

from dse.nets.cache import Cache
from dse.search import storage as storage_mod
from dse.search.explorer import Explorer
from dse.search.frames import front_frame, record_of
from dse.search.space import Candidate
from dse.search.spec import load_spec
from dse.search.storage import LOST_ATTR, storage_for
from dse.search.study import create_study, load_study

ROOT = Path(__file__).resolve().parents[2]
FAST_BEAT = {"DSE_HEARTBEAT_S": "1", "DSE_GRACE_S": "3"}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DSE_THREADS": "1", **extra}


def _dse(*argv: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", *argv],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def _storage(kind: str, postgres: str | None) -> str:
    return postgres if kind == "postgres" else "journal"


@pytest.fixture(params=["journal", "postgres"])
def storage(request: pytest.FixtureRequest, study_folder: Path) -> str:
    """The URL (or kind) of a fresh storage of each kind."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres"))
    return "journal"


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.heavy)])
def storage_journal_first(request: pytest.FixtureRequest, study_folder: Path) -> str:
    """As ``storage``, the PostgreSQL case marked heavy (for a test whose logic does not
    depend on the storage: the plain run tries it on the journal, CI on both)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres"))
    return "journal"


@pytest.fixture(params=[pytest.param("journal", marks=pytest.mark.heavy), "postgres"])
def storage_pg_first(request: pytest.FixtureRequest, study_folder: Path) -> str:
    """As ``storage``, the journal's case marked heavy (the journal has its own
    multi-process tests in test_study_cli)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres"))
    return "journal"


def _write_spec(folder: Path, name: str, n_trials: int, **overrides: object) -> Path:
    """The tiny study with a random sampler, written to ``folder/NAME.toml``."""
    return write_spec(
        folder / f"{name}.toml", name, n_trials=n_trials, sampler="random", **overrides
    )


def _trials(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage_for(name, storage)).get_trials(
        deepcopy=False
    )


def _states(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.mark.slow
@pytest.mark.heavy  # many processes, 9 to 12 s
def test_workers_started_together_end_with_exactly_n_trials(
    storage_pg_first: str, study_folder: Path
) -> None:
    storage = storage_pg_first
    spec = _write_spec(study_folder, "together", 12)
    env = _env()
    create_study(load_spec(spec), storage=storage, progress=False)  # what `dse study run` makes
    workers = [
        _dse("study", "worker", "together", "--storage", storage, "--quiet", env=env)
        for _ in range(3)
    ]
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    trials = _trials("together", storage)
    assert _states(trials) == {"COMPLETE": 12}
    # the three workers drew different points (their samplers' seeds differ)
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) > 4


def test_a_worker_needs_a_storage_and_a_study(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dse.cli import main

    assert main(["study", "worker", "nothing"]) == 2
    assert "--storage" in capsys.readouterr().err
    assert main(["study", "worker", "nothing", "--storage", "journal"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing" in err


NAMED = spec("named", n_trials=3, sampler="random", constraints={"accuracy": ">= 0.999"})


def test_objective_names_and_constraints_are_stored_as_optuna_expects(study_folder: Path) -> None:
    from dse.search.spec import parse_spec
    from dse.search.study import run_study

    spec = parse_spec(NAMED)
    study = run_study(spec, progress=False)
    assert study.metric_names == ["accuracy", "latency_mean", "edge_energy"]
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done and all(t.system_attrs["constraints"] == record_of(t)["constraints"] for t in done)
    assert any(t.system_attrs["constraints"][0] > 0 for t in done)  # infeasible: > 0


# --------------------------------------------------------------------------------------
# claims on trainings in the study's storage
# --------------------------------------------------------------------------------------

CLAIMANT = """
import sys, time
from pathlib import Path
import optuna
from dse.search.claims import StorageClaims
from dse.search.storage import storage_for
storage, log, done = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
study = optuna.load_study(study_name="claims", storage=storage_for("claims", storage))
print("ready", flush=True)
with StorageClaims(study).hold("k" * 64, ready=done.exists):
    if done.exists():
        with log.open("a") as f:
            f.write(f"ready {time.time()}\\n")
    else:
        with log.open("a") as f:
            f.write(f"start {time.time()}\\n")
        time.sleep(float(sys.argv[4]))
        with log.open("a") as f:
            f.write(f"end {time.time()}\\n")
        if sys.argv[5] == "finish":
            done.touch()
"""


def _claimants(
    storage: str, folder: Path, n: int, *, hold_s: float, finish: bool, env: dict[str, str]
) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLAIMANT,
                storage,
                str(folder / "log"),
                str(folder / "done"),
                str(hold_s),
                "finish" if finish else "keep",
            ],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return procs


def _log(folder: Path) -> list[tuple[str, float]]:
    return [
        (w, float(t))
        for w, t in (line.split() for line in (folder / "log").read_text().splitlines())
    ]


@pytest.mark.slow
@pytest.mark.heavy  # many processes, 9 to 12 s
def test_a_key_is_claimed_by_one_worker_at_a_time(
    storage_pg_first: str, study_folder: Path
) -> None:
    storage = storage_pg_first
    optuna.create_study(study_name="claims", storage=storage_for("claims", storage))
    procs = _claimants(storage, study_folder, 3, hold_s=1.5, finish=False, env=_env(**FAST_BEAT))
    for p in procs:
        assert p.wait(timeout=120) == 0
    events = _log(study_folder)
    assert [w for w, _ in events] == ["start", "end"] * 3  # never two inside at once


@pytest.mark.slow
def test_the_others_read_the_entry_once_the_holder_finishes(
    storage: str, study_folder: Path
) -> None:
    optuna.create_study(study_name="claims", storage=storage_for("claims", storage))
    procs = _claimants(storage, study_folder, 3, hold_s=1.0, finish=True, env=_env(**FAST_BEAT))
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert [w for w, _ in _log(study_folder)] == ["start", "end", "ready", "ready"]


@pytest.mark.slow
def test_a_dead_workers_claim_expires_and_another_takes_the_key(
    storage: str, study_folder: Path
) -> None:
    """Killed on this host: its claim is dead at once, with no grace period (60 s here) to
    wait out (a claim of another host's worker expires with its beats:
    tests/search/test_worker_faults.py)."""
    optuna.create_study(study_name="claims", storage=storage_for("claims", storage))
    env = _env(DSE_HEARTBEAT_S="1", DSE_GRACE_S="60")
    holder = _claimants(storage, study_folder, 1, hold_s=60, finish=True, env=env)[0]
    deadline = time.time() + 30
    while not (study_folder / "log").exists() and time.time() < deadline:
        time.sleep(0.1)
    waiter = _claimants(storage, study_folder, 1, hold_s=0.1, finish=True, env=env)[0]
    time.sleep(2)
    holder.send_signal(signal.SIGKILL)
    killed = time.time()
    holder.wait()
    assert waiter.wait(timeout=60) == 0
    events = _log(study_folder)
    assert [w for w, _ in events] == ["start", "start", "end"]
    took = events[1][1] - killed
    # a poll and a settle, long before the grace period (60 s) since its last beat, however
    # busy the machine
    assert took <= 30.0


# --------------------------------------------------------------------------------------
# SIGKILL mid-trial and mid-training
# --------------------------------------------------------------------------------------


def _started(name: str, storage: str) -> bool:
    try:
        return bool(_trials(name, storage))
    except KeyError:  # not created yet
        return False


def _uninterrupted_metrics(name: str, storage: str, cache: Path) -> dict[int, dict]:
    """Each complete trial's metrics scored again, alone, from the same cache."""
    study, spec = load_study(name, storage=storage)
    explorer = Explorer(spec, cache=Cache(cache), progress=False)
    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cand = Candidate.from_row({f"knob_{k}": v for k, v in record_of(t)["knobs"].items()})
        out[t.number] = explorer.evaluate(cand).as_dict()
    return out


@pytest.mark.slow
@pytest.mark.heavy  # many processes, 12 s each
@pytest.mark.parametrize("seed", [0, 1])
def test_a_worker_killed_at_a_random_moment_loses_nothing(
    storage_journal_first: str,
    study_folder: Path,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
) -> None:
    """Killed mid-training or mid-trial (a fresh cache: the first trials train), then
    resumed: every completed trial stays, no corrupt entry is read, exactly n_trials
    complete, and each trial's metrics are those an uninterrupted run scores."""
    storage = storage_journal_first
    cache = tmp_path_factory.mktemp(f"cache-{seed}")
    env = _env(DSE_CACHE=str(cache), **FAST_BEAT)
    spec = _write_spec(study_folder, "killed", 8, training={"epochs": 3})
    worker = _dse("study", "run", str(spec), "--storage", storage, "--quiet", env=env)
    deadline = time.time() + 120
    while not _started("killed", storage) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 4.0))  # from its first trial on
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    before = {
        t.number: (t.state, t.values)
        for t in _trials("killed", storage)
        if t.state == TrialState.COMPLETE
    }
    resumed = _dse("study", "resume", "killed", "--storage", storage, "--quiet", env=env)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    trials = _trials("killed", storage)
    assert _states(trials).get("COMPLETE") == 8 and "RUNNING" not in _states(trials)
    after = {t.number: (t.state, t.values) for t in trials}
    assert all(after[n] == v for n, v in before.items())  # nothing completed was lost
    for t in trials:
        if t.state == TrialState.FAIL:  # only trials lost with the worker, and retried
            assert LOST_ATTR in t.system_attrs
            assert any(t.number in r.system_attrs.get("retry_history", ()) for r in trials)
    entries = list(cache.rglob("*.dse"))
    assert entries and all(Cache(cache).get(p.stem) is not None for p in entries)
    assert not list(cache.rglob("*.corrupt"))
    again = _uninterrupted_metrics("killed", storage, cache)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert record_of(t)["metrics"] == again[t.number]
    study, spec = load_study("killed", storage=storage)
    assert len(front_frame(study, spec)) >= 1


# --------------------------------------------------------------------------------------
# the gRPC proxy
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.heavy  # 9 s, a proxy and two worker processes: make test-all (CI) runs it
def test_workers_through_the_grpc_proxy(postgres: str, study_folder: Path) -> None:
    port = _free_port()
    env = _env()
    proxy = _dse(
        "storage",
        "serve",
        "--storage",
        postgres,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
    )
    try:
        assert proxy.stdout is not None
        assert f"grpc://127.0.0.1:{port}" in proxy.stdout.readline()
        url = f"grpc://127.0.0.1:{port}"
        spec = _write_spec(study_folder, "proxied", 6)
        run = _dse("study", "run", str(spec), "--storage", url, "--quiet", env=env)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    finally:
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(timeout=30) == 0
    # the trials are in the database behind the proxy
    assert _states(_trials("proxied", postgres)) == {"COMPLETE": 6}


def test_an_unreachable_proxy_is_one_line(
    study_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dse.cli import main

    spec = _write_spec(study_folder, "noproxy", 2)
    monkeypatch.setattr(storage_mod, "GRPC_WAIT_S", 1)
    port = _free_port()
    assert main(["study", "run", str(spec), "--storage", f"grpc://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dse storage serve" in err


def test_storage_serve_refuses_what_is_not_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    from dse.cli import main

    assert main(["storage", "serve", "--storage", "studies/x.journal"]) == 2
    assert "not a database URL" in capsys.readouterr().err


def test_bad_heartbeat_settings_are_one_line(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dse.cli import main

    spec = _write_spec(study_folder, "beats", 2)
    monkeypatch.setenv("DSE_HEARTBEAT_S", "10")
    monkeypatch.setenv("DSE_GRACE_S", "5")
    assert main(["study", "run", str(spec), "--quiet"]) == 2
    assert "DSE_GRACE_S" in capsys.readouterr().err
