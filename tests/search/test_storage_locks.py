"""A journal lock left by a killed process is released, never spun on forever."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import optuna
import pytest

from dse.search import storage as storage_mod


def _die_holding_the_lock(storage: str) -> None:
    """Take the journal's lock and never release it: what a process killed during an
    append (``kill -9``) leaves behind, a lock file no one will remove. The lock is a file,
    not a process's, so taking it here leaves the same file as a dead process would."""
    backend = storage_mod.storage_for("stale", storage)._backend  # type: ignore[attr-defined]
    assert backend._lock.acquire()


@pytest.mark.parametrize("storage", ["journal", "studies/other.journal"])
def test_a_stale_journal_lock_is_released_after_the_grace_period(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch, storage: str
) -> None:
    monkeypatch.setattr(storage_mod, "JOURNAL_GRACE_S", 3)
    (study_folder / "studies").mkdir(exist_ok=True)
    _die_holding_the_lock(storage)
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
