"""The data sets read from files: scikit-learn's digits, MNIST-format idx files, CIFAR-10
binary batches and the user's own ``.npz``."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from dse.errors import InputError
from dse.nets.data.splits import (
    MIN_N,
    MIN_SIZE,
    STREAM_SPLIT,
    DataSet,
    Options,
    build,
    common_key,
    prepare,
    random_split,
    split_counts,
    stream_rng,
    take,
)

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


def digits(opts: Options, root: str | Path | None) -> DataSet:
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
    return random_split("digits", images, labels, opts, classes, "digit")


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


def official_split(
    name: str,
    train_x: np.ndarray,
    train_y: Mapping[str, np.ndarray],
    test_x: np.ndarray,
    test_y: Mapping[str, np.ndarray],
    opts: Options,
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
    if total < MIN_N:
        raise InputError(
            name,
            "n",
            f"the training files hold only {available} samples, fewer than {MIN_N}",
            "use complete training files",
        )
    n_train, n_val = split_counts(name, total, (opts.val_fraction,))
    perm = stream_rng(opts.seed, STREAM_SPLIT).permutation(available)
    val, train = perm[:n_val], perm[n_val:total]
    assert len(train) == n_train
    parts = [
        (train_x[train], take(train_y, train)),
        (train_x[val], take(train_y, val)),
        (test_x, dict(test_y)),
    ]
    splits = [
        prepare(x.astype(np.float32) / scale, opts, train_x.shape[1], k)
        for k, (x, _) in enumerate(parts)
    ]
    key = common_key(opts, total=total, test_fraction="official")
    key["sha256"] = digest
    return build(name, splits, [y for _, y in parts], classes, task, key, opts)


def idx(
    name: str, task: str, subdirs: tuple[str, ...]
) -> Callable[[Options, str | Path | None], DataSet]:
    """A loader for an MNIST-format set (four idx files, plain or gzipped), 10 classes."""

    def load(opts: Options, root: str | Path | None) -> DataSet:
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
        return official_split(
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


def cifar10(opts: Options, root: str | Path | None) -> DataSet:
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
    return official_split(
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


_NPZ_FIX = "save it with numpy.savez(FILE, x=images, y=labels)"


def npz(opts: Options, root: str | Path | None) -> DataSet:
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
    if len(x) < MIN_N:
        raise InputError(
            path, "x", f"holds {len(x)} images, fewer than {MIN_N}", "give more images"
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
        return random_split("npz", x, y, opts, classes, task, sha256=digest)
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
    return official_split("npz", x, y, x_test, y_test, opts, digest, classes, task, scale=1.0)


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
    if x.shape[2] != x.shape[3] or x.shape[2] < MIN_SIZE:
        raise InputError(
            path,
            name,
            f"images are {x.shape[2]}x{x.shape[3]}",
            f"crop or resize them to a square of at least {MIN_SIZE} pixels",
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
