"""Tests for ``dse train``: JSON summary, cache reuse, storage, and bad input (exit 2)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from dse.cli import main

KEYS = {
    "accuracy",
    "exit_accuracy",
    "density",
    "nonzero_params",
    "flops",
    "stored_bytes",
    "train_seconds",
    "cached",
}


def train(tmp_path: Path, name: str, *extra: str, cache: str = "cache") -> tuple[int, Path]:
    out = tmp_path / f"{name}.json"
    argv = [
        "train",
        "mlp",
        "--epochs",
        "2",
        "--json",
        str(out),
        "--cache-dir",
        str(tmp_path / cache),
        "--quiet",
        *extra,
    ]
    return main(argv), out


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_train_writes_json_and_reuses_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = train(tmp_path, "sparse", "--density", "0.25")
    assert rc == 0
    first = read(out)
    assert KEYS <= set(first)
    assert first["cached"] is False and first["train_seconds"] > 0
    assert 0.1 < first["accuracy"] <= 1 and len(first["exit_accuracy"]) == 2
    assert all(0 <= a <= 1 for a in first["exit_accuracy"])
    # The hidden layers are at 1/4; the dense exit heads and classifier raise the whole
    # network's density a little above it.
    assert 0.25 < first["density"] < 0.35
    text = capsys.readouterr().out
    assert "trained in" in text and f"wrote {out}" in text
    # Exactly one cache entry was written under the given folder, nothing elsewhere.
    assert len(list((tmp_path / "cache").glob("*/*.dse"))) == 1

    rc, out2 = train(tmp_path, "again", "--density", "0.25")
    assert rc == 0
    second = read(out2)
    assert second["cached"] is True
    assert "loaded from cache" in capsys.readouterr().out
    for k in KEYS - {"cached"}:
        assert second[k] == first[k], k
    assert len(list((tmp_path / "cache").glob("*/*.dse"))) == 1

    rc, out3 = train(tmp_path, "dense", "--density", "1")
    assert rc == 0
    dense = read(out3)
    assert dense["cached"] is False and dense["density"] == 1.0
    assert first["stored_bytes"] < dense["stored_bytes"] / 2
    assert first["nonzero_params"] < dense["nonzero_params"] / 2
    assert first["flops"] < dense["flops"] / 2
    assert len(list((tmp_path / "cache").glob("*/*.dse"))) == 2


def test_train_without_exits(tmp_path: Path) -> None:
    rc, out = train(tmp_path, "noexit", "--density", "0.25", "--exits", "none")
    assert rc == 0
    info = read(out)
    assert info["exit_accuracy"] == [] and info["density"] == pytest.approx(
        (64 * 256 / 4 + 256 * 128 / 4 + 128 * 10) / (64 * 256 + 256 * 128 + 128 * 10)
    )


def test_channels_method_is_smaller_and_dense(tmp_path: Path) -> None:
    rc, out = train(tmp_path, "ch", "--density", "0.25", "--method", "channels")
    assert rc == 0
    info = read(out)
    rc, out = train(tmp_path, "dense", "--density", "1")
    dense = read(out)
    assert info["density"] == 1.0
    assert info["nonzero_params"] < dense["nonzero_params"] / 2
    assert info["flops"] < dense["flops"] / 2
    assert info["stored_bytes"] < dense["stored_bytes"] / 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--density", "0.3"], "nearest valid densities"),  # no layer can meet 0.3 exactly
        (["--density", "0"], "density"),
        (["--density", "-0.25"], "density"),
        (["--density", "1.5"], "density"),
        (["--density", "nan"], "density"),
        (["--method", "magnitude", "--density", "0.25"], "method"),
        (["--exits", "layers.9"], "exit site"),
        (["--epochs", "0"], "epochs"),
        (["--patience", "3"], "--patience: only used with --epochs auto"),
        (["--max-epochs", "30"], "--max-epochs: only used with --epochs auto"),
        (["--epochs", "auto", "--patience", "0"], "patience: must be >= 1"),
        (["--data", "no-such-data"], "unknown data set"),
        (["--n", "0"], "n: must be"),  # a given 0 is checked, not taken for "unset"
        (["--size", "0"], "size: must be"),
        (["--head", "attention"], "--head: unknown exit head 'attention'"),
        (["--lr-schedule", "linear"], "--lr-schedule: unknown schedule"),
        (["--augment", "flip,rotate"], "--augment: unknown augmentation 'rotate'"),
        (["--exit-schedule", "sudden"], "--exit-schedule: unknown"),
        (["--distill", "-1"], "--distill:"),
        (["--exits", "layers.9"], "unknown exit site(s) ['layers.9']"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    rc, out = train(tmp_path, "bad", *args)
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("dse: error: ") and err.endswith("\n") and err.count("\n") == 1
    assert needle in err
    assert not out.exists()
    assert not list(tmp_path.rglob("*.dse"))


def test_unknown_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "no-such-model", "--epochs", "1", "--cache-dir", str(tmp_path), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model" in err and "mlp" in err
    assert not list(tmp_path.rglob("*.dse"))


def test_realised_density_is_printed_for_partial_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1/128 fits layers.1 (256 -> 128) only; layers.0 stays dense, and the JSON says so."""
    rc, out = train(tmp_path, "partial", "--density", str(1 / 128), "--exits", "none")
    assert rc == 0
    info = read(out)
    expected = (64 * 256 + 256 * 128 / 128 + 128 * 10) / (64 * 256 + 256 * 128 + 128 * 10)
    assert math.isclose(info["density"], expected, rel_tol=1e-12)
    assert f"realised density {expected:.4f}" in capsys.readouterr().out


def test_an_unmet_density_is_shown_realised_and_warned_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """1/128 thins only layers.1; the JSON and the output give the realised density beside
    the requested one, and one warning names the layer that could not be thinned."""
    caplog.set_level("WARNING")
    rc, out = train(tmp_path, "unmet", "--density", str(1 / 128), "--seed", "11")
    assert rc == 0
    info = read(out)
    heads = 256 * 10 + 128 * 10 + 128 * 10
    expected = (64 * 256 + 256 * 128 / 128 + heads) / (64 * 256 + 256 * 128 + heads)
    assert info["requested_density"] == 1 / 128
    assert info["realised_density"] == pytest.approx(expected, rel=1e-12)
    assert round(expected, 2) == 0.40
    assert (
        f"realised density {expected:.4f} of the dense network's weights (requested "
        f"{1 / 128:g})" in capsys.readouterr().out
    )
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "layers.0.0 could not be thinned" in warned[0]
    assert "layers.1" not in warned[0]
    # a request that is met warns nothing
    caplog.clear()
    rc, _ = train(tmp_path, "met", "--density", "0.5", "--seed", "11", "--exits", "none")
    assert rc == 0 and not [r for r in caplog.records if r.levelname == "WARNING"]


USER_NETS = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                  nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.body(x)).flatten(1)


def build(num_classes=10):
    return Net(num_classes)
"""


def test_a_users_classifier_is_found_and_kept_dense(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "dse_test_train_user_nets.py"
    file.write_text(USER_NETS)
    out = tmp_path / "user.json"
    rc = main(
        [
            "train",
            f"{file}:build",
            "--density",
            "0.5",
            "--epochs",
            "1",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    info = read(out)
    assert info["classifier"] == "head" and info["classifier_found"] is True
    # the two body layers at 1/2, the classifier (which 1/2 fits too) dense
    assert info["realised_density"] == pytest.approx(
        (64 * 128 / 2 + 128 * 64 / 2 + 64 * 10) / (64 * 128 + 128 * 64 + 64 * 10), rel=1e-12
    )
    assert "final classifier head (the last layer before the output) kept dense" in (
        capsys.readouterr().out
    )


RESIDUAL_NET = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.blocks = nn.Sequential(Block(32), Block(32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def build(num_classes=10):
    return Net(num_classes)
"""


def test_channels_on_a_model_without_width_prunes_it_with_its_residual_coupling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No `width` argument: whole channels are pruned from the built model, the residual
    adds keeping both branches at one width, the classifier keeping its 10 outputs."""
    file = tmp_path / "dse_test_train_user_nets_nowidth.py"
    file.write_text(RESIDUAL_NET)
    out = tmp_path / "pruned.json"
    rc = main(
        [
            "train",
            f"{file}:build",
            "--density",
            "0.25",
            "--method",
            "channels",
            "--epochs",
            "1",
            "--quiet",
            "--exits",
            "none",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    info = read(out)
    # 32 channels -> 16 everywhere the add couples them: every conv keeps 1/4 of its
    # weights, the classifier half of its inputs (its outputs are kept)
    dense = 1 * 32 * 9 + 4 * 32 * 32 * 9 + 32 * 10
    kept = 1 * 16 * 9 + 4 * 16 * 16 * 9 + 16 * 10
    assert info["realised_density"] == pytest.approx(kept / dense, rel=1e-12)
    from dse.nets.data import load_data
    from dse.nets.training import NetworkSpec, build_network

    net = build_network(
        NetworkSpec(
            model=f"{file}:build",
            data=load_data("digits"),
            method="channels",
            density=0.25,
            exits=(),
        )
    )
    convs = {n: m for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert {m.out_channels for m in convs.values()} == {16}
    assert net(torch.zeros(2, 1, 8, 8)).shape[-1] == 10


def test_channels_with_a_width_that_changes_nothing_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "dse_test_train_user_nets_idle_width.py"
    file.write_text(
        USER_NETS + "\n\ndef idle(num_classes=10, width=1.0):\n    return Net(num_classes)\n"
    )
    for _ in range(2):  # also when the network was built once before in this process
        rc = main(
            [
                "train",
                f"{file}:idle",
                "--density",
                "0.25",
                "--method",
                "channels",
                "--epochs",
                "1",
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        assert rc == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "changed no layer" in err
    assert not list(tmp_path.rglob("*.dse"))


def test_an_undertrained_network_is_warned_about_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    rc, out = train(tmp_path, "slow", "--density", "1", "--epochs", "1", "--lr", "1e-5")
    assert rc == 0
    info = read(out)
    assert info["val_accuracy"] < 0.3 and info["learning_problem"]
    err = capsys.readouterr().err
    assert err.startswith(
        "dse: warning: mlp (predefined, density 1): the final classifier "
        f"reaches {100 * info['val_accuracy']:.1f}% validation accuracy"
    )
    assert "it has not learned; train longer" in err and "--epochs auto" in err
    assert err.count("\n") == 1
    # a network that learned: no warning
    rc, out = train(tmp_path, "fine", "--density", "1", "--epochs", "3")
    assert rc == 0 and read(out)["learning_problem"] is None
    assert capsys.readouterr().err == ""


def test_epochs_auto_says_which_epoch_it_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    rc, out = train(
        tmp_path,
        "auto",
        "--density",
        "0.25",
        "--epochs",
        "auto",
        "--patience",
        "2",
        "--max-epochs",
        "12",
    )
    assert rc == 0
    info = read(out)
    run, kept = info["epochs_run"], info["epoch_kept"]
    assert 1 <= kept < run <= 12 and run - kept == 2
    assert f"epoch {kept} kept of {run} run (auto)" in capsys.readouterr().out
    # a number of epochs keeps the last
    rc, out = train(tmp_path, "two", "--density", "0.25")
    assert read(out)["epochs_run"] == read(out)["epoch_kept"] == 2
    assert "trained in" in capsys.readouterr().out


SEQUENTIAL_NET = """
import torch.nn as nn


def build(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, num_classes),
    )
"""


def test_exits_on_a_plain_sequential_by_index_and_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that marks no exit site gets exits after any module (``--exits 2,6``: the
    pooled map and the flattened features) or ``auto``; an unknown index names the ones
    it has."""
    file = tmp_path / "dse_test_train_sequential.py"
    file.write_text(SEQUENTIAL_NET)
    common = ["--epochs", "1", "--quiet", "--cache-dir", str(tmp_path / "cache"), "--size", "16"]
    out = tmp_path / "seq.json"
    argv = ["train", f"{file}:build", "--exits", "2,6", "--head", "sdn", "--json", str(out)]
    assert main([*argv, *common]) == 0
    info = read(out)
    assert info["exit_sites"] == ["2", "6"] and len(info["exit_accuracy"]) == 2
    assert "exit after 2 " in capsys.readouterr().out
    assert main(["train", f"{file}:build", "--exits", "auto", "--json", str(out), *common]) == 0
    assert read(out)["exit_sites"] == ["2", "5"]
    capsys.readouterr()
    assert main(["train", f"{file}:build", "--exits", "2,12", *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "['12']" in err and "'0', '1', '2'" in err


def test_the_recipe_options_help_names_the_training_defaults() -> None:
    """The parser imports no torch, so it cannot read TrainConfig's defaults: the help
    names them, and this holds them equal."""
    from dse.cli import build_parser
    from dse.nets import TrainConfig

    train = build_parser()._subparsers._group_actions[0].choices["train"]  # noqa: SLF001
    helps = {a.dest: a.help for a in train._actions}  # noqa: SLF001
    d = TrainConfig()
    assert f"(default {d.head})" in helps["head"]
    assert f"(default {d.weight_decay:g})" in helps["weight_decay"]
    assert f"(default {d.exit_weight:g})" in helps["exit_weight"]
