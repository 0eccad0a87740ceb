"""Training modes in a study: the spec's [training] mode, the cut in the training key, and
the training objectives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dse.errors import InputError
from dse.nets import Cache
from dse.search.explorer import Explorer
from dse.search.space import Candidate
from dse.search.spec import METRICS, parse_spec

pytestmark = pytest.mark.usefixtures("one_thread")


def text(training: str = "", objectives: str = 'train_time = "minimize"\n', space: str = "") -> str:
    return f"""\
name = "modes"
n_trials = 4
[model]
name = "mlp"
[data]
name = "digits"
n = 300
seed = 0
[training]
epochs = 1
batch_size = 32
{training}
[deployment]
edge = "jetson-nano"
server = "a100"
link = "3g"
[space]
{space}
[objectives]
accuracy = "maximize"
{objectives}
"""


def test_the_training_objectives_are_metrics() -> None:
    for name in ("train_time", "train_edge_energy", "train_bytes", "train_edge_memory"):
        assert name in METRICS
    spec = parse_spec(
        text(
            'mode = "hierarchical"\nexit = "layers.0"',
            'train_time = "minimize"\ntrain_bytes = "minimize"\ntrain_edge_energy = "minimize"\n',
        )
    )
    assert spec.training["mode"] == "hierarchical" and "train_bytes" in spec.objectives


@pytest.mark.parametrize(
    ("training", "space", "field"),
    [
        ('mode = "federated"', "", "training.mode"),
        ("mode = 3", "", "training.mode"),
        ('exit = "layers.0"', "", "training.exit"),
        ('mode = "split"\nexit = "layers.0"', "", "training.exit"),
        ('mode = "hierarchical"\nexit = "layers.1"', 'exits = ["layers.0"]', "training.exit"),
        ('mode = "hierarchical"\ntask_weighting = "uncertainty"', "", "training.task_weighting"),
    ],
)
def test_bad_training_modes_are_one_line_errors(training: str, space: str, field: str) -> None:
    with pytest.raises(InputError) as err:
        parse_spec(text(training, space=space), where="s.toml")
    assert err.value.field == field and "\n" not in str(err.value)
    assert str(err.value).startswith("s.toml: " + field)


def test_an_exit_the_network_lacks_is_refused_by_the_explorer(tmp_path: Path) -> None:
    spec = parse_spec(text('mode = "hierarchical"\nexit = "layers.7"'), where="s.toml")
    with pytest.raises(InputError) as err:
        Explorer(spec, cache=Cache(tmp_path), progress=False)
    assert err.value.field == "training.exit" and "\n" not in str(err.value)


@pytest.mark.slow
def test_hierarchical_study_trains_one_network_per_cut(shared_cache: Path) -> None:
    spec = parse_spec(text('mode = "hierarchical"', space='splits = "clean"'))
    ex = Explorer(spec, cache=Cache(shared_cache), progress=False)
    central = Explorer(parse_spec(text()), cache=Cache(shared_cache), progress=False)
    g = ex.reference_graph
    at = g.exits[0].position  # exit 0's site: its head on the edge
    keys = {ex.network_spec("dense", 1.0, cut=k).key for k in (at, at + 1)}
    assert len(keys) == 2 and ex.training_keys() != central.training_keys()
    assert len(ex.training_keys()) == len(ex.space.cuts)
    m_hier = ex.evaluate(Candidate("dense", 1.0, at, (), 0.5))
    m_central = central.evaluate(Candidate("dense", 1.0, at, (), 0.5))
    trained = ex.scorer("dense", 1.0, at).trained
    assert trained.spec.cut == at and trained.spec.train.mode == "hierarchical"
    # jetson-nano -> a100 over 3g: the upload of 210 8x8 images dominates central training
    assert m_central.train_bytes == 210 * (64 * 4 + 8)
    assert m_hier.train_bytes == 210 * (g.cuts[at].bytes + 8)  # one epoch, up only
    assert m_hier.train_time > 0 and m_hier.train_edge_energy > 0
    assert m_central.train_edge_memory == 0 and m_hier.train_edge_memory > 0
    # the scorer's figures are those of the cost model at that cut, over the epochs run
    c = ex.scorer("dense", 1.0, at).training[at]
    assert c is not None and c.exit == 0
    assert math.isclose(m_hier.train_time, c.time_s(1))
