"""A ``python`` process a test starts (a server, mostly): this checkout first on its path,
its output piped as text, and never left running after the test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The checkout the tests run from: the processes they start import its dse.
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def python_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``python ARGS``; yield the process and the first line it prints (a server
    prints its address there, flushed, before it serves: the line says it is ready), and
    kill the process if it still runs on the way out."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
