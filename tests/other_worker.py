"""Other processes: a worker of a study, a training in progress (tests of parallel runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys
from pathlib import Path
from dse.workers import Worker
with Worker(Path(sys.argv[1])):
    print("ready", flush=True)
    sys.stdin.readline()
"""


def hold(folder: Path) -> subprocess.Popen[str]:
    """Another process registered as a worker of ``folder`` until its stdin closes."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


CLAIM = """
import sys
from dse.cache import Cache
with Cache(sys.argv[1]).claim(sys.argv[2]):
    print("claimed", flush=True)
    sys.stdin.readline()
"""


def hold_claim(root: Path, key: str) -> subprocess.Popen[str]:
    """Another process training ``key`` (holding its claim) until its stdin closes."""
    p = subprocess.Popen([sys.executable, "-c", CLAIM, str(root), key], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "claimed"
    return p
