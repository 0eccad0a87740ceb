"""Task heads: one backbone, one head per task (MTL-Split), by rewriting the traced model.

A single-task network keeps the model's own classifier (``HeadConfig("classifier")``):
nothing changes, which is what makes T = 1 the case of today. Otherwise the final
classifier (the model's ``classifier_name``, or the last Linear the output depends on) is
removed and ``task_heads.t`` hang off the tensor it read, one per task, in the order of
the tasks; the network returns their logits in that order. Module paths of the backbone do
not change, so exit sites keep their names.

The default multi-task head is MTL-Split's (Capogrosso et al., DAC 2024): two linear
layers with a ReLU and dropout between them. In the layer graph the heads follow the
shared backbone in task order, so the cuts after the backbone place the first heads on the
edge (their tasks answered locally) and send the shared features for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch.fx as fx
import torch.nn as nn

from dse.costmodel import trace
from dse.errors import InputError
from dse.nets.exits import find_classifier

KINDS = ("auto", "classifier", "mlp")
HEAD_VERSION = 2  # bumped whenever make_task_head builds another architecture


@dataclass(frozen=True)
class HeadConfig:
    """How each task's head is built.

    ``kind``: ``"classifier"`` keeps the model's own final layer (one task only),
    ``"mlp"`` is MTL-Split's head (``layers`` linear layers, ``hidden`` units, ReLU and
    ``dropout`` between them), ``"auto"`` is ``"classifier"`` for one task and ``"mlp"``
    for several.
    """

    kind: str = "auto"
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(
                "model",
                "head.kind",
                f"unknown head {self.kind!r}",
                f"use one of {', '.join(KINDS)}",
            )
        if int(self.hidden) < 1 or int(self.layers) < 1:
            raise InputError("model", "head", "hidden and layers must be >= 1")
        if not 0 <= self.dropout < 1:
            raise InputError("model", "head.dropout", f"{self.dropout} is outside [0, 1)")

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | str | None) -> HeadConfig:
        if raw is None:
            return cls()
        if isinstance(raw, str):
            return cls(kind=raw)
        unknown = sorted(set(raw) - {"kind", "hidden", "layers", "dropout"})
        if unknown:
            raise InputError(
                "model",
                f"head.{unknown[0]}",
                "unknown key",
                "allowed: kind, hidden, layers, dropout",
            )
        return cls(**raw)

    def resolved(self, tasks: int) -> HeadConfig:
        """``auto`` made concrete for ``tasks`` tasks."""
        if self.kind != "auto":
            if self.kind == "classifier" and tasks > 1:
                raise InputError(
                    "model",
                    "head.kind",
                    f"the model's own classifier serves one task, not {tasks}",
                    'use kind = "mlp" (or "auto")',
                )
            return self
        return HeadConfig(
            "classifier" if tasks == 1 else "mlp", self.hidden, self.layers, self.dropout
        )

    def key_fields(self) -> dict[str, Any]:
        """What enters a training key (only for heads other than the model's classifier)."""
        return {
            "kind": self.kind,
            "hidden": int(self.hidden),
            "layers": int(self.layers),
            "dropout": float(self.dropout),
            "version": HEAD_VERSION,
        }

    def describe(self) -> str:
        if self.kind == "classifier":
            return "the model's classifier"
        if self.layers == 1:
            return "linear head"
        return f"{self.layers}-layer MLP head ({self.hidden} hidden, dropout {self.dropout:g})"


def make_task_head(features: int, classes: int, cfg: HeadConfig) -> nn.Module:
    """One task's head on the ``features`` inputs the model's classifier read."""
    layers: list[nn.Module] = []
    width = features
    for _ in range(int(cfg.layers) - 1):
        layers += [nn.Linear(width, int(cfg.hidden)), nn.ReLU()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = int(cfg.hidden)
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def attach_task_heads(
    model: nn.Module,
    classes: Sequence[int],
    tasks: Sequence[str],
    cfg: HeadConfig,
    *,
    name: str = "model",
) -> fx.GraphModule:
    """``model`` traced, its final classifier replaced by one head per task.

    The result returns the tasks' logits in order and carries ``task_names``,
    ``exit_sites`` (the model's) and ``classifier_name`` None (the heads stay dense: see
    ``training._kept_dense``).
    """
    gm = trace(model, name=name)
    path = getattr(model, "classifier_name", None) or find_classifier(gm)
    modules = dict(gm.named_modules())
    layer = modules.get(path) if path else None
    if not isinstance(layer, nn.Linear):
        raise InputError(
            name,
            "classifier",
            "task heads replace the model's final Linear "
            f"layer; found {type(layer).__name__ if layer else 'none'}",
            "give a model whose logits come from an nn.Linear, or set its classifier_name",
        )
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == path]
    out = next(n for n in gm.graph.nodes if n.op == "output")
    if len(calls) != 1 or out.args[0] is not calls[0]:
        raise InputError(
            name,
            "classifier",
            f"{path} must run once and give the output for task heads to replace it",
            "return the classifier's logits directly from forward",
        )
    node = calls[0]
    source = node.args[0]
    heads = []
    for t, c in enumerate(classes):
        gm.add_submodule(f"task_heads.{t}", make_task_head(layer.in_features, int(c), cfg))
    with gm.graph.inserting_after(node):
        for t in reversed(range(len(classes))):
            heads.insert(0, gm.graph.call_module(f"task_heads.{t}", (source,)))
    out.args = (tuple(heads),)
    gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_submodule(path)
    gm.graph.lint()
    gm.recompile()
    gm.exit_sites = tuple(getattr(model, "exit_sites", ()))
    gm.classifier_name = None
    gm.task_names = tuple(tasks)
    return gm
