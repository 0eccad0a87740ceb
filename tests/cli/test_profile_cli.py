"""``dse profile``, ``dse devices`` and ``dse links`` end to end through ``dse.cli.main``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_cli_refused, edited
from helpers.nets import USER_MODEL

from dse.cli import main
from dse.costmodel.devices import PROFILES_DIR, list_devices, list_links

LAYER_KEYS = {
    "name",
    "kind",
    "output_shape",
    "output_bytes",
    "params",
    "flops",
    "macs",
    "edge_latency_s",
    "server_latency_s",
}
CUT_KEYS = {
    "index",
    "tensors",
    "bytes",
    "edge_s",
    "transfer_s",
    "server_s",
    "total_s",
    "edge_energy_j",
}
PI = PROFILES_DIR / "devices" / "raspberry-pi-4.toml"


def profile_json(tmp_path: Path, *args: str, name: str = "p.json") -> dict:
    out = tmp_path / name
    assert main(["profile", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_profile_json_has_the_promised_keys_and_consistent_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = profile_json(tmp_path, "mlp")
    stdout = capsys.readouterr().out
    assert "min-latency cut" in stdout and "wrote" in stdout
    # the table marks the min-latency row, also when it is an end (here: edge-only)
    best = data["best_cut"]
    row = next(
        line for line in stdout.splitlines() if line.split()[:1] == [str(best)] and "B" in line
    )
    assert "<- min latency" in row and ("edge-only" in row) == (best == len(data["cuts"]) - 1)
    assert {"model", "layers", "cuts", "totals", "best_cut"} <= set(data)
    assert data["model"] == "mlp" and data["input_shape"] == [1, 1, 8, 8]
    assert (data["edge"], data["server"], data["link"]) == ("raspberry-pi-4", "a100", "lte")
    layers, cuts = data["layers"], data["cuts"]
    for row in layers:
        assert LAYER_KEYS <= set(row)
    for row in cuts:
        assert CUT_KEYS <= set(row)

    # the MLP 64 -> 256 -> 128 -> 10, all backbone: one cut more than layers
    assert [r["kind"] for r in layers] == [
        "reshape",
        "linear",
        "activation",
        "linear",
        "activation",
        "linear",
    ]
    assert len(cuts) == len(layers) + 1
    assert [c["index"] for c in cuts] == list(range(len(cuts)))
    assert data["totals"] == {
        "params": 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10,
        "macs": 64 * 256 + 256 * 128 + 128 * 10,
        "flops": 2 * (64 * 256 + 256 * 128 + 128 * 10) + 256 + 128,
    }
    assert data["totals"]["params"] == sum(r["params"] for r in layers)
    assert data["totals"]["flops"] == sum(r["flops"] for r in layers)
    assert [r["output_shape"] for r in layers] == [
        [1, 64],
        [1, 256],
        [1, 256],
        [1, 128],
        [1, 128],
        [1, 10],
    ]

    total = np.array([c["total_s"] for c in cuts])
    parts = np.array([c["edge_s"] + c["transfer_s"] + c["server_s"] for c in cuts])
    np.testing.assert_allclose(total, parts, rtol=1e-12)
    assert data["best_cut"] == int(np.flatnonzero(total == total.min())[-1])
    # closed forms from the shipped profiles: Pi 5 W active; LTE 5.85 Mbit/s up,
    # 13 Mbit/s down, 21 ms RTT; the 64-float input and the 10-float result
    assert [c["bytes"] for c in cuts] == [256, 256, 1024, 1024, 512, 512, 0]
    assert cuts[0]["tensors"] == ["input"] and cuts[-1]["tensors"] == []
    assert cuts[0]["transfer_s"] == pytest.approx(8 * 256 / 5.85e6 + 0.021 + 8 * 40 / 13e6)
    assert cuts[-1]["transfer_s"] == 0.0 and cuts[0]["edge_s"] == 0.0
    edge = [r["edge_latency_s"] for r in layers]
    server = [r["server_latency_s"] for r in layers]
    # A cut between a linear layer and its fused ReLU (cuts 2 and 4) leaves the ReLU to
    # the A100 as a kernel of its own: 5 us overhead + max(FLOPs / (156 TFLOP/s x 0.1),
    # its input and output bytes / 2039 GB/s), instead of its fused arithmetic.
    alone = {
        2: 5e-6 + max(256 / 15.6e12, 2048 / 2.039e12),
        4: 5e-6 + max(128 / 15.6e12, 1024 / 2.039e12),
    }
    for k, c in enumerate(cuts):
        assert c["edge_s"] == pytest.approx(sum(edge[:k]), rel=1e-12, abs=0)
        expected = sum(server[k:]) - server[k] + alone[k] if k in alone else sum(server[k:])
        assert c["server_s"] == pytest.approx(expected, rel=1e-12, abs=0)
    assert cuts[-1]["edge_energy_j"] == pytest.approx(5.0 * cuts[-1]["edge_s"], rel=1e-12)
    assert data["edge_only_s"] == cuts[-1]["total_s"]
    assert data["server_only_s"] == cuts[0]["total_s"]


def test_profile_csv(tmp_path: Path) -> None:
    out = tmp_path / "layers.csv"
    assert main(["profile", "mlp", "--csv", str(out)]) == 0
    layers = pd.read_csv(out)
    cuts = pd.read_csv(tmp_path / "layers.cuts.csv")
    assert LAYER_KEYS <= set(layers.columns) and CUT_KEYS <= set(cuts.columns)
    assert len(layers) == 6 and len(cuts) == 7
    assert layers.params.sum() == 50826
    np.testing.assert_allclose(cuts.total_s, cuts.edge_s + cuts.transfer_s + cuts.server_s)
    # plain text a spreadsheet reads, not Python reprs
    assert cuts.tensors.iloc[0] == "input" and pd.isna(cuts.tensors.iloc[-1])
    assert layers.output_shape.iloc[-1] == "1x10"


def test_users_own_device_profile_by_path(tmp_path: Path) -> None:
    mine = tmp_path / "my-pi.toml"
    mine.write_text(edited(PI.read_text(), 'overhead = "50 us"', 'overhead = "150 us"'))
    shipped = profile_json(tmp_path, "mlp", name="shipped.json")
    own = profile_json(tmp_path, "mlp", "--edge", str(mine), name="own.json")
    for a, b in zip(shipped["layers"], own["layers"], strict=True):
        if a["kind"] == "reshape":  # free on every device
            assert a["edge_latency_s"] == b["edge_latency_s"] == 0.0
        elif a["fused"]:  # runs inside its producer's kernel: no overhead of its own
            assert b["edge_latency_s"] == a["edge_latency_s"]
        else:  # overhead is added to every other layer: +100 us each
            assert b["edge_latency_s"] - a["edge_latency_s"] == pytest.approx(1e-4, rel=1e-9)
        assert a["server_latency_s"] == b["server_latency_s"]
    assert sum(r["fused"] for r in own["layers"]) == 2  # the ReLUs after the two hidden layers
    costly = sum(r["kind"] != "reshape" and not r["fused"] for r in own["layers"])
    assert own["cuts"][-1]["edge_s"] - shipped["cuts"][-1]["edge_s"] == pytest.approx(
        costly * 1e-4, rel=1e-9
    )


@pytest.mark.parametrize(
    "old,new,field",
    [
        ('bandwidth = "5.6 GB/s"', 'bandwidth = "fast"', "memory.bandwidth"),
        ('overhead = "50 us"', 'overhead = "50 parsecs"', "compute.overhead"),
        ('active = "5.0 W"', 'active = "1.0 W"', "power.active"),
        ("conv = 0.3", "conv = 3", "compute.efficiency.conv"),
    ],
)
def test_broken_profile_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(edited(PI.read_text(), old, new))
    assert_cli_refused(["profile", "mlp", "--edge", str(bad)], capsys, words=[str(bad), field])
    assert_cli_refused(["devices", "validate", str(bad)], capsys, words=[field])


def test_devices_and_links_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["devices", "list"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == len(list_devices()) >= 7
    for name in list_devices():
        assert name in out
    assert main(["links", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_links():
        assert name in out
    assert main(["devices", "show", "raspberry-pi-4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("raspberry-pi-4 v2: ") and "mem_bandwidth_Bps" in out
    assert "codec_Bps" in out and "quantize=5.6e+08" in out
    assert "5600000000" in out.replace(".0", "")  # 5.6 GB/s in B/s
    assert main(["links", "show", "lte"]) == 0
    assert "5850000" in capsys.readouterr().out.replace(".0", "")
    copy = tmp_path / "pi.toml"
    shutil.copy(PI, copy)
    assert main(["devices", "validate", str(copy), str(PROFILES_DIR / "links" / "lte.toml")]) == 0
    out = capsys.readouterr().out
    assert f"{copy}: ok (raspberry-pi-4 v2)" in out and "lte.toml: ok (lte v2)" in out
    assert main(["devices", "show", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert "unknown device" in err and "raspberry-pi-4" in err


#: The model file a user might bring (helpers.nets), with a factory of a fixed input size
#: and one of float64 weights.
MODELS = (
    USER_MODEL
    + """

def fixed():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 2))


def double(in_channels=3, input_size=32, num_classes=10):
    return build(in_channels, input_size, num_classes).double()
"""
)


def test_profile_a_users_model_file(tmp_path: Path) -> None:
    file = tmp_path / "dse_test_cli_user_model.py"
    file.write_text(MODELS)
    data = profile_json(tmp_path, f"{file}:build", "--input-shape", "1x3x16x16", "--classes", "5")
    assert data["input_shape"] == [1, 3, 16, 16]
    conv, relu, flat, fc = data["layers"]
    assert conv["macs"] == 4 * 16 * 16 * 3 * 9
    assert fc["macs"] == 4 * 16 * 16 * 5 and fc["output_shape"] == [1, 5]
    assert data["cuts"][0]["bytes"] == 3 * 16 * 16 * 4
    # a batch dimension is added to a 3-number shape
    data = profile_json(tmp_path, f"{file}:build", "--input-shape", "3x8x8", name="b.json")
    assert data["input_shape"] == [1, 3, 8, 8]


def test_a_float64_model_is_profiled_with_its_own_bytes(tmp_path: Path) -> None:
    file = tmp_path / "dse_test_cli_double_model.py"
    file.write_text(MODELS)
    data = profile_json(tmp_path, f"{file}:double", "--input-shape", "1x3x16x16")
    conv = data["layers"][0]
    assert conv["macs"] == 4 * 16 * 16 * 3 * 9
    assert conv["output_bytes"] == 4 * 16 * 16 * 8
    assert data["cuts"][0]["bytes"] == 3 * 16 * 16 * 8


def test_model_that_cannot_take_the_input_shape_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "dse_test_cli_fixed_model.py"
    file.write_text(MODELS)
    assert main(["profile", f"{file}:fixed", "--input-shape", "1x3x2x2"]) == 0
    capsys.readouterr()
    assert main(["profile", f"{file}:fixed", "--input-shape", "1x3x2x3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1x3x2x3" in err and "--input-shape" in err


@pytest.mark.parametrize("shape", ["1x3xAx16", "1x0x16x16", "x", "1x-3x4x4"])
def test_bad_input_shape_is_exit_2(capsys: pytest.CaptureFixture[str], shape: str) -> None:
    assert main(["profile", "mlp", "--input-shape", shape]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--input-shape" in err and shape in err


def test_unknown_model_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-model" in err and "mlp" in err


OWN_DEFAULT = """
import torch.nn as nn


def build(num_classes=1000):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes))
"""


def test_a_users_factory_keeps_its_own_class_count(tmp_path: Path) -> None:
    """--classes reaches the factory only when given: its own default (1000) otherwise."""
    file = tmp_path / "dse_test_cli_own_default.py"
    file.write_text(OWN_DEFAULT)
    data = profile_json(tmp_path, f"{file}:build", "--input-shape", "1x3x2x2")
    assert data["layers"][-1]["output_shape"] == [1, 1000]
    assert data["totals"]["params"] == 12 * 1000 + 1000
    data = profile_json(
        tmp_path, f"{file}:build", "--input-shape", "1x3x2x2", "--classes", "7", name="c.json"
    )
    assert data["layers"][-1]["output_shape"] == [1, 7]


AWKWARD = """
import torch.nn as nn


class Two(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = self.conv(x).mean((2, 3))
        if self.kind == "dict":
            return {"logits": self.fc(h), "features": h}
        return self.fc(h), h


def as_dict():
    return Two("dict")


def as_tuple():
    return Two("tuple")


def identity():
    return nn.Identity()


def no_layers():
    return nn.Sequential()
"""


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        ("as_dict", ["dict of 2 outputs", "'logits', 'features'", "--output logits"]),
        ("as_tuple", ["tuple of 2 outputs", "--output 0"]),
        ("identity", ["no layer"]),
        ("no_layers", ["no layer"]),
    ],
)
def test_models_dse_cannot_take_are_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], factory: str, needles: list[str]
) -> None:
    file = tmp_path / "dse_test_cli_awkward.py"
    file.write_text(AWKWARD)
    assert main(["profile", f"{file}:{factory}", "--input-shape", "1x3x8x8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dse: error: ") and err.count("\n") == 1
    assert f"{file}:{factory}" in err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize(
    ("factory", "output", "params"),
    [
        ("as_dict", "logits", 3 * 4 * 9 + 4 + 4 * 10 + 10),
        ("as_tuple", "0", 3 * 4 * 9 + 4 + 4 * 10 + 10),
        ("as_tuple", "1", 3 * 4 * 9 + 4),  # the features: the classifier no longer runs
    ],
)
def test_the_named_output_of_a_multi_output_model_is_used(
    tmp_path: Path, factory: str, output: str, params: int
) -> None:
    file = tmp_path / "dse_test_cli_awkward_named.py"
    file.write_text(AWKWARD)
    data = profile_json(
        tmp_path, f"{file}:{factory}", "--input-shape", "1x3x8x8", "--output", output
    )
    assert data["totals"]["params"] == params


def test_profile_prints_the_radio_by_part(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "mlp"]) == 0
    out = capsys.readouterr().out
    assert "edge energy by part" in out
    for part in ("radio_up", "radio_down", "radio_wait", "radio_tail", "idle"):
        assert part in out


def test_profile_says_which_sparse_layers_get_a_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "nmnet.py"
    model.write_text(
        "import torch.nn as nn\n"
        "from dse.nets.sparsity import apply_sparsity, plan_sparsity\n"
        "def build(**kw):\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64),\n"
        "                        nn.ReLU(), nn.Linear(64, 10))\n"
        "    apply_sparsity(net, plan_sparsity(net, 0.5, seed=0, exclude=['5'], method='nm'))\n"
        "    return net\n"
    )
    assert main(["profile", f"{model}:build", "--input-shape", "1x1x8x8"]) == 0
    out = capsys.readouterr().out
    assert "2:4: edge expand, server 2:4" in out
    assert "sparse layers on server a100: 2:4 sparse kernel: _1, _3" in out
    assert "sparse layers on edge raspberry-pi-4: expanded from compressed weights" in out
