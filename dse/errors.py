"""Errors for bad input: one line naming the file, the field and the fix.

The CLI turns an :class:`InputError` into that line on stderr and exit code 2; every
other exception is an internal failure (exit code 1).
"""

from __future__ import annotations

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
