"""Tiny networks that several test modules build graphs of, with closed-form costs, and the
model file a user might bring."""

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


#: A file a user might name as ``FILE.py:build``: a factory sized by its input (so it only
#: works if the input shape reaches it), and a name in it that is not a model.
USER_MODEL = '''
import torch.nn as nn


def build(in_channels=3, input_size=32, num_classes=10):
    """Sized by its input, so it only works if the input shape reaches it."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * input_size * input_size, num_classes),
    )


NOT_A_MODEL = 3
'''
