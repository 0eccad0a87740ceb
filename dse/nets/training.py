"""The training-dependent part of a candidate: trained once per key and cached.

A network is fixed by a :class:`NetworkSpec`: model and its options, data set, sparsity
method and density, exit sites, training settings and seed, and the user's trained
weights when they bring them (their sha256). Everything else a study varies (split point,
which exits are used, threshold) is scored later from the cached per-exit logits without
training. This module is the only one that trains (split and hierarchical training take
their two-part step from ``hierarchical.py``).

A network brought with its weights (``NetworkSpec.weights``) keeps them as trained with
``backbone = "frozen"`` (the default then): only the exit heads and task heads train, the
backbone's weights, norms' statistics included, stay the user's (SDN's IC-only training),
and a network with nothing left to train is not trained at all. ``"finetune"`` trains the
whole network from them; a ``channels`` density below 1 prunes them and fine-tunes.
Training runs on ``TrainConfig.device`` (a GPU when there is one, by default), which is no
part of the key.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from dse.costmodel import build_graph, pinned_threads
from dse.errors import InputError
from dse.nets import loop, recipes
from dse.nets.build import build_network, example_input, realised_density
from dse.nets.cache import Cache, key_of
from dse.nets.data import DataSet
from dse.nets.heads import HeadConfig
from dse.nets.hierarchical import SplitTrainer, split_trainer
from dse.nets.models import accepts_width, list_models, weights_digest
from dse.nets.train_config import (  # noqa: F401 - TrainConfig's names, imported from here too
    AUTO,
    BACKBONES,
    DEVICES,
    MODES,
    SELECTS,
    WEIGHTINGS,
    TrainConfig,
)
from dse.vocab import network_label

log = logging.getLogger(__name__)

METHODS = ("predefined", "channels", "nm")
HEAD_MODULES = ("exit_heads", "task_heads")
"""The modules a frozen backbone leaves to train: the exit heads and the task heads."""


class TrainingDiverged(InputError):
    """A training whose loss or weights stopped being finite, or whose loss grew far past
    where it started: nothing it produced is kept (and nothing is cached)."""

    def __init__(self, spec: NetworkSpec, what: str):
        super().__init__(
            "training",
            "lr",
            f"{spec.model} {_label(spec)}: training diverged: {what}",
            f"lower the learning rate (now {spec.train.lr:g}), or "
            "check the data for non-finite values",
        )


def _label(spec: NetworkSpec) -> str:
    return network_label(spec.method, spec.density)


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that changes a network's weights: the training cache key."""

    model: str
    data: DataSet = field(repr=False, compare=False)
    task: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    method: str = "predefined"
    density: float = 1.0
    #: None: every exit site the model marks; "auto": one after each drop of the spatial
    #: size; else module paths (see dse.nets.sites)
    exits: tuple[str, ...] | str | None = None
    train: TrainConfig = TrainConfig()
    #: several tasks on one backbone, one head each (None: the one ``task``)
    tasks: tuple[str, ...] | None = None
    head: HeadConfig = HeadConfig()
    #: split or hierarchical training: the cut (index into the layer graph's cuts) the
    #: network is trained at; ignored (None) in central training
    cut: int | None = None
    #: the user's trained weights: a state_dict file loaded into the model as built (see
    #: :func:`dse.nets.models.load_weights`); its sha256 enters the key
    weights: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.exits, str) and self.exits != AUTO:
            raise InputError(
                "exits",
                "sites",
                f"{self.exits!r} names no exits",
                'give module paths, "auto", or none (every site the model marks)',
            )
        if self.exits is not None and not isinstance(self.exits, str):
            object.__setattr__(self, "exits", tuple(self.exits))
        if self.train.mode == "central":
            object.__setattr__(self, "cut", None)
        elif self.cut is None or isinstance(self.cut, bool) or int(self.cut) < 0:
            raise InputError(
                "training",
                "mode",
                f"{self.train.mode} training needs the cut it trains at, got {self.cut!r}",
                "give a cut index >= 0",
            )
        if self.method not in METHODS:
            raise InputError(
                "space",
                "method",
                f"unknown sparsity method {self.method!r}",
                f"use one of {METHODS}",
            )
        if not 0 < self.density <= 1:
            raise InputError("space", "density", f"{self.density} is outside (0, 1]")
        self._check_backbone()
        if self.task is not None:
            self.data.check_tasks(self.task, field="task")
        if self.tasks is not None:
            if self.task is not None:
                raise InputError("data", "tasks", "give task or tasks, not both")
            object.__setattr__(self, "tasks", self.data.check_tasks(self.tasks, field="tasks"))
        weights = self.train.task_weights
        if weights is not None and len(weights) != len(self.task_names):
            raise InputError(
                "training",
                "task_weights",
                f"{len(weights)} weight(s) for "
                f"{len(self.task_names)} task(s) ({', '.join(self.task_names)})",
                "give one weight per task, in the order of the tasks",
            )
        object.__setattr__(self, "head", self.head.resolved(len(self.task_names)))

    def _check_backbone(self) -> None:
        """The user's weights, the backbone setting and the sparsity method agree."""
        chosen = self.train.backbone
        if self.weights is None and chosen in ("finetune", "frozen"):
            raise InputError(
                "training",
                "backbone",
                f"{chosen} starts from the user's trained weights and none are given",
                'give [model] weights = "FILE.pt" (dse train --weights FILE), '
                'or backbone = "scratch"',
            )
        if self.weights is not None and chosen == "scratch":
            raise InputError(
                "training",
                "backbone",
                "scratch trains from random weights: the [model] weights would be ignored",
                'use backbone = "frozen" or "finetune", or remove weights',
            )
        if self.weights is not None and self.method in ("predefined", "nm") and self.density < 1:
            raise InputError(
                "space",
                "method",
                f"{self.method} sparsity is a pattern fixed before training, and "
                f"{self.weights} was trained without it",
                'use method "channels" (prunes the trained network and fine-tunes it), '
                "or train from scratch without weights",
            )

    @property
    def backbone(self) -> str:
        """How the backbone trains: ``scratch`` without weights; with them ``frozen`` (the
        default) or ``finetune``, and always ``finetune`` when ``channels`` prunes them."""
        if self.weights is None:
            return "scratch"
        if self.method == "channels" and self.density < 1:
            return "finetune"  # pruned: the weights that are left must learn again
        return self.train.backbone or "frozen"

    @property
    def task_name(self) -> str:
        """The first (for a single-task network, the only) task."""
        return self.task_names[0]

    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks the network answers, in the order of its heads."""
        return self.tasks if self.tasks is not None else (self.task or self.data.task,)

    @property
    def task_heads(self) -> bool:
        """Whether heads replace the model's classifier (several tasks, or an MLP head)."""
        return self.head.kind != "classifier"

    def fields(self) -> dict[str, Any]:
        train = self.train.key_fields()
        if self.exits == ():  # no exit, no head, no exit loss: the key such a network had
            train["head"] = "linear"
            train.pop("exit_schedule", None)
            train.pop("distill", None)
        out = {
            "model": self.model,
            "model_options": dict(sorted(self.model_options.items())),
            "data": self.data.key,
            "task": self.task_name,
            **(
                {"tasks": list(self.task_names), "head": self.head.key_fields()}
                if self.task_heads
                else {}
            ),
            "method": self.method if self.density < 1 else "dense",
            "density": float(self.density),
            "exits": (
                "all"
                if self.exits is None
                else self.exits
                if isinstance(self.exits, str)
                else list(self.exits)
            ),
            "train": train,
            **({"cut": int(self.cut)} if self.cut is not None else {}),
            **(
                {"weights": weights_digest(self.weights), "backbone": self.backbone}
                if self.weights is not None
                else {}
            ),
        }
        if self.density < 1 and self.model not in list_models():
            # A model outside the zoo keeps its final classifier dense (found in its graph
            # when it names none): such a network differs from one cached before.
            out["classifier"] = "dense"
            if self.method == "channels" and not accepts_width(self.model):
                out["channels"] = "pruned"  # by Torch-Pruning, not a width argument
        return out

    @property
    def key(self) -> str:
        return key_of(self.fields())


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    """A trained network, its per-output logits on validation and test, and its sizes.

    Logits and labels are per task, in the order of ``spec.task_names``: task ``t``'s
    logits are ``[outputs, N, classes_t]`` (exits first, final last).
    """

    spec: NetworkSpec
    state: dict[str, torch.Tensor] = field(repr=False)
    exit_sites: tuple[str, ...]
    val_logits: tuple[torch.Tensor, ...] = field(repr=False)
    val_labels: tuple[torch.Tensor, ...] = field(repr=False)
    test_logits: tuple[torch.Tensor, ...] = field(repr=False)
    test_labels: tuple[torch.Tensor, ...] = field(repr=False)
    train_seconds: float
    history: tuple[dict[str, float], ...]
    cached: bool
    kept_epoch: int | None = None  # the epoch whose weights were kept (None: the last)

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.spec.task_names

    @property
    def classes(self) -> tuple[int, ...]:
        """Classes per task."""
        return tuple(int(lg.shape[-1]) for lg in self.val_logits)

    @property
    def realised_density(self) -> float:
        """Weights kept over those of the dense network: see :func:`realised_density`."""
        return realised_density(self.spec)

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def epoch_kept(self) -> int:
        """The epoch (from 1) whose weights these are: the best one with ``"auto"``."""
        return self.kept_epoch if self.kept_epoch is not None else self.epochs_run

    def epochs_text(self) -> str:
        """``10 epochs`` or, with ``"auto"``, ``epoch 7 kept of 12 run (auto)``."""
        if not self.spec.train.auto:
            return f"{self.epochs_run} epoch{'s' if self.epochs_run != 1 else ''}"
        capped = " (stopped at the cap)" if self.epochs_run >= self.spec.train.max_epochs else ""
        return f"epoch {self.epoch_kept} kept of {self.epochs_run} run (auto){capped}"

    def learning_problem(self, others: Mapping[str, float] | None = None) -> str | None:
        """Why this network's final classifier looks untrained on validation, or None.

        See :func:`learning_problem`; the exits' validation accuracies are compared with
        it, and ``others`` (name -> validation accuracy, e.g. the sparse networks of the
        same study) too.
        """
        problems = []
        for t, task in enumerate(self.tasks):
            acc = self.accuracy("val", t)
            exits = {
                f"the exit after {site}": a
                for site, a in zip(self.exit_sites, acc[:-1], strict=True)
            }
            theirs = (
                {k: v[t] if isinstance(v, Sequence) else v for k, v in (others or {}).items()}
                if len(self.tasks) == 1
                else {k: v[t] for k, v in (others or {}).items() if isinstance(v, Sequence)}
            )
            problem = learning_problem(
                acc[-1], self.val_labels[t], self.classes[t], {**exits, **theirs}
            )
            if problem is not None:
                problems.append(problem if len(self.tasks) == 1 else f"task {task}: {problem}")
        return "; ".join(problems) or None

    def learning_fix(self) -> str:
        """What to do about a network :meth:`learning_problem` flags."""
        t = self.spec.train
        if not t.auto:
            return (
                'train longer: more epochs, or epochs = "auto" (dse train --epochs auto) '
                "to train until the validation accuracy stops improving; or more data"
            )
        if self.epochs_run >= t.max_epochs:
            return f"it was still improving at the cap: raise max_epochs ({t.max_epochs})"
        return (
            f"training stopped after {t.patience} epochs without improvement: raise "
            "patience, lower lr, or give it more data"
        )

    def accuracy(self, split: str = "test", task: int = 0) -> list[float]:
        """Accuracy of every output (exits first, final last) of task ``task`` (its index)
        on a split."""
        logits = (self.test_logits if split == "test" else self.val_logits)[task]
        labels = (self.test_labels if split == "test" else self.val_labels)[task]
        return [(lg.argmax(-1) == labels).float().mean().item() for lg in logits]

    def task_accuracy(self, split: str = "test") -> list[float]:
        """The final classifier's accuracy per task on a split."""
        return [self.accuracy(split, t)[-1] for t in range(len(self.tasks))]

    def network(self) -> nn.Module:
        """The network with its trained weights loaded."""
        net = build_network(self.spec)
        net.load_state_dict(self.state)
        return net.eval()


def threads() -> int:
    """Intra-op threads for training: ``$DSE_THREADS``, default 1.

    The zoo's networks are small: a second thread gains little, and on a shared machine
    (or beside another process) OpenMP's spinning threads can make an epoch far slower:
    five epochs of vgg-s on digits took 97 s with two threads beside another process,
    3.6 s with one (measured once). Set DSE_THREADS to the free cores of a dedicated
    machine.
    """
    try:
        return max(1, int(os.environ.get("DSE_THREADS", "1")))
    except ValueError:
        raise InputError("environment", "DSE_THREADS", "must be a positive integer") from None


@contextmanager
def deterministic() -> Iterator[None]:
    """What makes training repeat itself on a machine: :func:`threads` intra-op threads
    and PyTorch's deterministic algorithms (an op without one warns, and runs); the seed
    and the data order are the spec's (``TrainConfig.seed``)."""
    was, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with pinned_threads(threads()):
            yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def train_network(
    spec: NetworkSpec,
    *,
    cache: Cache | None = None,
    progress: bool = True,
    server: bool = True,
) -> TrainedNetwork:
    """Train ``spec`` (or load it from ``cache``) and return its logits and state.

    ``server=False`` (hierarchical training only, never cached): train the edge part
    alone, the server part left as built; what shows that no server gradient reaches it.
    """
    key = spec.key
    if not server and (cache is not None or spec.train.mode != "hierarchical"):
        raise ValueError("server=False trains a hierarchical network's edge part alone, uncached")
    if cache is None:
        with deterministic():
            return _train(spec, progress=progress, server=server)
    hit = cache.get(key)
    if hit is not None:
        return _from_payload(spec, hit)
    with cache.claim(key):  # a parallel worker may be training it: wait, then read it
        hit = cache.get(key)
        if hit is not None:
            return _from_payload(spec, hit)
        with deterministic():
            trained = _train(spec, progress=progress)
        cache.put(key, _to_payload(trained))
    return trained


def _train(spec: NetworkSpec, *, progress: bool = True, server: bool = True) -> TrainedNetwork:
    """Train ``spec`` from scratch (or from the user's weights): its epochs, each evaluated
    on validation, stopped early with ``epochs = "auto"`` (the best epoch's weights kept),
    then scored on test. A frozen backbone stays as it was loaded; a network with nothing
    left to train runs no epoch."""
    net = build_network(spec)
    data, cfg, tasks = spec.data, spec.train, spec.task_names
    device = cfg.torch_device()
    frozen = freeze_backbone(net) if spec.backbone == "frozen" else ()
    net.to(device)
    val_y = tuple(data.val.y[t] for t in tasks)
    order = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    best: loop.Best | None = None
    start = time.perf_counter()
    if any(p.requires_grad for p in net.parameters()):
        val, best = _epochs(
            spec, net, history, order=order, frozen=frozen, server=server, progress=progress
        )
    else:  # the user's network as it is, nothing attached that learns: no epoch to run
        val = loop.logits(net, data.val.x, len(tasks), device=device)
    if best is not None:
        net.load_state_dict(best.state)
        val = best.val
    seconds = time.perf_counter() - start  # training only, not the test pass below
    return TrainedNetwork(
        spec=spec,
        state={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        exit_sites=tuple(getattr(net, "exit_sites", ())),
        val_logits=val,  # the kept epoch's pass, on the kept weights
        val_labels=tuple(y.clone() for y in val_y),
        test_logits=loop.logits(net, data.test.x, len(tasks), device=device),
        test_labels=tuple(data.test.y[t].clone() for t in tasks),
        train_seconds=seconds,
        history=tuple(history),
        cached=False,
        kept_epoch=best.epoch if best is not None else None,
    )


def _epochs(
    spec: NetworkSpec,
    net: nn.Module,
    history: list[dict[str, float]],
    *,
    order: torch.Generator,
    frozen: Sequence[nn.Module],
    server: bool,
    progress: bool,
) -> tuple[tuple[torch.Tensor, ...], loop.Best | None]:
    """Run ``spec``'s epochs on ``net`` (each row of its history appended to ``history``),
    each evaluated on validation, stopped early with ``epochs = "auto"``: the last
    validation logits and, with ``auto``, the best epoch so far."""
    data, cfg, tasks = spec.data, spec.train, spec.task_names
    device = cfg.torch_device()
    x, ys = data.train.x, [data.train.y[t] for t in tasks]
    val_y = tuple(data.val.y[t] for t in tasks)
    uncertainty = cfg.task_weighting == "uncertainty"
    log_vars = torch.zeros(len(tasks), requires_grad=True, device=device) if uncertainty else None
    parts = trainer_of(spec, net)
    edge = parts.edge_parameters() if parts is not None else ()
    per_epoch = math.ceil(len(x) / cfg.batch_size)
    plan = loop.schedule(net, cfg, log_vars, per_epoch, edge=edge)
    span = recipes.ramp_steps(None if cfg.auto else plan.epochs, per_epoch)
    step = _step(spec, net, plan.optimizer, log_vars, server=server, parts=parts, ramp=span)
    step = _on(device, step)
    augment_rng = torch.Generator().manual_seed(cfg.seed + recipes.AUGMENT_STREAM)
    first_loss: float | None = None  # the first batch's, what the untrained network costs
    best = loop.Best(cfg.patience) if cfg.auto else None
    floors = [
        learning_floor(chance_accuracy(y, data.classes[t]))
        for t, y in zip(tasks, val_y, strict=True)
    ]
    learned = cfg.select == "final"  # the rule of before counts every epoch
    desc = f"train {spec.model} d={spec.density:g}"
    bar = tqdm(range(plan.epochs), desc=desc, disable=not progress, leave=False)
    val: tuple[torch.Tensor, ...] = ()
    try:
        for epoch in bar:
            loss, first_loss = loop.epoch(
                net,
                x,
                ys,
                batch_size=cfg.batch_size,
                step=step,
                plan=plan,
                order=order,
                index=epoch,
                first_loss=first_loss,
                frozen=frozen,
                augment=cfg.augment,
                augment_rng=augment_rng,
            )
            loop.check_diverged(net, epoch, loss, first_loss)
            val = loop.logits(net, data.val.x, len(tasks), device=device)
            per_task = loop.final_accuracy(val, val_y)
            row = _history_row(epoch, loss, per_task, tasks, log_vars)
            learned = learned or all(a >= f - _TOL for a, f in zip(per_task, floors, strict=True))
            if len(val[0]) > 1:  # the exits' mean, what breaks a tie of the final accuracy
                row["val_exit_accuracy"] = loop.exits_accuracy(val, val_y)
            history.append(row)
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{row['val_accuracy']:.3f}")
            score: float | tuple[float, float] = row["val_accuracy"]
            if cfg.select == "final+exits":
                score = (row["val_accuracy"], row.get("val_exit_accuracy", 0.0))
            if best is not None and best.stop(score, epoch, net, val) and learned:
                break
            if plan.plateau is not None and learned:
                plan.plateau.step(row["val_accuracy"])
    except loop.Diverged as exc:
        raise TrainingDiverged(spec, str(exc)) from None
    return val, best


def freeze_backbone(net: nn.Module) -> tuple[nn.Module, ...]:
    """Freeze everything of ``net`` but its exit and task heads (:data:`HEAD_MODULES`): its
    weights stop taking gradients, and the modules returned are kept in eval mode while
    the heads train, so norms keep the statistics they were trained with."""
    for name, p in net.named_parameters():
        if name.split(".")[0] not in HEAD_MODULES:
            p.requires_grad_(False)
    return tuple(m for name, m in net.named_children() if name not in HEAD_MODULES)


def _on(device: torch.device, step: loop.Step) -> loop.Step:
    """``step`` fed its batch on ``device`` (the data sets stay on the CPU)."""
    if device.type == "cpu":
        return step
    return lambda x, ys: step(x.to(device), [y.to(device) for y in ys])


def _step(
    spec: NetworkSpec,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    log_vars: torch.Tensor | None,
    *,
    server: bool,
    parts: SplitTrainer | None,
    ramp: int,
) -> loop.Step:
    """One step of ``spec``'s training: both parts' backwards in split and hierarchical
    training (``parts``; ``server=False``: the edge part's alone), else the whole
    network's, its exits weighing what the exit schedule gives at that step (``ramp``:
    the steps a ramp takes)."""
    if parts is not None:  # two parts: the step runs both backwards

        def two_parts(x: torch.Tensor, ys: list[torch.Tensor]) -> float:
            opt.zero_grad(set_to_none=True)
            return parts.step(x, ys, server=server)

        return two_parts
    cfg = spec.train
    weights = cfg.task_weights or (1.0,) * len(spec.task_names)
    steps = itertools.count()

    def central(x: torch.Tensor, ys: list[torch.Tensor]) -> float:
        w = recipes.exit_weight(cfg.exit_schedule_kind, cfg.exit_weight, next(steps), ramp)
        return loop.central_step(net, x, ys, cfg, weights, log_vars, opt, exit_weight=w)

    return central


def _history_row(
    epoch: int,
    loss: float,
    per_task: list[float],
    tasks: tuple[str, ...],
    log_vars: torch.Tensor | None,
) -> dict[str, float]:
    """One epoch's line of the history: its mean loss, the validation accuracy that
    selects (the mean over tasks), per task, and the learned task weights."""
    acc = per_task[0] if len(tasks) == 1 else sum(per_task) / len(tasks)
    row = {"epoch": epoch + 1, "loss": loss, "val_accuracy": acc}
    if len(tasks) > 1:
        row.update({f"val_accuracy.{t}": a for t, a in zip(tasks, per_task, strict=True)})
    if log_vars is not None:
        row.update(
            {
                f"weight.{t}": math.exp(-float(s_t))
                for t, s_t in zip(tasks, log_vars.detach(), strict=True)
            }
        )
    return row


def trainer_of(spec: NetworkSpec, net: nn.Module) -> SplitTrainer | None:
    """The two-part trainer of a split or hierarchical ``spec`` (None: central)."""
    cfg = spec.train
    if cfg.mode == "central":
        return None
    assert spec.cut is not None  # NetworkSpec checks it
    graph = build_graph(net, example_input(spec.data), name=spec.model)
    return split_trainer(
        net,
        graph,
        mode=cfg.mode,
        cut=spec.cut,
        exit=cfg.exit,
        exit_weight=cfg.exit_weight,
        task_weights=cfg.task_weights or (1.0,) * len(spec.task_names),
        seed=cfg.seed,
    )


def _to_payload(t: TrainedNetwork) -> dict[str, Any]:
    return {
        "key": t.key,
        "fields": repr(t.spec.fields()),
        "state": t.state,
        "exit_sites": list(t.exit_sites),
        # per task; one task is stored as it always was (one tensor each)
        **{
            name: (list(v) if len(v) > 1 else v[0])
            for name, v in (
                ("val_logits", t.val_logits),
                ("val_labels", t.val_labels),
                ("test_logits", t.test_logits),
                ("test_labels", t.test_labels),
            )
        },
        "train_seconds": t.train_seconds,
        "history": [dict(h) for h in t.history],
        **({"kept_epoch": t.kept_epoch} if t.kept_epoch is not None else {}),
    }


def _from_payload(spec: NetworkSpec, p: dict[str, Any]) -> TrainedNetwork:
    return TrainedNetwork(
        spec=spec,
        state=p["state"],
        exit_sites=tuple(p["exit_sites"]),
        val_logits=_per_task(p["val_logits"]),
        val_labels=_per_task(p["val_labels"]),
        test_logits=_per_task(p["test_logits"]),
        test_labels=_per_task(p["test_labels"]),
        train_seconds=float(p["train_seconds"]),
        history=tuple(p["history"]),
        cached=True,
        kept_epoch=p.get("kept_epoch"),
    )


def _per_task(value: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (value,) if isinstance(value, torch.Tensor) else tuple(value)


# --------------------------------------------------------------------------------------
# did it learn?
# --------------------------------------------------------------------------------------

#: A final classifier is "near chance" below chance + max(NEAR_CHANCE_POINTS,
#: NEAR_CHANCE_SHARE x (1 - chance)), and "behind" when it is more than BEHIND_POINTS
#: below another output (an exit of its own, or another network of the same study).
NEAR_CHANCE_POINTS = 0.05
NEAR_CHANCE_SHARE = 0.20
BEHIND_POINTS = 0.05


_TOL = 1e-9  # accuracies are fractions k/N: a bound met exactly is met


def learning_floor(chance: float) -> float:
    """The validation accuracy below which a final classifier has not learned:
    chance + max(5 points, 20% of (1 - chance)), never above halfway from chance to 1
    (with a commonest label of 97%, 5 points more would be out of reach)."""
    margin = max(NEAR_CHANCE_POINTS, NEAR_CHANCE_SHARE * (1 - chance))
    return chance + min(margin, (1 - chance) / 2)


def chance_accuracy(labels: torch.Tensor | Sequence[int], classes: int) -> float:
    """What guessing reaches: 1/classes, or always answering the commonest label, if more."""
    y = torch.as_tensor(labels).reshape(-1)
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    majority = torch.bincount(y, minlength=classes).max().item() / len(y) if len(y) else 0.0
    return max(1.0 / classes, float(majority))


def learning_problem(
    accuracy: float,
    labels: torch.Tensor | Sequence[int],
    classes: int,
    others: Mapping[str, float] | None = None,
) -> str | None:
    """Why a final classifier with validation ``accuracy`` has not learned, or None.

    With chance = :func:`chance_accuracy` (``labels`` are the validation labels), it has
    not learned when ``accuracy < chance + max(5 points, 20% of (1 - chance))`` (see
    :func:`learning_floor`), and it lags when ``accuracy`` is more than 5 points below the
    best of ``others`` (name -> validation accuracy: its own exits, other networks trained
    on the same data).
    """
    chance = chance_accuracy(labels, classes)
    floor = learning_floor(chance)
    if accuracy < floor - _TOL:
        return (
            f"the final classifier reaches {100 * accuracy:.1f}% validation accuracy, "
            f"below {100 * floor:.1f}% where chance is {100 * chance:.1f}% ("
            f"{'the commonest label' if chance > 1 / classes + 1e-12 else '1'} of "
            f"{classes} classes); it has not learned"
        )
    if others:
        name, acc = max(others.items(), key=lambda kv: kv[1])
        if accuracy < acc - BEHIND_POINTS - _TOL:
            return (
                f"the final classifier reaches {100 * accuracy:.1f}% validation accuracy, "
                f"{100 * (acc - accuracy):.1f} points below {name} ({100 * acc:.1f}%); "
                "it has not finished learning"
            )
    return None
