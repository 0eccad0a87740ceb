"""Training modes in a study: the spec's [training] mode, the cut in the training key, and
the training objectives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import assert_refused, only, spec, spec_dict

from dse.errors import InputError
from dse.nets import Cache
from dse.search.explorer import Explorer
from dse.search.space import Candidate
from dse.search.spec import METRICS, parse_spec

#: The MLP on 300 digits, one epoch in batches of 32, on a Jetson Nano over 3G.
MODES = spec_dict(
    "modes",
    base={},
    n_trials=4,
    model={"name": "mlp"},
    data={"name": "digits", "n": 300, "seed": 0},
    training={"epochs": 1, "batch_size": 32},
    deployment={"edge": "jetson-nano", "server": "a100", "link": "3g"},
    space={},
    objectives={"accuracy": "maximize", "train_time": "minimize"},
)


def text(
    training: dict | None = None, objectives: dict | None = None, space: dict | None = None
) -> str:
    """MODES with ``training`` and ``space`` merged in, and ``objectives`` (train_time by
    default) after accuracy."""
    objectives = {"accuracy": "maximize", **(objectives or {"train_time": "minimize"})}
    return spec(base=MODES, training=training or {}, space=space or {}, objectives=only(objectives))


def test_the_training_objectives_are_metrics() -> None:
    for name in ("train_time", "train_edge_energy", "train_bytes", "train_edge_memory"):
        assert name in METRICS
    spec = parse_spec(
        text(
            {"mode": "hierarchical", "exit": "layers.0"},
            {"train_time": "minimize", "train_bytes": "minimize", "train_edge_energy": "minimize"},
        )
    )
    assert spec.training["mode"] == "hierarchical" and "train_bytes" in spec.objectives


@pytest.mark.parametrize(
    ("training", "space", "field"),
    [
        ({"mode": "federated"}, {}, "training.mode"),
        ({"mode": 3}, {}, "training.mode"),
        ({"exit": "layers.0"}, {}, "training.exit"),
        ({"mode": "split", "exit": "layers.0"}, {}, "training.exit"),
        ({"mode": "hierarchical", "exit": "layers.1"}, {"exits": ["layers.0"]}, "training.exit"),
        ({"mode": "hierarchical", "task_weighting": "uncertainty"}, {}, "training.task_weighting"),
    ],
)
def test_bad_training_modes_are_one_line_errors(training: dict, space: dict, field: str) -> None:
    bad = text(training, space=space)
    assert_refused(lambda: parse_spec(bad, where="s.toml"), field=field, where="s.toml")


def test_an_exit_the_network_lacks_is_refused_by_the_explorer(tmp_path: Path) -> None:
    spec = parse_spec(text({"mode": "hierarchical", "exit": "layers.7"}), where="s.toml")
    with pytest.raises(InputError) as err:
        Explorer(spec, cache=Cache(tmp_path), progress=False)
    assert err.value.field == "training.exit" and "\n" not in str(err.value)


@pytest.mark.slow
def test_hierarchical_study_trains_one_network_per_cut(shared_cache: Path) -> None:
    spec = parse_spec(text({"mode": "hierarchical"}, space={"splits": "clean"}))
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
