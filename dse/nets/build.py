"""The untrained network of a :class:`~dse.nets.training.NetworkSpec`: architecture, task
heads, exits and sparsity masks, and the density it really keeps."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from dse.costmodel import trace
from dse.errors import InputError
from dse.nets import sparsity
from dse.nets.data import DataSet
from dse.nets.exits import attach_exits, find_classifier
from dse.nets.heads import attach_task_heads
from dse.nets.models import accepts_width, load_model, load_weights
from dse.nets.pruning import prune_channels

if TYPE_CHECKING:
    from dse.nets.training import NetworkSpec

log = logging.getLogger(__name__)

DENSITY_SLACK = 0.10
"""A request is met when the thinned layers keep within 10% of the requested density."""


def example_input(data: DataSet) -> torch.Tensor:
    """One all-zero input of ``data``'s shape (batch 1): what a network is traced on."""
    return torch.zeros((1, *data.input_shape))


def build_network(spec: NetworkSpec) -> nn.Module:
    """The untrained multi-exit network for ``spec``: architecture, exits, sparsity masks.

    The final classifier and the exit heads stay dense. A density the thinned layers cannot
    meet within :data:`DENSITY_SLACK` is warned about once, naming the layers that could
    not be thinned (see :func:`realised_density` for what the network really keeps).
    """
    net = _build(spec)
    if spec.density < 1 and spec.key not in _WARNED:
        _check_density(spec)  # raises for a channels request that thins nothing
        _WARNED.add(spec.key)
    return net


_WARNED: set[str] = set()  # keys whose density was checked (and warned about) already


def _build(spec: NetworkSpec, *, dense: bool = False) -> nn.Module:
    data = spec.data
    c, h = data.input_shape[0], data.input_shape[-1]
    classes = data.classes[spec.task_name]
    per_task = [data.classes[t] for t in spec.task_names]
    width = 1.0
    channels = spec.method == "channels" and spec.density < 1 and not dense
    if channels and accepts_width(spec.model) and spec.weights is None:
        # Whole channels removed before training: both sides of a junction shrink, so a
        # width factor sqrt(density) keeps about `density` of the weights.
        width = math.sqrt(spec.density)
    torch.manual_seed(spec.train.seed)
    base = load_model(
        spec.model,
        in_channels=c,
        input_size=h,
        num_classes=classes,
        width=width,
        **spec.model_options,
    )
    if not any(True for _ in base.parameters()):
        raise InputError(
            "model",
            spec.model,
            "the model has no weights to train",
            "give a model with at least one layer that has parameters",
        )
    if spec.weights is not None:  # the user's trained network, before anything is cut off it
        load_weights(base, spec.weights, name=spec.model)
    # no `width` argument, or trained weights to keep: prune the built model's channels (a
    # trained network's by the magnitude of its trained weights)
    if channels and width == 1.0:
        classifier = getattr(base, "classifier_name", None) or find_classifier(
            trace(base, name=spec.model)
        )
        prune_channels(
            base,
            example_input(data),
            spec.density,
            keep=[classifier] if classifier else [],
            name=spec.model,
        )
    if spec.task_heads:
        base = attach_task_heads(base, per_task, spec.task_names, spec.head, name=spec.model)
    net = attach_exits(
        base, example_input(data), num_classes=per_task, sites=spec.exits, head=spec.train.head
    )
    if spec.method in ("predefined", "nm") and spec.density < 1 and not dense:
        plan = sparsity.plan_sparsity(
            net, spec.density, seed=spec.train.seed, exclude=_kept_dense(net), method=spec.method
        )
        if not plan.layers:
            # No layer can meet the density exactly: training would silently give a dense
            # network under a sparse key. Strict planning names the nearest valid densities.
            sparsity.plan_sparsity(
                net,
                spec.density,
                seed=spec.train.seed,
                exclude=_kept_dense(net),
                strict=True,
                method=spec.method,
            )
            raise InputError(
                "space",
                "density",
                f"{spec.model} has no layer that {spec.method} sparsity may thin",
                "use method 'channels' or density 1",
            )
        sparsity.apply_sparsity(net, plan)
    return net


def _kept_dense(net: nn.Module) -> list[str]:
    """Exit heads and the final classifier: kept dense. Only modules that exist are named
    (a network built with no exits has no ``exit_heads``)."""
    modules = dict(net.named_modules())
    return [
        n
        for n in ("exit_heads", "task_heads", getattr(net, "classifier_name", None))
        if n and n in modules
    ]


def _weights(net: nn.Module) -> dict[str, tuple[int, int]]:
    """Per Linear/conv layer: (weights kept by its mask, all its weights)."""
    out = {}
    for name, m in net.named_modules():
        if isinstance(m, sparsity.WEIGHTED_TYPES):
            mask = m._buffers.get(sparsity.MASK_BUFFER)
            total = m.weight.numel()
            out[name] = (int(mask.sum()) if mask is not None else total, total)
    return out


_DENSITIES: dict[str, tuple[float, float, dict[str, float]]] = {}


def _densities(spec: NetworkSpec) -> tuple[float, float, dict[str, float]]:
    """(whole network, thinned layers, per thinned layer) kept weights over those of the
    same model built dense."""
    if spec.key in _DENSITIES:
        return _DENSITIES[spec.key]
    reference = _build(spec, dense=True)
    net, ref = _weights(_build(spec)), _weights(reference)
    dense = _kept_dense(reference)
    target = [n for n in ref if not any(n == d or n.startswith(d + ".") for d in dense)]
    kept = sum(net.get(n, (0, 0))[0] for n in ref)
    whole = kept / max(1, sum(t for _, t in ref.values()))
    layer = {n: net.get(n, (0, 0))[0] / ref[n][1] for n in target}
    t_kept = sum(net.get(n, (0, 0))[0] for n in target)
    thinned = t_kept / max(1, sum(ref[n][1] for n in target))
    _DENSITIES[spec.key] = whole, thinned, layer
    return whole, thinned, layer


def realised_density(spec: NetworkSpec) -> float:
    """Weights the network of ``spec`` keeps over those of the same model built dense (same
    exits), over every Linear/conv layer, exit heads and final classifier included.

    What a density really is: predefined sparsity leaves dense the layers the density does
    not fit and depthwise ones, and ``channels`` keeps input and output sizes.
    """
    if spec.density >= 1:
        return 1.0
    return _densities(spec)[0]


def _check_density(spec: NetworkSpec) -> None:
    whole, thinned, layer = _densities(spec)
    if spec.method == "channels" and whole >= 1.0:
        raise InputError(
            "space",
            "method",
            f"channels: {spec.model}'s `width` argument changed no layer",
            "use method 'predefined', or make `width` scale every hidden width",
        )
    if abs(thinned - spec.density) <= DENSITY_SLACK * spec.density:
        return
    stuck = [n for n, d in layer.items() if d > (1 + DENSITY_SLACK) * spec.density]
    shown = ", ".join(stuck[:8]) + (f", ... ({len(stuck) - 8} more)" if len(stuck) > 8 else "")
    log.warning(
        "%s %s@%g keeps %.3g of its weights (%.3g of the layers it may thin; exit "
        "heads and classifier stay dense): %s could not be thinned to %g",
        spec.model,
        spec.method,
        spec.density,
        whole,
        thinned,
        shown or "no layer",
        spec.density,
    )
