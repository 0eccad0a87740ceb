"""The deployment map and training curves as data (the info tuples), and drawn."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dse.report import plots
from dse.search import Choice, DeploymentResult, Sweep


def _result(edge: str, link: str, split: int | None, sent: float = 0.0) -> DeploymentResult:
    best = (
        None
        if split is None
        else Choice(
            {
                "method": "dense",
                "density": 1.0,
                "split": split,
                "exits": [],
                "threshold": 0.5,
                "criterion": "max_prob",
            },
            {
                "accuracy": 0.9,
                "latency_mean": 1e-3 * (split + 1),
                "edge_energy": 2e-3,
                "bandwidth": sent,
            },
        )
    )
    return DeploymentResult(
        edge, link, "a100", 10, 0 if best is None else 5, 2, 0, best, None, None, 8, 0.01
    )


def test_deployment_map_info_places_every_result() -> None:
    sw = Sweep(
        "s",
        {"accuracy": "maximize"},
        (),
        (
            _result("pi", "lte", 8),
            _result("pi", "wifi", 3, sent=100.0),
            _result("nano", "lte", 0, sent=300.0),
            _result("nano", "wifi", None),
        ),
        1.0,
    )
    info = plots.deployment_map_info(sw, current=("nano", "wifi"))
    assert info.edges == ("pi", "nano") and info.links == ("lte", "wifi")
    assert info.where == (("edge-only", "split"), ("server-only", "none"))
    assert info.cut.tolist() == [[8, 3], [0, -1]]
    assert info.latency_s[0, 1] == pytest.approx(4e-3) and np.isnan(info.latency_s[1, 1])
    assert info.current == (1, 1)
    assert plots.deployment_map_info(sw, current=("other", "lte")).current is None
    with pytest.raises(ValueError):
        plots.deployment_map_info(sw, server="xeon")


def test_training_info_marks_the_best_and_kept_epochs(tmp_path: Path) -> None:
    def net(acc: list[float], kept: int) -> SimpleNamespace:
        return SimpleNamespace(
            history=tuple(
                {"epoch": i + 1, "loss": 2.0 / (i + 1), "val_accuracy": a}
                for i, a in enumerate(acc)
            ),
            epoch_kept=kept,
        )

    info = plots.training_info(
        {"dense": net([0.5, 0.9, 0.8, 0.9], 4), "auto": net([0.4, 0.7, 0.6], 2), "none": net([], 0)}
    )
    assert info.networks == ("dense", "auto")  # no history: left out
    assert info.best_epoch == (2, 2) and info.kept_epoch == (4, 2)
    assert info.loss[0].tolist() == [2.0, 1.0, 2.0 / 3, 0.5]
    paths = plots.render_training(info, tmp_path / "training")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size for p in paths)
