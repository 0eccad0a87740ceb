"""The verdict every benchmark ends with: PASS/FAIL/SKIP lines and the exit status they
give (0 all hold, 1 any failed, 3 one could not be measured or nothing was judged)."""

from __future__ import annotations

import pytest
from benchmark_files import load_benchmark

verdict = load_benchmark("verdict")


def test_exit_status_follows_the_worst_check() -> None:
    ok, bad, gap = (
        verdict.judge(True, "a"),
        verdict.judge(False, "b"),
        verdict.judge(None, "c", why_skipped="no server"),
    )
    assert (ok.status, bad.status, gap.status) == ("PASS", "FAIL", "SKIP")
    assert str(gap) == "SKIP: c (no server)"
    assert verdict.exit_code([ok, ok]) == 0
    assert verdict.exit_code([ok, bad, gap]) == 1  # a failure wins over a skip
    assert verdict.exit_code([ok, gap]) == 3
    assert verdict.exit_code([]) == 3  # nothing judged has not passed


def test_conclude_prints_each_check_and_the_overall_line() -> None:
    said: list[str] = []
    code = verdict.conclude(
        [verdict.judge(True, "x"), verdict.skipped("y")], note="quick run", say=said.append
    )
    assert code == 3
    assert said == ["PASS: x", "SKIP: y", "OVERALL: SKIP (quick run)"]


def test_a_check_has_one_of_three_statuses() -> None:
    with pytest.raises(ValueError):
        verdict.Check("MAYBE", "x")
