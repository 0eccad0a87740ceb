"""A study on a user's plain nn.Sequential (no exit sites marked): ``[space] exits`` as
module paths or ``"auto"``; an unknown path is one line naming ``space.exits``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.errors import InputError
from dse.nets import Cache
from dse.search import Candidate, Explorer, parse_spec

NET = """
import torch.nn as nn


def build(num_classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, num_classes),
    )
"""


def spec(path: Path, exits: str) -> str:
    return f"""\
name = "sequential-exits"
n_trials = 4
[model]
name = "{path}:build"
[data]
name = "digits"
size = 16
seed = 0
[training]
epochs = 1
head = "sdn"
[space]
exits = {exits}
thresholds = {{ low = 0.5, high = 1.0, step = 0.25 }}
[objectives]
accuracy = "maximize"
latency_mean = "minimize"
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "dse_test_sequential_study.py"
    path.write_text(NET)
    return path


def test_auto_and_module_paths_give_a_users_model_exits(model_file: Path, tmp_path: Path) -> None:
    auto = Explorer(parse_spec(spec(model_file, '"auto"')), cache=Cache(tmp_path / "c"))
    assert auto.exit_names == ("2", "5") and auto.space.n_exits == 2
    assert auto.network_spec("dense", 1.0).fields()["exits"] == "auto"
    listed = Explorer(parse_spec(spec(model_file, '["6", "2"]')), cache=Cache(tmp_path / "c"))
    assert listed.exit_names == ("2", "6")
    scorer = listed.scorer("dense", 1.0)  # trains the network with both heads
    assert scorer.trained.exit_sites == ("2", "6")
    m = scorer.score(Candidate(method="dense", density=1.0, split=0, exits=(0,), threshold=0.5))
    assert 0 < m.accuracy <= 1


def test_an_unknown_module_path_names_space_exits(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        Explorer(parse_spec(spec(model_file, '["2", "12"]')), cache=Cache(tmp_path / "c"))
    assert info.value.field == "space.exits" and "'0', '1', '2'" in str(info.value)
