"""benchmarks/mtl.py's verdict: accuracy needs every task above its learned floor on both
sides and MTL within 1 point of STL; cost is judged at each design's own best cut, the
1/T at the same cut (true by construction) never gates."""

from __future__ import annotations

import copy
from typing import Any

from benchmark_files import load_benchmark

mtl = load_benchmark("mtl")
verdict = load_benchmark("verdict")


def case(T: int) -> dict[str, Any]:
    rows = [
        {
            "task": f"t{i}",
            "mtl_accuracy": 0.97,
            "stl_accuracy": 0.975,
            "mtl_val": 0.96,
            "stl_val": 0.97,
            "floor": 0.45,
        }
        for i in range(T)
    ]
    return {
        "tasks": rows,
        "best_cut": {"latency_ratio": 0.9, "energy_ratio": 0.8},
        # a same-cut ratio above 1/T would have failed the old cost target; it is
        # informative only now
        "same_cut": {"edge_flops_ratio": 1.0, "bytes_ratio": 1.0},
    }


def test_passing_figures() -> None:
    checks = mtl.verdict({2: case(2), 3: case(3)})
    assert [c.status for c in checks] == ["PASS"] * 4
    assert verdict.exit_code(checks) == 0


def test_a_task_below_its_floor_on_the_single_task_side_fails() -> None:
    results = {2: case(2), 3: case(3)}
    results[3]["tasks"][1]["stl_val"] = 0.30  # the single-task network did not learn
    checks = mtl.verdict(results)
    assert [c.status for c in checks] == ["PASS", "PASS", "FAIL", "PASS"]
    assert "t1 (STL 30.0% < floor 45.0%)" in checks[2].text
    assert verdict.exit_code(checks) == 1


def test_a_task_below_its_floor_on_the_multi_task_side_fails() -> None:
    results = {2: case(2)}
    results[2]["tasks"][0]["mtl_val"] = 0.40
    assert [c.status for c in mtl.verdict(results)] == ["FAIL", "PASS"]


def test_mtl_more_than_a_point_behind_fails() -> None:
    results = {2: case(2)}
    results[2]["tasks"][1]["mtl_accuracy"] = 0.96  # 1.5 points behind 0.975
    checks = mtl.verdict(results)
    assert checks[0].status == "FAIL" and "t1 (-1.5 points)" in checks[0].text


def test_cost_is_judged_at_each_design_s_own_best_cut() -> None:
    slower = copy.deepcopy(case(3))
    slower["best_cut"]["latency_ratio"] = 1.05
    assert [c.status for c in mtl.verdict({3: slower})] == ["PASS", "FAIL"]
    free = copy.deepcopy(case(3))
    free["best_cut"]["energy_ratio"] = None  # nothing to divide by: not measured
    checks = mtl.verdict({3: free})
    assert [c.status for c in checks] == ["PASS", "SKIP"] and verdict.exit_code(checks) == 3
