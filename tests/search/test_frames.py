"""A study read back: plain, the one JSON normaliser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dse.search.frames import plain


def test_plain_makes_numpy_tuples_sets_and_keys_storable_as_json_at_any_depth() -> None:
    value = {
        1: (np.float32(0.5), np.int64(3), np.bool_(True)),
        "rates": np.array([[0.25, 0.75]]),
        "cuts": {np.int64(7)},
        "nested": [{"x": frozenset({"a"})}],
    }
    out = plain(value)
    assert out == {
        "1": [0.5, 3, True],
        "rates": [[0.25, 0.75]],
        "cuts": [7],
        "nested": [{"x": ["a"]}],
    }
    assert type(out["1"][1]) is int and type(out["rates"][0][0]) is float
    assert json.loads(json.dumps(out)) == out


def test_plain_leaves_what_json_cannot_store_for_json_to_refuse() -> None:
    assert plain({"path": Path("x")}) == {"path": Path("x")}
    with pytest.raises(TypeError):
        json.dumps(plain({"path": Path("x")}))
    assert plain(None) is None and plain("text") == "text"


def test_importance_reads_a_knob_that_not_every_trial_draws() -> None:
    """A trial without an exit draws no threshold; fANOVA still weighs the threshold, each
    such trial read at the canonical (lowest) value its configuration holds."""
    import optuna

    from dse.search.frames import importances

    study = optuna.create_study(directions=["maximize"])
    split = optuna.distributions.IntDistribution(0, 4)
    exit_0 = optuna.distributions.CategoricalDistribution([False, True])
    tau = optuna.distributions.FloatDistribution(0.5, 1.0, step=0.25)
    for i in range(24):
        params = {"split": i % 5, "exit_0": i % 3 > 0}
        dists = {"split": split, "exit_0": exit_0}
        if params["exit_0"]:
            params["threshold"] = [0.5, 0.75, 1.0][i % 3]
            dists["threshold"] = tau
        value = params.get("threshold", 0.5) + 0.01 * params["split"]
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    result = importances(study, ["accuracy"])["accuracy"]
    assert isinstance(result, dict) and set(result) == {"split", "exit_0", "threshold"}
    assert max(result, key=result.get) == "threshold"
