"""Other processes: a worker of a study, a training in progress (tests of parallel runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, time
import optuna
from dse.search.storage import storage_for
from dse.search.workers import this_worker, write_record
name, storage = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name=name, storage=storage_for(name, storage))
now = time.time()
write_record(study, this_worker(), {"index": int(sys.argv[3]), "since": now, "beat": now})
print("ready", flush=True)
sys.stdin.readline()
"""


def hold(name: str, storage: str = "journal", *, index: int = 1) -> subprocess.Popen[str]:
    """Another process registered as a live worker (of ``index``) of the existing study
    ``name`` in ``storage`` until its stdin closes; killed, it is a dead one."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, name, storage, str(index)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


CLAIM = """
import shutil, sys
from dse.nets.cache import Cache
cache, key = Cache(sys.argv[1]), sys.argv[2]
with cache.claim(key):
    print("claimed", flush=True)
    sys.stdin.readline()  # "training" until told to finish
    if len(sys.argv) > 3:
        shutil.copy(sys.argv[3], cache.path(key))
"""


def hold_claim(root: Path, key: str, *, then_write: Path | None = None) -> subprocess.Popen[str]:
    """Another process training ``key`` (holding its claim) until its stdin closes; then
    it stores ``then_write`` (a cache entry) as the key's entry, if given."""
    extra = [str(then_write)] if then_write is not None else []
    p = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(root), key, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "claimed"
    return p
