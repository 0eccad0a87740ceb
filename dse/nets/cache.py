"""A content-addressed cache of trained networks on disk.

An entry is one file ``<root>/<key[:2]>/<key>.dse``: a magic line, the SHA-256 of the
payload, then the payload (``torch.save`` of plain tensors, numbers and strings, read back
with ``weights_only=True``: a cache file can never run code). Writes go to a temp file in
the same folder and are renamed into place, so a crash leaves the old entry or none, never
half of one. A file whose digest does not match is reported, moved aside as
``*.corrupt`` (kept for inspection, never trusted) and treated as a miss.

Processes that share a cache (parallel workers of a study) train a key one at a time:
:meth:`Cache.claim` holds an exclusive lock on ``<key>.lock`` beside the entry, so a
second process asking for a network in training waits and then reads it. Hosts that share
a cache folder share their claims through :attr:`Cache.claims` (a study's storage: see
``dse.search.claims``), which holds where file locks across NFS clients do not.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import torch

from dse import locks
from dse.errors import InputError, environment_error, write_refused

log = logging.getLogger(__name__)

SCHEMA = 2  # bump when training changes the weights a key stands for
MAGIC = b"DSE-CACHE 1\n"


def default_root() -> Path:
    """``$DSE_CACHE`` or ``.dse-cache`` in the working directory."""
    return Path(os.environ.get("DSE_CACHE", ".dse-cache"))


def key_of(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields`` plus the schema version."""
    text = json.dumps({"schema": SCHEMA, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_umask_lock = threading.Lock()


def file_mode() -> int:
    """The mode a file created now gets by the process's umask (``0o666 & ~umask``): what
    a plain ``open()`` gives, so that a cache shared between users reads as their other
    files do. Read from /proc where it says so (Linux), else set and restored under a
    lock (``os.umask`` has no read-only form)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def check_writable(folder: Path, *, field: str = "folder") -> None:
    """The one-line error naming ``folder`` and ``field`` (what set it: ``DSE_CACHE``,
    ``--out``) if files cannot be written there: it is a file, lies under a file, or its
    nearest existing folder refuses a new file (read-only, full, no permission). Nothing
    is created: a missing folder is judged by the folder it would be made in."""
    fix = "point it at a folder dse may create and write; free some space if the disk is full"
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, field, "is a file, not a folder", fix)
    probe = folder
    while not probe.exists() and probe.parent != probe:  # also a path under a file
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(folder, field, f"cannot write there: {probe} is a file", fix)
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".dse-writable.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        if environment_error(exc) is None:
            raise
        raise InputError(folder, field, f"cannot write there: {exc.strerror or exc}", fix) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file and a rename (all or nothing), with the
    mode a plain ``open()`` would give it (:func:`file_mode`, not the temp file's 0600).

    A write the disk refuses (full, over a file-size limit or quota, read-only) is the
    one-line :class:`InputError`; the temp file is removed and ``path`` keeps what it held.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise (write_refused(path, exc) or exc) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        refused = write_refused(path, exc)
        if refused is not None:
            raise refused from None
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where folders can be opened and synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


STALE_TEMP_S = 3600.0
"""A temp file of an entry older than this (seconds) was left by a writer that was killed
(a write takes seconds): the next write of the entry removes it. It was never read."""


def _remove_stale_temps(path: Path) -> None:
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except FileNotFoundError:
            pass


class Claims(Protocol):
    """Claims on keys shared by every host of a cache (e.g. in a study's storage)."""

    def hold(self, key: str, ready: Callable[[], bool]) -> AbstractContextManager[None]:
        """Hold the claim on ``key``, or return once ``ready()`` (its entry exists)."""
        ...

    def busy(self, key: str) -> bool:
        """Whether a live process holds the claim on ``key``."""
        ...


class Cache:
    """Trained networks by key."""

    def __init__(self, root: str | Path | None = None, *, claims: Claims | None = None):
        self.root = Path(root) if root is not None else default_root()
        #: claims shared beyond this host (a study's storage); None: this host's locks only
        self.claims = claims
        if self.root.exists() and not self.root.is_dir():
            raise InputError(
                self.root,
                "DSE_CACHE" if root is None else "cache",
                "is a file, not a folder",
                "point it at a folder (created when missing), or unset DSE_CACHE",
            )

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.dse"

    def check_writable(self) -> None:
        """The one-line error if networks cannot be stored here (see
        :func:`check_writable`), before any is trained."""
        check_writable(self.root, field="DSE_CACHE" if self.root == default_root() else "cache")

    @contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold the exclusive right to train ``key`` (waiting while another process has it).

        The lock files stay: removing one while another process waits on it would let a
        third lock a new file and train alongside.
        """
        # without locks (not POSIX) there is no cross-process claim: a key may be trained
        # twice
        with locks.exclusive(
            self.path(key).with_suffix(".lock"),
            on_wait=lambda: log.warning(
                "another process is training %s...; waiting for it", key[:12]
            ),
        ):
            if self.claims is None:
                yield
            else:  # then among the hosts sharing this cache
                with self.claims.hold(key, ready=self.path(key).exists):
                    yield

    def busy(self, key: str) -> bool:
        """Whether another process holds the claim on ``key`` right now."""
        return locks.held_elsewhere(self.path(key).with_suffix(".lock")) or (
            self.claims is not None and self.claims.busy(key)
        )

    def put(self, key: str, payload: dict[str, Any]) -> Path:
        buf = io.BytesIO()
        torch.save(payload, buf)
        body = buf.getvalue()
        try:  # refuse what get() could never read back, rather than store a "corrupt" entry
            torch.load(io.BytesIO(body), weights_only=True)
        except Exception as exc:
            raise TypeError(
                f"cache payload for {key} cannot be read back with "
                f"weights_only=True (plain tensors, numbers, strings, lists and "
                f"dicts only): {exc}"
            ) from None
        digest = hashlib.sha256(body).hexdigest().encode()
        path = self.path(key)
        atomic_write_bytes(path, MAGIC + digest + b"\n" + body)
        _remove_stale_temps(path)
        return path

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload, or None on a miss or a corrupt entry (which is moved aside)."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                raw = f.read()
        except FileNotFoundError:
            return None
        problem = self._check(raw)
        if problem is None:
            body = raw[len(MAGIC) + 65 :]
            try:
                payload = torch.load(io.BytesIO(body), weights_only=True)
            except Exception as exc:  # digest matched but content unreadable
                problem = f"unreadable payload ({type(exc).__name__})"
            else:
                if isinstance(payload, dict) and payload.get("key") == key:
                    return payload
                problem = "payload belongs to another key"
        self._set_aside(path, inode, problem)
        return None

    @staticmethod
    def _set_aside(path: Path, inode: int, problem: str) -> None:
        """Move the corrupt file ``path`` (the one read: ``inode``) to ``*.corrupt``, never
        deleting it. A file another process has put in its place since (a new entry), or
        already moved aside, is left alone."""
        try:
            if os.stat(path).st_ino != inode:
                return
        except FileNotFoundError:
            return
        aside = path.with_suffix(".corrupt")
        n = 0
        while aside.exists():  # keep every earlier corrupt copy too
            n += 1
            aside = path.with_suffix(f".{n}.corrupt")
        try:
            os.replace(path, aside)
        except FileNotFoundError:  # another reader moved it aside first
            return
        log.warning(
            "%s: cache entry corrupt (%s); moved to %s and retraining", path, problem, aside.name
        )

    @staticmethod
    def _check(raw: bytes) -> str | None:
        if not raw.startswith(MAGIC):
            return "bad magic"
        digest = raw[len(MAGIC) : len(MAGIC) + 64]
        body = raw[len(MAGIC) + 65 :]
        if hashlib.sha256(body).hexdigest().encode() != digest:
            return "digest mismatch"
        return None

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*/*.dse"))
