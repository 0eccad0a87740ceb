"""A journal lock left by a killed process is released, never spun on forever."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import optuna
import pytest

from dse.search import storage as storage_mod


def _die_holding_the_lock(cwd: Path, storage: str) -> None:
    """A process that takes the journal's lock and is killed (os._exit) before releasing
    it: what ``kill -9`` during an append leaves behind."""
    code = textwrap.dedent(f"""
        import os
        from dse.search.study import storage_for
        s = storage_for("stale", {storage!r})
        s._backend._lock.acquire()
        os._exit(9)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    rc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env).returncode
    assert rc == 9


@pytest.mark.parametrize("storage", ["journal", "studies/other.journal"])
def test_a_stale_journal_lock_is_released_after_the_grace_period(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch, storage: str
) -> None:
    monkeypatch.setattr(storage_mod, "JOURNAL_GRACE_S", 3)
    (study_folder / "studies").mkdir(exist_ok=True)
    _die_holding_the_lock(study_folder, storage)
    locks = list((study_folder / "studies").glob("*.lock"))
    assert len(locks) == 1 and locks[0].is_symlink()
    # the lock names its journal by an absolute path: Optuna's stale-lock check reads the
    # link's target, and a relative one resolves beside the link, to a file that is not
    assert Path(os.readlink(locks[0])).is_absolute()
    done = threading.Event()

    def create() -> None:
        optuna.create_study(storage=storage_mod.storage_for("stale", storage), study_name="s")
        done.set()

    threading.Thread(target=create, daemon=True).start()
    assert done.wait(30), "the stale lock was never released"
    assert not any(p.is_symlink() for p in (study_folder / "studies").glob("*.lock"))


def test_the_journal_path_is_absolute_whatever_the_working_folder(study_folder: Path) -> None:
    s = storage_mod.storage_for("abs")
    assert Path(s._backend._file_path).is_absolute()
