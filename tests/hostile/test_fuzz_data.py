"""Any .npz file and any set of idx files give a DataSet or the one-line InputError,
never another exception."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers.fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dse.cli import main
from dse.errors import InputError
from dse.nets.data import DataSet, load_data

NAMES = ["x", "y", "y_a", "y_b", "x_test", "y_test", "y_a_test", "y_", "z", "y_a_b"]
DTYPES = [
    np.uint8,
    np.float32,
    np.float64,
    np.float16,
    np.int64,
    np.int8,
    np.uint64,
    np.bool_,
    np.complex64,
]

options = st.fixed_dictionaries(
    {},
    optional={
        "seed": st.integers(-3, 2**40),
        "val_fraction": st.sampled_from([0.0, 0.15, 0.5, 0.99, 1.0, -0.1, float("nan")]),
        "test_fraction": st.sampled_from([0.0, 0.15, 0.9, 1.5]),
        "size": st.sampled_from([None, 0, 1, 4, 8, 16, 300, -1]),
        "n": st.sampled_from([None, 0, 1, 10, 12, 40, 10**9, -5]),
        "channels": st.sampled_from([None, 0, 1, 2, 3]),
        "noise": st.sampled_from([0.0, 0.1, 1.0, 2.0, -0.5]),
    },
)


def _load(name: str, root: Path, opts: dict) -> None:
    try:
        ds = load_data(name, root=root, **opts)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(ds, DataSet)


@st.composite
def image_arrays(draw: st.DrawFn) -> np.ndarray:
    """Mostly N x S x S (or with a channel axis), any dtype and values."""
    n = draw(st.sampled_from([0, 1, 9, 10, 12, 30]))
    s = draw(st.sampled_from([0, 1, 3, 4, 8]))
    shape = draw(
        st.sampled_from(
            [
                (n, s, s),
                (n, 1, s, s),
                (n, 3, s, s),
                (n, s, s, 3),
                (n, 2, s, s),
                (n, s, s + 1),
                (n,),
                (),
                (n, s, s, 3, 1),
            ]
        )
    )
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(st.sampled_from(["random", "zeros", "ones", "nan", "big"]))
    if fill == "random":
        return draw(hnp.arrays(dtype, shape))
    value = {"zeros": 0, "ones": 1, "nan": np.nan, "big": 1e30}[fill]
    with np.errstate(all="ignore"):
        return np.full(shape, value).astype(dtype)


@st.composite
def label_arrays(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.sampled_from([0, 1, 9, 10, 12, 30]))
    dtype = draw(st.sampled_from([np.int64, np.uint8, np.int8, np.float32, np.bool_]))
    shape = draw(st.sampled_from([(n,), (n, 1), ()]))
    kind = draw(st.sampled_from(["random", "binary", "one"]))
    if kind == "random":
        return draw(hnp.arrays(dtype, shape))
    with np.errstate(all="ignore"):
        return (
            np.arange(int(np.prod(shape))).reshape(shape) % 2
            if kind == "binary"
            else np.zeros(shape)
        ).astype(dtype)


@FUZZ
@given(
    st.dictionaries(st.sampled_from(NAMES), st.one_of(image_arrays(), label_arrays()), max_size=5),
    options,
)
def test_any_npz(arrays: dict[str, np.ndarray], opts: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **arrays)
        _load("npz", path, opts)


@st.composite
def near_valid_npz(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """A valid set (one or two tasks, with or without a test split) with at most one array
    replaced by any other."""
    n, s = draw(st.sampled_from([10, 12, 30])), draw(st.sampled_from([4, 8]))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    arrays = {"x": rng.integers(0, 256, (n, s, s)).astype(np.uint8), "y": np.arange(n) % 2}
    if draw(st.booleans()):
        arrays["y_a"] = np.arange(n) % 3
    if draw(st.booleans()):
        m = draw(st.sampled_from([1, 5]))
        arrays["x_test"] = rng.random((m, s, s)).astype(np.float32)
        arrays["y_test"] = np.arange(m) % 2
        if "y_a" in arrays:
            arrays["y_a_test"] = np.arange(m) % 3
    if draw(st.booleans()):
        name = draw(st.sampled_from(NAMES))
        arrays[name] = draw(image_arrays() if name.startswith("x") else label_arrays())
    return arrays


@FUZZ
@given(near_valid_npz(), st.one_of(st.just({}), options))
def test_a_valid_npz_with_an_array_changed(arrays: dict[str, np.ndarray], opts: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **arrays)
        _load("npz", path, opts)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_npz(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        path.write_bytes(raw)
        _load("npz", path, {})


@st.composite
def idx_file(draw: st.DrawFn, images: bool) -> bytes:
    magic = draw(
        st.sampled_from([2051, 2049, 0, 2**32 - 1])
        if draw(st.booleans())
        else st.just(2051 if images else 2049)
    )
    n = draw(st.sampled_from([0, 1, 10, 12, 2**31]))
    dims = [n, *(draw(st.sampled_from([0, 1, 4, 8])) for _ in range(2))] if images else [n]
    header = struct.pack(f">{1 + len(dims)}I", magic, *dims)
    size = int(np.prod(dims)) if n < 2**20 else 16
    body = draw(st.sampled_from(["exact", "short", "long", "none"]))
    length = {"exact": size, "short": max(size - 1, 0), "long": size + 3, "none": 0}[body]
    labels = draw(st.sampled_from([0, 1, 9, 10, 255]))
    data = header + bytes([labels if not images else (i * 37) % 256 for i in range(length)])
    if not images and body == "exact" and labels == 1:
        data = header + bytes(i % 10 for i in range(length))
    return data[: draw(st.sampled_from([len(data), len(data), 3, 0]))]


def _idx(magic: int, dims: list[int], body: bytes) -> bytes:
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + body


@st.composite
def near_valid_idx(draw: st.DrawFn) -> tuple[bytes, ...]:
    """Four valid idx files (12 training and 3 test images of 8 x 8) with at most one
    replaced by any other."""
    files = [
        _idx(2051, [12, 8, 8], bytes(i % 256 for i in range(12 * 64))),
        _idx(2049, [12], bytes(i % 10 for i in range(12))),
        _idx(2051, [3, 8, 8], bytes(3 * 64)),
        _idx(2049, [3], bytes([1, 2, 3])),
    ]
    if draw(st.booleans()):
        k = draw(st.integers(0, 3))
        files[k] = draw(idx_file(k % 2 == 0))
    return tuple(files)


@FUZZ
@given(
    st.one_of(
        near_valid_idx(),
        st.tuples(idx_file(True), idx_file(False), idx_file(True), idx_file(False)),
    ),
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.one_of(st.just({}), options),
)
def test_any_idx_files(files: tuple[bytes, ...], packed: list[bool], opts: dict) -> None:
    names = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data, gz in zip(names, files, packed, strict=True):
            if gz:
                (root / f"{name}.gz").write_bytes(
                    gzip.compress(data) if data[:1] != b"\0" else data
                )
            else:
                (root / name).write_bytes(data)
        _load("mnist", root, opts)


def test_through_the_cli_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    assert (
        main(
            [
                "train",
                "mlp",
                "--data",
                "npz",
                "--data-root",
                str(path),
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0 images" in err[0]
