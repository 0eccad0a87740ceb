"""Advisory file locks between processes on one machine (POSIX ``flock``).

A lock is held for as long as its file descriptor is open, and the operating system
releases it when the process ends, even when it is killed: a lock another process can
take belongs to nobody alive. Without ``fcntl`` (not POSIX) nothing is ever locked.
"""

from __future__ import annotations

import os
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
