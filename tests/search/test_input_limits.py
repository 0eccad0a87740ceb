"""Input that would exhaust the machine or flood the terminal: a grid past the stated
limit is refused in one line naming its size, before anything is scored or trained; a
value echoed in an error line is cut to a sane length."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_cli_refused, assert_refused, spec, write_spec
from outage import dse_env

from dse.search.grid_limit import GRID_LIMIT
from dse.search.spec import parse_spec


def _fine_thresholds(name: str, step: float, **kw: object) -> str:
    """The tiny study with thresholds from 0 to 1 in steps of ``step``."""
    return spec(name, space={"thresholds": {"low": 0.0, "high": 1.0, "step": step}}, **kw)


def test_a_grid_sampler_over_a_million_thresholds_is_refused_naming_its_size() -> None:
    text = _fine_thresholds("fine", 1e-6, sampler="grid")
    start = time.monotonic()
    assert_refused(
        lambda: parse_spec(text, where="fine.toml"),
        field="sampler",
        where="fine.toml",
        words=[
            "the grid has at least 2,000,002 candidates",
            f"over the limit of {GRID_LIMIT:,}",
            "thresholds.step",
        ],
    )
    assert time.monotonic() - start < 30
    parse_spec(_fine_thresholds("fine", 1e-6), where="fine.toml")  # other samplers: fine


@pytest.mark.slow
def test_study_grid_of_a_space_past_the_limit_is_one_line(study_folder: Path) -> None:
    """``dse study grid`` counts the whole space (cuts and exits too) before scoring."""
    path = study_folder / "wide.toml"
    path.write_text(_fine_thresholds("wide", 0.001))
    done = subprocess.run(
        [sys.executable, "-m", "dse.cli", "study", "grid", str(path), "--quiet"],
        env=dse_env(DSE_GRID_LIMIT="5000"),
        cwd=study_folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "the grid has " in lines[0] and "candidates, over the limit of 5,000" in lines[0]
    # refused before the study was created: nothing is stored under its name
    assert not (study_folder / "studies" / "wide.journal").exists()


def test_a_huge_model_name_is_cut_in_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec(tmp_path / "huge.toml", "huge", model={"name": "x" * 10_000_000})
    line = assert_cli_refused(
        ["study", "run", str(path), "--quiet"],
        capsys,
        where=path,
        words=["model.name", "(10000002 characters)", "known: mlp"],
    )
    assert len(line) < 2000
