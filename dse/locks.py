"""Advisory file locks between processes on one machine (POSIX ``flock``).

A lock is held for as long as its file descriptor is open, and the operating system
releases it when the process ends, even when it is killed: a lock another process can
take belongs to nobody alive. Without ``fcntl`` (not POSIX) nothing is ever locked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

AVAILABLE = fcntl is not None


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` if it is free; whether it was taken."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int) -> None:
    """Take the exclusive lock on ``fd``, waiting while another process holds it."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def held_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` right now (False if absent)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        return not try_lock(fd)
    finally:
        os.close(fd)  # closing releases what try_lock took


@contextmanager
def exclusive(path: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` (created with its folder if missing) while the
    block runs, waiting while another process holds it (``on_wait`` is called first). The
    file stays: removing it while another process waits on it would let a third lock a
    new file alongside."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not try_lock(fd):
            if on_wait is not None:
                on_wait()
            lock(fd)
        yield
    finally:
        os.close(fd)  # closing releases the lock
