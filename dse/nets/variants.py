"""Networks drawn at random from the zoo's families, for calibrating a latency predictor.

A predictor fitted to the edge parts of four zoo networks knows how layers behave inside
those four programs: the widths 16, 32 and 64 at the input sizes the zoo uses. A
network with 20 channels at 36x36 runs its layers at another efficiency, and a fit that
never saw a program like it has nothing to say about it (nn-Meter and LitePred time
thousands of sampled models for this reason). :func:`sampled_networks` draws VGG, ResNet,
MobileNet and MLP networks with random widths, depths, expansions and input sizes; their
whole programs, timed beside the zoo's, teach the fit what a layer costs among others.
Every draw of one ``seed`` is the same.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

import torch
import torch.nn as nn

from dse.nets.zoo import MLP, VGG, MobileNet, ResNet

#: The families drawn, in turn.
FAMILIES: tuple[str, ...] = ("vgg", "resnet", "mobilenet", "mlp")
#: Input sizes a drawn convolutional network takes (square, 3 channels).
SIZES: tuple[int, ...] = (16, 20, 24, 28, 32, 44, 48)


def _width(rng: random.Random, lo: int, hi: int) -> int:
    """A channel count drawn log-uniformly from ``lo`` .. ``hi``."""
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def _draw(family: str, rng: random.Random) -> tuple[str, nn.Module, torch.Tensor]:
    size = rng.choice(SIZES)
    if family == "vgg":
        base, n = _width(rng, 8, 48), rng.choice((2, 3))
        stages = tuple(tuple(base * 2**i for _ in range(rng.choice((1, 2)))) for i in range(n))
        label = "vgg " + "/".join(",".join(map(str, s)) for s in stages)
        return f"{label} @{size}", VGG(stages=stages), torch.zeros(1, 3, size, size)
    if family == "resnet":
        base = _width(rng, 8, 40)
        channels = (base, 2 * base, 4 * base)
        blocks = tuple(rng.choice((1, 2, 3)) for _ in channels)
        label = f"resnet {','.join(map(str, channels))} x{''.join(map(str, blocks))}"
        net = ResNet(channels=channels, blocks=blocks)
        return f"{label} @{size}", net, torch.zeros(1, 3, size, size)
    if family == "mobilenet":
        base, expand = _width(rng, 8, 24), rng.choice((2, 3, 4, 6))
        channels = tuple(int(round(base * 1.5**i)) for i in range(4))
        blocks = tuple(rng.choice((1, 2)) for _ in channels)
        label = f"mobilenet {','.join(map(str, channels))} e{expand}"
        net = MobileNet(channels=channels, blocks=blocks, expand=expand)
        return f"{label} @{size}", net, torch.zeros(1, 3, size, size)
    side, c = rng.choice((6, 8, 10, 12, 14)), rng.choice((1, 3))
    widths = tuple(sorted((_width(rng, 24, 512) for _ in range(rng.choice((2, 3)))), reverse=True))
    label = f"mlp {','.join(map(str, widths))} @{c}x{side}x{side}"
    net = MLP(in_channels=c, input_size=side, widths=widths)
    return label, net, torch.zeros(1, c, side, side)


def draw_networks(*, seed: int = 0) -> Iterator[tuple[str, nn.Module, torch.Tensor]]:
    """Networks without end (label, module in eval mode, example input), the families in
    turn, widths, depths, expansions and sizes drawn with ``seed``; labels are unique.
    The weights are drawn from a generator of their own: torch's global one is left as
    it was."""
    rng = random.Random(seed)
    labels: set[str] = set()
    i = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        while True:
            label, net, x = _draw(FAMILIES[i % len(FAMILIES)], rng)
            i += 1
            if label not in labels:
                labels.add(label)
                yield label, net.eval(), x


def sampled_networks(count: int, *, seed: int = 0) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """The first ``count`` networks :func:`draw_networks` draws with ``seed``."""
    return list(itertools.islice(draw_networks(seed=seed), count))
