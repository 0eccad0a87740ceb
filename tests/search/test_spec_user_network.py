"""The spec of a user's own network: ``[model] weights``, ``[training] backbone`` and
``device``, ``[data] mean``/``std`` and ``name = "folder"``; each bad value is one line
naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import assert_refused, spec, write_spec

from dse.search import load_spec, parse_spec

WHERE = "mine.toml"
DENSE = {"densities": [1.0]}


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "trained.pt"
    path.write_bytes(b"read when the network is built")
    return path


def test_weights_backbone_device_and_normalisation_parse(weights: Path) -> None:
    parsed = parse_spec(
        spec(
            model={"weights": str(weights)},
            data={"mean": [0.5], "std": 0.25},
            training={"backbone": "frozen", "device": "cpu"},
            space=DENSE,
        ),
        where=WHERE,
    )
    assert parsed.weights == str(weights)
    assert parsed.training["backbone"] == "frozen" and parsed.training["device"] == "cpu"
    assert parsed.data["mean"] == [0.5] and parsed.data["std"] == 0.25
    assert parse_spec(spec(), where=WHERE).weights is None


def test_a_relative_weights_path_is_read_beside_the_spec(tmp_path: Path, weights: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "w.pt").write_bytes(weights.read_bytes())
    path = write_spec(tmp_path / "specs" / "mine.toml", model={"weights": "w.pt"}, space=DENSE)
    assert load_spec(path).weights == str(tmp_path / "specs" / "w.pt")


def test_the_folder_data_set_is_known() -> None:
    parsed = parse_spec(spec(data={"name": "folder", "root": "images"}), where=WHERE)
    assert parsed.data["name"] == "folder"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"model": {"weights": "absent.pt"}}, "model.weights", "no such file"),
        ({"training": {"backbone": "frozen"}}, "training.backbone", "[model] has none"),
        ({"training": {"backbone": "thawed"}}, "training.backbone", "unknown value"),
        ({"training": {"device": "tpu"}}, "training.device", "unknown value"),
        ({"data": {"mean": [0.5]}}, "data.std", "missing"),
        ({"data": {"mean": [0.5], "std": [0.0]}}, "data.std", "not above 0"),
        ({"data": {"mean": [1, 2, 3, 4], "std": 1}}, "data.mean", "1 to 3 numbers"),
        ({"data": {"mean": ["a"], "std": 1}}, "data.mean", "must be a number"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(
    overrides: dict[str, Any], field: str, words: str
) -> None:
    assert_refused(
        lambda: parse_spec(spec(**overrides), where=WHERE), field=field, where=WHERE, words=[words]
    )


def test_what_cannot_go_with_trained_weights_is_refused(weights: Path) -> None:
    model = {"weights": str(weights)}

    def parse(**overrides: Any) -> Any:
        return parse_spec(spec(model=model, **overrides), where=WHERE)

    assert_refused(
        lambda: parse(training={"backbone": "scratch"}, space=DENSE),
        field="training.backbone",
        words=["ignored"],
    )
    assert_refused(
        lambda: parse(training={"backbone": "frozen", "mode": "split"}, space=DENSE),
        field="training.backbone",
        words=["only heads"],
    )
    # the tiny study's predefined density 0.5: a pattern fixed before training
    assert_refused(lambda: parse(), field="space.methods", words=["fixed before training"])
    # channels on a trained network prune it and fine-tune: allowed
    parsed = parse(space={"methods": ["channels"]})
    assert parsed.densities == (1.0, 0.5) and parsed.methods == ("channels",)
