"""Run ``dse`` in a process whose files may not grow past a size (``ulimit -f``), as on a
disk that fills up: writes past it fail with EFBIG (SIGXFSZ is ignored)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from dse.cli import main
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[2:]))
"""


def dse_limited(limit: int, args: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``dse ARGS`` in ``cwd``, its files limited to ``limit`` bytes each."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(limit), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=600,
    )


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """In this process: no file grows past ``limit`` bytes while the block runs."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
