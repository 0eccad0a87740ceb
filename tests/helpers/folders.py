"""The folder a study test runs in: its own working folder (``studies/``, ``reports/``
land there), the session's shared training cache, and one torch thread.

One thread because small networks train far faster on one thread than on two contended
ones when the 2 cores are shared; the shared cache because the tiny study's networks are
then trained once per session. conftest turns :func:`study_folder_at` into the fixtures
``study_folder`` (per test) and ``module_study_folder`` (per module, for a study that
several tests read).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dse.costmodel import pinned_threads


@contextmanager
def study_folder_at(root: Path, cache: Path, *, threads: int | None = 1) -> Iterator[Path]:
    """Work in ``root`` with ``DSE_CACHE`` set to ``cache`` and ``threads`` torch threads
    (None: leave them), restoring all three afterwards; yields ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp, pinned_threads(threads):
        mp.chdir(root)
        mp.setenv("DSE_CACHE", str(cache))
        yield root
