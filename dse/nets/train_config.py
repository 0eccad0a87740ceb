"""How a network trains: :class:`TrainConfig` (epochs or ``"auto"``, batch, learning rate
and its schedule, augmentation, exit head and exit weights, distillation, training mode,
the user's backbone, the device) with its checks and the fields that enter the training
key. :mod:`dse.nets.training` trains by it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from dse.errors import InputError
from dse.nets import exits, recipes

AUTO = "auto"


def _one_of(name: str, value: str, allowed: Sequence[str], what: str = "") -> None:
    """Refuse a ``[training]`` field ``name`` whose ``value`` (called ``what``) is not one
    of ``allowed``, naming the choices."""
    if value not in allowed:
        raise InputError(
            "training", name, f"unknown {what}{value!r}", f"use one of {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained (AdamW, seeded).

    ``epochs`` is a number of epochs (one-cycle learning rate over them, the last epoch's
    weights kept) or ``"auto"``: train until the validation accuracy of the final
    classifier has not improved for ``patience`` epochs, at most ``max_epochs``, with a
    one-epoch warm-up and the learning rate cut by ``loop.AUTO_LR_FACTOR`` after ``patience // 2``
    epochs without improvement; the best epoch's weights are kept. Only the validation
    split selects; the test split is never looked at. ``patience`` and ``max_epochs``
    enter the cache key only with ``"auto"``.
    """

    epochs: int | str = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    exit_weight: float = 1.0  # weight of each exit's loss; the final loss weighs 1
    #: the exit heads' kind (see exits.make_head): SDN's, the one benchmarks/exits.py
    #: chooses on validation ("linear", global average pooling + linear, was the default
    #: before: a network that names it keeps its key)
    head: str = "sdn"
    seed: int = 0
    patience: int = 5  # epochs="auto": epochs without a better validation accuracy to stop
    max_epochs: int = 100  # epochs="auto": the cap
    #: several tasks: each task's loss weight, in task order (None: 1 each)
    task_weights: tuple[float, ...] | None = None
    #: "fixed" (task_weights) or "uncertainty": learned homoscedastic weights (Kendall
    #: et al., CVPR 2018): sum_t exp(-s_t) L_t + s_t / 2, one learned s_t per task
    task_weighting: str = "fixed"
    #: "central" (the whole network in one place), "split" or "hierarchical": trained in
    #: two parts at the network's cut (see dse.nets.hierarchical); then the cut is part of
    #: the key (NetworkSpec.cut)
    mode: str = "central"
    #: hierarchical: the module path of the exit whose loss trains the edge part (None:
    #: the exit nearest before the cut)
    exit: str | None = None
    #: with the user's weights: "frozen" (the default then: only exit and task heads
    #: train) or "finetune" (all of it); without: "scratch" (the default then)
    backbone: str | None = None
    #: where training runs: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu"
    #: or "cuda"; no part of the key (see :meth:`torch_device`)
    device: str = "auto"
    #: the learning-rate schedule (see dse.nets.recipes; None: "onecycle", or "plateau"
    #: with epochs = "auto")
    lr_schedule: str | None = None
    #: augmentation of the training batches: "flip" and/or "crop" (see dse.nets.recipes)
    augment: tuple[str, ...] = ()
    #: the exits' loss weight over training: "constant" or "ramp" (SDN's; None: "ramp" in
    #: central training, where heavy exit losses from the first step can hold a network at
    #: chance for many epochs, "constant" in split and hierarchical training)
    exit_schedule: str | None = None
    #: self-distillation: each exit also learns the final output's softened answer, with
    #: this weight (0: none)
    distill: float = 0.0
    #: split and hierarchical training: the edge part's own peak learning rate (None: lr)
    edge_lr: float | None = None
    #: epochs = "auto": which epoch is best and when patience counts. "final" (the rule of
    #: before): the best final validation accuracy, patience counted from the first epoch.
    #: "final+exits": that, ties broken by the exits' mean validation accuracy (a final
    #: classifier at its ceiling stops nothing while its exits still learn), and neither
    #: patience nor the plateau rule counts an epoch before the final classifier first
    #: clears its learned floor (a network still at chance is not stopped, nor its
    #: learning rate cut, while it has not started to learn)
    select: str = "final+exits"

    def __post_init__(self) -> None:
        if isinstance(self.epochs, str) and self.epochs != AUTO:
            raise InputError(
                "training",
                "epochs",
                f"{self.epochs!r} is not a number of epochs",
                'use an integer >= 1 or "auto"',
            )
        names = ["batch_size", "patience", "max_epochs"] + ([] if self.auto else ["epochs"])
        for name in names:
            if int(getattr(self, name)) < 1:
                raise InputError("training", name, "must be >= 1")
        if not self.lr > 0:
            raise InputError("training", "lr", "must be > 0")
        _one_of("task_weighting", self.task_weighting, WEIGHTINGS)
        if self.task_weights is not None:
            object.__setattr__(self, "task_weights", tuple(float(w) for w in self.task_weights))
            if any(not (w >= 0 and math.isfinite(w)) for w in self.task_weights) or not any(
                self.task_weights
            ):
                raise InputError(
                    "training", "task_weights", "weights must be finite, >= 0 and not all 0"
                )
            if self.task_weighting == "uncertainty":
                raise InputError(
                    "training",
                    "task_weights",
                    'fixed weights and learned (task_weighting = "uncertainty") exclude each other',
                    "remove one of them",
                )
        _one_of("mode", self.mode, MODES, "mode ")
        if self.exit is not None and self.mode != "hierarchical":
            raise InputError(
                "training",
                "exit",
                "only hierarchical training has an exit that trains the edge part",
                'set mode = "hierarchical" or remove exit',
            )
        if self.backbone is not None:
            _one_of("backbone", self.backbone, BACKBONES, "backbone ")
        _one_of("device", self.device, DEVICES, "device ")
        if self.backbone == "frozen" and self.mode != "central":
            raise InputError(
                "training",
                "backbone",
                f"a frozen backbone leaves only heads to train, and {self.mode} training "
                "trains a backbone in two parts",
                'use mode = "central", or backbone = "finetune"',
            )
        self._check_recipe()
        if self.mode != "central" and self.task_weighting == "uncertainty":
            raise InputError(
                "training",
                "task_weighting",
                "learned task weights are shared "
                f"by edge and server, which {self.mode} training keeps apart",
                'use fixed task_weights, or mode = "central"',
            )

    def _check_recipe(self) -> None:
        """The exit head, schedules, augmentation, distillation and edge learning rate."""
        _one_of("head", self.head, exits.HEADS, "exit head ")
        if self.lr_schedule is not None:
            _one_of("lr_schedule", self.lr_schedule, recipes.LR_SCHEDULES, "schedule ")
        kinds = (self.augment,) if isinstance(self.augment, str) else tuple(self.augment)
        object.__setattr__(self, "augment", tuple(sorted(set(kinds))))
        bad = [a for a in self.augment if a not in recipes.AUGMENTS]
        if bad:
            raise InputError(
                "training",
                "augment",
                f"unknown augmentation {bad[0]!r}",
                f"use some of {', '.join(recipes.AUGMENTS)}",
            )
        _one_of("select", self.select, SELECTS)
        if self.exit_schedule is not None:
            _one_of("exit_schedule", self.exit_schedule, recipes.EXIT_SCHEDULES)
        if not (self.distill >= 0 and math.isfinite(self.distill)):
            raise InputError("training", "distill", f"{self.distill} must be a number >= 0")
        central = {"exit_schedule": self.exit_schedule == "ramp", "distill": self.distill > 0}
        for name, used in central.items():
            if used and self.mode != "central":
                raise InputError(
                    "training",
                    name,
                    f"applies to central training, not {self.mode}",
                    'remove it, or set mode = "central"',
                )
        if self.edge_lr is not None:
            if not self.edge_lr > 0:
                raise InputError("training", "edge_lr", "must be > 0")
            if self.mode == "central":
                raise InputError(
                    "training",
                    "edge_lr",
                    "only split and hierarchical training have an edge part of their own",
                    'set mode = "split" or "hierarchical", or remove edge_lr',
                )

    @property
    def auto(self) -> bool:
        """Whether training stops by itself (``epochs = "auto"``)."""
        return self.epochs == AUTO

    @property
    def exit_schedule_kind(self) -> str:
        """The exit-loss schedule in use: ``ramp`` in central training unless given."""
        if self.exit_schedule is not None:
            return self.exit_schedule
        return "ramp" if self.mode == "central" else "constant"

    @property
    def lr_schedule_kind(self) -> str:
        """The learning-rate schedule in use (the default one when none is given)."""
        return self.lr_schedule or recipes.default_lr_schedule(self.auto)

    def key_fields(self) -> dict[str, Any]:
        """The fields that change the weights: the auto-only ones only with ``"auto"``, so
        the key of a network trained for a number of epochs is what it always was."""
        d = asdict(self)
        if not self.auto:
            del d["patience"], d["max_epochs"]
        if self.task_weights is None or all(w == 1.0 for w in self.task_weights):
            del d["task_weights"]  # equal weights of 1 train exactly as no weights
        else:
            d["task_weights"] = list(self.task_weights)
        if self.task_weighting == "fixed":
            del d["task_weighting"]
        if self.mode == "central":
            del d["mode"]  # a central network's key is what it always was
        if self.exit is None:
            del d["exit"]
        del d["backbone"]  # NetworkSpec.fields: only with weights, resolved
        del d["device"]  # where it trains changes no key
        # recipe fields at their defaults train exactly as before they existed
        if self.lr_schedule_kind == recipes.default_lr_schedule(self.auto):
            del d["lr_schedule"]
        else:
            d["lr_schedule"] = self.lr_schedule_kind
        if self.augment:
            d["augment"] = list(self.augment)
        else:
            del d["augment"]
        if self.exit_schedule_kind == "constant":
            del d["exit_schedule"]  # the exit weights of before
        else:
            d["exit_schedule"] = self.exit_schedule_kind
        if self.distill > 0:
            d["distill"] = {"weight": float(self.distill), "t": recipes.DISTILL_TEMPERATURE}
        else:
            del d["distill"]
        if self.edge_lr is None:
            del d["edge_lr"]
        if not self.auto or self.select == "final":
            del d["select"]  # the last epoch is kept, or the rule of before
        version = exits.HEAD_VERSIONS[self.head]
        if version > 1:  # another architecture under an old name
            d["head"] = f"{self.head} v{version}"
        return d

    def torch_device(self) -> torch.device:
        """The device training runs on: ``cuda`` when asked for (refused in one line where
        torch sees no CUDA GPU), ``cpu``, or with ``auto`` a GPU when there is one. Split
        and hierarchical training run on the CPU: their two parts draw dropout from CPU
        random streams of their own."""
        gpu = torch.cuda.is_available()
        if self.device == "cuda" and not gpu:
            raise InputError(
                "training",
                "device",
                "cuda asked for, but torch sees no CUDA GPU on this machine",
                'use device = "auto" (a GPU when there is one) or "cpu"',
            )
        if self.device == "cuda" and self.mode != "central":
            raise InputError(
                "training",
                "device",
                f"{self.mode} training runs its two parts on the CPU",
                'use device = "auto" or "cpu", or mode = "central"',
            )
        use_gpu = self.device == "cuda" or (self.device == AUTO and gpu and self.mode == "central")
        return torch.device("cuda" if use_gpu else "cpu")

    def describe(self) -> str:
        if self.auto:
            return (
                f'epochs "auto" (patience {self.patience}, at most {self.max_epochs}, '
                "best validation epoch kept)"
            )
        return f"{self.epochs} epochs"


WEIGHTINGS = ("fixed", "uncertainty")
SELECTS = ("final", "final+exits")
MODES = ("central", "split", "hierarchical")
BACKBONES = ("scratch", "finetune", "frozen")
DEVICES = ("auto", "cpu", "cuda")
