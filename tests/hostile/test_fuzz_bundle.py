"""Any export manifest gives a Bundle or the one-line InputError, never another exception,
and names no file outside its bundle."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from helpers.fuzz import FUZZ, mutated
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dse.deploy.bundle import Bundle, load_bundle
from dse.errors import InputError

KEYS = [
    "format",
    "tasks",
    "classes",
    "exits",
    "cut",
    "crossing",
    "codec",
    "files",
    "edge_only",
    "input_shape",
    "sparse",
    "file",
    "layers",
    "module",
    "weight_shape",
    "bias",
    "kind",
    "groups",
    "shape",
    "edge.pt2",
    "server.pt2",
    "weights/sparse.dsew",
]


def _program(module: nn.Module, shape: tuple[int, ...]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.pt2"
        torch.export.save(torch.export.export(module, (torch.zeros(shape),)), str(path))
        return path.read_bytes()


PROGRAMS = {
    "edge.pt2": _program(nn.Linear(2, 2), (1, 2)),
    "server.pt2": _program(nn.Linear(2, 3), (1, 2)),
    "weights/sparse.dsew": b"DSEW not really a packed state",
}
BASE = {
    "format": 1,
    "tasks": ["class"],
    "classes": [3],
    "exits": [],
    "cut": 1,
    "crossing": [{"shape": [1, 2]}],
    "codec": None,
    "edge_only": False,
    "input_shape": [1, 2],
    "files": {n: hashlib.sha256(b).hexdigest() for n, b in PROGRAMS.items()},
    "sparse": {
        "file": "weights/sparse.dsew",
        "form": "dsew",
        "layers": [
            {"module": "l", "kind": "linear", "weight_shape": [2, 2], "groups": 1, "bias": True}
        ],
    },
}
BASES = [
    BASE,
    {**BASE, "sparse": None},
    {**BASE, "sparse": None, "edge_only": True, "codec": "int8+zstd"},
]


def _load(manifest: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        (folder / "weights").mkdir(parents=True)
        for name, data in PROGRAMS.items():
            (folder / name).write_bytes(data)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        try:
            bundle = load_bundle(folder)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
    assert isinstance(bundle, Bundle)


def test_the_bases_are_read() -> None:
    """The base manifests reach as far as their files allow: the one without sparse
    weights loads, the sparse one stops at its (fake) packed file."""
    _load(BASES[1])
    with pytest.raises(InputError, match="packed state"):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "weights").mkdir()
            for name, data in PROGRAMS.items():
                (folder / name).write_bytes(data)
            (folder / "manifest.json").write_text(json.dumps(BASE))
            load_bundle(folder)


@FUZZ
@given(st.data())
def test_a_manifest_with_fields_changed(data: st.DataObject) -> None:
    _load(data.draw(mutated(data.draw(st.sampled_from(BASES)), KEYS)))


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_any_json(value: object) -> None:
    _load(value)  # type: ignore[arg-type]


CASES = {
    "a file outside the bundle": ("files", {"edge.pt2": "0", "../../outside": "0"}),
    "an absolute file": ("files", {"edge.pt2": "0", "/etc/hostname": "0"}),
    "tasks as a number": ("tasks", 3),
    "classes of another length": ("classes", [3, 3]),
    "a crossing without a shape": ("crossing", [{}]),
    "a sparse layer at a clashing path": (
        "sparse",
        {
            "file": "weights/sparse.dsew",
            "layers": [
                {"module": "training", "kind": "linear", "weight_shape": [2, 2], "bias": True}
            ],
        },
    ),
    "a sparse layer of 2**40 weights": (
        "sparse",
        {
            "file": "weights/sparse.dsew",
            "layers": [
                {"module": "l", "kind": "linear", "weight_shape": [2**20, 2**20], "bias": True}
            ],
        },
    ),
    "cut as a float": ("cut", math.pi),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_manifest_entry_of_the_wrong_kind_is_one_line(case: str, tmp_path: Path) -> None:
    key, value = CASES[case]
    folder = tmp_path / "bundle"
    (folder / "weights").mkdir(parents=True)
    for name, data in PROGRAMS.items():
        (folder / name).write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps({**BASE, key: value}))
    with pytest.raises(InputError) as info:
        load_bundle(folder)
    assert "\n" not in str(info.value)
    assert info.value.field.split(".")[0] == key
