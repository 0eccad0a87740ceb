"""Training recipes: learning-rate schedules, augmentation, exit-loss schedules and
self-distillation of the exits.

Each is a small pure function of the training settings, so the loop (``loop.py``) applies
them without knowing which were chosen, and a setting left at its default changes nothing
(nor the training key: see ``TrainConfig.key_fields``).

- Learning rate, per optimiser step: ``onecycle`` (warm-up over 15% of the steps, then
  annealed; the default with a fixed number of epochs), ``cosine`` (a one-epoch linear
  warm-up from 10%, then half a cosine to 0), ``step`` (x0.1 at 50% and again at 75% of
  the steps), ``plateau`` (a one-epoch warm-up, then x0.3 when the validation accuracy
  stalls; the default with ``epochs = "auto"``). With ``"auto"`` the horizon of ``cosine``
  and ``step`` is ``max_epochs``.
- Augmentation of the training batches: ``flip`` (mirrored left-right, half of them) and
  ``crop`` (shifted by up to 1/8 of the side, zero-padded: the mean of standardised
  images). Only where a mirrored or shifted image keeps its label: not for digits, not
  for a position or orientation task.
- Exit-loss weights: ``constant`` (every exit weighs ``exit_weight`` from the start) or
  ``ramp`` (as SDN, Kaya et al., ICML'19, ramps its internal classifiers' weights: from
  0.01 up to ``exit_weight``, linearly, step by step, over the first half of the training
  or, with ``"auto"``, over its first :data:`AUTO_RAMP_EPOCHS` epochs; SDN ramps over the
  whole training, which would leave a short training's exits barely trained), so the
  early exits do not pull the backbone's first features towards themselves before the
  final classifier has shaped them.
- Self-distillation (``distill`` > 0): each exit also learns the final classifier's
  softened output (temperature :data:`DISTILL_TEMPERATURE`, the final output detached),
  as in Phuong & Lampert (ICCV'19) and BYOT (Zhang et al., ICCV'19).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

LR_SCHEDULES = ("onecycle", "cosine", "step", "plateau")
AUGMENTS = ("flip", "crop")
EXIT_SCHEDULES = ("constant", "ramp")
RAMP_START = 0.01
"""The exit weight of the first epoch under ``ramp`` (SDN's starting coefficient)."""
AUTO_RAMP_EPOCHS = 10
"""``ramp`` with ``epochs = "auto"``: the epochs over which the exit weight reaches its own."""
DISTILL_TEMPERATURE = 3.0
"""The softmax temperature of self-distillation (the KL term is scaled by its square)."""
STEP_MILESTONES = (0.5, 0.75)
STEP_FACTOR = 0.1
CROP_SHARE = 8
"""``crop`` shifts an image by up to side / CROP_SHARE pixels (4 at 32x32)."""
AUGMENT_STREAM = 7919
"""Offset of the augmentation's random stream from the training seed: its own stream, so
the batch order is the same with and without augmentation."""


def default_lr_schedule(auto: bool) -> str:
    """The schedule used when none is given: ``plateau`` with ``"auto"``, else
    ``onecycle``."""
    return "plateau" if auto else "onecycle"


def lr_factor(kind: str, *, total: int, warm_up: int) -> Callable[[int], float]:
    """Per optimiser step ``i``: the factor on the base learning rate for ``cosine`` and
    ``step`` over ``total`` steps (``cosine`` warms up over ``warm_up`` steps first)."""
    total = max(1, total)
    if kind == "cosine":
        warm = max(1, min(warm_up, total - 1))

        def cosine(i: int) -> float:
            if i < warm:
                return 0.1 + 0.9 * i / warm
            t = min(1.0, (i - warm) / max(1, total - warm))
            return 0.5 * (1.0 + math.cos(math.pi * t))

        return cosine
    if kind == "step":
        edges = [int(m * total) for m in STEP_MILESTONES]

        def step(i: int) -> float:
            return STEP_FACTOR ** sum(i >= e for e in edges)

        return step
    raise ValueError(f"no per-step factor for {kind!r}")


def ramp_steps(epochs: int | None, steps_per_epoch: int) -> int:
    """The optimiser steps over which ``ramp`` reaches the exits' weight: half of
    ``epochs`` epochs, or :data:`AUTO_RAMP_EPOCHS` epochs with ``"auto"`` (None)."""
    if epochs is None:
        return AUTO_RAMP_EPOCHS * steps_per_epoch
    return max(1, epochs * steps_per_epoch // 2)


def exit_weight(schedule: str, weight: float, step: int, span: int) -> float:
    """The exits' loss weight at optimiser step ``step`` (from 0): ``weight``, or under
    ``ramp`` from :data:`RAMP_START` up to it linearly over ``span`` steps, then held."""
    if schedule == "constant":
        return weight
    return RAMP_START + (weight - RAMP_START) * min(1.0, step / max(1, span))


def augment(x: torch.Tensor, kinds: Sequence[str], gen: torch.Generator) -> torch.Tensor:
    """A training batch ``x`` (N x C x H x W) flipped and/or shifted, drawn from ``gen``;
    the batch itself when ``kinds`` is empty or the images are not 2-D maps."""
    if not kinds or x.dim() != 4:
        return x
    n, _, h, w = x.shape
    if "flip" in kinds:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "crop" in kinds:
        p = max(1, min(h, w) // CROP_SHARE)
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        batch = torch.arange(n)[:, None, None, None]
        chans = torch.arange(x.shape[1])[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    return x


def distill_loss(exit_logits: torch.Tensor, final_logits: torch.Tensor) -> torch.Tensor:
    """KL(final || exit) at :data:`DISTILL_TEMPERATURE`, times its square (so its
    gradients keep their scale), the final output a fixed teacher (detached)."""
    t = DISTILL_TEMPERATURE
    teacher = F.softmax(final_logits.detach() / t, dim=-1)
    student = F.log_softmax(exit_logits / t, dim=-1)
    return F.kl_div(student, teacher, reduction="batchmean") * (t * t)
