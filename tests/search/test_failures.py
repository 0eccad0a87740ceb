"""What a study does with networks that cannot be trained: a failed trial with its
reason, once per network, and the study goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import spec
from optuna.trial import TrialState

from dse.nets import training as T
from dse.search.explorer import Explorer
from dse.search.spec import parse_spec
from dse.search.study import run_study
from dse.search.study_status import status

DIVERGING = spec("diverging", n_trials=12, sampler="random")


def test_a_diverging_training_is_a_failed_trial_and_the_study_goes_on(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSE_CACHE", str(study_folder / "cache"))  # the sparse net must train
    real = T.build_network
    built: list[float] = []

    def build(spec: T.NetworkSpec) -> torch.nn.Module:  # sparse networks start with NaN
        net = real(spec)
        if spec.density < 1:
            built.append(spec.density)
            with torch.no_grad():
                next(net.parameters()).fill_(float("nan"))
        return net

    monkeypatch.setattr(T, "build_network", build)
    spec = parse_spec(DIVERGING, where="diverging.toml")
    study = run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    trials = study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(failed) + len(complete) == 12 and failed and complete
    assert {t.params["density"] for t in failed} == {0.5}
    assert {t.params["density"] for t in complete} == {1.0}
    for t in failed:
        assert t.user_attrs["fail_reason"].startswith(
            "TrainingDiverged: training: lr: mlp predefined@0.5: training diverged: the loss "
            "is nan at epoch 1, batch 1"
        )
    assert built == [0.5]  # trained once: later trials fail with the same reason
    assert status(study, spec)["first_failure"] == failed[0].user_attrs["fail_reason"]
    assert len(list((study_folder / "cache").glob("*/*.dse"))) == 1  # the dense one alone
