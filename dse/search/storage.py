"""Where a study lives: opening its storage, and the one lock its workers take in turn.

One machine: Optuna's journal file (the default) or sqlite. Many machines: PostgreSQL
(``postgresql+psycopg://user@host/db``), or Optuna's gRPC proxy in front of it
(``grpc://host:port``, started by ``dse storage serve``). A database server or a proxy is
reached through :class:`~dse.search.storage_retry.RetryingStorage`, so a worker rides out
its restart. Workers that open a new database together create its tables one at a time.

What a worker does with the study (registering, beating, judging others' trials, taking
them over, counting the budget) is :mod:`dse.search.life`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Iterator
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
    cached_rdb,
    journal_file,
    rdb_of,
    retried_numbers,
    retry_callback,
    storage_of,
)
from dse.search.spec import check_study_name
from dse.search.storage_retry import RetryingStorage, ride_out, unreachable
from dse.search.workers import heartbeat_settings

log = logging.getLogger(__name__)
STUDIES_DIR = Path("studies")
#: Seconds a journal lock may stay unchanged before a waiting process takes it as left by
#: a killed one and releases it (an append holds it for milliseconds).
JOURNAL_GRACE_S = 30
#: Times a trial lost with its worker is retried before it counts as failed.
MAX_RETRY = 3
#: Seconds a worker waits for a gRPC storage proxy to answer before giving up.
GRPC_WAIT_S = 10
#: Times a worker tries to open a new database whose tables another process is creating.
SCHEMA_TRIES = 5
#: Trial system attributes: the worker running it, its heartbeat where the storage keeps
#: no heartbeat of its own (seconds since the epoch), why it was judged lost.
WORKER_ATTR = "dse:worker"
BEAT_ATTR = "dse:beat"
LOST_ATTR = "dse:lost"
#: Trial system attribute of a trial failed for a reason of the machine it ran on (a full
#: or read-only disk), not of its candidate: it does not count against the budget.
ENVIRONMENT_ATTR = "dse:environment"
#: Seconds a worker waits before looking again at a claim another worker holds.
POLL_S = 2.0
#: Seconds a worker whose budget is spent waits before looking again at the trials others
#: still run (the study's end waits this long at most for the last of them).
WAIT_S = 0.25


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


def _shown(url: str) -> str:
    """A database URL as messages show it: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL sqlalchemy reads: shown as given
        return url


def open_rdb(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage at ``url`` with Optuna's heartbeat and retries, opened now so that a
    wrong URL, an unreachable server or a missing folder is a one-line error, not a
    traceback at the first trial; its calls ride out a restart of the server
    (:class:`~dse.search.storage_retry.RetryingStorage`, around Optuna's cache)."""
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
        rdb = _new_rdb(url, every, grace)
    except Exception as exc:  # sqlalchemy's errors: a wrong driver, URL or server
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _blames_the_address(exc):
            raise InputError(
                _shown(url),
                "storage",
                f"cannot open the storage: {reason}",
                "check the URL (e.g. sqlite:///studies/x.db or "
                "postgresql+psycopg://user@host/db) and that its server runs",
            ) from None
        raise InputError(
            _shown(url),
            "storage",
            f"the database answered but refused to set up the study tables: {reason}",
            "see the database server's log (a full disk, a user without CREATE rights)",
        ) from None
    return RetryingStorage(cached_rdb(rdb), where=_shown(url))


def _blames_the_address(exc: BaseException) -> bool:
    """Whether opening a database failed for its URL or its server being out of reach
    (not for what the database did once reached)."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"ArgumentError", "NoSuchModuleError", "ImportError"}) or unreachable(exc)


def _new_rdb(url: str, every: int, grace: int) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, its tables created if the database has none.

    Workers started together on a new database would each create the tables (and the
    losers fail on PostgreSQL's catalogue, sqlite's "table already exists" or alembic's
    version row): on PostgreSQL they take an advisory lock in turn around it; on any
    database, a try that fails because another process created the tables meanwhile is
    made again.
    """

    def make() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=every,
                grace_period=grace,
                heartbeat_stale_trial_callback=retry_callback(MAX_RETRY),
            )

    for attempt in range(SCHEMA_TRIES):
        try:
            with _schema_lock(url):
                return make()
        except Exception as exc:
            if attempt == SCHEMA_TRIES - 1 or not _created_meanwhile(exc):
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise AssertionError("unreachable")


def _created_meanwhile(exc: BaseException) -> bool:
    """Whether creating the tables failed because another process was creating them."""
    text = f"{type(exc).__name__} {exc} {exc.__cause__ or ''}".lower()
    return any(
        w in text
        for w in ("already exists", "uniqueviolation", "unique constraint", "duplicate", "locked")
    )


#: PostgreSQL advisory lock key of creating dse's tables (any 64-bit number of dse's own).
_SCHEMA_KEY = int.from_bytes(hashlib.sha256(b"dse:schema").digest()[:8], "big", signed=True)


@contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock (server-wide) while the block creates the tables;
    no lock for other databases."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _SCHEMA_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _SCHEMA_KEY})
    finally:
        engine.dispose()


def _open_grpc(url: str) -> optuna.storages.BaseStorage:
    """A client of Optuna's gRPC storage proxy at ``grpc://host:port``, its calls riding
    out a restart of the proxy."""
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
    return RetryingStorage(proxy, where=url)


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


def lock_file(study: optuna.Study) -> Path | None:
    """The file whose lock the workers of ``study`` take in turn on this machine: beside
    its journal or sqlite file (so that every worker of the file finds it, whatever folder
    it runs in and however it names the file); None for a storage of no local file."""
    storage = storage_of(study)
    path = journal_file(storage)
    if path is None:
        rdb = rdb_of(storage)
        if rdb is not None and rdb.engine.dialect.name == "sqlite" and rdb.engine.url.database:
            path = rdb.engine.url.database
    if path is None or path == ":memory:":
        return None
    return Path(os.path.abspath(path)).with_name(f"{Path(path).name}.{study.study_name}.dse-lock")


@contextmanager
def study_lock(study: optuna.Study) -> Iterator[None]:
    """What must happen one worker at a time (judging trials stale, counting the trials
    and creating the next) runs inside: a PostgreSQL advisory lock for a study in
    PostgreSQL (it holds across machines and ends with the holder's connection), else a
    file lock beside the study's journal or sqlite file (:func:`lock_file`). In memory
    there is no one to wait for; through a gRPC proxy there is no lock across machines:
    workers started at the same instant may each start one trial past the budget."""
    storage = storage_of(study)
    if _is_postgres(storage):
        with _advisory_lock(study, storage):
            yield
        return
    path = lock_file(study)
    if path is None:
        yield
        return
    with locks.exclusive(path):
        yield


@contextmanager
def _advisory_lock(study: optuna.Study, storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """The study's PostgreSQL advisory lock, taken through an outage of the server (a
    connection lost while it is held has released it: its unlock is then moot)."""
    from sqlalchemy import text

    engine = rdb_of(storage).engine  # type: ignore[union-attr]
    key = int.from_bytes(
        hashlib.sha256(f"dse:{study.study_name}".encode()).digest()[:8], "big", signed=True
    )
    where = storage.where if isinstance(storage, RetryingStorage) else "storage"

    def take() -> Any:
        conn = engine.connect()
        try:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        except BaseException:
            _drop(conn)
            raise
        return conn

    conn = ride_out(take, where=where)
    try:
        yield
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
            conn.close()
        except Exception as exc:  # noqa: BLE001 - the connection went, and the lock with it
            log.debug("advisory unlock: %s", exc)
            _drop(conn)


def _drop(conn: Any) -> None:
    """Throw away a connection that may be broken (its server restarted)."""
    try:
        conn.invalidate()
        conn.close()
    except Exception as exc:  # noqa: BLE001 - nothing more to do with it
        log.debug("dropping a connection: %s", exc)


# --------------------------------------------------------------------------------------
# a study's trials
# --------------------------------------------------------------------------------------


def budget_used(trials: list[FrozenTrial]) -> int:
    """How many of a study's ``trials`` count against its budget: running or finished,
    but for a failed trial that was retried (its retry counts instead) or that failed for
    a reason of the machine it ran on (:data:`ENVIRONMENT_ATTR`)."""
    retried = {n for t in trials for n in retried_numbers(t)}
    return sum(
        1
        for t in trials
        if t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
        or (
            t.state == TrialState.FAIL
            and t.number not in retried
            and ENVIRONMENT_ATTR not in t.system_attrs
        )
    )


def fail_reason(t: FrozenTrial) -> str:
    """Why a failed trial failed, as recorded."""
    reason: Any = (
        t.user_attrs.get("fail_reason")
        or t.system_attrs.get(LOST_ATTR)
        or t.system_attrs.get(ENVIRONMENT_ATTR)
    )
    return str(reason) if reason else "no reason recorded"
