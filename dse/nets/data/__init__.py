"""Data sets for training and scoring candidates: a name registry, deterministic splits.

Every set comes back as a :class:`DataSet` of three :class:`Split` s (train, val, test)
holding float32 image tensors ``N x C x H x W`` (always 4-D) and one int64 label vector per
task. Nothing is downloaded: ``digits`` ships with scikit-learn, ``shapes`` is generated
procedurally, and ``mnist`` / ``fashion-mnist`` (idx files) and ``cifar10`` (binary
batches) are read from a directory the user already has; ``npz`` reads the user's own
images and labels from one NumPy ``.npz`` file (see :func:`_load_npz`). Splits depend only
on ``seed`` (a private numpy Generator, never the global RNG state), and images are
standardised with the train split's per-channel mean and std, so the same arguments always
give the same tensors and the same :attr:`DataSet.key`, which the training cache uses.

The options mean the same thing for every set:

- ``size``: output height and width in pixels (bilinear resize; ``shapes`` renders at it);
- ``channels``: 1 or 3 (grey is repeated to 3 channels; colour becomes luminance);
- ``noise``: fraction of pixels replaced by salt-and-pepper (black or white) noise,
  applied to the [0, 1] images before standardisation, from its own random stream so
  that images, labels and splits are otherwise the same as without noise;
- ``n``: how many samples are drawn from the source before it is split: for ``shapes``
  the number generated, for ``digits`` a subset of the 1797 images, for the file-based
  sets a cap on the official training files (train and val are carved out of it; the
  official test files always form the whole test split).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dse.errors import InputError

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
    "render_shapes",
    "render_shapes3d",
]

#: Bump when a loader's output changes for the same arguments, so cached training misses.
_FORMAT_VERSION = 1

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
SIZE_NAMES: tuple[str, ...] = ("small", "medium", "large")
POSITION_NAMES: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")

# Half-extent of a shape as a fraction of a quadrant's half-width, per size class. The gaps
# between classes keep the pixel areas of one shape apart between size classes at 32 px,
# and small shapes stay big enough (7-8 px across) to tell a circle from a square.
_SIZE_RANGES: tuple[tuple[float, float], ...] = ((0.38, 0.48), (0.62, 0.72), (0.86, 0.98))

# The 3D-Shapes-like scene (``shapes3d``): the factors of Burgess & Kim's 3D Shapes, drawn in
# 2-D. Hues are fractions of the HSV circle (10, as in 3D Shapes); scales multiply the
# object's base half-extent; orientations are the scene's roll in degrees (15 from -30 to
# 30, as 3D Shapes' camera angles).
HUES: tuple[float, ...] = tuple(k / 10 for k in range(10))
SCALES: tuple[float, ...] = tuple(0.75 + k * (0.5 / 7) for k in range(8))
ORIENTATIONS: tuple[float, ...] = tuple(-30.0 + k * (60.0 / 14) for k in range(15))

# Scene layout as fractions of the image side, around the image centre: the wall/floor
# boundary lies _HORIZON below the centre, the object rests with its bottom _GROUND below
# it, and its half-extent at scale 1 is _OBJECT_RADIUS.
_HORIZON = 0.1
_GROUND = 0.32
_OBJECT_RADIUS = 0.2
# (saturation, value) of each surface: one hue looks different on each, so an object is
# never lost against a wall or floor of its own hue.
_OBJECT_SV, _WALL_SV, _FLOOR_SV = (1.0, 1.0), (0.6, 0.95), (0.8, 0.65)

_MIN_SIZE = 4
_MAX_SIZE = 256
_MIN_SHAPES_SIZE = 8
_MIN_N = 10
_SHAPES_DEFAULT_N = 6000
_SHAPES_DEFAULT_SIZE = 32

_IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_CIFAR_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST_FILE = "test_batch.bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a data set: images ``x`` (float32, N x C x H x W) and labels per task.

    ``y`` maps a task name to int64 labels of length N (a private copy: treat it as
    read-only). Equality is identity (comparing tensors element-wise is never what a caller
    means). Splits pickle, so they can be sent to worker processes.
    """

    x: torch.Tensor
    y: Mapping[str, torch.Tensor]

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.dtype != torch.float32:
            raise ValueError(
                f"Split.x must be float32 N x C x H x W, got {self.x.dtype} {tuple(self.x.shape)}"
            )
        for task, labels in self.y.items():
            if labels.dtype != torch.int64 or labels.shape != (self.x.shape[0],):
                raise ValueError(
                    f"Split.y[{task!r}] must be int64 of length {self.x.shape[0]}, "
                    f"got {labels.dtype} {tuple(labels.shape)}"
                )
        object.__setattr__(self, "y", dict(self.y))  # own copy; a plain dict pickles

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, eq=False)
class DataSet:
    """A named data set split three ways, with its tasks and a cache key.

    ``classes`` maps each task to its number of classes and ``task`` is the default one
    (single-task training uses it). ``input_shape`` is (C, H, W). ``key`` is a stable,
    canonical description of everything that determines the tensors (name, loader
    version, the options that apply, seed, split sizes, and a sha256 of the file content
    for file-based sets); two loads with equal keys give identical tensors.
    """

    name: str
    train: Split
    val: Split
    test: Split
    classes: Mapping[str, int]
    task: str
    input_shape: tuple[int, ...]
    key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", dict(self.classes))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.task not in self.classes:
            raise ValueError(f"default task {self.task!r} is not one of {sorted(self.classes)}")
        for split in (self.train, self.val, self.test):
            if tuple(split.x.shape[1:]) != self.input_shape:
                raise ValueError(f"split shape {tuple(split.x.shape[1:])} != {self.input_shape}")
            if set(split.y) != set(self.classes):
                raise ValueError(f"split tasks {sorted(split.y)} != {sorted(self.classes)}")

    def check_tasks(
        self, tasks: str | Sequence[str], *, where: str | Path = "data", field: str = "tasks"
    ) -> tuple[str, ...]:
        """``tasks`` (one name or several) as a tuple, once each, or an error naming ``field``.

        Every name must be one of this set's tasks; the error lists them. ``where`` is what
        the error is about (a spec file, ``"data"``).
        """
        names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        have = ", ".join(self.classes)
        if not names:
            raise InputError(where, field, "names no task", f"{self.name} has tasks: {have}")
        for t in names:
            if not isinstance(t, str) or t not in self.classes:
                raise InputError(
                    where, field, f"unknown task {t!r}", f"{self.name} has tasks: {have}"
                )
        if len(set(names)) != len(names):
            twice = sorted({t for t in names if names.count(t) > 1})
            raise InputError(where, field, f"names {', '.join(twice)} twice", "name each task once")
        return names


@dataclass(frozen=True)
class _Options:
    """Validated options, shared by every loader."""

    seed: int
    val_fraction: float
    test_fraction: float
    size: int | None
    n: int | None
    noise: float
    channels: int | None


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
) -> DataSet:
    """Load data set ``name`` with deterministic train/val/test splits drawn from ``seed``.

    ``root`` is the directory holding the files of file-based sets (ignored otherwise).
    ``val_fraction`` and ``test_fraction`` are the shares of the samples put in val and
    test (``test_fraction`` is unused where the set has an official test split). See the
    module docstring for ``size``, ``n``, ``noise`` and ``channels``. Raises
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
) -> _Options:
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
    min_size = _MIN_SHAPES_SIZE if name in ("shapes", "shapes3d") else _MIN_SIZE
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
    n_ = None if n is None else as_int("n", n, _MIN_N, None, "pass a larger n or leave it unset")
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
    return _Options(
        seed=seed_,
        val_fraction=val,
        test_fraction=test,
        size=size_,
        n=n_,
        noise=noise_,
        channels=channels_,
    )


# --------------------------------------------------------------------------- shared steps


def _rng(seed: int, stream: int) -> np.random.Generator:
    """A private generator for one purpose (``stream``), so purposes never share draws."""
    return np.random.default_rng([seed, stream])


_STREAM_SPLIT, _STREAM_SUBSET, _STREAM_NOISE, _STREAM_SHAPES, _STREAM_SHAPES3D = 1, 2, 3, 4, 5


def _split_counts(name: str, total: int, fractions: tuple[float, ...]) -> list[int]:
    """Round ``total * f`` for each fraction; the rest goes first. Every part must be non-empty."""
    parts = [int(math.floor(total * f + 0.5)) for f in fractions]
    counts = [total - sum(parts), *parts]
    if min(counts) < 1:
        raise InputError(
            name,
            "n",
            f"{total} samples leave an empty split (train/val/test sizes {counts})",
            "pass a larger n or larger fractions",
        )
    return counts


def _three_way(name: str, total: int, opts: _Options) -> tuple[np.ndarray, ...]:
    """Random train/val/test index arrays over ``total`` samples (no official test split).

    The test indices depend only on seed and test_fraction, so changing val_fraction never
    moves a sample into or out of the test split.
    """
    n_train, n_test, n_val = _split_counts(name, total, (opts.test_fraction, opts.val_fraction))
    perm = _rng(opts.seed, _STREAM_SPLIT).permutation(total)
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    assert len(train) == n_train
    return train, val, test


def _salt_and_pepper(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Set ``fraction`` of pixel positions (all channels together) to black or white.

    ``x`` is N x C x H x W in [0, 1]; it is modified in place and returned.
    """
    if fraction <= 0.0:
        return x
    n, _, h, w = x.shape
    hit = rng.random((n, h, w), dtype=np.float32) < fraction
    white = rng.random((n, h, w), dtype=np.float32) < 0.5
    value = white.astype(x.dtype)
    x[:] = np.where(hit[:, None], value[:, None], x)
    return x


def _prepare(
    x: np.ndarray, opts: _Options, native_channels: int, stream_offset: int
) -> torch.Tensor:
    """Turn [0, 1] images (N x C x H x W) into the requested size, channels and noise."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if opts.size is not None and opts.size != t.shape[-1]:
        t = F.interpolate(
            t,
            size=(opts.size, opts.size),
            mode="bilinear",
            align_corners=False,
            antialias=opts.size < t.shape[-1],
        )
        t = t.clamp_(0.0, 1.0)
    want = opts.channels or native_channels
    if want != t.shape[1]:
        if t.shape[1] == 1:
            t = t.repeat(1, want, 1, 1)
        else:  # colour -> grey: ITU-R BT.601 luminance
            weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32)
            t = (t * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    t = t.contiguous()
    if opts.noise > 0.0:
        rng = _rng(opts.seed, _STREAM_NOISE * 16 + stream_offset)
        _salt_and_pepper(t.numpy(), opts.noise, rng)
    return t


def _standardise(splits: list[torch.Tensor]) -> list[torch.Tensor]:
    """Standardise every split, in place, with the train (first) split's per-channel stats."""
    var, mean = torch.var_mean(splits[0], dim=(0, 2, 3), unbiased=False)
    std = var.sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant channel: centre only
    m, s = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
    return [x.sub_(m).div_(s) for x in splits]


def _labels(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _make_key(name: str, fields: Mapping[str, object]) -> str:
    """``name(v1,field=value,...)`` in a fixed field order; floats by repr of float."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return repr(float(v))
        return str(v)

    inner = ",".join(f"{k}={fmt(v)}" for k, v in fields.items())
    return f"{name}(v{_FORMAT_VERSION},{inner})"


def _build(
    name: str,
    splits: list[torch.Tensor],
    labels: list[Mapping[str, np.ndarray]],
    classes: Mapping[str, int],
    task: str,
    key_fields: dict[str, object],
) -> DataSet:
    """Standardise, wrap in :class:`Split` s and compute the key."""
    xs = _standardise(splits)
    parts = [
        Split(x, {t: _labels(v) for t, v in y.items()}) for x, y in zip(xs, labels, strict=True)
    ]
    key_fields["shape"] = "x".join(str(d) for d in xs[0].shape[1:])
    key_fields["split"] = "/".join(str(len(p)) for p in parts)
    return DataSet(
        name=name,
        train=parts[0],
        val=parts[1],
        test=parts[2],
        classes=classes,
        task=task,
        input_shape=tuple(xs[0].shape[1:]),
        key=_make_key(name, key_fields),
    )


# --------------------------------------------------------------------------- digits


def _load_digits(opts: _Options, root: str | Path | None) -> DataSet:
    """scikit-learn's 8x8 handwritten digits (1797 images, values 0..16).

    Tasks: ``digit`` (0..9, the default), and two derived from it: ``parity`` (0 even,
    1 odd) and ``ge5`` (1 for a digit of 5 or more).
    """
    del root
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]  # N x 1 x 8 x 8
    targets = np.asarray(bunch.target, dtype=np.int64)
    labels = {"digit": targets, "parity": targets % 2, "ge5": (targets >= 5).astype(np.int64)}
    classes = {"digit": 10, "parity": 2, "ge5": 2}
    return _random_split("digits", images, labels, opts, classes, "digit")


def _random_split(
    name: str,
    images: np.ndarray,
    labels: Mapping[str, np.ndarray],
    opts: _Options,
    classes: Mapping[str, int],
    task: str,
    **key_fields: object,
) -> DataSet:
    """A set with no official test split: the ``n`` subset, then train/val/test drawn.

    ``images`` are N x C x H x W in [0, 1]; ``key_fields`` (e.g. a file's digest) join the
    key after the option fields.
    """
    total = len(images)
    if opts.n is not None and opts.n < total:
        keep = np.sort(_rng(opts.seed, _STREAM_SUBSET).permutation(total)[: opts.n])
        images, total = images[keep], opts.n
        labels = {t: v[keep] for t, v in labels.items()}
    index = _three_way(name, total, opts)
    splits = [_prepare(images[i], opts, images.shape[1], k) for k, i in enumerate(index)]
    key = {**_common_key(opts, total=total, test_fraction=opts.test_fraction), **key_fields}
    return _build(
        name, splits, [{t: v[i] for t, v in labels.items()} for i in index], classes, task, key
    )


def _common_key(opts: _Options, *, total: int, test_fraction: float | str) -> dict[str, object]:
    """The option fields every key carries, with defaults resolved to what was used.

    Size and channels enter as the output shape (added by :func:`_build`), so asking for the
    native size or channel count gives the same key as leaving them unset.
    """
    return {
        "seed": opts.seed,
        "n": total,
        "val_fraction": opts.val_fraction,
        "test_fraction": test_fraction,
        "noise": opts.noise,
    }


# --------------------------------------------------------------------------- shapes


def render_shapes(
    n: int,
    *,
    size: int = _SHAPES_DEFAULT_SIZE,
    channels: int = 3,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``n`` procedural images in [0, 1] (N x C x size x size float32) and labels.

    Each image holds one shape (``SHAPE_NAMES``) of one size class (``SIZE_NAMES``) inside
    one quadrant (``POSITION_NAMES``), in a random colour on a random background colour
    (grey levels when ``channels`` is 1), with the shape's centre jittered so it stays
    strictly inside its quadrant. ``noise`` is the salt-and-pepper fraction, drawn from its
    own stream so the clean image underneath is the same. Vectorised over coordinate grids:
    no per-pixel loops.
    """
    rng = _rng(seed, _STREAM_SHAPES)
    shape = rng.integers(0, len(SHAPE_NAMES), n)
    size_cls = rng.integers(0, len(SIZE_NAMES), n)
    position = rng.integers(0, len(POSITION_NAMES), n)
    q = size / 4.0  # half-width of a quadrant, pixels
    lo = np.array([r[0] for r in _SIZE_RANGES], dtype=np.float32)[size_cls]
    hi = np.array([r[1] for r in _SIZE_RANGES], dtype=np.float32)[size_cls]
    radius = np.maximum(q * (lo + (hi - lo) * rng.random(n, dtype=np.float32)), 1.0)
    # centre jitter: anywhere the bounding box (centre +- radius) stays in the quadrant
    row0 = np.where(position >= 2, size / 2.0, 0.0).astype(np.float32)
    col0 = np.where(position % 2 == 1, size / 2.0, 0.0).astype(np.float32)
    slack = np.maximum(2.0 * q - 2.0 * radius, 0.0)
    cy = row0 + radius + slack * rng.random(n, dtype=np.float32)
    cx = col0 + radius + slack * rng.random(n, dtype=np.float32)

    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    mask = np.empty((n, size, size), dtype=bool)
    for k in range(len(SHAPE_NAMES)):  # one vectorised pass per shape over its images
        sel = np.flatnonzero(shape == k)
        dy = grid[None, :, None] - cy[sel, None, None]  # n_k x H x 1
        dx = grid[None, None, :] - cx[sel, None, None]  # n_k x 1 x W
        r = radius[sel, None, None]
        mask[sel] = _shape_mask(k, dy, dx, r)

    background = rng.random((n, channels), dtype=np.float32)
    foreground = rng.random((n, channels), dtype=np.float32)
    # too little contrast: move the foreground half-way round the colour cube
    faint = np.abs(foreground - background).max(axis=1) < 0.3
    foreground[faint] = (background[faint] + 0.5) % 1.0
    images = np.where(
        mask[:, None], foreground[:, :, None, None], background[:, :, None, None]
    ).astype(np.float32)
    _salt_and_pepper(images, noise, _rng(seed, _STREAM_NOISE * 16))
    labels = {
        "shape": shape.astype(np.int64),
        "size": size_cls.astype(np.int64),
        "position": position.astype(np.int64),
    }
    return images, labels


def _shape_mask(shape: int, dy: np.ndarray, dx: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pixels inside shape number ``shape`` with half-extent ``r``, given offsets from its centre.

    Every shape fits the box ``|dy|, |dx| <= r``, so its bounding box is the same for all.
    """
    ady, adx = np.abs(dy), np.abs(dx)
    if shape == 0:  # circle
        return dy * dy + dx * dx <= r * r
    box = (ady <= r) & (adx <= r)
    if shape == 1:  # square
        return box
    if shape == 2:  # triangle, apex up, base as wide as the box
        return box & (adx <= (dy + r) / 2.0)
    thick = np.maximum(r / 2.5, 0.5)  # cross: arms 0.8 of the half-extent wide
    return box & ((ady <= thick) | (adx <= thick))


def _load_procedural(
    name: str,
    render: Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]],
    classes: dict[str, int],
    default_task: str,
    opts: _Options,
) -> DataSet:
    """A generated set: ``render(n, size=, channels=, noise=, seed=)`` -> images, labels,
    split three ways (sizes checked before anything is rendered)."""
    total = opts.n if opts.n is not None else _SHAPES_DEFAULT_N
    size = opts.size if opts.size is not None else _SHAPES_DEFAULT_SIZE
    channels = opts.channels if opts.channels is not None else 3
    index = _three_way(name, total, opts)
    images, labels = render(total, size=size, channels=channels, noise=opts.noise, seed=opts.seed)
    splits = [torch.from_numpy(np.ascontiguousarray(images[i])) for i in index]
    key = _common_key(opts, total=total, test_fraction=opts.test_fraction)
    return _build(
        name,
        splits,
        [{t: v[i] for t, v in labels.items()} for i in index],
        classes,
        default_task,
        key,
    )


def _load_shapes(opts: _Options, root: str | Path | None) -> DataSet:
    """The procedural shapes set: three tasks (shape, size, position) on one image."""
    del root
    classes = {"shape": len(SHAPE_NAMES), "size": len(SIZE_NAMES), "position": len(POSITION_NAMES)}
    return _load_procedural("shapes", render_shapes, classes, "shape", opts)


SHAPES3D_TASKS: tuple[str, ...] = (
    "object_shape",
    "object_scale",
    "object_hue",
    "wall_hue",
    "floor_hue",
    "orientation",
)


def _hsv_to_rgb(h: np.ndarray, s: float, v: float) -> np.ndarray:
    """RGB in [0, 1] (... x 3) of hues ``h`` (fractions of the circle) at one saturation, value."""
    k = (np.asarray(h, dtype=np.float64)[..., None] * 6.0 + np.array([5.0, 3.0, 1.0])) % 6.0
    return (v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)).astype(np.float32)


def render_shapes3d(
    n: int,
    *,
    size: int = _SHAPES_DEFAULT_SIZE,
    channels: int = 3,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``n`` scenes shaped like 3D Shapes in [0, 1] (N x C x size x size) and labels.

    Six factors are drawn independently and uniformly from ``seed``, one task each
    (:data:`SHAPES3D_TASKS`): ``object_shape`` (:data:`SHAPE_NAMES`), ``object_scale``
    (:data:`SCALES`), ``object_hue``, ``wall_hue``, ``floor_hue`` (:data:`HUES`) and
    ``orientation`` (:data:`ORIENTATIONS`). The scene, before its roll: a wall above a
    horizontal boundary :data:`_HORIZON` of the side below the centre, the floor under it,
    and the object centred left to right, resting on the floor. The whole scene is then
    rolled by the orientation angle about the image centre. Each surface is one flat colour
    (the hue at that surface's saturation and value), so an image is a pure function of its
    six labels, as in 3D Shapes. ``channels`` 1 gives BT.601 luminance (the hue tasks are
    then hard to tell apart); ``noise`` is the salt-and-pepper fraction (MTL-Split's noise),
    drawn from its own stream so the clean scene underneath is the same.
    """
    rng = _rng(seed, _STREAM_SHAPES3D)
    counts = (len(SHAPE_NAMES), len(SCALES), len(HUES), len(HUES), len(HUES), len(ORIENTATIONS))
    labels = {
        t: rng.integers(0, k, n).astype(np.int64)
        for t, k in zip(SHAPES3D_TASKS, counts, strict=True)
    }
    theta = np.deg2rad(np.array(ORIENTATIONS, dtype=np.float64)[labels["orientation"]])
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    radius = (size * _OBJECT_RADIUS * np.array(SCALES, dtype=np.float32))[labels["object_scale"]]

    grid = np.arange(size, dtype=np.float32) + 0.5 - size / 2.0  # pixel centres from the centre
    dy, dx = grid[None, :, None], grid[None, None, :]
    # scene coordinates of each pixel (the image rotated back by the roll): u across, v down
    u = dx * cos[:, None, None] + dy * sin[:, None, None]  # N x H x W
    v = dy * cos[:, None, None] - dx * sin[:, None, None]
    floor = v >= _HORIZON * size
    obj = np.empty((n, size, size), dtype=bool)
    centre = _GROUND * size - radius  # the object's centre, below the image centre
    for k in range(len(SHAPE_NAMES)):
        sel = np.flatnonzero(labels["object_shape"] == k)
        obj[sel] = _shape_mask(k, v[sel] - centre[sel, None, None], u[sel], radius[sel, None, None])

    colour = {
        "object": _hsv_to_rgb(np.array(HUES)[labels["object_hue"]], *_OBJECT_SV),
        "wall": _hsv_to_rgb(np.array(HUES)[labels["wall_hue"]], *_WALL_SV),
        "floor": _hsv_to_rgb(np.array(HUES)[labels["floor_hue"]], *_FLOOR_SV),
    }
    if channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        colour = {k: (c * weights).sum(axis=1, keepdims=True) for k, c in colour.items()}
    images = np.where(
        floor[:, None], colour["floor"][:, :, None, None], colour["wall"][:, :, None, None]
    )
    images = np.where(obj[:, None], colour["object"][:, :, None, None], images)
    images = np.ascontiguousarray(images, dtype=np.float32)
    _salt_and_pepper(images, noise, _rng(seed, _STREAM_NOISE * 16 + 8))
    return images, labels


def _load_shapes3d(opts: _Options, root: str | Path | None) -> DataSet:
    """The procedural 3D-Shapes-like set: six tasks on one scene (see render_shapes3d)."""
    del root
    counts = (len(SHAPE_NAMES), len(SCALES), len(HUES), len(HUES), len(HUES), len(ORIENTATIONS))
    classes = dict(zip(SHAPES3D_TASKS, counts, strict=True))
    return _load_procedural("shapes3d", render_shapes3d, classes, "object_shape", opts)


# --------------------------------------------------------------------------- file reading


def _need_root(name: str, root: str | Path | None, expected: tuple[str, ...]) -> Path:
    """The data directory, or an error that says what it must contain."""
    listing = ", ".join(expected)
    if root is None:
        raise InputError(
            name,
            "root",
            f"{name} is read from files and no data directory was given",
            f"pass --data-root DIR containing {listing}",
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(
            path, "root", "is not a directory", f"pass --data-root DIR containing {listing}"
        )
    return path


def _find_dir(
    root: Path, subdirs: tuple[str, ...], names: tuple[str, ...], suffixes: tuple[str, ...]
) -> Path:
    """The first of ``root`` and ``root/subdir`` that holds any expected file, else root."""
    for d in (root, *(root / s for s in subdirs)):
        if any((d / (f + s)).is_file() for f in names for s in suffixes):
            return d
    return root


class _Reader:
    """Reads each file once, hashing its (decompressed) content into one sha256."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def read(
        self, directory: Path, name: str, *, gz_ok: bool, expected: tuple[str, ...]
    ) -> tuple[Path, bytes]:
        plain, packed = directory / name, directory / (name + ".gz")
        if plain.is_file():
            path, data = plain, plain.read_bytes()
        elif gz_ok and packed.is_file():
            path = packed
            try:
                data = gzip.decompress(packed.read_bytes())
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError(
                    path,
                    "gzip",
                    f"cannot be decompressed ({exc})",
                    "re-download the file or replace it with the uncompressed one",
                ) from exc
        else:
            alt = " (or .gz)" if gz_ok else ""
            raise InputError(
                directory,
                "files",
                f"missing {name}{alt}",
                f"put the files {', '.join(expected)} in {directory}",
            )
        self._sha.update(f"{name}\0{len(data)}\0".encode())
        self._sha.update(data)
        return path, data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _parse_idx(path: Path, data: bytes, *, images: bool) -> np.ndarray:
    """Parse an idx file (big-endian header, unsigned bytes) into N x H x W or N arrays."""
    magic_want = _IDX_IMAGES_MAGIC if images else _IDX_LABELS_MAGIC
    header = 16 if images else 8
    kind = "images (idx3-ubyte)" if images else "labels (idx1-ubyte)"
    if len(data) < header:
        raise InputError(
            path,
            "header",
            f"truncated: {len(data)} bytes, an idx {kind} header needs {header}",
            "re-download the file",
        )
    dims = np.frombuffer(data, dtype=">u4", count=header // 4)
    magic = int(dims[0])
    if magic != magic_want:
        other = {_IDX_IMAGES_MAGIC: "an images file", _IDX_LABELS_MAGIC: "a labels file"}
        hint = f"; it looks like {other[magic]}" if magic in other else ""
        raise InputError(
            path,
            "magic",
            f"expected {magic_want} for {kind}, got {magic}{hint}",
            "check that the file is the one its name says, uncompressed idx",
        )
    shape = tuple(int(d) for d in dims[1:])
    if images and (shape[1] < 1 or shape[2] < 1):
        raise InputError(
            path, "header", f"image size {shape[1]}x{shape[2]} is empty", "re-download the file"
        )
    body = math.prod(shape)
    if len(data) - header != body:
        state = "truncated" if len(data) - header < body else "has trailing bytes"
        raise InputError(
            path,
            "length",
            f"{state}: header says {shape[0]} items "
            f"({header + body} bytes), file has {len(data)} bytes",
            "re-download the file",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _check_labels(path: Path, labels: np.ndarray, classes: int) -> None:
    if labels.size and int(labels.max()) >= classes:
        bad = int(np.argmax(labels >= classes))
        raise InputError(
            path,
            "labels",
            f"label {int(labels[bad])} at record {bad} is out of range 0..{classes - 1}",
            "re-download the file",
        )


def _official_split(
    name: str,
    train_x: np.ndarray,
    train_y: Mapping[str, np.ndarray],
    test_x: np.ndarray,
    test_y: Mapping[str, np.ndarray],
    opts: _Options,
    digest: str,
    classes: Mapping[str, int],
    task: str,
    *,
    scale: float = 255.0,
) -> DataSet:
    """Carve val (and the ``n`` cap) out of the official train files; test stays whole.

    Images are N x C x H x W; each split is divided by ``scale`` (uint8 pixels by 255)
    after it is taken, so a large uint8 set is never converted whole.
    """
    available = len(train_x)
    total = available if opts.n is None else min(opts.n, available)
    if total < _MIN_N:
        raise InputError(
            name,
            "n",
            f"the training files hold only {available} samples, fewer than {_MIN_N}",
            "use complete training files",
        )
    n_train, n_val = _split_counts(name, total, (opts.val_fraction,))
    perm = _rng(opts.seed, _STREAM_SPLIT).permutation(available)
    val, train = perm[:n_val], perm[n_val:total]
    assert len(train) == n_train
    parts = [
        (train_x[train], {t: v[train] for t, v in train_y.items()}),
        (train_x[val], {t: v[val] for t, v in train_y.items()}),
        (test_x, dict(test_y)),
    ]
    splits = [
        _prepare(x.astype(np.float32) / scale, opts, train_x.shape[1], k)
        for k, (x, _) in enumerate(parts)
    ]
    key = _common_key(opts, total=total, test_fraction="official")
    key["sha256"] = digest
    return _build(name, splits, [y for _, y in parts], classes, task, key)


def _idx_loader(
    name: str, task: str, subdirs: tuple[str, ...]
) -> Callable[[_Options, str | Path | None], DataSet]:
    """A loader for an MNIST-format set (four idx files, plain or gzipped), 10 classes."""

    def load(opts: _Options, root: str | Path | None) -> DataSet:
        expected = _IDX_FILES
        directory = _find_dir(_need_root(name, root, expected), subdirs, expected, ("", ".gz"))
        reader = _Reader()
        arrays: list[np.ndarray] = []
        paths: list[Path] = []
        for file in expected:
            path, data = reader.read(directory, file, gz_ok=True, expected=expected)
            arrays.append(_parse_idx(path, data, images="images" in file))
            paths.append(path)
        train_x, train_y, test_x, test_y = arrays
        for xi, yi in ((0, 1), (2, 3)):
            if len(arrays[xi]) != len(arrays[yi]):
                raise InputError(
                    paths[yi],
                    "count",
                    f"{len(arrays[yi])} labels for {len(arrays[xi])} images in {paths[xi].name}",
                    "use matching image and label files",
                )
            _check_labels(paths[yi], arrays[yi], 10)
        if test_x.shape[1:] != train_x.shape[1:]:
            raise InputError(
                paths[2],
                "header",
                f"image size {test_x.shape[1:]} differs "
                f"from the training images' {train_x.shape[1:]}",
                "use test and training files of the same data set",
            )
        if len(test_x) == 0:
            raise InputError(paths[2], "count", "holds no images", "re-download the file")
        return _official_split(
            name,
            train_x[:, None],
            {task: train_y},
            test_x[:, None],
            {task: test_y},
            opts,
            reader.hexdigest(),
            {task: 10},
            task,
        )

    return load


def _parse_cifar(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR-10 binary batch: records of 1 label byte + 3x32x32 pixel bytes."""
    if len(data) == 0 or len(data) % _CIFAR_RECORD:
        raise InputError(
            path,
            "length",
            f"{len(data)} bytes is not a positive multiple of "
            f"the {_CIFAR_RECORD}-byte record (1 label + 3072 pixels)",
            "use the CIFAR-10 binary version (cifar-10-binary.tar.gz), complete files",
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    _check_labels(path, labels, 10)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _load_cifar10(opts: _Options, root: str | Path | None) -> DataSet:
    """CIFAR-10 from its binary batches (never unpickled): 50000 train, 10000 test."""
    expected = (*_CIFAR_TRAIN_FILES, _CIFAR_TEST_FILE)
    directory = _find_dir(
        _need_root("cifar10", root, expected), ("cifar-10-batches-bin",), expected, ("",)
    )
    reader = _Reader()
    parsed = [
        _parse_cifar(*reader.read(directory, f, gz_ok=False, expected=expected)) for f in expected
    ]
    train_x = np.concatenate([p[0] for p in parsed[:-1]])
    train_y = np.concatenate([p[1] for p in parsed[:-1]])
    test_x, test_y = parsed[-1]
    return _official_split(
        "cifar10",
        train_x,
        {"class": train_y},
        test_x,
        {"class": test_y},
        opts,
        reader.hexdigest(),
        {"class": 10},
        "class",
    )


# --------------------------------------------------------------------------- npz


_NPZ_FIX = "save it with numpy.savez(FILE, x=images, y=labels)"


def _load_npz(opts: _Options, root: str | Path | None) -> DataSet:
    """The user's own data set: one ``.npz`` file (``root``), read without pickle.

    - ``x``: images, ``N x H x W`` (grey), ``N x C x H x W`` or ``N x H x W x C`` with
      C = 1 or 3, square; uint8 (0..255) or floats in [0, 1];
    - labels: ``y`` (the task ``class``) and/or ``y_TASK`` (one task each; several make
      a multi-task set), integers 0..K-1, one per image;
    - optional ``x_test`` with the matching ``y_test`` / ``y_TASK_test``: an official test
      split (val is carved out of ``x``); without it train/val/test are drawn from ``x``.
    """
    if root is None:
        raise InputError(
            "npz",
            "root",
            "npz is read from a file and none was given",
            'pass --data-root FILE.npz (or root = "FILE.npz" in [data])',
        )
    path = Path(root).expanduser()
    if not path.is_file():
        raise InputError(path, "root", "is not a file", "pass the path of an .npz file")
    raw = path.read_bytes()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(
            path, "file", f"is not a readable .npz without pickle ({exc})", _NPZ_FIX
        ) from None
    if "x" not in arrays:
        raise InputError(
            path, "x", f"missing (arrays: {', '.join(sorted(arrays)) or 'none'})", _NPZ_FIX
        )
    x = _npz_images(path, "x", arrays["x"])
    if len(x) < _MIN_N:
        raise InputError(
            path, "x", f"holds {len(x)} images, fewer than {_MIN_N}", "give more images"
        )
    tasks = _npz_tasks(path, arrays)
    y = {t: _npz_labels(path, k, arrays[k], len(x)) for t, k in tasks.items()}
    classes = {t: int(v.max()) + 1 for t, v in y.items()}
    for t, k in classes.items():
        if k < 2:
            raise InputError(path, tasks[t], "holds a single class", "give at least two")
    task = "class" if "class" in tasks else sorted(tasks)[0]
    digest = hashlib.sha256(raw).hexdigest()
    if "x_test" not in arrays:
        return _random_split("npz", x, y, opts, classes, task, sha256=digest)
    x_test = _npz_images(path, "x_test", arrays["x_test"])
    if len(x_test) == 0:
        raise InputError(
            path,
            "x_test",
            "holds no images",
            "give test images or leave x_test out (a test split is then drawn from x)",
        )
    if x_test.shape[1:] != x.shape[1:]:
        raise InputError(
            path,
            "x_test",
            f"shape {x_test.shape[1:]} differs from x's {x.shape[1:]}",
            "save test images like the training images",
        )
    y_test = {}
    for t, k in tasks.items():
        key = f"{k}_test"
        if key not in arrays:
            raise InputError(
                path,
                key,
                "missing: x_test needs labels for every task",
                f"save {key} beside x_test",
            )
        y_test[t] = _npz_labels(path, key, arrays[key], len(x_test))
        if int(y_test[t].max()) >= classes[t]:
            raise InputError(
                path,
                key,
                f"has a class the training labels lack (0..{classes[t] - 1})",
                "use the same classes in both",
            )
    return _official_split("npz", x, y, x_test, y_test, opts, digest, classes, task, scale=1.0)


def _npz_tasks(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Task name -> label array name, from ``y`` and ``y_TASK`` (not the ``_test`` ones)."""
    tasks = {}
    for k in sorted(arrays):
        if k.endswith("_test"):
            continue
        if k == "y":
            tasks["class"] = k
        elif k.startswith("y_") and len(k) > 2:
            tasks[k[2:]] = k
    if not tasks:
        raise InputError(
            path,
            "y",
            f"no label array (arrays: {', '.join(sorted(arrays))})",
            _NPZ_FIX + ", or y_TASK=labels per task",
        )
    return tasks


def _npz_images(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    """Images as N x C x H x W float32 in [0, 1], or an error that says how to save them."""
    fix = "save images as N x H x W, N x C x H x W or N x H x W x C with C = 1 or 3"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels last
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(path, name, f"has shape {x.shape}", fix)
    if x.shape[0] == 0:
        raise InputError(
            path, name, "holds 0 images: no images to read", "save the images of the split in it"
        )
    if x.shape[2] != x.shape[3] or x.shape[2] < _MIN_SIZE:
        raise InputError(
            path,
            name,
            f"images are {x.shape[2]}x{x.shape[3]}",
            f"crop or resize them to a square of at least {_MIN_SIZE} pixels",
        )
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(path, name, f"has dtype {x.dtype}", "save uint8 or floats in [0, 1]")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise InputError(
            path,
            name,
            "holds values outside [0, 1] (or not finite)",
            "scale the images to [0, 1], or save them as uint8",
        )
    return x


def _npz_labels(path: Path, name: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise InputError(
            path, name, f"has shape {y.shape} for {n} images", "save one integer label per image"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(path, name, f"has dtype {y.dtype}", "save integer labels 0..K-1")
    if len(y) and y.min() < 0:
        raise InputError(
            path, name, f"has a negative label ({int(y.min())})", "number the classes 0..K-1"
        )
    return y.astype(np.int64)


_LOADERS: dict[str, Callable[[_Options, str | Path | None], DataSet]] = {
    "cifar10": _load_cifar10,
    "digits": _load_digits,
    "fashion-mnist": _idx_loader("fashion-mnist", "class", ("FashionMNIST/raw", "fashion-mnist")),
    "mnist": _idx_loader("mnist", "digit", ("MNIST/raw", "mnist")),
    "npz": _load_npz,
    "shapes": _load_shapes,
    "shapes3d": _load_shapes3d,
}
