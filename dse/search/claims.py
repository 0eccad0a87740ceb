"""Claims on training keys, recorded in the study's storage, so that a network is trained
once even when workers on several machines ask for it together.

A file lock (what the cache takes on its own) holds between the processes of one host,
and not reliably between NFS clients; the study's storage is what every worker shares.
A claim is a study system attribute ``dse:claim:<key>:<token>`` holding its worker, its
heartbeat and whether it was released. To claim a key, a worker that sees no live claim
writes its own, waits :data:`SETTLE_S` for any written at the same moment to be visible,
and keeps the key only if its token is the smallest of the live claims (every contender
reads the same set, so exactly one keeps it; the others withdraw and wait). The holder
beats every heartbeat interval; a claim that has not beaten for the grace period is a
dead worker's, and the key is claimed anew. A claim of a worker of this host whose process
is gone is dead at once (its file lock went with it), with no grace period to wait out.
Storages have no delete: a released claim stays, marked released.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna

from dse.search.optuna_compat import set_study_system_attr, study_system_attrs
from dse.search.storage import POLL_S
from dse.search.workers import beating, heartbeat_settings, this_worker, worker_alive

log = logging.getLogger(__name__)
PREFIX = "dse:claim:"
#: Seconds a new claim waits for claims written at the same moment to become visible.
SETTLE_S = 1.0


class StorageClaims:
    """Claims on training keys in ``study``'s storage (see the module)."""

    def __init__(self, study: optuna.Study):
        self.study = study

    def _attrs(self) -> dict[str, Any]:
        return study_system_attrs(self.study)

    def _write(self, name: str, value: dict[str, Any]) -> None:
        set_study_system_attr(self.study, name, value)

    def live(self, key: str) -> dict[str, dict[str, Any]]:
        """The live claims on ``key``: token -> claim."""
        _, grace = heartbeat_settings()
        now = time.time()
        head = f"{PREFIX}{key}:"
        return {
            name[len(head) :]: v
            for name, v in self._attrs().items()
            if name.startswith(head)
            and isinstance(v, dict)
            and not v.get("released")
            and now - float(v.get("beat", 0)) <= grace
            and worker_alive(str(v.get("worker", ""))) is not False
        }

    def busy(self, key: str) -> bool:
        """Whether a live worker holds the claim on ``key``."""
        return bool(self.live(key))

    @contextmanager
    def hold(self, key: str, ready: Callable[[], bool]) -> Iterator[None]:
        """Hold the claim on ``key`` while the block runs, or run the block once
        ``ready()`` says the key's entry exists (its holder finished); waits meanwhile."""
        every, _ = heartbeat_settings()
        token = uuid.uuid4().hex
        name = f"{PREFIX}{key}:{token}"
        claim = {"worker": this_worker(), "since": time.time()}
        waited = False
        while True:
            if ready():
                yield
                return
            if not self.live(key):
                self._write(name, {**claim, "beat": time.time()})
                time.sleep(SETTLE_S)
                live = self.live(key)
                if min(live, default=token) == token:
                    break
                self._write(name, {**claim, "beat": time.time(), "released": True})
            if not waited:
                holders = ", ".join(sorted(v.get("worker", "?") for v in self.live(key).values()))
                log.warning(
                    "another worker (%s) is training %s...; waiting for it",
                    holders or "?",
                    key[:12],
                )
                waited = True
            time.sleep(POLL_S)
        try:
            with beating(every, lambda: self._write(name, {**claim, "beat": time.time()})):
                yield
        finally:
            self._write(name, {**claim, "beat": time.time(), "released": True})
