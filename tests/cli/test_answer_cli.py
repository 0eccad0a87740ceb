"""What ``dse study run`` says first (storage, cache, new or resumed), what it refuses
(a negative trial count, a spec whose study is stored in another folder), and ``dse study
grid --out`` writing every candidate with the columns of front.csv."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from helpers.specs import spec as spec_text

from dse.cli import main
from dse.search import POINT_COLUMNS


@pytest.fixture(autouse=True)
def _isolated(study_folder: Path) -> None:
    """Every test in its own folder, all sharing one training cache (see conftest)."""


def test_a_negative_trial_count_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("neg.toml").write_text(spec_text("neg", n_trials=3))
    assert main(["study", "run", "neg.toml", "--n-trials", "-5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n-trials" in err and "-5" in err
    assert not Path("studies/neg.journal").exists()


def test_study_run_says_first_what_it_opened_and_whether_it_resumes(
    capsys: pytest.CaptureFixture[str], shared_cache: Path
) -> None:
    Path("first.toml").write_text(spec_text("first", n_trials=3))
    assert main(["study", "run", "first.toml", "--quiet"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("study first: storage studies/first.journal; training cache ")
    assert str(shared_cache) in line and line.endswith("; a new study")
    assert main(["study", "run", "first.toml", "--n-trials", "4", "--quiet"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert re.search(r"\(2 of 2 network\(s\) cached\); resumed: 3 complete trial\(s\)", line)


def test_a_spec_run_from_another_folder_does_not_start_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "project"
    (home / "studies").mkdir(parents=True)
    spec = home / "studies" / "away.toml"
    spec.write_text(spec_text("away", n_trials=3))
    monkeypatch.chdir(home)
    assert main(["study", "run", "studies/away.toml", "--quiet"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "studies/away.journal" in err and str(home) in err
    assert not (elsewhere / "studies" / "away.journal").exists()
    # naming the stored study continues it
    stored = home / "studies" / "away.journal"
    assert main(["study", "run", str(spec), "--storage", str(stored), "--quiet"]) == 0
    assert "resumed: 3 complete trial(s)" in capsys.readouterr().out


def test_the_grid_writes_every_candidate_with_the_columns_of_front_csv(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("g.toml").write_text(spec_text("g", n_trials=4))
    assert main(["study", "run", "g.toml", "--quiet"]) == 0
    assert main(["study", "grid", "g.toml", "--out", "grid.csv", "--quiet"]) == 0
    out = capsys.readouterr().out
    grid = pd.read_csv("grid.csv")
    assert f"wrote grid.csv: {len(grid)} candidates, one row each" in out
    assert len(grid) == 140 + 14  # the space, and Edgent's right-sized points beside it
    assert list(grid.columns[: len(POINT_COLUMNS)]) == list(POINT_COLUMNS)
    assert (grid.configurations == 1).all() and set(grid.source) >= {"grid", "edgent"}
    assert main(["front", "g", "--format", "csv", "--out", "front.csv", "--quiet"]) == 0
    front = pd.read_csv("front.csv")
    assert set(front.columns) == set(grid.columns)
    assert list(front.columns[: len(POINT_COLUMNS)]) == list(POINT_COLUMNS)
    # a point under the floor is marked (the MLP's exits after one epoch may be)
    assert grid.below_floor.dtype == bool
