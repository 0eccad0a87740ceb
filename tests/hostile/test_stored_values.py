"""A stored study stays readable whatever values its trials hold, and a candidate whose
metrics are not finite is a failed trial with its reason, never a value told to Optuna."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import spec
from optuna.trial import TrialState

from dse.cli import main
from dse.search.evaluate import Metrics
from dse.search.explorer import Explorer
from dse.search.frames import (
    front_frame,
    record_of,
    study_hypervolume,
    study_ruler,
    trials_frame,
    unreadable_trials,
)
from dse.search.pareto import Ruler, hypervolume
from dse.search.spec import parse_spec
from dse.search.study import load_study, run_study
from dse.search.study_status import status

pytestmark = pytest.mark.usefixtures("study_folder")

OBJECTIVES = ("accuracy", "latency_mean", "edge_energy")


def _run(name: str, n_trials: int = 4) -> optuna.Study:
    parsed = parse_spec(spec(name, n_trials=n_trials, sampler="random"), where="t.toml")
    return run_study(parsed, progress=False, explorer=Explorer(parsed, progress=False))


def _add(study: optuna.Study, like: optuna.trial.FrozenTrial, **metrics: float) -> int:
    """A complete trial copied from ``like`` with ``metrics`` (and its values) replaced,
    written through the storage as a foreign or older writer could."""
    record = record_of(like)
    assert record is not None
    record["metrics"].update(metrics)
    values = [record["metrics"][k] for k in OBJECTIVES]
    storage = study._storage
    trial_id = storage.create_new_trial(study._study_id)
    for name, value in like.params.items():
        storage.set_trial_param(
            trial_id,
            name,
            like.distributions[name].to_internal_repr(value),
            like.distributions[name],
        )
    storage.set_trial_user_attr(trial_id, "dse", json.dumps(record))
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values)
    return storage.get_trial_number_from_id(trial_id)


def test_ruler_and_hypervolume_read_any_value() -> None:
    objectives = {"accuracy": "maximize", "latency_mean": "minimize"}
    values = np.array(
        [[0.9, 1e-3], [0.5, 1e308], [math.nan, math.inf], [-1e308, -math.inf], [0.8, 2e-3]]
    )
    ruler = Ruler.fit(objectives, values)
    assert all(math.isfinite(x) for x in ruler.lo + ruler.hi)
    losses = ruler.loss(values)
    assert np.isfinite(losses).all() and (losses >= 0).all() and (losses <= 1.1).all()
    assert math.isfinite(hypervolume(losses))
    broken = Ruler(ruler.names, ruler.directions, (math.nan, -math.inf), (math.inf, 1e308))
    assert math.isfinite(hypervolume(broken.loss(values)))


@pytest.mark.slow
def test_a_study_holding_inf_nan_and_1e308_is_read_by_status_front_and_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = _run("odd")
    good = study.get_trials(states=(TrialState.COMPLETE,))
    assert good
    inf = _add(study, good[0], latency_mean=math.inf, edge_energy=math.inf)
    huge = _add(study, good[0], latency_mean=1e308, edge_energy=1e308)
    tiny = _add(study, good[0], latency_mean=-1e308)
    nan = _add(study, good[0], accuracy=math.nan)
    study, spec = load_study("odd")

    frame = trials_frame(study)
    assert inf not in set(frame.trial) and nan not in set(frame.trial)
    assert {huge, tiny} <= set(frame.trial)
    assert set(unreadable_trials(study)) == {inf, nan}
    info = status(study, spec)
    assert info["unreadable"] == 2 and str(inf) in info["first_unreadable"]
    ruler, _ = study_ruler(study, spec)
    assert math.isfinite(study_hypervolume(study, spec, ruler))
    assert not front_frame(study, spec).empty
    study.set_user_attr("ruler", {"names": ["x"], "lo": "?"})  # a ruler no dse wrote
    assert study_ruler(study, spec)[1] == "trials"

    assert main(["study", "status", "odd"]) == 0
    assert "2 complete trial(s) left out" in capsys.readouterr().out
    assert main(["front", "odd"]) == 0
    assert main(["report", "odd", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "report written" in out
    assert Path("reports/odd/index.html").is_file()


def test_non_finite_metrics_fail_the_trial_with_their_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Explorer.evaluate

    def evaluate(self: Explorer, cand):  # type: ignore[no-untyped-def]
        m: Metrics = real(self, cand)
        if cand.density == 0.5:
            from dataclasses import replace

            return replace(m, latency_mean=math.inf, edge_energy=math.nan)
        return m

    monkeypatch.setattr(Explorer, "evaluate", evaluate)
    study = _run("overflow", n_trials=8)
    failed = study.get_trials(states=(TrialState.FAIL,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert failed and complete
    for t in failed:
        assert t.params["density"] == 0.5 and "dse" not in t.user_attrs
        reason = t.user_attrs["fail_reason"]
        assert "latency_mean = inf" in reason and "edge_energy = nan" in reason
    assert all(math.isfinite(v) for t in complete for v in t.values)
    assert status(study, load_study("overflow")[1])["first_failure"].startswith("non-finite")
