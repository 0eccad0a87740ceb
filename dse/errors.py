"""Errors for bad input: one line naming the file, the field and the fix.

The CLI turns an :class:`InputError` into that line on stderr and exit code 2; every
other exception is an internal failure (exit code 1).
"""

from __future__ import annotations

import errno
from pathlib import Path


class InputError(Exception):
    """Bad input from the user: a profile, a spec, a model name, a data file, a cache entry."""

    def __init__(self, where: str | Path, field: str, reason: str, fix: str | None = None):
        self.where = str(where)
        self.field = field
        self.reason = reason
        self.fix = fix
        msg = f"{self.where}: {field}: {reason}"
        if fix:
            msg += f" ({fix})"
        # one line whatever it quotes (a library's multi-line message, a name with a newline)
        super().__init__(" ".join(part.strip() for part in msg.splitlines() if part.strip()))


#: errno values of a write the disk refused: no space left, over the file-size limit
#: (``ulimit -f``), over the quota, a read-only file system
WRITE_REFUSED = frozenset(
    e
    for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None), errno.EROFS)
    if e is not None
)


def write_refused(where: str | Path, exc: BaseException) -> InputError | None:
    """The one-line error for a write the disk refused (see :data:`WRITE_REFUSED`), or
    None for any other exception. The writers that use it leave what was there before."""
    if not isinstance(exc, OSError) or exc.errno not in WRITE_REFUSED:
        return None
    return InputError(
        where,
        "write",
        f"{exc.strerror or exc}; nothing was replaced",
        "free space on that disk (or lift the file-size limit or quota), or write elsewhere",
    )
