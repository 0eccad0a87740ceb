"""The user's own trained network: weights loaded weights-only, a frozen backbone that
stays exactly as trained (only heads learn), fine-tuning, pruning a trained network, the
training key, the device, and bad weight files as one line each."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_cli_refused
from helpers.user_net import (
    MEAN,
    N_TRAIN,
    STD,
    digits,
    folder_order,
    pixels_to_input,
    train_outside,
    user_logits,
    write_folder,
    write_model,
    write_npz,
)
from torch import nn

from dse.cli import main
from dse.errors import InputError
from dse.nets import NetworkSpec, TrainConfig, load_data, train_network


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The user's model file, their weights (trained outside dse) and their data."""
    root = tmp_path_factory.mktemp("user")
    model = write_model(root)
    return {
        "root": root,
        "model": model,
        "weights": train_outside(model, root / "usernet.pt"),
        "npz": write_npz(root / "digits.npz"),
    }


def spec_of(user: dict[str, Path], epochs: int = 5, **train: object) -> NetworkSpec:
    data = load_data("npz", root=user["npz"], mean=[MEAN], std=[STD])
    return NetworkSpec(
        model=f"{user['model']}:build",
        data=data,
        weights=str(user["weights"]),
        train=TrainConfig(epochs=epochs, **train),  # type: ignore[arg-type]
    )


def test_a_frozen_backbone_answers_as_the_users_model(user: dict[str, Path]) -> None:
    x, y = digits()
    mine = user_logits(user["model"], user["weights"], pixels_to_input(x[N_TRAIN:]))
    spec = spec_of(user)
    assert spec.backbone == "frozen"  # the default with weights
    trained = train_network(spec, progress=False)
    # the final logits are the user's model's, bit for bit, and so is the accuracy
    assert torch.equal(trained.test_logits[0][-1], mine)
    own = float((mine.argmax(-1) == torch.from_numpy(y[N_TRAIN:])).float().mean())
    assert trained.accuracy("test")[-1] == own and own > 0.8
    # every weight and statistic of the backbone is the file's; only the exit head moved
    saved = torch.load(user["weights"], weights_only=True)
    assert all(torch.equal(trained.state[k], v) for k, v in saved.items())
    heads = {k for k in trained.state if k.startswith("exit_heads.")}
    assert heads and set(trained.state) == set(saved) | heads
    untrained = replace(spec, train=replace(spec.train, epochs=1))
    first = train_network(untrained, progress=False)
    # the exit head's weights (whatever its kind) moved between epoch 1 and epoch 5
    moved = [k for k in heads if k.endswith("weight") and first.state[k].is_floating_point()]
    assert moved and any(not torch.equal(first.state[k], trained.state[k]) for k in moved)
    assert trained.epochs_run == 5 and trained.accuracy("test")[1] > 0.5


def test_a_frozen_network_with_nothing_to_train_runs_no_epoch(user: dict[str, Path]) -> None:
    spec = replace(spec_of(user), exits=())
    trained = train_network(spec, progress=False)
    assert trained.epochs_run == 0 and trained.history == ()
    x, _ = digits()
    mine = user_logits(user["model"], user["weights"], pixels_to_input(x[N_TRAIN:]))
    assert torch.equal(trained.test_logits[0][-1], mine)


def test_the_users_folder_of_images_gives_the_same_logits(
    user: dict[str, Path], tmp_path: Path
) -> None:
    images = write_folder(tmp_path / "images")
    data = load_data("folder", root=images, mean=MEAN, std=STD)
    spec = replace(spec_of(user), data=data, exits=())
    trained = train_network(spec, progress=False)
    x, y = digits()
    order = folder_order(y[N_TRAIN:])
    mine = user_logits(user["model"], user["weights"], pixels_to_input(x[N_TRAIN:][order]))
    assert torch.equal(data.test.x, pixels_to_input(x[N_TRAIN:][order]))
    assert torch.equal(trained.test_logits[0][-1], mine)


def test_finetune_trains_the_backbone_from_the_users_weights(user: dict[str, Path]) -> None:
    frozen, tuned = spec_of(user, 2), spec_of(user, 2, backbone="finetune")
    assert frozen.key != tuned.key
    trained = train_network(tuned, progress=False)
    saved = torch.load(user["weights"], weights_only=True)
    assert not torch.equal(trained.state["0.weight"], saved["0.weight"])
    assert trained.accuracy("test")[-1] > 0.8  # it started from a trained network


def test_channels_prunes_the_trained_network_and_fine_tunes_it(user: dict[str, Path]) -> None:
    spec = replace(spec_of(user, 3), method="channels", density=0.5)
    assert spec.backbone == "finetune"  # what is left of the weights must learn again
    trained = train_network(spec, progress=False)
    assert trained.realised_density < 0.75
    assert trained.state["0.weight"].shape[0] < 16  # channels removed from the trained conv
    assert trained.accuracy("test")[-1] > 0.5


def test_the_key_holds_the_weights_sha256_and_backbone(
    user: dict[str, Path], tmp_path: Path
) -> None:
    import hashlib

    spec = spec_of(user)
    fields = spec.fields()
    assert fields["weights"] == hashlib.sha256(user["weights"].read_bytes()).hexdigest()
    assert fields["backbone"] == "frozen" and "backbone" not in fields["train"]
    # another copy of the same bytes is the same network; other bytes another one
    copy = tmp_path / "copy.pt"
    copy.write_bytes(user["weights"].read_bytes())
    assert replace(spec, weights=str(copy)).key == spec.key
    other = train_outside(user["model"], tmp_path / "other.pt", epochs=1, seed=1)
    assert replace(spec, weights=str(other)).key != spec.key
    # without weights, nothing of them (nor of the device) is in the key
    plain = NetworkSpec(model="mlp", data=spec.data, train=TrainConfig(epochs=2))
    cpu = NetworkSpec(model="mlp", data=spec.data, train=TrainConfig(epochs=2, device="cpu"))
    assert "weights" not in plain.fields() and "backbone" not in plain.fields()
    assert plain.key == cpu.key and "device" not in plain.fields()["train"]


def test_the_device_resolves_and_cuda_without_a_gpu_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert TrainConfig().device == "auto"
    assert TrainConfig().torch_device() == torch.device("cpu")
    assert TrainConfig(device="cpu").torch_device() == torch.device("cpu")
    with pytest.raises(InputError) as info:
        TrainConfig(device="cuda").torch_device()
    assert info.value.field == "device" and "no CUDA GPU" in str(info.value)
    with pytest.raises(InputError):
        TrainConfig(device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TrainConfig().torch_device() == torch.device("cuda")
    # split and hierarchical training keep their two parts' CPU random streams
    assert TrainConfig(mode="split").torch_device() == torch.device("cpu")
    with pytest.raises(InputError) as info:
        TrainConfig(mode="split", device="cuda").torch_device()
    assert "on the CPU" in str(info.value)


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d, w: d / "absent.pt", "no such file"),
        (lambda d, w: _save(d / "whole.pt", nn.Sequential(nn.Linear(2, 2))), "not weights-only"),
        (lambda d, w: (d / "junk.pt").write_bytes(b"junk") and d / "junk.pt", "torch.save wrote"),
        (lambda d, w: _save(d / "list.pt", [torch.zeros(1)]), "not a state_dict"),
        (
            lambda d, w: _save(
                d / "fewer.pt",
                {k: v for k, v in torch.load(w, weights_only=True).items() if k != "0.bias"},
            ),
            "0.bias missing from the file",
        ),
        (
            lambda d, w: _save(
                d / "shape.pt",
                {
                    **torch.load(w, weights_only=True),
                    "12.weight": torch.zeros(5, 128),
                    "12.bias": torch.zeros(5),
                },
            ),
            "12.weight is [5, 128] in the file, [10, 128] in the model",
        ),
    ],
)
def test_bad_weights_are_one_line_naming_the_file(
    user: dict[str, Path], tmp_path: Path, make: object, words: str
) -> None:
    path = make(tmp_path, user["weights"])  # type: ignore[operator]
    spec = replace(spec_of(user), weights=str(path))
    with pytest.raises(InputError) as info:
        train_network(spec, progress=False)
    text = str(info.value)
    assert info.value.field == "weights" and info.value.where == str(path)
    assert words in text and "\n" not in text


def test_backbone_and_sparsity_that_cannot_go_with_weights_are_refused(
    user: dict[str, Path],
) -> None:
    spec = spec_of(user)
    with pytest.raises(InputError, match="scratch trains from random weights"):
        replace(spec, train=TrainConfig(backbone="scratch"))
    with pytest.raises(InputError, match="frozen starts from the user's trained weights"):
        replace(spec, weights=None, train=TrainConfig(backbone="frozen"))
    with pytest.raises(InputError, match="fixed before training") as info:
        replace(spec, method="predefined", density=0.5)
    assert info.value.field == "method"
    with pytest.raises(InputError, match="fixed before training"):
        replace(spec, method="nm", density=0.5)
    with pytest.raises(InputError, match="frozen backbone leaves only heads"):
        TrainConfig(backbone="frozen", mode="hierarchical")
    assert replace(spec, method="predefined", density=1.0).backbone == "frozen"


def test_dse_train_takes_weights_and_backbone(
    user: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def argv(weights: Path, *extra: str) -> list[str]:
        data = ["--data", "npz", "--data-root", str(user["npz"])]
        norm = ["--mean", str(MEAN), "--std", str(STD)]
        rest = ["--epochs", "1", "--exits", "none", "--quiet"]
        cache = ["--cache-dir", str(tmp_path / "cache")]
        model = f"{user['model']}:build"
        return ["train", model, *data, *norm, "--weights", str(weights), *rest, *cache, *extra]

    out = tmp_path / "frozen.json"
    assert main(argv(user["weights"], "--backbone", "frozen", "--json", str(out))) == 0
    summary = json.loads(out.read_text())
    x, y = digits()
    mine = user_logits(user["model"], user["weights"], pixels_to_input(x[N_TRAIN:]))
    own = float((mine.argmax(-1) == torch.from_numpy(y[N_TRAIN:])).float().mean())
    assert summary["accuracy"] == own and summary["epochs_run"] == 0
    assert "usernet.pt's, frozen" in capsys.readouterr().out
    # a state_dict the model does not take: one line, exit 2
    bad = tmp_path / "bad.pt"
    torch.save({"w": torch.zeros(1)}, bad)
    assert_cli_refused(argv(bad), capsys, where=bad, words=["weights: does not match"])
    assert_cli_refused(
        argv(user["weights"], "--backbone", "scratch"),
        capsys,
        words=["training: backbone: scratch trains from random weights"],
    )


def test_the_npz_and_its_stated_normalisation_are_the_users_inputs(user: dict[str, Path]) -> None:
    data = load_data("npz", root=user["npz"], mean=[MEAN], std=[STD])
    x, _ = digits()
    assert torch.equal(data.test.x, pixels_to_input(x[N_TRAIN:]))
    assert data.mean == (MEAN,) and data.std == (STD,)
    assert np.isclose(float(data.test.x.min()), -MEAN / STD)
