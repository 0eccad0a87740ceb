"""The training loop's parts: the optimiser and its schedule, one step of the whole network,
an epoch, evaluation on a split, divergence checks and keeping the best epoch.

They know a network, its data tensors and its :class:`~dse.nets.training.TrainConfig`,
never its :class:`~dse.nets.training.NetworkSpec`: ``training._train`` strings them
together and turns a :class:`Diverged` into the :class:`~dse.nets.training.TrainingDiverged`
that names the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from dse.nets import recipes, sparsity

if TYPE_CHECKING:
    from dse.nets.training import TrainConfig

AUTO_LR_FACTOR = 0.3
"""``epochs = "auto"``: the learning rate is cut by this factor on a plateau."""
DIVERGENCE_FACTOR = 10.0
"""A training has diverged when an epoch's mean loss exceeds this many times its first
batch's loss (or 1, if that was smaller): the untrained network's loss is what guessing
costs, and a training that learns never ends an epoch far above it."""

Step = Callable[[torch.Tensor, list[torch.Tensor]], float]
"""One optimisation step's forward and backward on a batch (images, labels per task): its
loss. The gradients are left for the optimiser."""


class Diverged(Exception):
    """The loss or the weights stopped being finite, or the loss grew far past where it
    started; the message says where."""


@dataclass(frozen=True)
class Schedule:
    """AdamW, its per-step learning-rate schedule and, for ``plateau``, the rule that cuts
    the rate when the validation accuracy stalls (stepped once per epoch)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    epochs: int  # the most epochs to run

    def after_step(self, epoch: int) -> None:
        """Advance the per-step schedule (with a plateau rule: only in the warm-up epoch)."""
        if epoch == 0 or self.plateau is None:
            self.scheduler.step()


def schedule(
    net: nn.Module,
    cfg: TrainConfig,
    log_vars: torch.Tensor | None,
    steps_per_epoch: int,
    *,
    edge: Sequence[nn.Parameter] = (),
) -> Schedule:
    """AdamW over the network's parameters (and the learned task weights, undecayed) with
    ``cfg``'s learning-rate schedule (:mod:`dse.nets.recipes`): one-cycle over
    ``cfg.epochs`` by default, or, with ``epochs = "auto"``, a one-epoch linear warm-up and
    the rate cut by :data:`AUTO_LR_FACTOR` on a plateau. ``edge``: the edge part's
    weights, which learn at ``cfg.edge_lr`` when it is set (split and hierarchical
    training). A frozen backbone's weights take no gradient: only the rest is optimised."""
    learns = [p for p in net.parameters() if p.requires_grad]
    mine = {id(p) for p in edge} if cfg.edge_lr is not None else set()
    params: list[dict[str, Any]] = [
        {"params": [p for p in learns if id(p) not in mine], "lr": cfg.lr}
    ]
    if mine:
        params.append({"params": [p for p in learns if id(p) in mine], "lr": cfg.edge_lr})
    if log_vars is not None:  # the learned weights are not decayed
        params.append({"params": [log_vars], "weight_decay": 0.0, "lr": cfg.lr})
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs = int(cfg.max_epochs) if cfg.auto else int(cfg.epochs)
    kind = cfg.lr_schedule_kind
    if kind == "plateau":
        # no end is known: a one-epoch linear warm-up, then the rate cut on a plateau
        warm_up = torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=0.1, total_iters=steps_per_epoch
        )
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=AUTO_LR_FACTOR, patience=max(1, cfg.patience // 2) - 1
        )
        return Schedule(opt, warm_up, plateau, epochs)
    if kind == "onecycle":
        one_cycle = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=[g["lr"] for g in opt.param_groups] if len(opt.param_groups) > 1 else cfg.lr,
            total_steps=epochs * steps_per_epoch,
            pct_start=0.15,
        )
        return Schedule(opt, one_cycle, None, epochs)
    factor = recipes.lr_factor(kind, total=epochs * steps_per_epoch, warm_up=steps_per_epoch)
    return Schedule(opt, torch.optim.lr_scheduler.LambdaLR(opt, factor), None, epochs)


def central_step(
    net: nn.Module,
    x: torch.Tensor,
    ys: Sequence[torch.Tensor],
    cfg: TrainConfig,
    weights: Sequence[float],
    log_vars: torch.Tensor | None,
    opt: torch.optim.Optimizer,
    *,
    exit_weight: float | None = None,
) -> float:
    """Forward and backward of one batch of the whole network; returns its loss.

    Each exit's loss weighs ``exit_weight`` (default ``cfg.exit_weight``; a ramp passes
    the epoch's) and, with ``cfg.distill`` > 0, adds that times its distillation from the
    final output (:func:`dse.nets.recipes.distill_loss`)."""
    T = len(ys)
    w_exit = cfg.exit_weight if exit_weight is None else exit_weight
    out = net(x)
    out = out if isinstance(out, tuple | list) else (out,)
    losses = []
    for t in range(T):  # task t's outputs: exits in order, then its final
        target = ys[t]
        mine = out[t::T]
        task_loss = F.cross_entropy(mine[-1], target)
        for o in mine[:-1]:
            task_loss = task_loss + w_exit * F.cross_entropy(o, target)
            if cfg.distill > 0:
                task_loss = task_loss + w_exit * cfg.distill * recipes.distill_loss(o, mine[-1])
        losses.append(task_loss)
    if log_vars is not None:
        loss = sum(torch.exp(-log_vars[t]) * losses[t] + 0.5 * log_vars[t] for t in range(T))
    elif T == 1 and weights[0] == 1.0:
        loss = losses[0]  # one task: exactly the single-task loss
    else:
        loss = sum(w * lt for w, lt in zip(weights, losses, strict=True))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return loss.item()


def epoch(
    net: nn.Module,
    x: torch.Tensor,
    ys: Sequence[torch.Tensor],
    *,
    batch_size: int,
    step: Step,
    plan: Schedule,
    order: torch.Generator,
    index: int,
    first_loss: float | None,
    frozen: Sequence[nn.Module] = (),
    augment: Sequence[str] = (),
    augment_rng: torch.Generator | None = None,
) -> tuple[float, float | None]:
    """One pass over the training split in the order ``order`` draws, masks kept after
    every step: the epoch's mean loss and the first batch's loss of the whole training
    (what the untrained network costs). The ``frozen`` modules stay in eval mode (their
    norms' statistics and dropout as at inference). ``augment``: what
    :func:`dse.nets.recipes.augment` does to each batch, drawn from ``augment_rng``."""
    net.train()
    for m in frozen:
        m.eval()
    perm = torch.randperm(len(x), generator=order)
    total = 0.0
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        batch = x[idx]
        if augment:
            assert augment_rng is not None
            batch = recipes.augment(batch, augment, augment_rng)
        value = step(batch, [y[idx] for y in ys])
        sparsity.mask_gradients(net)
        plan.optimizer.step()
        sparsity.enforce_masks(net)
        plan.after_step(index)
        if not math.isfinite(value):
            raise Diverged(f"the loss is {value} at epoch {index + 1}, batch {i // batch_size + 1}")
        first_loss = value if first_loss is None else first_loss
        total += value * len(idx)
    return total / len(x), first_loss


def check_diverged(net: nn.Module, index: int, loss: float, first_loss: float | None) -> None:
    """Raise :class:`Diverged` when epoch ``index`` ends with non-finite weights or with a
    mean loss past :data:`DIVERGENCE_FACTOR` times the first batch's."""
    bad = [n for n, p in net.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise Diverged(
            f"non-finite weights in {', '.join(bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''} after epoch {index + 1}"
        )
    limit = DIVERGENCE_FACTOR * max(first_loss or 0.0, 1.0)
    if loss > limit:
        raise Diverged(
            f"the mean loss of epoch {index + 1} is {loss:.4g}, over "
            f"{DIVERGENCE_FACTOR:g} x the first batch's "
            f"({first_loss:.4g})"
        )


def logits(
    net: nn.Module,
    x: torch.Tensor,
    tasks: int = 1,
    batch: int = 512,
    *,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, ...]:
    """Per task, the logits of every output: ``[outputs, N, classes_t]`` (on the CPU; the
    batches run on ``device``, None: where ``x`` is)."""
    net.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in range(tasks)]
    with torch.no_grad():
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            out = net(chunk if device is None else chunk.to(device))
            out = out if isinstance(out, tuple | list) else (out,)
            for t in range(tasks):
                outs[t].append(torch.stack(list(out[t::tasks])).cpu())
    return tuple(torch.cat(o, dim=1) for o in outs)


def final_accuracy(val: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]) -> list[float]:
    """The final classifier's accuracy per task."""
    return [
        (lg[-1].argmax(-1) == y).float().mean().item() for lg, y in zip(val, labels, strict=True)
    ]


def exits_accuracy(val: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]) -> float:
    """The exits' mean accuracy over exits and tasks (0 for a network without exits)."""
    accs = [
        (lg.argmax(-1) == y).float().mean().item()
        for out, y in zip(val, labels, strict=True)
        for lg in out[:-1]
    ]
    return sum(accs) / len(accs) if accs else 0.0


class Best:
    """The best validation epoch so far (``epochs = "auto"``): its score (an accuracy, or a
    tuple compared in order: the final accuracy, then the exits'), its number (from 1), its
    weights and its validation logits; and whether patience ran out."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.accuracy: float | tuple[float, ...] | None = None
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] = {}
        self.val: tuple[torch.Tensor, ...] = ()

    def stop(
        self,
        accuracy: float | tuple[float, ...],
        index: int,
        net: nn.Module,
        val: tuple[torch.Tensor, ...],
    ) -> bool:
        """Keep epoch ``index`` if it is better (validation only selects); True when
        ``patience`` epochs have passed without a better one."""
        if self.accuracy is None or accuracy > self.accuracy:
            self.accuracy, self.epoch, self.val = accuracy, index + 1, val
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        assert self.epoch is not None
        return index + 1 - self.epoch >= self.patience
