"""The same spec and seed give the same weights and the same answer: a small study run
twice, each time with its own training cache and storage, once here and once in a fresh
process, as a fresh clone would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.specs import spec as spec_text

from dse.nets import Cache
from dse.search import Explorer, decision_record, load_spec, recommend, run_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.heavy  # two studies, one in a fresh process: 14 s
def test_a_study_run_twice_trains_the_same_weights_and_gives_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = []
    for name in ("first", "second"):
        folder = tmp_path / name
        (folder / "studies").mkdir(parents=True)
        (folder / "studies" / "again.toml").write_text(
            spec_text("again", n_trials=12, training={"epochs": 2})
        )
        runs.append(folder)
    # the first here, in this process
    monkeypatch.chdir(runs[0])
    monkeypatch.setenv("DSE_CACHE", str(runs[0] / "cache"))
    spec = load_spec("studies/again.toml")
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    here = decision_record(recommend(study, spec, explorer), exit_names=explorer.exit_names)
    # the second in a fresh process, its own cache and storage
    env = {**os.environ, "DSE_CACHE": str(runs[1] / "cache"), "PYTHONPATH": str(ROOT)}
    for argv in (
        ["study", "run", "studies/again.toml", "--quiet"],
        ["recommend", "again", "--json", "answer.json", "--quiet"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "dse.cli", *argv],
            cwd=runs[1],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    there = json.loads((runs[1] / "answer.json").read_text())
    # the same networks, weight for weight
    a, b = Cache(runs[0] / "cache"), Cache(runs[1] / "cache")
    keys = sorted(a.keys())
    assert keys and keys == sorted(b.keys())
    for key in keys:
        sa, sb = a.get(key)["state"], b.get(key)["state"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), key
    # the same answer, the same front
    assert here["recommended"] == there["recommended"]
    assert here["front"] == there["front"] and here["floor"] == there["floor"]
