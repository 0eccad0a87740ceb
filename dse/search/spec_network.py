"""The parts of a study spec that describe a network the user brings: ``[model] weights``
(their trained state_dict), ``[training] backbone`` and ``device``, ``[data] mean`` and
``std`` (the normalisation it was trained with), and the sparsity a trained network can
take. Each check fails with the spec's one-line error naming the dotted field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dse.search.spec import _Check

FIXED_BEFORE_TRAINING = ("predefined", "nm")
"""Sparsity methods whose pattern is fixed before training: refused with trained weights."""


def weights_file(c: _Check, model_t: Mapping[str, Any], path: Path | None) -> str | None:
    """``[model] weights``: the file's path (a relative one read beside the spec when it
    is there), which must exist; None without it. Its content is read when the network is
    built (dse.nets.models.load_weights)."""
    if "weights" not in model_t:
        return None
    weights = beside(c.string(model_t["weights"], "model.weights"), path)
    if not Path(weights).expanduser().is_file():
        raise c.fail(
            "model.weights",
            f"no such file {weights}",
            "give the trained model's state_dict, saved with "
            "torch.save(model.state_dict(), FILE) (a relative path is read beside the spec)",
        )
    return weights


def normalisation(c: _Check, data: Mapping[str, Any]) -> None:
    """``[data] mean`` and ``std``: both or neither, each a number or a list of 1 to 3
    (one per channel), std above 0; their count against the images' channels is checked
    when the data is read."""
    if "mean" not in data and "std" not in data:
        return
    for fld in ("mean", "std"):
        if fld not in data:
            other = "std" if fld == "mean" else "mean"
            raise c.fail(
                f"data.{fld}",
                f"missing: {other} is stated without it",
                "state both, one value per channel: e.g. mean = [0.5], std = [0.25]",
            )
        raw = data[fld]
        values = raw if isinstance(raw, list) else [raw]
        if not 1 <= len(values) <= 3:
            raise c.fail(f"data.{fld}", f"must be 1 to 3 numbers (one per channel), got {raw!r}")
        for v in values:
            if c.number(v, f"data.{fld}") <= 0 and fld == "std":
                raise c.fail("data.std", f"{v} is not above 0", "a std is a positive spread")


def backbone(c: _Check, training: Mapping[str, Any], weights: str | None) -> None:
    """``[training] backbone`` and ``device``: known values; ``finetune`` and ``frozen``
    need [model] weights, ``scratch`` ignores them (refused), and a frozen backbone
    trains only heads, centrally."""
    from dse.nets import BACKBONES, DEVICES

    if "device" in training:
        c.string(training["device"], "training.device", DEVICES)
    if "backbone" not in training:
        return
    chosen = c.string(training["backbone"], "training.backbone", BACKBONES)
    if weights is None and chosen != "scratch":
        raise c.fail(
            "training.backbone",
            f"{chosen} starts from trained weights and [model] has none",
            'give [model] weights = "FILE.pt", or backbone = "scratch"',
        )
    if weights is not None and chosen == "scratch":
        raise c.fail(
            "training.backbone",
            "scratch trains from random weights: [model] weights would be ignored",
            'use backbone = "frozen" or "finetune", or remove [model] weights',
        )
    mode = training.get("mode", "central")
    if chosen == "frozen" and mode != "central":
        raise c.fail(
            "training.backbone",
            f"a frozen backbone leaves only heads to train, and {mode} training trains a "
            "backbone in two parts",
            'use mode = "central", or backbone = "finetune"',
        )


def sparsity_of_trained(
    c: _Check, weights: str | None, densities: tuple[float, ...], methods: tuple[str, ...]
) -> None:
    """A trained network takes ``channels`` (pruned, then fine-tuned) below density 1, never
    a pattern fixed before training."""
    fixed = [m for m in methods if m in FIXED_BEFORE_TRAINING]
    if weights is not None and fixed and any(d < 1 for d in densities):
        raise c.fail(
            "space.methods",
            f"{fixed[0]} sparsity is a pattern fixed before training, and [model] weights "
            "were trained without it",
            'use methods = ["channels"] (prunes the trained network and fine-tunes it), '
            "or densities = [1.0], or train from scratch without weights",
        )


def beside(name: str, spec_path: Path | None) -> str:
    """A relative file path read beside the spec when it is there, else as given."""
    if spec_path is not None and not Path(name).expanduser().is_absolute():
        candidate = spec_path.parent / name
        if candidate.exists():
            return str(candidate)
    return name
