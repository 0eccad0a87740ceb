"""Who works on a study, and whether they are alive: a worker's identity, the workers
registered in the study's own storage, heartbeats, and helper processes that die with
their parent.

A worker is a process, named ``host-pid@start`` (:func:`this_worker`): its host, its
process id and when that process started (on Linux the kernel's boot id and the start
time in clock ticks), so that a process id the system hands out again never passes for
the worker that had it. Whether a worker of *this* host is alive is known at once from
the process table, whatever folder either process runs in and however each spells the
storage's URL; a worker of another host is alive while it beats (its record in the
study, see :func:`register`, within the grace period of :func:`heartbeat_settings`).

The registry lives in the study itself (a study system attribute per worker), so every
worker of every host that shares the study sees the same one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import optuna

from dse.errors import InputError
from dse.search.optuna_compat import (
    UpdateFinishedTrialError,
    set_study_system_attr,
    study_system_attrs,
)
from dse.search.storage_retry import describe

log = logging.getLogger(__name__)

#: Study system attribute prefix of a worker's record: ``dse:worker:<worker>``.
RECORD_PREFIX = "dse:worker:"


def heartbeat_settings() -> tuple[int, int]:
    """(heartbeat interval, grace period) in whole seconds: ``DSE_HEARTBEAT_S`` (default
    10) and ``DSE_GRACE_S`` (default 60, at least twice the interval)."""
    values = []
    for name, default in (("DSE_HEARTBEAT_S", 10), ("DSE_GRACE_S", 60)):
        raw = os.environ.get(name, str(default))
        try:
            v = int(raw)
        except ValueError:
            v = 0
        if v < 1:
            raise InputError(
                "environment",
                name,
                f"must be a whole number of seconds >= 1, got {raw!r}",
                f"unset it for the default ({default})",
            )
        values.append(v)
    every, grace = values
    if grace < 2 * every:
        raise InputError(
            "environment",
            "DSE_GRACE_S",
            f"{grace} s is under twice the "
            f"heartbeat interval ({every} s): live workers would look dead",
            f"set DSE_GRACE_S >= {2 * every}",
        )
    return every, grace


# --------------------------------------------------------------------------------------
# a worker's identity and whether its process runs
# --------------------------------------------------------------------------------------


@cache
def _boot_id() -> str | None:
    """The first 8 hex digits of the kernel's boot id (Linux), None elsewhere."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")[:8] or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as ``<boot id>:<clock ticks since boot>`` (Linux's
    /proc), or None if no such process runs (or the system does not say)."""
    boot = _boot_id()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        if fields[0] in (b"Z", b"X"):  # field 3, the state: ended, not yet reaped
            return None
        return f"{boot}:{int(fields[19])}"  # field 22: start time in clock ticks
    except (IndexError, ValueError):
        return None


def this_worker() -> str:
    """This process as a worker: ``host-pid@start`` (``host-pid`` where the system does
    not say when a process started)."""
    pid = os.getpid()
    start = process_start(pid)
    base = f"{socket.gethostname()}-{pid}"
    return f"{base}@{start}" if start else base


def parse_worker(worker: str) -> tuple[str, int | None, str | None]:
    """(host, pid, start) of a worker's name (pid None if it names none; start None for
    a name without one, as dse wrote before it recorded start times)."""
    base, _, start = worker.partition("@")
    host, _, pid = base.rpartition("-")
    return (host, int(pid), start or None) if pid.isdigit() and host else (worker, None, None)


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def worker_alive(worker: str) -> bool | None:
    """Whether ``worker``'s process runs, for a worker of this host (by process id and
    start time, so a reused id does not count); None for a worker of another host, whose
    beats alone tell."""
    host, pid, start = parse_worker(worker)
    if pid is None or host != socket.gethostname():
        return None
    if start is None:  # recorded without a start time: the process id alone
        return _pid_runs(pid)
    boot = start.partition(":")[0]
    if _boot_id() is not None and boot != _boot_id():
        return False  # started before this host last booted
    return process_start(pid) == start


# --------------------------------------------------------------------------------------
# heartbeats
# --------------------------------------------------------------------------------------


@contextmanager
def beating(every: float, beat: Callable[[], None]) -> Iterator[None]:
    """Call ``beat`` every ``every`` seconds, from a thread, while the block runs (the
    caller has just beaten). A beat that fails is logged once per run of failures, not
    raised: a storage that hiccups for one beat does not kill the work it watches (a
    grace period spans several beats). A beat on a trial that has finished meanwhile
    (another worker took it over) ends the beating quietly."""
    stop = threading.Event()

    def run() -> None:
        failing = False
        while not stop.wait(every):
            try:
                beat()
            except UpdateFinishedTrialError:
                return
            except Exception as exc:  # the storage may be briefly unreachable
                if not failing:
                    log.warning("heartbeat failed: %s", describe(exc))
                failing = True
            else:
                failing = False

    thread = threading.Thread(target=run, name="dse-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------------------
# the registry in the study
# --------------------------------------------------------------------------------------


def registered(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """Every worker record in the study: worker -> {index, since, beat, ended}."""
    return {
        name[len(RECORD_PREFIX) :]: value
        for name, value in study_system_attrs(study).items()
        if name.startswith(RECORD_PREFIX) and isinstance(value, dict)
    }


def record_alive(worker: str, record: dict[str, Any], *, now: float, grace: float) -> bool:
    """Whether a registered worker is alive: not ended, and its process runs (this host)
    or it has beaten within ``grace`` seconds (another host)."""
    if record.get("ended"):
        return False
    alive = worker_alive(worker)
    if alive is not None:
        return alive
    beat = record.get("beat")
    return isinstance(beat, int | float) and now - float(beat) <= grace


def live_workers(study: optuna.Study, *, besides: str | None = None) -> dict[str, dict[str, Any]]:
    """The study's live registered workers (but ``besides``): worker -> record."""
    _, grace = heartbeat_settings()
    now = time.time()
    return {
        w: r
        for w, r in registered(study).items()
        if w != besides and record_alive(w, r, now=now, grace=grace)
    }


def write_record(study: optuna.Study, worker: str, record: dict[str, Any]) -> None:
    """Write ``worker``'s record into the study."""
    set_study_system_attr(study, f"{RECORD_PREFIX}{worker}", record)


# --------------------------------------------------------------------------------------
# helper processes
# --------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for helper processes: the kernel sends the child SIGTERM when the
    process that started it dies, even by ``kill -9`` (Linux ``PR_SET_PDEATHSIG``), so no
    helper is left running on a study nobody watches. None where the system has no such
    call (the helpers then end with their trial budget)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call took effect
            os._exit(1)

    return preexec
