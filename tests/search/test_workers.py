"""The worker registry: a held lock marks a live worker, a released one a dead worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from other_worker import hold

from dse.search.workers import Worker, registry_dir


def test_registry_dir_separates_studies_and_storages(tmp_path: Path) -> None:
    a = registry_dir(tmp_path, "s", "journal")
    assert a == registry_dir(tmp_path, "s", "journal")
    assert a != registry_dir(tmp_path, "s", "sqlite")
    assert a != registry_dir(tmp_path, "t", "journal")
    assert a.parent == tmp_path / ".workers"


def test_a_worker_sees_a_live_one_and_not_itself(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    other = hold(folder)
    try:
        with Worker(folder) as me:
            assert me.path.exists()
            alive = me.others()
            assert alive == [f"{me.path.stem.rsplit('-', 1)[0]}-{other.pid}"]
        assert not me.path.exists()  # a clean exit removes its own file
    finally:
        other.stdin.close()  # type: ignore[union-attr]
        other.wait(timeout=30)
    with Worker(folder) as me:  # the other ended cleanly: nothing left
        assert me.others() == []


def test_a_killed_worker_counts_as_dead_and_its_file_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    other = hold(folder)
    left = next(folder.glob("*.lock"))
    other.kill()  # no clean-up runs: the file stays, the lock goes with the process
    other.wait(timeout=30)
    assert left.exists()
    with Worker(folder) as me:
        assert me.others() == []
    assert not left.exists()


@pytest.mark.parametrize("enter_twice", [False, True])
def test_registering_the_same_process_twice_is_harmless(tmp_path: Path, enter_twice: bool) -> None:
    with Worker(tmp_path) as a:
        if enter_twice:
            with Worker(tmp_path) as b:
                assert b.others() == [] and a.others() == []
        assert a.others() == []
