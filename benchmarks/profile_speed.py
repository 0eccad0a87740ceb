"""How fast dse builds a layer graph, and whether its counts match the published ones.

Two questions, answered in one run:

1. Speed: ``dse.costmodel.graph.build_graph(model, x)`` (fx trace, meta-tensor shapes, one fvcore
   analysis, annotation, cuts) against fvcore's bare ``FlopCountAnalysis(model, x).total()``
   on the same ResNet-50, in the same process. Each is warmed up once, then timed ``N``
   times interleaved (graph, fvcore, graph, ...); the medians are compared. Target: the
   graph costs at most 1.5x a bare fvcore count.
2. Counts: params and MACs of ResNet-18, ResNet-50 and VGG-16 at 224x224 from the graph
   against the published figures: within 2%. Source: the torchvision model
   documentation (e.g. pytorch.org/vision/stable/models/generated/
   torchvision.models.resnet50.html: num_params 25557032, "GFLOPS" 4.09, which there
   counts multiply-adds); VGG-16's 138M parameters are Simonyan & Zisserman, ICLR 2015.

The models are defined here with plain torch (torchvision is not a dependency): ResNet
v1.5 bottleneck blocks (stride on the 3x3 conv, as torchvision), VGG-16 configuration D
without batch norm.

    python benchmarks/profile_speed.py [--runs N] [--json FILE]

One PASS/FAIL line per target (:func:`verdict`); exit status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from fvcore.nn import FlopCountAnalysis
from verdict import Check, conclude, judge

from dse.costmodel.graph import build_graph

RATIO_TARGET = 1.5
COUNT_TOLERANCE = 0.02

# (name, params, MACs) as the torchvision documentation states them (its "GFLOPS" count
# multiply-adds); see the module docstring.
PUBLISHED: tuple[tuple[str, float, float], ...] = (
    ("resnet18", 11_689_512, 1.81e9),
    ("resnet50", 25_557_032, 4.09e9),
    ("vgg16", 138_357_544, 15.47e9),
)


# --------------------------------------------------------------------------------------
# Models, plain torch.
# --------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c: int, stride: int) -> None:
        super().__init__()
        out = c * self.expansion
        self.conv1 = nn.Conv2d(c_in, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ImageNet ResNet: 7x7 stem, max-pool, four stages, global pool, linear."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        c_in = 64
        for i, (c, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, c, 2 if (i > 0 and j == 0) else 1))
                c_in = c * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG16(nn.Module):
    """VGG-16 (configuration D), no batch norm, 7x7 adaptive pool, 4096-4096-1000 head."""

    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def resnet18() -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2))


def resnet50() -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "vgg16": VGG16,
}


# --------------------------------------------------------------------------------------
# Timing and counting.
# --------------------------------------------------------------------------------------


def _graph(model: nn.Module, x: torch.Tensor) -> None:
    build_graph(model, x)


def _fvcore(model: nn.Module, x: torch.Tensor) -> None:
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.total()


def time_pair(model: nn.Module, x: torch.Tensor, runs: int) -> tuple[float, float]:
    """Median seconds of build_graph and of a bare fvcore count, interleaved."""
    model.eval()
    _graph(model, x)  # warm-up: imports, jit and dispatcher caches
    _fvcore(model, x)
    graph_t: list[float] = []
    fvcore_t: list[float] = []
    for _ in range(runs):
        for fn, out in ((_graph, graph_t), (_fvcore, fvcore_t)):
            t0 = time.perf_counter()
            fn(model, x)
            out.append(time.perf_counter() - t0)
    return statistics.median(graph_t), statistics.median(fvcore_t)


def counts(name: str) -> tuple[int, int]:
    """(params, MACs) of a benchmark model at 1x3x224x224, from the layer graph."""
    model = MODELS[name]().eval()
    graph = build_graph(model, torch.zeros(1, 3, 224, 224), name=name)
    return graph.params, graph.macs


def _rel(value: float, reference: float) -> float:
    return (value - reference) / reference


def verdict(figures: dict[str, Any]) -> list[Check]:
    """The targets on the figures ``main`` writes: the graph costs at most 1.5x a bare
    fvcore count (``ratio``), and each published model's params and MACs are within 2%."""
    ratio = figures["ratio"]
    checks = [
        judge(
            ratio <= RATIO_TARGET,
            f"ResNet-50 layer graph {ratio:.2f}x a bare fvcore count (target <= {RATIO_TARGET})",
        )
    ]
    for row in figures["published"]:
        dp = _rel(row["params"], row["published_params"])
        dm = _rel(row["macs"], row["published_macs"])
        checks.append(
            judge(
                max(abs(dp), abs(dm)) <= COUNT_TOLERANCE,
                f"{row['model']}: params {dp:+.2%}, MACs {dm:+.2%} against the published "
                f"figures (target within {COUNT_TOLERANCE:.0%})",
            )
        )
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.manual_seed(0)

    x = torch.zeros(1, 3, 224, 224)
    graph_s, fvcore_s = time_pair(resnet50(), x, args.runs)
    ratio = graph_s / fvcore_s
    print(
        f"ResNet-50 at 1x3x224x224, median of {args.runs} interleaved runs "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    print(f"  graph_s  {graph_s:.3f}   (dse.costmodel.graph.build_graph)")
    print(f"  fvcore_s {fvcore_s:.3f}   (fvcore FlopCountAnalysis(model, x).total())")
    print(f"  ratio    {ratio:.2f}    target <= {RATIO_TARGET}")
    print()
    print(
        f"{'model':10s} {'params':>12s} {'published':>10s} {'diff':>7s}   "
        f"{'MACs':>14s} {'published':>10s} {'diff':>7s}   within {COUNT_TOLERANCE:.0%}"
    )
    published = []
    for name, pub_params, pub_macs in PUBLISHED:
        params, macs = counts(name)
        dp, dm = _rel(params, pub_params), _rel(macs, pub_macs)
        print(
            f"{name:10s} {params:12,d} {pub_params / 1e6:9.1f}M {dp:+7.2%}   "
            f"{macs:14,d} {pub_macs / 1e9:9.2f}G {dm:+7.2%}"
        )
        published.append(
            {
                "model": name,
                "params": params,
                "macs": macs,
                "published_params": pub_params,
                "published_macs": pub_macs,
            }
        )
    data = {"graph_s": graph_s, "fvcore_s": fvcore_s, "ratio": ratio, "published": published}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    print()
    return conclude(verdict(data))


if __name__ == "__main__":
    sys.exit(main())
