"""Data sets for training and scoring candidates: a name registry, deterministic splits.

Every set comes back as a :class:`DataSet` of three :class:`Split` s (train, val, test)
holding float32 image tensors ``N x C x H x W`` (always 4-D) and one int64 label vector per
task. Nothing is downloaded: ``digits`` ships with scikit-learn, ``shapes`` is generated
procedurally, and ``mnist`` / ``fashion-mnist`` (idx files) and ``cifar10`` (binary
batches) are read from a directory the user already has; ``npz`` reads the user's own
images and labels from one NumPy ``.npz`` file (see :func:`files.npz`), and ``folder`` the
user's image files, one subfolder per class (see :func:`folder.folder`). Splits depend only
on ``seed`` (a private numpy Generator, never the global RNG state), and images are
standardised with the train split's per-channel mean and std, or with the ``mean`` and
``std`` the user states (what their own trained network expects), so the same arguments
always give the same tensors and the same :attr:`DataSet.key`, which the training cache
uses.

The options mean the same thing for every set:

- ``size``: output height and width in pixels (bilinear resize; ``shapes`` renders at it);
- ``channels``: 1 or 3 (grey is repeated to 3 channels; colour becomes luminance);
- ``noise``: fraction of pixels replaced by salt-and-pepper (black or white) noise,
  applied to the [0, 1] images before standardisation, from its own random stream so
  that images, labels and splits are otherwise the same as without noise;
- ``n``: how many samples are drawn from the source before it is split: for ``shapes``
  the number generated, for ``digits`` a subset of the 1797 images, for the file-based
  sets a cap on the official training files (train and val are carved out of it; the
  official test files always form the whole test split);
- ``mean`` and ``std``: the normalisation ``(pixel - mean) / std`` per channel of the
  [0, 1] pixels (one value: every channel), in place of the train split's own statistics;
- ``normalise=False``: the [0, 1] pixels, the normalisation recorded but not applied
  (what a deployed device reads before it normalises them itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dse.errors import InputError
from dse.nets.data import files, folder, procedural
from dse.nets.data.procedural import (
    HUES,
    ORIENTATIONS,
    POSITION_NAMES,
    SCALES,
    SHAPE_NAMES,
    SHAPES3D_TASKS,
    SIZE_NAMES,
    render_shapes,
    render_shapes3d,
)
from dse.nets.data.splits import MIN_N, MIN_SIZE, DataSet, Options, Split, normalise

__all__ = [
    "DataSet",
    "HUES",
    "ORIENTATIONS",
    "POSITION_NAMES",
    "SCALES",
    "SHAPES3D_TASKS",
    "SHAPE_NAMES",
    "SIZE_NAMES",
    "Split",
    "list_data",
    "load_data",
    "normalise",
    "render_shapes",
    "render_shapes3d",
]

_MAX_SIZE = 256
_MIN_SHAPES_SIZE = 8


# --------------------------------------------------------------------------- registry


def list_data() -> list[str]:
    """Names accepted by :func:`load_data`, sorted."""
    return sorted(_LOADERS)


def load_data(
    name: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    size: int | None = None,
    n: int | None = None,
    noise: float = 0.0,
    channels: int | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    normalise: bool = True,
) -> DataSet:
    """Load data set ``name`` with deterministic train/val/test splits drawn from ``seed``.

    ``root`` is the directory holding the files of file-based sets (ignored otherwise).
    ``val_fraction`` and ``test_fraction`` are the shares of the samples put in val and
    test (``test_fraction`` is unused where the set has an official test split). See the
    module docstring for ``size``, ``n``, ``noise``, ``channels``, ``mean``, ``std`` and
    ``normalise``. Raises
    :class:`~dse.errors.InputError` for an unknown name, bad options, or missing or
    malformed files.
    """
    key = str(name).strip().lower()
    if key not in _LOADERS:
        raise InputError(
            "data", "name", f"unknown data set {name!r}", f"known: {', '.join(list_data())}"
        )
    opts = _check_options(
        key,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        size=size,
        n=n,
        noise=noise,
        channels=channels,
        mean=mean,
        std=std,
        normalise=normalise,
    )
    return _LOADERS[key](opts, root)


def _check_options(
    name: str,
    *,
    seed: object,
    val_fraction: object,
    test_fraction: object,
    size: object,
    n: object,
    noise: object,
    channels: object,
    mean: object = None,
    std: object = None,
    normalise: bool = True,
) -> Options:
    """Validate the options once, so loaders can trust them; errors say how to fix them."""

    def as_int(field: str, value: object, low: int, high: int | None, fix: str) -> int:
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
        if ok and int(value) >= low and (high is None or int(value) <= high):
            return int(value)
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InputError(name, field, f"must be an integer {span}, got {value!r}", fix)

    def as_float(field: str, value: object, fix: str) -> float:
        if (
            isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            return float(value)
        raise InputError(name, field, f"must be a number, got {value!r}", fix)

    seed_ = as_int("seed", seed, 0, None, "pass e.g. seed=0")
    val = as_float("val_fraction", val_fraction, "pass e.g. 0.15")
    test = as_float("test_fraction", test_fraction, "pass e.g. 0.15")
    for field, value in (("val_fraction", val), ("test_fraction", test)):
        if not 0.0 < value < 1.0:
            raise InputError(
                name, field, f"must lie strictly between 0 and 1, got {value:g}", "pass e.g. 0.15"
            )
    if val + test >= 1.0:
        raise InputError(
            name,
            "val_fraction",
            f"val_fraction + test_fraction = {val + test:g} leaves no training data",
            "make the two fractions sum to less than 1",
        )
    min_size = _MIN_SHAPES_SIZE if name in ("shapes", "shapes3d") else MIN_SIZE
    size_ = (
        None
        if size is None
        else as_int(
            "size",
            size,
            min_size,
            _MAX_SIZE,
            f"pass a size of at least {min_size} or leave it unset",
        )
    )
    n_ = None if n is None else as_int("n", n, MIN_N, None, "pass a larger n or leave it unset")
    noise_ = as_float("noise", noise, "pass e.g. noise=0.1, or 0 for none")
    if not 0.0 <= noise_ < 1.0:
        raise InputError(
            name,
            "noise",
            f"must be a fraction of pixels in [0, 1), got {noise_:g}",
            "pass e.g. noise=0.1, or 0 for none",
        )
    channels_ = (
        None
        if channels is None
        else as_int("channels", channels, 1, 3, "pass 1 for grey or 3 for colour")
    )
    if channels_ == 2:
        raise InputError(
            name, "channels", "must be 1 or 3, got 2", "pass 1 for grey or 3 for colour"
        )
    mean_, std_ = _stats(name, mean, std)
    return Options(
        seed=seed_,
        val_fraction=val,
        test_fraction=test,
        size=size_,
        n=n_,
        noise=noise_,
        channels=channels_,
        mean=mean_,
        std=std_,
        normalise=bool(normalise),
    )


_STATS_FIX = "e.g. mean = [0.485, 0.456, 0.406] and std = [0.229, 0.224, 0.225], one per channel"


def _stats(
    name: str, mean: object, std: object
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The stated normalisation as tuples of floats (both or neither; finite, std > 0)."""
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        given, other = ("mean", "std") if std is None else ("std", "mean")
        raise InputError(name, other, f"missing: {given} is stated without it", _STATS_FIX)
    out = []
    for field, value in (("mean", mean), ("std", std)):
        values = [value] if isinstance(value, int | float | np.number) else value
        ok = isinstance(values, list | tuple) and 1 <= len(values) <= 3
        ok = ok and all(
            isinstance(v, int | float | np.number)
            and not isinstance(v, bool)
            and math.isfinite(float(v))
            for v in values  # type: ignore[union-attr]
        )
        if not ok:
            raise InputError(
                name, field, f"must be 1 to 3 finite numbers, got {value!r}", _STATS_FIX
            )
        out.append(tuple(float(v) for v in values))  # type: ignore[union-attr]
    if any(v <= 0 for v in out[1]):
        raise InputError(name, "std", f"{list(out[1])} holds a value <= 0", _STATS_FIX)
    return out[0], out[1]


_LOADERS: dict[str, Callable[[Options, str | Path | None], DataSet]] = {
    "cifar10": files.cifar10,
    "digits": files.digits,
    "folder": folder.folder,
    "fashion-mnist": files.idx("fashion-mnist", "class", ("FashionMNIST/raw", "fashion-mnist")),
    "mnist": files.idx("mnist", "digit", ("MNIST/raw", "mnist")),
    "npz": files.npz,
    "shapes": procedural.shapes,
    "shapes3d": procedural.shapes3d,
}
