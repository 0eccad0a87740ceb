"""The workers of a study: a worker's name (host, process id, start time), whether its
process runs, and the registry in the study's own storage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from other_worker import hold

from dse.search.storage import storage_for
from dse.search.workers import (
    live_workers,
    parse_worker,
    process_start,
    registered,
    this_worker,
    worker_alive,
)

LINUX = sys.platform.startswith("linux")


def test_a_worker_is_named_by_host_process_and_start() -> None:
    me = this_worker()
    host, pid, start = parse_worker(me)
    assert host == socket.gethostname() and pid == os.getpid()
    if LINUX:
        assert start is not None and start == process_start(os.getpid())
    assert worker_alive(me) is True
    # a name dse wrote before it recorded start times: the process id alone
    assert worker_alive(f"{socket.gethostname()}-{os.getpid()}") is True
    assert worker_alive(f"another-host-{os.getpid()}@x:1") is None  # only its beats tell


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_a_reused_process_id_is_not_the_worker_that_had_it() -> None:
    host, pid, start = parse_worker(this_worker())
    boot, _, ticks = str(start).partition(":")
    assert worker_alive(f"{host}-{pid}@{boot}:{int(ticks) + 1}") is False  # another start
    assert worker_alive(f"{host}-{pid}@00000000:{ticks}") is False  # before the last boot


def test_an_ended_process_is_a_dead_worker() -> None:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert worker_alive(f"{socket.gethostname()}-{p.pid}") is False


def test_a_worker_sees_a_live_one_and_not_a_killed_one(study_folder: Path) -> None:
    study = optuna.create_study(study_name="reg", storage=storage_for("reg"))
    other = hold("reg")
    try:
        alive = live_workers(study)
        assert [parse_worker(w)[1] for w in alive] == [other.pid]
        assert live_workers(study, besides=next(iter(alive))) == {}
    finally:
        other.kill()  # no clean-up runs: its record stays, its process goes
        other.wait(timeout=30)
    assert len(registered(study)) == 1 and live_workers(study) == {}


def test_the_registry_is_the_same_from_any_folder(study_folder: Path) -> None:
    """Liveness does not depend on the working folder or on how the storage is named."""
    (study_folder / "studies").mkdir()
    path = study_folder / "studies" / "reg.journal"
    study = optuna.create_study(study_name="reg", storage=storage_for("reg", str(path)))
    other = hold("reg")
    try:
        elsewhere = study_folder / "elsewhere"
        elsewhere.mkdir()
        os.chdir(elsewhere)
        relative = os.path.relpath(path)
        seen = optuna.load_study(study_name="reg", storage=storage_for("reg", relative))
        assert [parse_worker(w)[1] for w in live_workers(seen)] == [other.pid]
    finally:
        os.chdir(study_folder)
        other.kill()
        other.wait(timeout=30)
    assert live_workers(study) == {}
