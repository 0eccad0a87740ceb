"""`dse train --tasks`: one backbone, one head per task, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.cli import main

ARGS = [
    "train",
    "mlp",
    "--data",
    "shapes3d",
    "--n",
    "300",
    "--size",
    "16",
    "--epochs",
    "1",
    "--quiet",
]


def test_train_with_several_tasks_prints_and_writes_each_tasks_accuracy(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                *ARGS,
                "--tasks",
                "wall_hue,floor_hue",
                "--json",
                "out.json",
                "--cache-dir",
                str(study_folder / "cache"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "task wall_hue: final test accuracy" in out
    assert "task floor_hue: final test accuracy" in out
    assert "one head per task (2-layer MLP head" in out
    info = json.loads((study_folder / "out.json").read_text())
    assert info["tasks"] == ["wall_hue", "floor_hue"]
    assert set(info["task_accuracy"]) == {"wall_hue", "floor_hue"}
    assert info["accuracy"] == info["task_accuracy"]["wall_hue"]  # the first task's


def test_train_with_an_unknown_task_names_the_flag_and_the_sets_tasks(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main([*ARGS, "--tasks", "wall_hue,nope", "--cache-dir", str(study_folder / "cache")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("dse: error: command line: --tasks: unknown task 'nope'")
    assert "object_scale" in err[0]
