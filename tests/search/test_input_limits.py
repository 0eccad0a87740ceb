"""Input that would exhaust the machine or flood the terminal: a grid past the stated
limit is refused in one line naming its size, before anything is scored or trained; a
value echoed in an error line is cut to a sane length."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from outage import dse_env
from tiny_study import spec_text

from dse.cli import main
from dse.errors import InputError
from dse.search.spec import GRID_LIMIT, parse_spec

FINE = "thresholds = { low = 0.5, high = 1.0, step = 0.25 }"


def _fine_thresholds(name: str, step: str, **kw: object) -> str:
    return spec_text(name, **kw).replace(
        FINE, f"thresholds = {{ low = 0.0, high = 1.0, step = {step} }}"
    )  # type: ignore[arg-type]


def test_a_grid_sampler_over_a_million_thresholds_is_refused_naming_its_size() -> None:
    text = _fine_thresholds("fine", "1e-6", sampler="grid")
    start = time.monotonic()
    with pytest.raises(InputError) as caught:
        parse_spec(text, where="fine.toml")
    assert time.monotonic() - start < 30
    line = str(caught.value)
    assert line.startswith("fine.toml: sampler: the grid has at least 2,000,002 candidates")
    assert f"over the limit of {GRID_LIMIT:,}" in line and "thresholds.step" in line
    parse_spec(_fine_thresholds("fine", "1e-6"), where="fine.toml")  # other samplers: fine


@pytest.mark.slow
def test_study_grid_of_a_space_past_the_limit_is_one_line(isolated: Path) -> None:
    """``dse study grid`` counts the whole space (cuts and exits too) before scoring."""
    spec = isolated / "wide.toml"
    spec.write_text(_fine_thresholds("wide", "0.001"))
    done = subprocess.run(
        [sys.executable, "-m", "dse.cli", "study", "grid", str(spec), "--quiet"],
        env=dse_env(DSE_GRID_LIMIT="5000"),
        cwd=isolated,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "the grid has " in lines[0] and "candidates, over the limit of 5,000" in lines[0]


def test_a_huge_model_name_is_cut_in_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "x" * 10_000_000
    spec = tmp_path / "huge.toml"
    spec.write_text(spec_text("huge").replace('name = "mlp"', f'name = "{name}"'))
    assert main(["study", "run", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 2000
    assert "model.name" in err and "(10000002 characters)" in err and "known: mlp" in err
