"""Which processes are working on a study right now: one held file lock per worker.

Several ``dse study run`` processes may share one study (Optuna's way of running in
parallel). A trial left RUNNING is then either a live worker's (it may be training for
minutes) or a crashed one's. Each worker holds an exclusive ``flock`` on a file of its
own for as long as it runs; the operating system releases it when the process ends, even
when it is killed. A lock another process can take belongs to a dead worker.

The files live beside the study's storage on this machine, so this sees the workers of
this host only (the journal and sqlite storages are local files anyway); workers sharing
an RDB server from several hosts should resume with all of them stopped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from dse import locks


def registry_dir(root: Path, study: str, storage: str) -> Path:
    """The folder of a study's worker locks: one per study name and storage."""
    tag = hashlib.sha256(storage.encode()).hexdigest()[:8]
    return root / ".workers" / f"{study}-{tag}"


class Worker:
    """This process as a worker of one study, while the ``with`` block runs."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / f"{socket.gethostname()}-{os.getpid()}.lock"
        self._fd: int | None = None

    def __enter__(self) -> Worker:
        if locks.AVAILABLE:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not locks.try_lock(self._fd):  # the same process registered twice
                os.close(self._fd)
                self._fd = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def others(self) -> list[str]:
        """The other live workers (lock file names); files of dead workers are removed."""
        return live_workers(self.folder, besides=self.path)


@contextmanager
def study_file_lock(folder: Path) -> Iterator[None]:
    """Hold the study's own lock (a file in ``folder``), waiting for it: what must happen
    one worker at a time (starting up and judging RUNNING trials stale; counting the
    trials and creating the next) runs inside."""
    with locks.exclusive(folder / "study.serial"):
        yield


def live_workers(folder: Path, *, besides: Path | None = None) -> list[str]:
    """The live workers registered in ``folder`` (but ``besides``); dead ones' files go."""
    if not locks.AVAILABLE or not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.glob("*.lock")):
        if p == besides:
            continue
        if locks.held_elsewhere(p):
            found.append(p.stem)
        else:  # its worker is gone (or finished meanwhile)
            p.unlink(missing_ok=True)
    return found


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
