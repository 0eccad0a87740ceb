"""Each benchmark's verdict on figures that meet its targets and on figures that miss one:
the failing input must give a FAIL line and exit status 1, an unmeasured target a SKIP
and 3, the passing input 0. Before, search.py and sparsity.py returned 0 whatever their
lines said, and workers.py returned 0 without PostgreSQL, having checked nothing."""

from __future__ import annotations

import copy
from typing import Any

from benchmark_files import load_benchmark

verdict = load_benchmark("verdict")


def statuses(checks: list[Any]) -> list[str]:
    return [c.status for c in checks]


SEARCH: dict[str, Any] = {
    "trainings": 7,
    "training_keys": 7,
    "trained_once": True,
    "ratio_vs_bare": 0.93,
    "hv_fraction_of_grid": 0.999,
    "joint_search_hv": 1.327,
    "joint_beats_baselines": True,
    "cut_spec": "resnet-shapes-lte",
    "latency_ratio_vs_neurosurgeon": 2.30,
    "cut_search": {"test_accuracy": 0.992, "dense_test_accuracy": 0.992},
}


def test_search_verdict() -> None:
    search = load_benchmark("search")
    assert statuses(search.verdict(SEARCH)) == ["PASS"] * 5
    assert verdict.exit_code(search.verdict(SEARCH)) == 0
    for key, value in (
        ("trained_once", False),
        ("ratio_vs_bare", 0.79),
        ("hv_fraction_of_grid", 0.97),
        ("joint_beats_baselines", False),
        ("latency_ratio_vs_neurosurgeon", 1.49),
    ):
        figures = {**SEARCH, key: value}
        checks = search.verdict(figures)
        assert statuses(checks).count("FAIL") == 1, key
        assert verdict.exit_code(checks) == 1
    lost = copy.deepcopy(SEARCH)
    lost["cut_search"]["test_accuracy"] = 0.97  # fast, but 2.2 points below dense
    assert statuses(search.verdict(lost))[-1] == "FAIL"
    skipped = {k: v for k, v in SEARCH.items() if k != "latency_ratio_vs_neurosurgeon"}
    assert statuses(search.verdict(skipped))[-1] == "SKIP"
    assert verdict.exit_code(search.verdict(skipped)) == 3


def headline(reduction: float, d_test: float, method: str = "predefined") -> dict[str, Any]:
    return {
        "case": "mlp/digits",
        "method": method,
        "best density": "1/8",
        "realised": 0.147,
        "storage x": reduction,
        "FLOP x": reduction + 1,
        "reduction x": reduction,
        "Δ val": -0.7,
        "Δ test": d_test,
        "4x claim": "",
    }


def test_sparsity_verdict_judges_the_claim_s_method_only() -> None:
    sparsity = load_benchmark("sparsity")
    good = [headline(5.3, -0.7), headline(2.9, -0.0, "channels")]
    assert statuses(sparsity.verdict(good)) == ["PASS"]  # channels compares, is not judged
    assert verdict.exit_code(sparsity.verdict(good)) == 0
    assert statuses(sparsity.verdict([headline(3.5, -0.9)])) == ["FAIL"]  # short of 4x
    assert statuses(sparsity.verdict([headline(5.3, -1.2)])) == ["FAIL"]  # test lost
    assert verdict.exit_code(sparsity.verdict([headline(5.3, -0.7), headline(1.0, 0)])) == 1


def test_workers_verdict_skips_without_postgres() -> None:
    workers = load_benchmark("workers")
    journal_only = {"part": "scoring", "storage": {"journal": {"1": 60.4, "2": 56.6, "4": 45.4}}}
    checks = workers.verdict(journal_only)
    assert statuses(checks) == ["SKIP", "SKIP"]
    assert "no PostgreSQL" in str(checks[0])
    assert verdict.exit_code(checks) == 3
    pg = {
        "part": "scoring",
        "storage": {**journal_only["storage"], "postgres": {"1": 6.1, "2": 13.1, "4": 10.2}},
    }
    assert statuses(workers.verdict(pg)) == ["PASS", "FAIL"]  # x2.14 >= 1.5, x1.66 < 2.5
    assert verdict.exit_code(workers.verdict(pg)) == 1
    pg["storage"]["postgres"]["4"] = 16.0
    assert verdict.exit_code(workers.verdict(pg)) == 0
    no_four = {"part": "scoring", "storage": {"postgres": {"1": 6.1, "2": 13.1}}}
    assert statuses(workers.verdict(no_four)) == ["PASS", "SKIP"]


def test_workers_verdict_judges_the_cold_study() -> None:
    workers = load_benchmark("workers")

    def cold(one: float, two: float) -> dict:
        return {"1": {"median_wall_s": one}, "2": {"median_wall_s": two}, "speedup": one / two}

    # both parts: the cold study judged beside the scoring targets
    both = {"part": "all", "storage": {"postgres": {"1": 6.1, "2": 13.1, "4": 16.0}}}
    assert statuses(workers.verdict({**both, "cold": cold(120.0, 65.0)})) == ["PASS"] * 3
    checks = workers.verdict({**both, "cold": cold(120.0, 80.0)})  # x1.50 < 1.7
    assert statuses(checks) == ["PASS", "PASS", "FAIL"] and "x1.50" in str(checks[-1])
    # the cold part alone, without PostgreSQL: one SKIP, nothing judged on the journal
    alone = workers.verdict({"part": "cold"})
    assert statuses(alone) == ["SKIP"] and verdict.exit_code(alone) == 3


def test_profile_speed_verdict() -> None:
    profile_speed = load_benchmark("profile_speed")
    row = {"model": "resnet50", "params": 25_557_032, "macs": 4.09e9}
    figures = {
        "ratio": 1.2,
        "published": [{**row, "published_params": row["params"], "published_macs": 4.09e9}],
    }
    assert verdict.exit_code(profile_speed.verdict(figures)) == 0
    assert statuses(profile_speed.verdict({**figures, "ratio": 1.6})) == ["FAIL", "PASS"]
    off = {**figures, "published": [{**figures["published"][0], "macs": 4.2e9}]}  # +2.7%
    assert statuses(profile_speed.verdict(off)) == ["PASS", "FAIL"]


def test_calibrate_verdict() -> None:
    calibrate = load_benchmark("calibrate")
    good = {"base_error": 0.8, "fitted_error": 0.09, "unseen_error": 0.24}
    assert verdict.exit_code(calibrate.verdict(good)) == 0
    assert verdict.exit_code(calibrate.verdict({**good, "unseen_error": 0.9})) == 1


def test_sweep_verdict() -> None:
    sweep = load_benchmark("sweep")
    assert verdict.exit_code(sweep.verdict(combinations=9, total_s=1.5, max_rel_diff=2e-16)) == 0
    slow = sweep.verdict(combinations=9, total_s=12.0, max_rel_diff=0.0)
    assert statuses(slow) == ["FAIL", "PASS"] and verdict.exit_code(slow) == 1
    unequal = sweep.verdict(combinations=9, total_s=1.5, max_rel_diff=1e-3)
    assert statuses(unequal) == ["PASS", "FAIL"]
