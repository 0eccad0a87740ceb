"""benchmarks/exits.py: its verdict (figures in, PASS/FAIL/SKIP lines out), the exit codes,
the head chosen on validation and the FLOPs a sample pays at the exit it leaves by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from benchmark_files import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


bench = load_benchmark("exits")
verdict = load_benchmark("verdict")


def lines_of(checks: list[Any]) -> list[str]:
    return [str(c) for c in checks]


def case(
    model: str = "vgg-s",
    data: str = "shapes",
    head: str = "sdn",
    *,
    saved: float = 0.5,
    lost: float = 0.0,
    val_saved: float = 0.5,
    exits: tuple[float, ...] = (0.6, 0.8),
    floor: float = 0.45,
) -> dict[str, Any]:
    return {
        "model": model,
        "data": data,
        "head": head,
        "edge_flops_saved": saved,
        "val_flops_saved": val_saved,
        "test_accuracy_lost": lost,
        "exits": [
            {
                "site": f"stages.{i}",
                "val_accuracy": a,
                "test_accuracy": a,
                "floor": floor,
                "head_flops": 100.0,
            }
            for i, a in enumerate(exits)
        ],
    }


def passing() -> list[dict[str, Any]]:
    return [case(), case("resnet-s", saved=0.41, lost=0.01)]


def test_every_target_met_passes_with_exit_code_0() -> None:
    checks = bench.verdict(passing(), default_head="sdn", chosen_head="sdn")
    lines = lines_of(checks)
    assert all(line.startswith("PASS") for line in lines), lines
    assert len(lines) == 1 + 2 + 2  # the head, the floors of 2 cases, 2 savings
    assert verdict.exit_code(checks) == 0


@pytest.mark.parametrize(
    ("cases", "chosen", "needle"),
    [
        (passing(), "conv", "default head (sdn) is the one chosen on validation (conv)"),
        ([case(exits=(0.3, 0.8)), passing()[1]], "sdn", "stages.0 30.0% (floor 45.0%)"),
        ([case(saved=0.39), passing()[1]], "sdn", "save 39.0%"),
        ([case(lost=0.0111), passing()[1]], "sdn", "-1.11 points"),
    ],
)
def test_each_missed_target_fails_with_exit_code_1(
    cases: list[dict[str, Any]], chosen: str, needle: str
) -> None:
    checks = bench.verdict(cases, default_head="sdn", chosen_head=chosen)
    lines = lines_of(checks)
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and needle.replace("-1.11", "+1.11") in failed[0], lines
    assert verdict.exit_code(checks) == 1


def test_a_target_not_measured_is_skip_with_exit_code_3() -> None:
    checks = bench.verdict([case()], default_head="sdn", chosen_head=None)
    lines = lines_of(checks)
    assert [line.split(":")[0] for line in lines] == ["SKIP", "PASS", "PASS", "SKIP"]
    assert "resnet-s/shapes" in lines[-1]
    assert verdict.exit_code(checks) == 3
    # a FAIL beside a SKIP is still a failure
    checks = bench.verdict([case(saved=0.1)], default_head="sdn", chosen_head=None)
    assert verdict.exit_code(checks) == 1
    # no case with the default head: the floors and savings are not measured
    checks = bench.verdict([case(head="linear")], default_head="sdn", chosen_head="linear")
    assert verdict.exit_code(checks) == 1  # the head chosen is not the default
    assert sum(line.startswith("SKIP") for line in lines_of(checks)) == 3


def test_the_head_with_the_largest_mean_validation_saving_is_chosen() -> None:
    cases = [
        case(head="linear", val_saved=0.2),
        case("resnet-s", head="linear", val_saved=0.3),
        case(head="sdn", val_saved=0.5),
        case("resnet-s", head="sdn", val_saved=0.4),
        case(head="conv", val_saved=0.6),
        case("resnet-s", head="conv", val_saved=0.2),
    ]
    assert bench.choose_head(cases) == "sdn"  # 0.45 against 0.4 and 0.25
    assert bench.choose_head([]) is None


def test_a_sample_pays_for_the_backbone_to_its_exit_and_every_head_it_passed() -> None:
    conf = [torch.tensor([0.9, 0.2, 0.2, 0.2]), torch.tensor([0.5, 0.95, 0.1, 0.6])]
    correct = [torch.tensor([True, False, False, False]), torch.tensor([True, True, False, True])]
    final = torch.tensor([True, True, True, False])
    # exit 0 after 10 FLOPs of backbone (+1 head), exit 1 after 30 (+2 head), all: 100
    cost = {(0, 1): [11.0, 33.0, 103.0], (1,): [32.0, 102.0]}
    flops, acc = bench.savings(conf, correct, final, cost, (0, 1), 0.6)
    # sample 0 leaves at exit 0, 1 and 3 at exit 1, 2 goes to the end
    assert flops == pytest.approx((11 + 33 + 103 + 33) / 4)
    assert acc == 1.0  # each right where it answered (3 is wrong only at the end)
    flops, acc = bench.savings(conf, correct, final, cost, (1,), 0.9)
    assert flops == pytest.approx((102 + 32 + 102 + 102) / 4)
    assert acc == pytest.approx(3 / 4)  # sample 3 now reaches the final classifier: wrong
