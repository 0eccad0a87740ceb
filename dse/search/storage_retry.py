"""A storage that rides out an outage: every call to a database server or a gRPC storage
proxy that fails because the server cannot be reached is retried, with backoff, for up to
:func:`outage_seconds`; past that the worker stops with one line (exit code 2), and its
trial in flight, left RUNNING, is failed and retried by the next worker to judge it.

A PostgreSQL restart (``pg_ctl restart -m fast``) or a restarted ``dse storage serve``
takes seconds; without this, the first call in that window killed every worker with the
driver's traceback. Only errors that say the server is out of reach are retried (the
connection refused, closed or reset, the server starting up or shutting down, a gRPC
channel UNAVAILABLE); any other error (a finished trial, a missing study, bad data) is
raised at once, as before.

Retrying a write whose reply was lost may do it twice: a trial created twice leaves one
RUNNING trial nobody works on (no worker recorded), which the workers fail and retry once
it is older than the grace period (``dse.search.life``); a trial told twice is told once.
"""

from __future__ import annotations

import abc
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat

from dse.errors import InputError

log = logging.getLogger(__name__)

#: Seconds of outage a worker rides out by default (``DSE_OUTAGE_S``).
DEFAULT_OUTAGE_S = 300
#: First and longest wait between two tries, in seconds (doubling in between).
FIRST_WAIT_S = 0.1
LONGEST_WAIT_S = 5.0

#: Words of a database error that mean the server is out of reach, not that the request
#: was wrong (psycopg, sqlite's "database is locked", MySQL's "gone away").
_UNREACHABLE_WORDS = (
    "connection",
    "could not connect",
    "server closed",
    "terminating",
    "starting up",
    "shutting down",
    "not accepting",
    "refused",
    "reset by peer",
    "broken pipe",
    "timeout",
    "timed out",
    "no route",
    "database is locked",
    "gone away",
    "lost connection",
    "recovery mode",
)
#: gRPC status codes of a proxy out of reach (restarting, overloaded), by name; a call in
#: flight when the proxy stops ends CANCELLED
_GRPC_RETRY = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED")


def outage_seconds() -> float:
    """How long a worker keeps retrying an unreachable storage: ``DSE_OUTAGE_S`` seconds
    (default :data:`DEFAULT_OUTAGE_S`)."""
    raw = os.environ.get("DSE_OUTAGE_S", str(DEFAULT_OUTAGE_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InputError(
            "environment",
            "DSE_OUTAGE_S",
            f"must be a number of seconds >= 0, got {raw!r}",
            f"unset it for the default ({DEFAULT_OUTAGE_S})",
        )
    return value


def _words_say_unreachable(text: str) -> bool:
    text = text.lower()
    return any(w in text for w in _UNREACHABLE_WORDS)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the storage's server is out of reach (worth retrying): itself
    or what it was raised from (Optuna wraps database errors in StorageInternalError)."""
    for err in _chain(exc):
        if isinstance(err, ConnectionError | TimeoutError):
            return True
        module = type(err).__module__
        if module.startswith("grpc"):
            return _grpc_unreachable(err)
        if module.startswith("sqlalchemy"):
            if getattr(err, "connection_invalidated", False):
                return True
            names = {c.__name__ for c in type(err).__mro__}
            if "PendingRollbackError" in names:  # the session of a connection that broke
                return True
            if names & {"OperationalError", "InterfaceError"}:
                return _words_say_unreachable(str(err))
            return False
        if not isinstance(err, optuna.exceptions.StorageInternalError):
            return False
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or while handling, innermost last (five at most)."""
    out: list[BaseException] = []
    err: BaseException | None = exc
    while err is not None and len(out) < 5:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


def _grpc_unreachable(err: BaseException) -> bool:
    code = getattr(err, "code", None)
    name = getattr(code(), "name", "") if callable(code) else ""
    if name in _GRPC_RETRY:
        return True
    details = getattr(err, "details", None)
    text = details() if callable(details) else ""
    return name in ("UNKNOWN", "INTERNAL") and _words_say_unreachable(str(text or ""))


#: Calls whose first argument is a study's id.
_STUDY_CALLS = frozenset({"create_new_trial", "get_all_trials", "get_n_trials", "get_best_trial"})


class StorageUnreachable(InputError):
    """The storage stayed out of reach for longer than the worker waits."""


class RetryingStorage(BaseStorage, BaseHeartbeat):
    """``backend`` (an Optuna storage of a database server or a gRPC proxy), each call
    retried through an outage (see the module). ``where`` names the storage in messages
    (its URL without the password)."""

    def __init__(self, backend: BaseStorage, *, where: str):
        self._backend = backend
        self.where = where
        #: time.monotonic() when the last outage ended (None: none yet), for liveness:
        #: no worker could beat while the storage was out of reach
        self.back_at: float | None = None
        #: outages met so far (a proxy back from one may not know the trials of before)
        self.outages = 0
        #: the studies this storage was asked about (what a restarted proxy is made read)
        self._study_ids: set[int] = set()
        self._lock = threading.Lock()

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method: Callable[..., Any] = getattr(self._backend, name)
        if name in _STUDY_CALLS and args and isinstance(args[0], int):
            self._study_ids.add(args[0])
        try:
            return self._through_outages(method, args, kwargs)
        except KeyError:
            if not self._reintroduce(name, args):
                raise
            return self._through_outages(method, args, kwargs)

    def _through_outages(
        self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if not unreachable(exc):
                raise
            first = exc
        self.outages += 1
        result = ride_out(lambda: method(*args, **kwargs), where=self.where, first=first)
        with self._lock:
            self.back_at = time.monotonic()
        return result

    def _reintroduce(self, name: str, args: tuple[Any, ...]) -> bool:
        """A gRPC proxy started again after an outage serves the database through a fresh
        cache, which knows a trial only once it has read it: a write to a trial created
        before the restart is refused as an unknown trial. Have the proxy read the trial's
        study, then the write may be tried again (True); False where that cannot be the
        cause (not a proxy, no outage yet, no trial id)."""
        if not self.outages or type(self._backend).__name__ != "GrpcStorageProxy":
            return False
        if not (name.startswith("set_trial_") and args and isinstance(args[0], int)):
            return False
        for study_id in sorted(self._study_ids):  # a worker works on one study
            self._through_outages(self._backend.get_all_trials, (study_id,), {"deepcopy": False})
        return bool(self._study_ids)

    def get_heartbeat_interval(self) -> int | None:
        """The heartbeat interval of the storage underneath (None: it keeps none)."""
        if not isinstance(self._backend, BaseHeartbeat):
            return None
        return self._backend.get_heartbeat_interval()

    def get_heartbeat_stale_trial_callback(self) -> Any:
        """The stale-trial callback of the storage underneath (None: it keeps none)."""
        if not isinstance(self._backend, BaseHeartbeat):
            return None
        return self._backend.get_heartbeat_stale_trial_callback()

    def once(self, name: str, *args: Any) -> Any:
        """Call ``name`` on the storage underneath without retrying (heartbeats: a beat
        lost in an outage is replaced by the next)."""
        return getattr(self._backend, name)(*args)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def ride_out(call: Callable[[], Any], *, where: str, first: BaseException | None = None) -> Any:
    """``call()`` retried with backoff while it fails because the storage is out of reach
    (``first``: how its first try failed, if it was tried already), for up to
    :func:`outage_seconds`; then the one-line :class:`StorageUnreachable`. Any other error
    is raised at once."""
    if first is None:
        try:
            return call()
        except Exception as exc:
            if not unreachable(exc):
                raise
            first = exc
    limit = outage_seconds()
    began = time.monotonic()
    wait = FIRST_WAIT_S
    last: BaseException = first
    log.warning(
        "%s: storage out of reach (%s); retrying for up to %g s", where, describe(first), limit
    )
    while time.monotonic() - began < limit:
        time.sleep(min(wait * random.uniform(0.75, 1.25), LONGEST_WAIT_S))
        wait = min(wait * 2, LONGEST_WAIT_S)
        try:
            result = call()
        except Exception as exc:
            if not unreachable(exc):
                raise
            last = exc
            continue
        log.warning("%s: storage back after %.1f s", where, time.monotonic() - began)
        return result
    raise StorageUnreachable(
        where,
        "storage",
        f"out of reach for {limit:g} s ({describe(last)})",
        "check that the database server, or `dse storage serve`, runs, then resume the "
        "study; DSE_OUTAGE_S sets how long workers wait",
    ) from None


def describe(exc: BaseException) -> str:
    """One line for a storage's error: the innermost error ``exc`` comes from, in the
    driver's own words (a gRPC error: its status and details)."""
    inner = _chain(exc)[-1]
    code, details = getattr(inner, "code", None), getattr(inner, "details", None)
    if type(inner).__module__.startswith("grpc") and callable(code) and callable(details):
        text = f"{getattr(code(), 'name', code())}: {details() or ''}".strip()
        return f"gRPC {text.splitlines()[0]}"
    text = str(inner).strip()
    return f"{type(inner).__name__}: {text.splitlines()[0]}" if text else type(inner).__name__


def _delegate(name: str) -> Callable[..., Any]:
    def call(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The storage's ``{name}``, retried through an outage."
    return call


#: Every method of Optuna's storage and heartbeat interfaces, passed on and retried.
CALLS = tuple(
    sorted(
        {
            n
            for base in (BaseStorage, BaseHeartbeat)
            for n, v in vars(base).items()
            if callable(v) and not n.startswith("__")
        }
        - {
            "get_failed_trial_callback",
            "get_heartbeat_interval",
            "get_heartbeat_stale_trial_callback",
        }
    )
)
for _name in CALLS:
    setattr(RetryingStorage, _name, _delegate(_name))
abc.update_abstractmethods(RetryingStorage)


def unwrap(storage: BaseStorage) -> BaseStorage:
    """The storage under a :class:`RetryingStorage` (any other storage as it is)."""
    return storage._backend if isinstance(storage, RetryingStorage) else storage
