"""Where a study lives and how its workers share it: storages, the study lock, heartbeats,
stale trials and their retries.

One machine: Optuna's journal file (the default) or sqlite. Many machines: PostgreSQL
(``postgresql+psycopg://user@host/db``), or Optuna's gRPC proxy in front of it
(``grpc://host:port``, started by ``dse storage serve``).

Every trial a worker runs carries its worker (``host-pid``, system attribute
``dse:worker``) and a heartbeat: Optuna's own where the storage keeps one (an RDB storage
opened here, with ``heartbeat_interval`` and ``grace_period``), else the system attribute
``dse:beat`` (seconds since the epoch). A RUNNING trial is stale, and is failed and
retried (Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`: the same
parameters
as a WAITING trial) when its worker is known dead (a worker of this host whose registry
lock nobody holds) or when it has not beaten for the grace period. A trial lost that way
does not count against the study's budget: its retry does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from dse import locks
from dse.errors import InputError, write_refused
from dse.search.optuna_compat import (
    UpdateFinishedTrialError,
    get_trial,
    heartbeat_enabled,
    rdb_of,
    retried_numbers,
    retry_callback,
    set_trial_failed,
    set_trial_system_attr,
    stale_trial_ids,
    storage_of,
    trial_id_of,
)
from dse.search.spec import check_study_name
from dse.search.workers import study_file_lock

log = logging.getLogger(__name__)
STUDIES_DIR = Path("studies")
#: Seconds a journal lock may stay unchanged before a waiting process takes it as left by
#: a killed one and releases it (an append holds it for milliseconds).
JOURNAL_GRACE_S = 30
#: Times a trial lost with its worker is retried before it counts as failed.
MAX_RETRY = 3
#: Seconds a worker waits for a gRPC storage proxy to answer before giving up.
GRPC_WAIT_S = 10
WORKER_ATTR = "dse:worker"
BEAT_ATTR = "dse:beat"
LOST_ATTR = "dse:lost"
#: Seconds a worker waits before looking again at a claim another worker holds.
POLL_S = 2.0
#: Seconds a worker whose budget is spent waits before looking again at the trials others
#: still run (the study's end waits this long at most for the last of them).
WAIT_S = 0.25


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


def this_worker() -> str:
    """This process as a worker: ``host-pid``, as its registry lock file is named."""
    return f"{socket.gethostname()}-{os.getpid()}"


# --------------------------------------------------------------------------------------
# opening a storage
# --------------------------------------------------------------------------------------


def _open_journal(path: Path | str) -> JournalStorage:
    """Optuna's journal file at ``path``, locked by a symlink that names it absolutely.

    The lock is a symlink to the journal; a process killed while appending leaves it
    behind, and Optuna releases it once it has not changed for the grace period, which it
    learns by following the link. A relative target resolves beside the link (to
    ``studies/studies/...``, a file that does not exist), and the waiting process then
    spins forever instead of releasing it.
    """
    absolute = str(Path(path).resolve())
    lock = JournalFileSymlinkLock(absolute, grace_period=JOURNAL_GRACE_S)
    return JournalStorage(_WholeLinesJournal(absolute, lock))


class _WholeLinesJournal(JournalFileBackend):
    """Optuna's journal file, whose append takes back what a refused write left.

    A write the disk refuses part-way (full, over a file-size limit) leaves half a line at
    the end. Optuna reads a half line at the end as absent, but the next append follows
    it on the same line, and that line, no longer the last, makes the whole journal
    unreadable. So a failed append truncates the file back to where it began (under the
    journal's lock, so no other process's line is cut), and raises; and a half line a
    killed process left at the end is cut off before the next append.
    """

    def __init__(self, path: str, lock: JournalFileSymlinkLock):
        super().__init__(path, lock_obj=lock)
        self._path, self._append_lock = path, lock

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
        data = text.encode("utf-8")
        self._append_lock.acquire()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = _whole_lines(fd, self._path)
                try:
                    done = 0
                    while done < len(data):
                        done += os.write(fd, data[done:])
                    os.fsync(fd)
                except BaseException as exc:
                    os.ftruncate(fd, start)  # raises only if taking it back fails too
                    raise (write_refused(self._path, exc) or exc) from None
            finally:
                os.close(fd)
        finally:
            self._append_lock.release()


def _whole_lines(fd: int, path: str) -> int:
    """The journal's size after cutting off a half line at its end (left by a process
    killed mid-append; the caller holds the lock, so no writer is alive in it)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    end = size
    while end > 0:
        chunk = os.pread(fd, min(4096, end), end - min(4096, end))
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            end = end - len(chunk) + cut + 1
            break
        end -= len(chunk)
    if end < size:
        log.warning("%s: cut off %d byte(s) of a half-written last entry", path, size - end)
        os.ftruncate(fd, end)
    return end


def storage_for(name: str, kind: str = "journal") -> optuna.storages.BaseStorage:
    """``journal`` (default; Optuna's journal file), ``sqlite``, ``memory``, an RDB URL,
    ``grpc://host:port`` (a ``dse storage serve`` proxy) or a journal file path."""
    if kind in ("journal", "sqlite"):  # a file named after the study: no path in the name
        check_study_name(name, where="study", field="name")
    if kind == "journal":
        STUDIES_DIR.mkdir(exist_ok=True)
        return _open_journal(STUDIES_DIR / f"{name}.journal")
    if kind == "sqlite":
        STUDIES_DIR.mkdir(exist_ok=True)
        return open_rdb(f"sqlite:///{STUDIES_DIR / f'{name}.db'}")
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind.startswith("grpc://"):
        return _open_grpc(kind)
    if "://" in kind:
        return open_rdb(kind)
    if kind.endswith((".journal", ".log")):
        return _open_journal(kind)
    raise InputError(
        "storage",
        kind,
        "unknown storage",
        "use journal, sqlite, memory, an RDB URL, grpc://host:port or a .journal file path",
    )


def open_rdb(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage at ``url`` with Optuna's heartbeat and retries, opened now so that a
    wrong URL, an unreachable server or a missing folder is a one-line error, not a
    traceback at the first trial."""
    if url.startswith("sqlite:///"):
        folder = Path(url[len("sqlite:///") :]).parent
        if not folder.is_dir():
            raise InputError(
                url,
                "storage",
                f"the folder {folder} does not exist",
                "create it, or give a sqlite URL in an existing folder",
            )
    every, grace = heartbeat_settings()
    try:
        with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=every,
                grace_period=grace,
                heartbeat_stale_trial_callback=retry_callback(MAX_RETRY),
            )
    except Exception as exc:  # sqlalchemy's errors: a wrong driver, URL or server
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            url,
            "storage",
            f"cannot open the storage: {reason}",
            "check the URL (e.g. sqlite:///studies/x.db or "
            "postgresql+psycopg://user@host/db) and that its server runs",
        ) from None


def _open_grpc(url: str) -> optuna.storages.BaseStorage:
    """A client of Optuna's gRPC storage proxy at ``grpc://host:port``."""
    host, _, port = url[len("grpc://") :].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            url,
            "storage",
            "not grpc://HOST:PORT",
            "give the address `dse storage serve` printed, e.g. grpc://10.0.0.5:13000",
        )
    try:
        with warnings.catch_warnings():  # "experimental" since Optuna 4.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            proxy = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
        proxy.wait_server_ready(timeout=GRPC_WAIT_S)
    except ImportError as exc:
        raise InputError(
            url, "storage", f"gRPC is not installed ({exc})", "pip install grpcio protobuf"
        ) from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            url,
            "storage",
            f"no storage proxy answers there: {reason}",
            "start one with `dse storage serve --storage URL` on that host",
        ) from None
    return proxy


def shared_across_hosts(kind: str) -> bool:
    """Whether a storage may be shared with workers of other machines (a database
    server or a gRPC proxy, not a local file)."""
    return "://" in kind and not kind.startswith("sqlite:")


def find_storage(name: str, storage: str | None = None) -> optuna.storages.BaseStorage:
    """The storage of an existing study by name (journal, then sqlite, under studies/)."""
    check_study_name(name, where="study", field="name")
    if storage is not None:
        return storage_for(name, storage)
    if (STUDIES_DIR / f"{name}.journal").exists():
        return storage_for(name, "journal")
    if (STUDIES_DIR / f"{name}.db").exists():
        return storage_for(name, "sqlite")
    known = sorted(p.stem for p in STUDIES_DIR.glob("*.journal")) if STUDIES_DIR.exists() else []
    raise InputError(
        STUDIES_DIR / f"{name}.journal",
        "study",
        f"no study named {name!r}",
        f"known: {', '.join(known) or 'none'}; run `dse study run SPEC` first",
    )


# --------------------------------------------------------------------------------------
# one worker at a time
# --------------------------------------------------------------------------------------


def _is_postgres(storage: optuna.storages.BaseStorage) -> bool:
    inner = rdb_of(storage)
    return inner is not None and inner.engine.dialect.name == "postgresql"


@contextmanager
def study_lock(study: optuna.Study, folder: Path | None) -> Iterator[None]:
    """What must happen one worker at a time (judging trials stale, counting the trials
    and creating the next) runs inside: a PostgreSQL advisory lock for a study in
    PostgreSQL (it holds across machines and ends with the holder's connection), else
    the study's file lock in ``folder`` on this machine (None: no lock, a private
    storage). Through a gRPC proxy there is no lock across machines: workers started at
    the same instant may each start one trial past the budget."""
    storage = storage_of(study)
    if _is_postgres(storage):
        from sqlalchemy import text

        engine = rdb_of(storage).engine  # type: ignore[union-attr]
        key = int.from_bytes(
            hashlib.sha256(f"dse:{study.study_name}".encode()).digest()[:8], "big", signed=True
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    if folder is None:
        yield
        return
    with study_file_lock(folder):
        yield


# --------------------------------------------------------------------------------------
# heartbeats
# --------------------------------------------------------------------------------------


@contextmanager
def beating(every: float, beat: Callable[[], None]) -> Iterator[None]:
    """Call ``beat`` every ``every`` seconds, from a thread, while the block runs (the
    caller has just beaten: a trial when it was taken, a claim when it was written). A
    beat that fails is logged, not raised: a storage that hiccups for one beat does not
    kill the work it watches (a grace period spans several beats)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception as exc:  # the storage may be briefly unreachable
                log.warning("heartbeat failed: %s", exc)

    thread = threading.Thread(target=run, name="dse-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trial_heartbeat(study: optuna.Study, trial_id: int) -> Callable[[], None]:
    """One heartbeat of a trial: Optuna's where the storage keeps one, else its
    ``dse:beat`` system attribute."""
    storage = storage_of(study)
    if heartbeat_enabled(storage):
        return lambda: storage.record_heartbeat(trial_id)
    return lambda: storage.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())


def assign_to_this_worker(study: optuna.Study, trial_id: int) -> None:
    """Mark a trial as this worker's (before any other worker can judge it stale)."""
    set_trial_system_attr(study, trial_id, WORKER_ATTR, this_worker())
    trial_heartbeat(study, trial_id)()


# --------------------------------------------------------------------------------------
# stale trials
# --------------------------------------------------------------------------------------


def _last_beat(t: FrozenTrial) -> float:
    beat = t.system_attrs.get(BEAT_ATTR)
    if isinstance(beat, (int, float)):
        return float(beat)
    start = t.datetime_start
    return start.timestamp() if start is not None else time.time()


def fail_and_retry(study: optuna.Study, t: FrozenTrial, reason: str) -> bool:
    """Fail ``t`` as lost (``reason``) and enqueue its retry; False if it had finished
    meanwhile (another worker judged it first, or its own worker reported)."""
    trial_id = trial_id_of(t)
    try:
        set_trial_system_attr(study, trial_id, LOST_ATTR, reason)
        if not set_trial_failed(study, trial_id):
            return False
    except UpdateFinishedTrialError:
        return False
    retry_callback(MAX_RETRY)(study, get_trial(study, trial_id))
    return True


def fail_stale(study: optuna.Study, registry: Path | None, *, local: bool) -> int:
    """Fail and retry the RUNNING trials whose workers are gone; how many.

    A worker of this host is gone when nobody holds its lock in ``registry`` (known at
    once). In a ``local`` storage (a file on this host), a trial whose worker is not
    recorded (an older dse) is gone when no other worker of this host is alive. Any
    worker is gone when its trial has not beaten for the grace period. Call it under
    :func:`study_lock`, so that two workers never judge one trial together.
    """
    _, grace = heartbeat_settings()
    lost = 0
    optuna_beats = heartbeat_enabled(storage_of(study))
    if optuna_beats:  # what Optuna's fail_stale_trials does, with a reason
        for trial_id in stale_trial_ids(study):
            t = get_trial(study, trial_id)
            if fail_and_retry(
                study,
                t,
                f"no heartbeat from its worker "
                f"{t.system_attrs.get(WORKER_ATTR, '(unknown)')} for {grace} s",
            ):
                log.warning("trial %d lost: no heartbeat for %d s; retried", t.number, grace)
                lost += 1
    host = socket.gethostname()
    now = time.time()
    watched = registry is not None and locks.AVAILABLE
    nobody_else = local and watched and not other_worker_alive(registry)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.system_attrs.get(WORKER_ATTR)
        reason = None
        if worker == this_worker():
            continue
        if (
            isinstance(worker, str)
            and worker.rpartition("-")[0] == host
            and watched
            and not locks.held_elsewhere(registry / f"{worker}.lock")
        ):
            reason = f"its worker {worker} ended without finishing it"
        elif worker is None and nobody_else:
            reason = "its worker ended without finishing it"
        elif not optuna_beats and (silent := now - _last_beat(t)) > grace:
            reason = f"no heartbeat from its worker {worker or '(unknown)'} for {silent:.0f} s"
        if reason is not None and fail_and_retry(study, t, reason):
            log.warning("trial %d lost: %s; retried", t.number, reason)
            lost += 1
    return lost


def other_worker_alive(registry: Path) -> bool:
    """Whether a worker other than this process is registered alive in ``registry``."""
    mine = f"{this_worker()}.lock"
    return any(p.name != mine and locks.held_elsewhere(p) for p in registry.glob("*.lock"))


def budget_used(trials: list[FrozenTrial]) -> int:
    """How many of a study's ``trials`` count against its budget: running or finished,
    but for a failed trial that was retried (its retry counts instead)."""
    retried = {n for t in trials for n in retried_numbers(t)}
    return sum(
        1
        for t in trials
        if t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in retried)
    )


def fail_reason(t: FrozenTrial) -> str:
    """Why a failed trial failed, as recorded."""
    reason: Any = t.user_attrs.get("fail_reason") or t.system_attrs.get(LOST_ATTR)
    return str(reason) if reason else "no reason recorded"
