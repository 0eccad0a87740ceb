"""The procedural data sets, rendered from a seed: ``shapes`` and ``shapes3d``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from dse.nets.data.splits import (
    STREAM_NOISE,
    STREAM_SHAPES,
    STREAM_SHAPES3D,
    DataSet,
    Options,
    build,
    common_key,
    salt_and_pepper,
    stream_rng,
    take,
    three_way,
)

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
_SHAPES_DEFAULT_N = 6000
_SHAPES_DEFAULT_SIZE = 32


class Renderer(Protocol):
    """What every procedural set's renderer takes and gives: ``n`` images in [0, 1]
    (N x C x size x size float32) and their labels per task, from ``seed`` alone."""

    def __call__(
        self, n: int, *, size: int, channels: int, noise: float, seed: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


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
    rng = stream_rng(seed, STREAM_SHAPES)
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
    salt_and_pepper(images, noise, stream_rng(seed, STREAM_NOISE * 16))
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
    render: Renderer,
    classes: dict[str, int],
    default_task: str,
    opts: Options,
) -> DataSet:
    """A generated set: ``render(n, size=, channels=, noise=, seed=)`` -> images, labels,
    split three ways (sizes checked before anything is rendered)."""
    total = opts.n if opts.n is not None else _SHAPES_DEFAULT_N
    size = opts.size if opts.size is not None else _SHAPES_DEFAULT_SIZE
    channels = opts.channels if opts.channels is not None else 3
    index = three_way(name, total, opts)
    images, labels = render(total, size=size, channels=channels, noise=opts.noise, seed=opts.seed)
    splits = [torch.from_numpy(np.ascontiguousarray(images[i])) for i in index]
    key = common_key(opts, total=total, test_fraction=opts.test_fraction)
    return build(
        name,
        splits,
        [take(labels, i) for i in index],
        classes,
        default_task,
        key,
        opts,
    )


def shapes(opts: Options, root: str | Path | None) -> DataSet:
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
    rng = stream_rng(seed, STREAM_SHAPES3D)
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
    salt_and_pepper(images, noise, stream_rng(seed, STREAM_NOISE * 16 + 8))
    return images, labels


def shapes3d(opts: Options, root: str | Path | None) -> DataSet:
    """The procedural 3D-Shapes-like set: six tasks on one scene (see render_shapes3d)."""
    del root
    counts = (len(SHAPE_NAMES), len(SCALES), len(HUES), len(HUES), len(HUES), len(ORIENTATIONS))
    classes = dict(zip(SHAPES3D_TASKS, counts, strict=True))
    return _load_procedural("shapes3d", render_shapes3d, classes, "object_shape", opts)
