"""Nothing dse loads can run code: every torch.load asks for weights only, and an exported
program whose archive holds a pickle that would run code is refused with the one line."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import dse
from dse.deploy.bundle import load_bundle
from dse.errors import InputError


class Evil:
    """Unpickling it writes a marker file: what a hostile archive would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "code ran"))


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    root = Path(dse.__file__).resolve().parent
    calls = 0
    for path in root.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            calls += 1
            line_end = text.index(")", match.end())
            assert "weights_only=True" in text[match.start() : line_end + 40], (
                f"{path}: a torch.load without weights_only=True"
            )
        assert "pickle.load" not in text, f"{path} unpickles"
    assert calls >= 1


def _program(path: Path) -> None:
    ep = torch.export.export(nn.Linear(2, 2), (torch.zeros(1, 2),))
    torch.export.save(ep, str(path))


def _poison(path: Path, evil: Evil) -> None:
    """Rewrite the archive so its first weight is a pickle (``use_pickle``) of ``evil``."""
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    config_name = next(n for n in members if n.endswith("model_weights_config.json"))
    config = json.loads(members[config_name])
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    buf = io.BytesIO()
    torch.save({"x": evil}, buf)
    weight = config_name.rsplit("/", 1)[0] + "/" + entry["path_name"]
    members[weight] = buf.getvalue()
    members[config_name] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)


def _bundle(folder: Path) -> Path:
    folder.mkdir()
    edge = folder / "edge.pt2"
    _program(edge)
    return edge


def _manifest(folder: Path) -> None:
    digest = hashlib.sha256((folder / "edge.pt2").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "format": 1,
                "tasks": ["t"],
                "classes": [2],
                "exits": [],
                "cut": 1,
                "crossing": [],
                "codec": None,
                "files": {"edge.pt2": digest},
                "edge_only": True,
                "input_shape": [1, 2],
            }
        )
    )


def test_a_clean_program_still_loads(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    _bundle(folder)
    _manifest(folder)
    assert load_bundle(folder).manifest["edge_only"] is True


def test_a_program_holding_a_code_running_pickle_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    edge = _bundle(folder)
    marker = tmp_path / "marker"
    _poison(edge, Evil(marker))
    _manifest(folder)  # the hostile bundle comes with a manifest that matches it
    with pytest.raises(InputError) as info:
        load_bundle(folder)
    assert not marker.exists(), "loading the bundle ran the pickle's code"
    assert info.value.field == "program" and "\n" not in str(info.value)


def test_a_program_holding_an_opaque_object_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    edge = _bundle(folder)
    with zipfile.ZipFile(edge, "a") as z:
        z.writestr("edge/data/constants/opaque_obj_0", b"\x80\x04N.")
    _manifest(folder)
    with pytest.raises(InputError, match="pickled object"):
        load_bundle(folder)
