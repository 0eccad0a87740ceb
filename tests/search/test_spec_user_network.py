"""The spec of a user's own network: ``[model] weights``, ``[training] backbone`` and
``device``, ``[data] mean``/``std`` and ``name = "folder"``; each bad value is one line
naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.errors import InputError
from dse.search.spec import load_spec, parse_spec

WHERE = "mine.toml"


def text(model: str = "", data: str = "", training: str = "", space: str = "") -> str:
    return f"""\
name = "mine"
[model]
name = "mlp"
{model}
[data]
name = "digits"
{data}
[training]
epochs = 1
{training}
[space]
densities = [1.0]
{space}
[objectives]
accuracy = "maximize"
latency_mean = "minimize"
"""


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "trained.pt"
    path.write_bytes(b"checked when the network is built")
    return path


def test_weights_backbone_device_and_normalisation_parse(weights: Path) -> None:
    spec = parse_spec(
        text(
            model=f'weights = "{weights}"',
            data="mean = [0.5]\nstd = 0.25",
            training='backbone = "frozen"\ndevice = "cpu"',
        ),
        where=WHERE,
    )
    assert spec.weights == str(weights)
    assert spec.training["backbone"] == "frozen" and spec.training["device"] == "cpu"
    assert spec.data["mean"] == [0.5] and spec.data["std"] == 0.25
    assert parse_spec(text(), where=WHERE).weights is None


def test_a_relative_weights_path_is_read_beside_the_spec(tmp_path: Path, weights: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "w.pt").write_bytes(weights.read_bytes())
    path = tmp_path / "specs" / "mine.toml"
    path.write_text(text(model='weights = "w.pt"'))
    assert load_spec(path).weights == str(tmp_path / "specs" / "w.pt")


def test_the_folder_data_set_is_known() -> None:
    spec = parse_spec(text().replace('name = "digits"', 'name = "folder"\nroot = "imgs"'))
    assert spec.data["name"] == "folder"


@pytest.mark.parametrize(
    ("parts", "field", "words"),
    [
        ({"model": 'weights = "absent.pt"'}, "model.weights", "no such file"),
        ({"training": 'backbone = "frozen"'}, "training.backbone", "[model] has none"),
        ({"training": 'backbone = "thawed"'}, "training.backbone", "unknown value"),
        ({"training": 'device = "tpu"'}, "training.device", "unknown value"),
        ({"data": "mean = [0.5]"}, "data.std", "missing"),
        ({"data": "mean = [0.5]\nstd = [0.0]"}, "data.std", "not above 0"),
        ({"data": "mean = [1, 2, 3, 4]\nstd = 1"}, "data.mean", "1 to 3 numbers"),
        ({"data": 'mean = ["a"]\nstd = 1'}, "data.mean", "must be a number"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(
    parts: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_spec(text(**parts), where=WHERE)
    assert info.value.where == WHERE and info.value.field == field
    assert words in str(info.value) and "\n" not in str(info.value)


def test_what_cannot_go_with_trained_weights_is_refused(weights: Path) -> None:
    model = f'weights = "{weights}"'
    with pytest.raises(InputError) as info:
        parse_spec(text(model=model, training='backbone = "scratch"'), where=WHERE)
    assert info.value.field == "training.backbone" and "ignored" in info.value.reason
    with pytest.raises(InputError) as info:
        parse_spec(text(model=model, training='backbone = "frozen"\nmode = "split"'), where=WHERE)
    assert info.value.field == "training.backbone" and "only heads" in info.value.reason
    space = 'densities = [1.0, 0.5]\nmethods = ["channels", "predefined"]'
    with pytest.raises(InputError) as info:
        parse_spec(text(model=model, space=space).replace("densities = [1.0]\n", ""))
    assert info.value.field == "space.methods" and "fixed before training" in info.value.reason
    # channels on a trained network prune it and fine-tune: allowed
    channels = 'densities = [1.0, 0.5]\nmethods = ["channels"]'
    spec = parse_spec(text(model=model, space=channels).replace("densities = [1.0]\n", ""))
    assert spec.densities == (1.0, 0.5) and spec.methods == ("channels",)
