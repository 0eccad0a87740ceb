"""benchmarks/latency_model.py: its verdict, and its unseen networks held to being unseen."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from benchmark_files import load_benchmark

from dse.costmodel.coverage import layer_configs
from dse.costmodel.graph import build_graph
from dse.costmodel.measure import sample_kernels
from dse.nets import default_input, load_model
from dse.nets.zoo import VGG, MobileNet, ResNet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("latency_model")


verdict = load_benchmark("verdict")


def figures(within_10: float, repeat_within_10: float, shared: int = 0, n: int = 40) -> Any:
    return {
        "unseen": {
            "n": n,
            "within_10": within_10,
            "repeat_within_10": repeat_within_10,
            "layers_seen_in_calibration": shared,
        }
    }


@pytest.mark.parametrize(
    "case, expect, code",
    [
        (figures(0.95, 0.99), "PASS: 95.0% of unseen cuts within +-10%", 0),
        (figures(0.546, 0.99), "FAIL: 54.6% of unseen cuts within +-10%", 1),
        (figures(0.89, 0.95), "FAIL: 89.0%", 1),
        # the machine repeats its own measurement worse than the target: not judged
        (figures(0.40, 0.71), "SKIP: 40.0% of unseen cuts", 3),
        # a predictor that meets the target on a busy machine still passes
        (figures(0.92, 0.71), "PASS", 0),
        # unseen networks whose layers were timed in calibration prove nothing
        (figures(0.99, 0.99, shared=86), "FAIL: 86 unseen layer(s) were timed", 1),
        (figures(0.0, 0.0, n=0), "SKIP: no unseen cut was timed", 3),
    ],
)
def test_verdict(bench: ModuleType, case: Any, expect: str, code: int) -> None:
    checks = bench.verdict(case)
    lines = [str(c) for c in checks]
    assert verdict.exit_code(checks) == code, lines
    assert lines[0].startswith(expect[:4]) and expect in lines[0], lines


def _configs(name: str, model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model = model.eval()
    return layer_configs(model, x, build_graph(model, x, name=name))


def _calibration(kernels: int) -> dict[str, list[Any]]:
    """The layer configurations a run with ``kernels`` sampled kernels calibrates on."""
    out: dict[str, list[Any]] = {}
    for spec in sample_kernels(kernels, seed=0):
        module, x = spec.build()
        out[f"kernel {spec.label}"] = list(_configs(spec.label, module, x).values())
    for name in ("mlp", "vgg-s", "resnet-s", "mobilenet-s"):
        x = torch.zeros((1, *default_input(name)))
        out[name] = list(_configs(name, load_model(name), x).values())
    return out


def test_the_old_unseen_set_is_refused_it_shares_its_layers(bench: ModuleType) -> None:
    """vgg-wide, resnet-deep and mobilenet-e6 at 32x32: resnet-deep has resnet-s's widths,
    mobilenet-e6 the zoo's stem."""
    x = torch.zeros(1, 3, 32, 32)
    old = {
        "vgg-wide": _configs("vgg-wide", VGG(stages=((48, 48), (96, 96), (192, 192))), x),
        "resnet-deep": _configs("resnet-deep", ResNet(channels=(16, 32, 64), blocks=(4, 4, 3)), x),
        "mobilenet-e6": _configs("mobilenet-e6", MobileNet(expand=6, channels=(16, 32, 48, 96)), x),
    }
    zoo = {k: v for k, v in _calibration(0).items()}
    why = bench.refusal(zoo, old)
    assert why is not None and "\n" not in why
    assert "resnet-deep" in why or "vgg-wide" in why or "mobilenet-e6" in why
    assert "timed in calibration" in why and "give the unseen networks" in why
    deep = bench.refusal(zoo, {"resnet-deep": old["resnet-deep"]})
    assert deep is not None and deep.startswith(f"unseen networks: {len(old['resnet-deep'])} ")


@pytest.mark.slow
@pytest.mark.parametrize(  # --quick's and the full run's (9 s: make test-all runs it)
    "kernels", [100, pytest.param(1000, marks=pytest.mark.heavy)]
)
def test_the_unseen_networks_share_no_layer_with_the_calibration(
    bench: ModuleType, kernels: int
) -> None:
    unseen = {name: _configs(name, m, x) for name, m, x in bench.unseen_networks()}
    assert bench.refusal(_calibration(kernels), unseen) is None
    assert sum(len(c) for c in unseen.values()) > 100


def test_sampled_calibration_networks_leave_out_every_draw_an_unseen_network_shares(
    bench: ModuleType,
) -> None:
    from dse.nets.variants import sampled_networks

    drawn = sampled_networks(6, seed=0)
    # an "unseen" set made of the second draw: that draw must be left out, and no kept
    # network may share one of its layer configurations
    unseen = [bench._network(*drawn[1])]
    kept = bench.calibration_networks(4, unseen, seed=0)
    names = [k["name"] for k in kept]
    assert len(kept) == 4 and drawn[1][0] not in names
    assert names[0] == drawn[0][0]
    taken = set(unseen[0]["configs"].values())
    assert all(not taken.intersection(k["configs"].values()) for k in kept)
