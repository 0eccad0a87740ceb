"""The user's own images as they lie: one subfolder per class, read with Pillow.

``ROOT/CLASS/*.png`` (or .jpg, .bmp, ...): the class folders' names, sorted, are the labels
0..K-1 of the task ``class``. An optional ``ROOT/test/CLASS/...`` is the official test split
(its classes a subset of the training ones; val is then carved out of the rest); without it
train, val and test are drawn from every image by the split seed. Files of other suffixes
and hidden files are skipped; a file with an image suffix that Pillow cannot read, a class
folder with no image, a class of the test split the training folders lack, are each the
one-line error naming the file and the fix.

Every image is resized (bilinear, Pillow) to ``size`` x ``size``; without ``size`` they
must all share one square size. A set whose images are all grey has 1 channel, otherwise
every image is read as RGB (a grey one repeated to 3 channels). The key holds a sha256 of
every file's path and bytes.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import InputError
from dse.nets.data.files import official_split
from dse.nets.data.splits import MIN_N, MIN_SIZE, DataSet, Options, random_split

SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
"""The image files read (by suffix, any case); other files in a class folder are skipped."""
TEST = "test"
"""The folder beside the class folders that holds the official test split."""
TASK = "class"
_LAYOUT_FIX = "put one folder of images per class in the root (and optionally test/CLASS/...)"


def folder(opts: Options, root: str | Path | None) -> DataSet:
    """The image folder ``root`` as a data set (see the module docstring)."""
    base = _root(root)
    classes = _class_folders(base, skip=(TEST,))
    names = [c.name for c in classes]
    if len(classes) < 2:
        raise InputError(
            base,
            "classes",
            f"holds {len(classes)} class folder(s) ({', '.join(names) or 'none'})",
            _LAYOUT_FIX + ", at least two classes",
        )
    train_files = _files(base, classes)
    test_dir = base / TEST
    test_files: list[tuple[Path, int]] = []
    if test_dir.is_dir():
        test_classes = _class_folders(test_dir)
        unknown = [c.name for c in test_classes if c.name not in names]
        if unknown:
            raise InputError(
                test_dir / unknown[0],
                "class",
                f"is not one of the training classes ({', '.join(names)})",
                "name the test folders like the training ones",
            )
        test_files = [(p, names.index(p.parent.name)) for p, _ in _files(base, test_classes)]
        if not test_files:
            raise InputError(
                test_dir, "images", "holds no image", "put test images in it, or remove it"
            )
    sha = hashlib.sha256()
    images = _read(base, [p for p, _ in train_files + test_files], opts.size, sha)
    x, xt = images[: len(train_files)], images[len(train_files) :]
    y = np.array([label for _, label in train_files], dtype=np.int64)
    if len(x) < MIN_N:
        raise InputError(base, "images", f"holds {len(x)} images, fewer than {MIN_N}", "add images")
    classes_of = {TASK: len(names)}
    sha.update("\0".join(names).encode())
    if not test_files:
        pixels = x.astype(np.float32) / 255.0
        return random_split(
            "folder", pixels, {TASK: y}, opts, classes_of, TASK, sha256=sha.hexdigest()
        )
    yt = np.array([label for _, label in test_files], dtype=np.int64)
    return official_split(
        "folder", x, {TASK: y}, xt, {TASK: yt}, opts, sha.hexdigest(), classes_of, TASK
    )


def _root(root: str | Path | None) -> Path:
    if root is None:
        raise InputError(
            "folder",
            "root",
            "folder reads a folder of images and none was given",
            'pass --data-root DIR (or root = "DIR" in [data]), DIR holding one folder per class',
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(path, "root", "is not a folder", _LAYOUT_FIX)
    return path


def _class_folders(where: Path, *, skip: tuple[str, ...] = ()) -> list[Path]:
    """The class folders in ``where``, sorted by name (hidden ones and ``skip`` left out)."""
    return sorted(
        (
            p
            for p in where.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name not in skip
        ),
        key=lambda p: p.name,
    )


def _files(base: Path, classes: list[Path]) -> list[tuple[Path, int]]:
    """Every image file of every class folder, class by class, each sorted by name."""
    out = []
    for label, d in enumerate(classes):
        files = sorted(
            (
                p
                for p in d.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
            ),
            key=lambda p: p.name,
        )
        if not files:
            inside = sorted(p.name for p in d.iterdir() if p.is_dir())
            held = f" (it holds folders: {', '.join(inside[:5])})" if inside else ""
            raise InputError(
                d,
                "images",
                f"class folder holds no image file{held}",
                f"put its images ({', '.join(sorted(SUFFIXES))}) in it, or remove the folder; "
                + _LAYOUT_FIX,
            )
        out += [(p, label) for p in files]
    return out


GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"})
"""Pillow modes read as one grey channel; any other (RGB, palette, CMYK, ...) as RGB."""


def _read(base: Path, paths: list[Path], size: int | None, sha: Any) -> np.ndarray:
    """The images as uint8 N x C x S x S: 1 channel when every one is grey, else RGB (grey
    ones repeated); resized to ``size`` (None: their common square size, which they must
    share). Each file's path and bytes join ``sha``."""
    from PIL import Image, UnidentifiedImageError

    arrays: list[np.ndarray] = []
    side = size
    for path in paths:
        data = path.read_bytes()
        sha.update(f"{path.relative_to(base).as_posix()}\0{len(data)}\0".encode())
        sha.update(data)
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                path,
                "image",
                f"cannot be read as an image ({first[:160]})",
                "replace the file with a readable image, or remove it",
            ) from None
        if side is None:
            side = _side(base, path, img.size)
        elif size is None and img.size != (side, side):
            raise InputError(
                base,
                "size",
                f"images differ in size ({side}x{side} in {paths[0].relative_to(base)}, "
                f"{img.size[0]}x{img.size[1]} in {path.relative_to(base)})",
                _SIZE_FIX,
            )
        img = img.convert("L" if img.mode in GREY_MODES else "RGB")
        if img.size != (side, side):
            img = img.resize((side, side), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    channels = max(a.shape[0] for a in arrays)
    return np.stack([np.repeat(a, channels // a.shape[0], axis=0) for a in arrays])


_SIZE_FIX = "give [data] size = N (dse train --size N): every image is resized to N x N"


def _side(base: Path, path: Path, size: tuple[int, int]) -> int:
    """The first image's side, when it is square and large enough: the size every image
    must have when no ``size`` is given."""
    w, h = size
    if w != h:
        raise InputError(
            base, "size", f"images are not square ({w}x{h} in {path.relative_to(base)})", _SIZE_FIX
        )
    if w < MIN_SIZE:
        raise InputError(
            base, "size", f"images are {w}x{h}, smaller than {MIN_SIZE}x{MIN_SIZE}", _SIZE_FIX
        )
    return int(w)
