"""Tiny networks that several test modules build graphs of, with closed-form costs."""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """x(2ch) -> a: 1x1 conv 2->4 -> r: ReLU -> b: 1x1 conv 4->2 -> add x -> relu."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 4, 1)
        self.r = nn.ReLU()
        self.b = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(self.r(self.a(x))) + x)
