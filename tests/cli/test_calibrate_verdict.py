"""``dse calibrate`` keeps a fitted profile only when it is clearly better than the base
profile and the timings are steadier than the error it claims; otherwise it says why and
exits 1, writing the file only with ``--force``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import dse.cli.profile as profile_cli
from dse.cli import main


def _table(base: float, fitted: float, unseen: float, spread: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "base_error": [base, -base],
            "fitted_error": [fitted, -fitted],
            "unseen_error": [unseen, -unseen],
            "spread": [spread, spread],
        }
    )


def test_a_fit_is_judged_against_the_base_and_the_timings_spread() -> None:
    assert profile_cli.fit_problems(_table(0.94, 0.10, 0.15, 0.05)) == []
    # what a user saw: fitted 91%, base 94%, unseen 98%
    (said,) = profile_cli.fit_problems(_table(0.94, 0.91, 0.98, 0.05))
    assert said.startswith("the fit is not clearly better than the base profile")
    assert "91% fitted, 98% on unseen networks, against 94% for the base" in said
    (said,) = profile_cli.fit_problems(_table(0.94, 0.10, 0.15, 0.40))
    assert "timings spread wider (40%" in said and "than the error the fit claims (15%)" in said
    # one network measured: no unseen error, the fitted one is what to expect
    assert profile_cli.fit_problems(_table(0.94, 0.10, math.nan, 0.05)) == []


def test_a_fit_not_kept_exits_1_and_is_written_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_cli, "fit_problems", lambda table: ["it is no better"])
    out = tmp_path / "mine.toml"
    args = ["calibrate", "--base", "raspberry-pi-4", "--out", str(out)]
    args += ["--models", "mlp", "--repeats", "1", "--threads", "1"]
    assert main(args) == 1
    said = capsys.readouterr()
    assert "dse: calibration not kept: it is no better" in said.err
    assert "not written; pass --force" in said.err and not out.exists()
    assert main([*args, "--force"]) == 1
    assert out.exists() and f"wrote {out}" in capsys.readouterr().out
