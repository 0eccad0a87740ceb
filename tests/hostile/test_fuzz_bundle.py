"""Any export manifest gives a Bundle or the one-line InputError, never another exception,
and names no file outside its bundle."""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import shutil
import tempfile
import zipfile
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
    "programs",
    "edge",
    "server",
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
    # format 2: the programs each side runs, in order
    {
        **BASE,
        "sparse": None,
        "format": 2,
        "programs": {"edge": ["edge.pt2"], "server": ["server.pt2"]},
    },
    {**BASE, "format": 2, "edge_only": True, "programs": {"edge": ["edge.pt2"], "server": []}},
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


@pytest.mark.parametrize(
    "programs",
    [
        None,  # format 2 without them
        {"edge": ["edge.pt2"]},
        {"edge": [], "server": ["server.pt2"]},
        {"edge": ["../edge.pt2"], "server": ["server.pt2"]},
        {"edge": ["edge.pt2", "edge.2.pt2"], "server": ["server.pt2"]},  # a stage missing
        {"edge": ["edge.pt2"], "server": []},  # the cut is not edge-only
        {"edge": "edge.pt2", "server": ["server.pt2"]},
    ],
)
def test_a_format_2_manifest_names_its_programs_in_order(programs: object, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    (folder / "weights").mkdir(parents=True)
    for name, data in PROGRAMS.items():
        (folder / name).write_bytes(data)
    manifest = {**BASE, "sparse": None, "format": 2, "programs": programs}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError) as info:
        load_bundle(folder)
    assert info.value.field == "programs" and "\n" not in str(info.value)


def test_a_program_the_manifest_runs_but_does_not_list_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    (folder / "weights").mkdir(parents=True)
    for name, data in PROGRAMS.items():
        (folder / name).write_bytes(data)
    (folder / "edge.1.pt2").write_bytes(PROGRAMS["edge.pt2"])  # there, but not in "files"
    programs = {"edge": ["edge.pt2", "edge.1.pt2"], "server": ["server.pt2"]}
    manifest = {**BASE, "sparse": None, "format": 2, "programs": programs}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="does not list the program edge.1.pt2"):
        load_bundle(folder)


# ----------------------------------------------------------------------------- hostile folders


def _write(folder: Path, manifest: dict | str, programs: dict[str, bytes] = PROGRAMS) -> Path:
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    for name, data in programs.items():
        (folder / name).write_bytes(data)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "manifest.json").write_text(text)
    return folder


PLAIN = {**BASE, "sparse": None}


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than the JSON decoder's recursion
        json.dumps({**PLAIN, "exits": json.loads("[" * 500 + "]" * 500)}),  # inside a manifest
        json.dumps({**PLAIN, "predicted": json.loads('{"a":' * 200 + "1" + "}" * 200)}),
    ],
    ids=["deep-array", "deep-exits", "deep-table"],
)
def test_a_deeply_nested_manifest_is_one_line(text: str, tmp_path: Path) -> None:
    folder = _write(tmp_path / "bundle", text)
    with pytest.raises(InputError) as info:
        load_bundle(folder)
    assert info.value.field == "manifest" and "nested deeper" in str(info.value)
    assert "\n" not in str(info.value)


def test_the_cli_reads_a_deep_manifest_as_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from dse.cli import main

    folder = _write(tmp_path / "bundle", "[" * 100_000 + "]" * 100_000)
    assert main(["run-split", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest.json" in err and "Traceback" not in err


def _outside_file(tmp_path: Path, name: str) -> Path:
    """A copy of the bundle file ``name`` outside the bundle, with the same bytes."""
    (tmp_path / "elsewhere").mkdir(exist_ok=True)
    target = tmp_path / "elsewhere" / Path(name).name
    target.write_bytes(PROGRAMS[name])
    return target


@pytest.mark.parametrize("name", ["edge.pt2", "server.pt2"])
def test_a_program_linked_from_outside_the_bundle_is_refused(name: str, tmp_path: Path) -> None:
    folder = _write(tmp_path / "bundle", PLAIN)
    (folder / name).unlink()
    (folder / name).symlink_to(_outside_file(tmp_path, name))  # same bytes: the sha256 passes
    with pytest.raises(InputError, match="symbolic link out of the bundle") as info:
        load_bundle(folder)
    assert info.value.field == "files" and name in str(info.value)
    assert "\n" not in str(info.value)


def test_a_folder_linked_from_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "bundle", BASE)
    shutil.rmtree(folder / "weights")
    _outside_file(tmp_path, "weights/sparse.dsew")
    (folder / "weights").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link out of the bundle") as info:
        load_bundle(folder)
    assert "sparse.dsew" in str(info.value)


def test_a_manifest_linked_from_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "bundle", PLAIN)
    (tmp_path / "elsewhere").mkdir()
    (folder / "manifest.json").rename(tmp_path / "elsewhere" / "manifest.json")
    (folder / "manifest.json").symlink_to(tmp_path / "elsewhere" / "manifest.json")
    with pytest.raises(InputError, match="symbolic link out of the bundle") as info:
        load_bundle(folder)
    assert info.value.field == "manifest"


def test_a_link_that_stays_inside_the_bundle_is_read(tmp_path: Path) -> None:
    folder = _write(tmp_path / "bundle", PLAIN)
    (folder / "programs").mkdir()
    (folder / "edge.pt2").rename(folder / "programs" / "edge.pt2")
    (folder / "edge.pt2").symlink_to(Path("programs") / "edge.pt2")  # relative, inside
    assert isinstance(load_bundle(folder), Bundle)
    # and a bundle folder reached through a link is the bundle itself
    (tmp_path / "alias").symlink_to(folder, target_is_directory=True)
    assert isinstance(load_bundle(tmp_path / "alias"), Bundle)


def _with_constant(program: bytes, path_name: str, data: bytes) -> bytes:
    """``program`` with one more constant (``path_name`` in its constants table) holding
    ``data``, marked as a pickle."""
    src = zipfile.ZipFile(io.BytesIO(program))
    members = {n: src.read(n) for n in src.namelist()}
    table = next(n for n in members if n.endswith("model_constants_config.json"))
    config = json.loads(members[table])
    config["config"]["c"] = {
        "path_name": path_name,
        "use_pickle": True,
        "is_param": False,
        "tensor_meta": None,
    }
    members[table] = json.dumps(config).encode()
    members[table.rsplit("/", 1)[0] + "/" + path_name] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for n, d in members.items():
            dst.writestr(n, d)
    return out.getvalue()


class _Marker:
    """Unpickling it would create a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.path,))


def _pickled(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("path_name", "payload", "words"),
    [
        # a constant kind torch does not know: torch logs a traceback, then fails
        ("evil_0", lambda m: pickle.dumps(_Marker(m)), "Unsupported constant type"),
        # a pickled tensor constant the weights-only unpickler refuses
        ("tensor_evil", lambda m: _pickled({"x": _Marker(m)}), "weights-only"),
        # a constant that unpickles but is no tensor: the program cannot be built
        ("tensor_dict", lambda m: _pickled({"x": 1}), "cannot load it"),
    ],
    ids=["unknown-kind", "refused-pickle", "not-a-tensor"],
)
def test_a_program_torch_refuses_is_one_line_and_prints_nothing_else(
    path_name: str, payload: object, words: str, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    marker = tmp_path / "code-ran"
    edge = _with_constant(PROGRAMS["edge.pt2"], path_name, payload(marker))  # type: ignore[operator]
    programs = {**PROGRAMS, "edge.pt2": edge}
    manifest = {**PLAIN, "files": {n: hashlib.sha256(b).hexdigest() for n, b in programs.items()}}
    folder = _write(tmp_path / "bundle", manifest, programs)
    capfd.readouterr()
    with pytest.raises(InputError) as info:
        load_bundle(folder)
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "something was printed besides the error"
    message = str(info.value)
    assert words in message and info.value.field == "program"
    assert "\n" not in message and "\x1b" not in message and len(message) < 500
    assert not marker.exists()
