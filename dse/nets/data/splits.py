"""What every data set loader shares: the data classes, the validated options, the
deterministic splits, preparing and standardising images, and the cache key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dse.errors import InputError

#: Bump when a loader's output changes for the same arguments, so cached training misses.
FORMAT_VERSION = 1
MIN_SIZE = 4
"""The smallest image side, pixels, a set may be resized to or read at."""
MIN_N = 10
"""The fewest samples a set may be drawn from."""


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
    (single-task training uses it). ``input_shape`` is (C, H, W). ``mean`` and ``std``
    are the normalisation the images were given (see :func:`normalise`), which a deployed
    edge device applies to its own pixels the same way. ``key`` is a stable,
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
    #: the normalisation of the images, per channel: ``(pixel - mean) / std`` with pixels
    #: in [0, 1] (float32 values); empty for a set built without one
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    #: whether ``x`` holds the normalised images (True) or the [0, 1] pixels they come from
    normalised: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", dict(self.classes))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
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
class Options:
    """Validated options, shared by every loader."""

    seed: int
    val_fraction: float
    test_fraction: float
    size: int | None
    n: int | None
    noise: float
    channels: int | None
    #: the normalisation stated by the user, per channel (one value: every channel); None:
    #: the train split's own mean and std
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    #: False: keep the [0, 1] pixels (what a deployed device reads), recording the
    #: normalisation without applying it
    normalise: bool = True


STREAM_SPLIT, STREAM_SUBSET, STREAM_NOISE, STREAM_SHAPES, STREAM_SHAPES3D = 1, 2, 3, 4, 5


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """A private generator for one purpose (``stream``), so purposes never share draws."""
    return np.random.default_rng([seed, stream])


def split_counts(name: str, total: int, fractions: tuple[float, ...]) -> list[int]:
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


def three_way(name: str, total: int, opts: Options) -> tuple[np.ndarray, ...]:
    """Random train/val/test index arrays over ``total`` samples (no official test split).

    The test indices depend only on seed and test_fraction, so changing val_fraction never
    moves a sample into or out of the test split.
    """
    n_train, n_test, n_val = split_counts(name, total, (opts.test_fraction, opts.val_fraction))
    perm = stream_rng(opts.seed, STREAM_SPLIT).permutation(total)
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    assert len(train) == n_train
    return train, val, test


def salt_and_pepper(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
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


def prepare(x: np.ndarray, opts: Options, native_channels: int, stream_offset: int) -> torch.Tensor:
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
        rng = stream_rng(opts.seed, STREAM_NOISE * 16 + stream_offset)
        salt_and_pepper(t.numpy(), opts.noise, rng)
    return t


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``x`` (N x C x H x W float32 pixels in [0, 1]),
    in place, with float32 ``mean`` and ``std``: the one normalisation training, scoring
    and a deployed bundle apply, so the same pixels give bit for bit the same inputs."""
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def train_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the train split's pixels (float32 values; a constant
    channel gets std 1: it is centred only)."""
    var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
    std = var.sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def stated_stats(
    name: str, opts: Options, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The user's ``mean`` and ``std`` for ``channels`` channels (one value repeated), or
    None when the spec states none; a count that fits neither is the one-line error."""
    if opts.mean is None or opts.std is None:
        return None
    out = []
    for field, values in (("mean", opts.mean), ("std", opts.std)):
        if len(values) not in (1, channels):
            raise InputError(
                name,
                field,
                f"{len(values)} values for images of {channels} channel(s)",
                f"give one value per channel ({channels}), or one for every channel",
            )
        out.append(tuple(float(v) for v in values) * (channels if len(values) == 1 else 1))
    return out[0], out[1]


def take(labels: Mapping[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    """Every task's labels at ``index``."""
    return {t: v[index] for t, v in labels.items()}


def labels_tensor(values: np.ndarray) -> torch.Tensor:
    """Labels as the int64 tensor a :class:`Split` holds."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def make_key(name: str, fields: Mapping[str, object]) -> str:
    """``name(v1,field=value,...)`` in a fixed field order; floats by repr of float."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return repr(float(v))
        return str(v)

    inner = ",".join(f"{k}={fmt(v)}" for k, v in fields.items())
    return f"{name}(v{FORMAT_VERSION},{inner})"


def build(
    name: str,
    splits: list[torch.Tensor],
    labels: list[Mapping[str, np.ndarray]],
    classes: Mapping[str, int],
    task: str,
    key_fields: dict[str, object],
    opts: Options,
) -> DataSet:
    """Normalise (the user's ``mean`` and ``std`` if ``opts`` states them, else the train
    split's own), wrap in :class:`Split` s and compute the key.

    With ``opts.normalise`` False the splits keep their [0, 1] pixels and the set records
    the normalisation it would have applied (the key says ``pixels``).
    """
    channels = int(splits[0].shape[1])
    stated = stated_stats(name, opts, channels)
    mean, std = stated if stated is not None else train_stats(splits[0])
    apply = opts.normalise
    xs = [normalise(x, mean, std) for x in splits] if apply else splits
    parts = [
        Split(x, {t: labels_tensor(v) for t, v in y.items()})
        for x, y in zip(xs, labels, strict=True)
    ]
    key_fields["shape"] = "x".join(str(d) for d in xs[0].shape[1:])
    key_fields["split"] = "/".join(str(len(p)) for p in parts)
    if stated is not None:  # a set normalised by its train split keeps the key it had
        key_fields["mean"] = "/".join(repr(v) for v in mean)
        key_fields["std"] = "/".join(repr(v) for v in std)
    if not apply:
        key_fields["pixels"] = True
    return DataSet(
        name=name,
        train=parts[0],
        val=parts[1],
        test=parts[2],
        classes=classes,
        task=task,
        input_shape=tuple(xs[0].shape[1:]),
        key=make_key(name, key_fields),
        mean=mean,
        std=std,
        normalised=apply,
    )


def random_split(
    name: str,
    images: np.ndarray,
    labels: Mapping[str, np.ndarray],
    opts: Options,
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
        keep = np.sort(stream_rng(opts.seed, STREAM_SUBSET).permutation(total)[: opts.n])
        images, total = images[keep], opts.n
        labels = take(labels, keep)
    index = three_way(name, total, opts)
    splits = [prepare(images[i], opts, images.shape[1], k) for k, i in enumerate(index)]
    key = {**common_key(opts, total=total, test_fraction=opts.test_fraction), **key_fields}
    return build(name, splits, [take(labels, i) for i in index], classes, task, key, opts)


def common_key(opts: Options, *, total: int, test_fraction: float | str) -> dict[str, object]:
    """The option fields every key carries, with defaults resolved to what was used.

    Size and channels enter as the output shape (added by :func:`build`), so asking for the
    native size or channel count gives the same key as leaving them unset.
    """
    return {
        "seed": opts.seed,
        "n": total,
        "val_fraction": opts.val_fraction,
        "test_fraction": test_fraction,
        "noise": opts.noise,
    }
