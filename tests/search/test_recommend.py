"""The answer gathered for a stored study: every scored point (trials, the exhaustive grid,
the baselines' fronts), the learned floor of each task, the outputs under it, the grid's
budget; and ``dse recommend`` printing it or saying why there is none."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers.specs import spec as spec_text

import dse.search.recommendation as recommendation
from dse.cli import main
from dse.nets import Cache, chance_accuracy, learning_floor
from dse.search import (
    Explorer,
    StudySpec,
    create_study,
    decision_grid,
    parse_spec,
    recommend,
    run_study,
    task_floors,
    untrained_networks,
)
from dse.search.baselines import load_grid
from dse.search.frames import trials_frame
from dse.search.recommendation import candidate_points, config_keys


@pytest.fixture(autouse=True)
def _isolated(study_folder: Path) -> None:
    """Every test in its own folder, all sharing one training cache (see conftest)."""


def make_spec(name: str, **kw: object) -> StudySpec:
    return parse_spec(spec_text(name, **kw), where=f"{name}.toml")  # type: ignore[arg-type]


def test_every_scored_point_is_a_candidate_once_and_says_who_found_it() -> None:
    spec = make_spec("gather", n_trials=6, sampler="random")
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    explorer.train_free()  # whatever the trials drew: a view trains nothing for the grid
    decision = recommend(study, spec, explorer)
    grid = load_grid(spec.name, spec)
    assert grid is not None and "is among the points decided on" in decision.grid_note
    trials = trials_frame(study)
    points = candidate_points(trials, grid, spec.objectives)
    # each configuration once: a trial and the grid's row of it are one candidate
    keys = config_keys(points)
    assert keys.is_unique and len(points) == len(grid.frame)
    assert (points.source == "study").sum() == config_keys(trials).nunique()
    # the grid's rows the baselines' fronts hold carry their names; Edgent's right-sized
    # points (thresholds start at 0.5 here) are Edgent's
    sources = set(points.source)
    assert {"grid", "edgent"} <= sources and sources & {"edge-only", "server-only"}
    # the answer is never beaten on every objective by any candidate above the floor
    rec = decision.recommended
    assert rec is not None
    names = list(spec.objectives)
    sign = [-1.0 if d == "maximize" else 1.0 for d in spec.objectives.values()]
    mine = [s * rec.metrics[n] for s, n in zip(sign, names, strict=True)]
    floor = decision.floors[0].floor
    for _, row in points[points.feasible & (points.accuracy >= floor)].iterrows():
        theirs = [s * row[n] for s, n in zip(sign, names, strict=True)]
        better = all(t <= m for t, m in zip(theirs, mine, strict=True))
        assert not (better and any(t < m for t, m in zip(theirs, mine, strict=True)))
    if rec.source != "study":
        assert "the search did not reach it" in rec.found_by()


def test_floors_come_from_the_validation_labels_and_a_spec_may_raise_them() -> None:
    spec = make_spec("floors")
    explorer = Explorer(spec, progress=False)
    (floor,) = task_floors(spec, explorer)
    labels = explorer.data.val.y[explorer.data.task]
    chance = chance_accuracy(labels, explorer.data.classes[explorer.data.task])
    assert (floor.column, floor.chance, floor.floor) == ("accuracy", chance, learning_floor(chance))
    assert floor.constraint == ""
    raised = make_spec("raised", constraints={"accuracy": ">= 0.9"})
    (high,) = task_floors(raised, Explorer(raised, progress=False))
    assert high.floor == 0.9 and high.constraint == "accuracy >= 0.9"
    lower = make_spec("lower", constraints={"accuracy_min": ">= 0.05"})  # below the rule's
    assert task_floors(lower, Explorer(lower, progress=False))[0].floor == floor.floor


def test_each_output_under_its_floor_is_named_once(tmp_path: Path) -> None:
    text = spec_text("unlearned", n_trials=3, training={"lr": 1e-5})
    spec = parse_spec(text, where="unlearned.toml")
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    decision = recommend(study, spec, explorer)
    assert decision.recommended is None
    assert decision.reason.startswith("no configuration learned")
    named = [(u.network, u.output) for u in decision.not_learned]
    assert len(named) == len(set(named)) and ("dense", "final classifier") in named
    for u in decision.not_learned:
        assert u.accuracy < u.floor == learning_floor(u.chance)
        assert u.text().startswith(f"{u.network}, {u.output}: ")


def test_a_space_over_the_budget_is_decided_on_the_trials_until_its_grid_is_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = make_spec("budget", n_trials=5, sampler="random")
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    explorer.train_free()
    monkeypatch.setattr(recommendation, "GRID_BUDGET", explorer.space.size() - 1)
    grid, note = decision_grid(study, explorer)
    assert grid is None and load_grid(spec.name, spec) is None  # nothing scored
    assert note.startswith("The exhaustive grid is not among the points decided on")
    assert "dse study grid" in note
    alone = recommend(study, spec, explorer)
    assert alone.recommended is not None and alone.recommended.source == "study"
    assert alone.candidates <= 5
    assert main(["study", "grid", "budget.toml", "--quiet"]) == 2  # no spec file here
    Path("budget.toml").write_text(spec.text)
    assert main(["study", "grid", "budget.toml", "--quiet"]) == 0
    grid, note = decision_grid(study, explorer)  # saved now: every view includes it
    assert grid is not None and "is among the points" in note
    assert recommend(study, spec, explorer).candidates == len(grid.frame)


def test_a_view_trains_no_network_to_score_the_grid(tmp_path: Path) -> None:
    spec = make_spec("untrained", n_trials=2)
    explorer = Explorer(spec, cache=Cache(tmp_path / "fresh"), progress=False)
    study, _ = create_study(spec, explorer=explorer)
    study.enqueue_trial({"density": 1.0, "split": 6, "exit_0": False, "exit_1": False})
    study.enqueue_trial({"density": 1.0, "split": 3, "exit_0": False, "exit_1": False})
    study = run_study(spec, progress=False, explorer=explorer)
    assert untrained_networks(explorer) == ["predefined@0.5"]
    decision = recommend(study, spec, explorer)
    assert untrained_networks(explorer) == ["predefined@0.5"]  # still: nothing trained
    assert load_grid(spec.name, spec) is None and decision.candidates == 2
    assert decision.grid_note == (
        "The exhaustive grid is not among the points decided on: 1 of its networks is not "
        "trained yet (predefined@0.5); run dse study grid studies/untrained.toml once to "
        "include it."
    )


def test_recommend_prints_the_answer_or_exits_1_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("ok.toml").write_text(spec_text("ok", n_trials=6))
    assert main(["study", "run", "ok.toml", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["recommend", "ok", "--json", "ok.json", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: Deploy ") and " ± " in out.splitlines()[0]
    assert "Why: Chosen among " in out and "recommended" in out
    doc = json.loads(Path("ok.json").read_text())
    assert {"recommended", "floor", "validation_samples", "front", "not_learned"} <= set(doc)
    rec = doc["recommended"]
    assert rec["source"] in ("study", "grid", "edge-only", "server-only", "edgent", "spinn")
    assert (rec["trial"] is None) == (rec["source"] != "study")
    assert {"config", "metrics", "test_metrics"} <= set(rec)
    assert set(doc["floor"]) >= {"accuracy", "chance"} and doc["validation_samples"] == 270
    assert all({"metrics", "configurations"} <= set(p) for p in doc["front"])
    assert rec["config"] in [p["config"] for p in doc["front"]]

    text = spec_text("nothing", n_trials=3, training={"lr": 1e-5})
    Path("nothing.toml").write_text(text)
    assert main(["study", "run", "nothing.toml", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["recommend", "nothing", "--json", "nothing.json", "--quiet"]) == 1
    said = capsys.readouterr()
    assert said.out == "" and "No configuration learned: " in said.err
    assert "chance" in said.err and "final classifier" in said.err
    doc = json.loads(Path("nothing.json").read_text())
    assert doc["recommended"] is None and doc["reason"].startswith("no configuration learned")
    assert doc["front"] == [] and doc["not_learned"]


def test_a_configuration_two_trials_drew_is_one_configuration() -> None:
    spec = make_spec("twice", n_trials=5, sampler="random")
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    trials = trials_frame(study)
    again = trials.iloc[[0]].assign(trial=99)
    points = candidate_points(pd.concat([trials, again]), None, spec.objectives)
    assert len(points) == config_keys(trials).nunique() and 99 not in set(points.trial)
