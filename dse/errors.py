"""Errors for bad input: one line naming the file, the field and the fix.

The CLI turns an :class:`InputError` into that line on stderr and exit code 2; every
other exception is an internal failure (exit code 1).
"""

from __future__ import annotations

import errno
from pathlib import Path

#: Characters of each part of an error line (where, field, reason, fix) shown at most: a
#: value echoed in it (a 10 MB model name) is cut, saying how long it was.
PART_LIMIT = 400


def cut(text: str, limit: int = PART_LIMIT) -> str:
    """``text``, or its head and tail around a note of how long it was if it is longer
    than ``limit`` characters."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 40)
    head, tail = text[: keep * 3 // 4], text[len(text) - keep // 4 :]
    return f"{head}... ({len(text)} characters) ...{tail}"


def echo(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error line, cut to about ``limit`` characters."""
    return cut(repr(value), limit)


class InputError(Exception):
    """Bad input from the user: a profile, a spec, a model name, a data file, a cache entry."""

    def __init__(self, where: str | Path, field: str, reason: str, fix: str | None = None):
        self.where = cut(str(where))
        self.field = cut(str(field))
        self.reason = cut(str(reason))
        self.fix = cut(fix) if fix is not None else None
        msg = f"{self.where}: {self.field}: {self.reason}"
        if self.fix:
            msg += f" ({self.fix})"
        # one line whatever it quotes (a library's multi-line message, a name with a newline)
        super().__init__(" ".join(part.strip() for part in msg.splitlines() if part.strip()))


#: errno values of a write the disk refused: no space left, over the file-size limit
#: (``ulimit -f``), over the quota, a read-only file system
WRITE_REFUSED = frozenset(
    e
    for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None), errno.EROFS)
    if e is not None
)


class EnvironmentProblem(InputError):
    """The machine cannot do the work (a full or read-only disk, a folder under a file, no
    permission): no fault of the candidate or the trial that met it."""


#: errno values of a machine that cannot do the work, beside a refused write: no
#: permission, a path through a file, too many open files, an I/O error
NOT_PERMITTED = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EMFILE, errno.ENFILE, errno.EIO}
)


def write_refused(where: str | Path, exc: BaseException) -> InputError | None:
    """The one-line error for a write the disk refused (see :data:`WRITE_REFUSED`), or
    None for any other exception. The writers that use it leave what was there before."""
    if not isinstance(exc, OSError) or exc.errno not in WRITE_REFUSED:
        return None
    return EnvironmentProblem(
        where,
        "write",
        f"{exc.strerror or exc}; nothing was replaced",
        "free space on that disk (or lift the file-size limit or quota), or write elsewhere",
    )


def environment_error(exc: BaseException) -> InputError | None:
    """The one-line error for a failure of the machine rather than of the input or the
    work (:class:`EnvironmentProblem`: a refused write, a folder dse may not write, a
    path through a file), or None for any other exception."""
    if isinstance(exc, EnvironmentProblem):
        return exc
    refused = write_refused(getattr(exc, "filename", None) or "a file", exc)
    if refused is not None:
        return refused
    if not isinstance(exc, OSError) or exc.errno not in NOT_PERMITTED:
        return None
    return EnvironmentProblem(
        exc.filename or "a file",
        "environment",
        exc.strerror or str(exc),
        "give dse folders it may write (the cache: DSE_CACHE; the studies/ and reports/ "
        "folders: the working folder)",
    )
