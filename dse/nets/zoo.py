"""The built-in zoo: small, fx-traceable networks with marked exit sites.

Every factory takes ``in_channels``, ``input_size``, ``num_classes`` and ``width`` (a
multiplier on every hidden width, which the ``channels`` sparsity method uses to remove
whole channels before training) and returns a module with two attributes:
``exit_sites`` (module paths after which an exit head may hang, in execution order) and
``classifier`` (the module path of the final classifier, never sparsified).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn


def _w(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] x len(widths) -> Linear; exits after each hidden layer.

    ``pad_to`` zero-pads the flattened input (the predefined-sparsity paper pads MNIST's
    784 inputs to 800 so its degrees divide evenly).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        input_size: int = 8,
        num_classes: int = 10,
        width: float = 1.0,
        widths: Sequence[int] = (256, 128),
        pad_to: int | None = None,
    ):
        super().__init__()
        n_in = in_channels * input_size * input_size
        self.pad = 0 if pad_to is None else max(0, pad_to - n_in)
        dims = [n_in + self.pad, *(_w(h, width) for h in widths)]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(dims, dims[1:], strict=False)
        )
        self.classifier = nn.Linear(dims[-1], num_classes)
        self.exit_sites = tuple(f"layers.{i}" for i in range(len(widths)))
        self.classifier_name = "classifier"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        if self.pad:
            x = nn.functional.pad(x, (0, self.pad))
        for layer in self.layers:
            x = layer(x)
        return self.classifier(x)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
    )


class VGG(nn.Module):
    """VGG-style: stages of 3x3 conv-BN-ReLU blocks, each ending in a 2x2 max-pool."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        input_size: int = 32,
        num_classes: int = 10,
        width: float = 1.0,
        stages: Sequence[Sequence[int]] = ((16, 16), (32, 32), (64, 64)),
    ):
        super().__init__()
        blocks = []
        c = in_channels
        for stage in stages:
            layers: list[nn.Module] = []
            for ch in stage:
                layers.append(_conv_bn_relu(c, _w(ch, width)))
                c = _w(ch, width)
            layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        self.exit_sites = tuple(f"stages.{i}" for i in range(len(stages) - 1))
        self.classifier_name = "classifier"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and an identity (or 1x1 projection) skip."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class _StagedCNN(nn.Module):
    """A stem, stages (exits after all but the last), global pooling and a classifier."""

    def _build(
        self,
        in_channels: int,
        stem: int,
        channels: Sequence[int],
        blocks: Sequence[int],
        width: float,
        num_classes: int,
        block: Callable[[int, int, int, int], nn.Module],
    ) -> None:
        """A conv-BN-ReLU stem of ``stem`` channels, then one stage per entry of
        ``channels`` / ``blocks``: ``block(stage, c_in, c_out, stride)`` repeated, the first
        block of every stage but the first striding by 2; pooling and the classifier."""
        c = _w(stem, width)
        stem_layer = _conv_bn_relu(in_channels, c)
        stages: list[nn.Module] = []
        for i, (ch, n) in enumerate(zip(channels, blocks, strict=True)):
            out = _w(ch, width)
            layers = [
                block(i, c if j == 0 else out, out, 2 if (i > 0 and j == 0) else 1)
                for j in range(n)
            ]
            stages.append(nn.Sequential(*layers))
            c = out
        self._finish(stem_layer, stages, c, num_classes)

    def _finish(
        self, stem: nn.Module, stages: list[nn.Module], channels: int, num_classes: int
    ) -> None:
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self.exit_sites = tuple(f"stages.{i}" for i in range(len(stages) - 1))
        self.classifier_name = "classifier"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


class ResNet(_StagedCNN):
    """CIFAR-style ResNet: a 3x3 stem and stages of basic blocks (first block strides)."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        input_size: int = 32,
        num_classes: int = 10,
        width: float = 1.0,
        channels: Sequence[int] = (16, 32, 64),
        blocks: Sequence[int] = (2, 2, 2),
    ):
        super().__init__()
        self._build(
            in_channels,
            channels[0],
            channels,
            blocks,
            width,
            num_classes,
            lambda stage, c_in, c_out, stride: BasicBlock(c_in, c_out, stride),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project; skip when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.expand = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
        )
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.use_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_skip else out


class MobileNet(_StagedCNN):
    """MobileNetV2-style: a stem and stages of inverted residual blocks."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        input_size: int = 32,
        num_classes: int = 10,
        width: float = 1.0,
        channels: Sequence[int] = (16, 24, 32, 64),
        blocks: Sequence[int] = (1, 2, 2, 2),
        expand: int = 4,
    ):
        super().__init__()
        self._build(
            in_channels,
            16,
            channels,
            blocks,
            width,
            num_classes,
            lambda stage, c_in, c_out, stride: InvertedResidual(
                c_in, c_out, stride, 1 if stage == 0 else expand
            ),
        )
