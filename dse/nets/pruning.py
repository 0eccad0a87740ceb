"""Whole channels removed before training, from a model whose factory has no ``width``.

Removing an output channel of a layer removes it from everything that shares that channel
dimension: the next layer's input, a norm, a residual add's other branch, a concatenation's
slice. Torch-Pruning's dependency graph finds these couplings on any traceable model, so a
user's, torchvision's or timm's network is thinned consistently. The model is pruned right
after it is built (its seeded initial weights rank the channels by L1 norm, so the choice
is deterministic), then trained as the smaller dense network it now is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dse.errors import InputError


def prune_channels(
    model: nn.Module,
    example: torch.Tensor,
    density: float,
    *,
    keep: Sequence[str] = (),
    name: str = "model",
) -> nn.Module:
    """Remove ``1 - sqrt(density)`` of the channels of every prunable layer of ``model``
    (in place), so both sides of each junction shrink and about ``density`` of the weights
    remain. Layers named in ``keep`` (the final classifier) keep their output channels.
    """
    try:
        import torch_pruning as tp
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(
            "space",
            "method",
            f"channels: {name} has no `width` argument and torch-pruning is not installed",
            "pip install torch-pruning, or use method 'predefined'",
        ) from None
    modules = dict(model.named_modules())
    ignored = [modules[k] for k in keep if k in modules]
    ratio = 1.0 - math.sqrt(density)
    try:
        pruner = tp.pruner.MetaPruner(
            model,
            example,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=ratio,
            ignored_layers=ignored,
        )
        pruner.step()
        with torch.no_grad():
            model.eval()(example)  # the pruned model must still run
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign graph: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            "space",
            "method",
            f"channels: Torch-Pruning could not prune {name} ({first[:200]})",
            "use method 'predefined'",
        ) from None
    model.train()
    return model
