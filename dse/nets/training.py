"""The training-dependent part of a candidate: trained once per key and cached.

A network is fixed by a :class:`NetworkSpec`: model and its options, data set, sparsity
method and density, exit sites, training settings and seed. Everything else a study
varies (split point, which exits are used, threshold) is scored later from the cached
per-exit logits without training. This module is the only one that trains.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from dse.errors import InputError
from dse.nets import sparsity
from dse.nets.cache import Cache, key_of
from dse.nets.data import DataSet
from dse.nets.exits import attach_exits
from dse.nets.models import load_model

METHODS = ("predefined", "channels", "nm")


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained (AdamW, cosine learning rate, seeded)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    exit_weight: float = 1.0  # weight of each exit's loss; the final loss weighs 1
    head: str = "linear"  # exit head kind, see exits.make_head
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise InputError("training", name, "must be >= 1")
        if not self.lr > 0:
            raise InputError("training", "lr", "must be > 0")


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that changes a network's weights: the training cache key."""

    model: str
    data: DataSet = field(repr=False, compare=False)
    task: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    method: str = "predefined"
    density: float = 1.0
    exits: tuple[str, ...] | None = None  # None: every exit site the model marks
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError("space", "method", f"unknown sparsity method {self.method!r}",
                             f"use one of {METHODS}")
        if not 0 < self.density <= 1:
            raise InputError("space", "density", f"{self.density} is outside (0, 1]")

    @property
    def task_name(self) -> str:
        return self.task or self.data.task

    def fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_options": dict(sorted(self.model_options.items())),
            "data": self.data.key,
            "task": self.task_name,
            "method": self.method if self.density < 1 else "dense",
            "density": float(self.density),
            "exits": list(self.exits) if self.exits is not None else "all",
            "train": asdict(self.train),
        }

    @property
    def key(self) -> str:
        return key_of(self.fields())


def example_input(data: DataSet) -> torch.Tensor:
    return torch.zeros((1, *data.input_shape))


def build_network(spec: NetworkSpec) -> nn.Module:
    """The untrained multi-exit network for ``spec``: architecture, exits, sparsity masks."""
    data = spec.data
    c, h = data.input_shape[0], data.input_shape[-1]
    classes = data.classes[spec.task_name]
    width = 1.0
    if spec.method == "channels" and spec.density < 1:
        # Whole channels removed before training: both sides of a junction shrink, so a
        # width factor sqrt(density) keeps about `density` of the weights.
        width = math.sqrt(spec.density)
    torch.manual_seed(spec.train.seed)
    base = load_model(spec.model, in_channels=c, input_size=h, num_classes=classes,
                      width=width, **spec.model_options)
    net = attach_exits(base, example_input(data), num_classes=classes, sites=spec.exits,
                       head=spec.train.head)
    if spec.method in ("predefined", "nm") and spec.density < 1:
        # Exit heads and the final classifier stay dense; name only modules that exist
        # (a network built with no exits has no ``exit_heads``).
        modules = dict(net.named_modules())
        exclude = [n for n in ("exit_heads", getattr(net, "classifier_name", None))
                   if n and n in modules]
        plan = sparsity.plan_sparsity(net, spec.density, seed=spec.train.seed, exclude=exclude,
                                      method=spec.method)
        if not plan.layers:
            # No layer can meet the density exactly: training would silently give a dense
            # network under a sparse key. Strict planning names the nearest valid densities.
            sparsity.plan_sparsity(net, spec.density, seed=spec.train.seed, exclude=exclude,
                                   strict=True, method=spec.method)
            raise InputError("space", "density", f"{spec.model} has no layer that "
                             f"{spec.method} sparsity may thin",
                             "use method 'channels' or density 1")
        sparsity.apply_sparsity(net, plan)
    return net


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    """A trained network, its per-output logits on validation and test, and its sizes."""

    spec: NetworkSpec
    state: dict[str, torch.Tensor] = field(repr=False)
    exit_sites: tuple[str, ...]
    val_logits: torch.Tensor = field(repr=False)  # [outputs, N_val, classes]; last = final
    val_labels: torch.Tensor = field(repr=False)
    test_logits: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    train_seconds: float
    history: tuple[dict[str, float], ...]
    cached: bool

    @property
    def key(self) -> str:
        return self.spec.key

    def accuracy(self, split: str = "test") -> list[float]:
        """Accuracy of every output (exits first, final last) on a split."""
        logits = self.test_logits if split == "test" else self.val_logits
        labels = self.test_labels if split == "test" else self.val_labels
        return [(lg.argmax(-1) == labels).float().mean().item() for lg in logits]

    def network(self) -> nn.Module:
        """The network with its trained weights loaded."""
        net = build_network(self.spec)
        net.load_state_dict(self.state)
        return net.eval()


def _logits(net: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    net.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = net(x[i : i + batch])
            out = out if isinstance(out, tuple | list) else (out,)
            outs.append(torch.stack(list(out)))
    return torch.cat(outs, dim=1)


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
def _thread_limit(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_network(
    spec: NetworkSpec, *, cache: Cache | None = None, progress: bool = True
) -> TrainedNetwork:
    """Train ``spec`` (or load it from ``cache``) and return its logits and state."""
    key = spec.key
    if cache is None:
        with _thread_limit(threads()):
            return _train(spec, progress=progress)
    hit = cache.get(key)
    if hit is not None:
        return _from_payload(spec, hit)
    with cache.claim(key):  # a parallel worker may be training it: wait, then read it
        hit = cache.get(key)
        if hit is not None:
            return _from_payload(spec, hit)
        with _thread_limit(threads()):
            trained = _train(spec, progress=progress)
        cache.put(key, _to_payload(trained))
    return trained


def _train(spec: NetworkSpec, *, progress: bool = True) -> TrainedNetwork:
    net = build_network(spec)
    data = spec.data
    task = spec.task_name
    x, y = data.train.x, data.train.y[task]
    cfg = spec.train
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=f"train {spec.model} d={spec.density:g}",
               disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            out = net(x[idx])
            out = out if isinstance(out, tuple | list) else (out,)
            target = y[idx]
            loss = F.cross_entropy(out[-1], target)
            for o in out[:-1]:
                loss = loss + cfg.exit_weight * F.cross_entropy(o, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sparsity.mask_gradients(net)
            opt.step()
            sparsity.enforce_masks(net)
            sched.step()
            total += loss.item() * len(idx)
        val = _logits(net, data.val.x)
        acc = (val[-1].argmax(-1) == data.val.y[task]).float().mean().item()
        history.append({"epoch": epoch + 1, "loss": total / len(x), "val_accuracy": acc})
        bar.set_postfix(loss=f"{total / len(x):.3f}", val=f"{acc:.3f}")
    seconds = time.perf_counter() - start
    trained = TrainedNetwork(
        spec=spec,
        state={k: v.detach().clone() for k, v in net.state_dict().items()},
        exit_sites=tuple(getattr(net, "exit_sites", ())),
        val_logits=val,  # the last epoch's pass, on the final weights
        val_labels=data.val.y[task].clone(),
        test_logits=_logits(net, data.test.x),
        test_labels=data.test.y[task].clone(),
        train_seconds=seconds,
        history=tuple(history),
        cached=False,
    )
    return trained


def _to_payload(t: TrainedNetwork) -> dict[str, Any]:
    return {
        "key": t.key,
        "fields": repr(t.spec.fields()),
        "state": t.state,
        "exit_sites": list(t.exit_sites),
        "val_logits": t.val_logits,
        "val_labels": t.val_labels,
        "test_logits": t.test_logits,
        "test_labels": t.test_labels,
        "train_seconds": t.train_seconds,
        "history": [dict(h) for h in t.history],
    }


def _from_payload(spec: NetworkSpec, p: dict[str, Any]) -> TrainedNetwork:
    return TrainedNetwork(
        spec=spec,
        state=p["state"],
        exit_sites=tuple(p["exit_sites"]),
        val_logits=p["val_logits"],
        val_labels=p["val_labels"],
        test_logits=p["test_logits"],
        test_labels=p["test_labels"],
        train_seconds=float(p["train_seconds"]),
        history=tuple(p["history"]),
        cached=True,
    )
