"""The exhaustive grid and the baselines as restricted subsets of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import spec

from dse.nets.cache import Cache
from dse.search.baselines import (
    BASELINES,
    Grid,
    compare,
    edgent_in_space,
    grid_hypervolume,
    load_grid,
    restrict,
    run_grid,
    save_grid,
    verdicts,
)
from dse.search.explorer import Explorer
from dse.search.frames import study_hypervolume, trials_frame
from dse.search.pareto import hypervolume
from dse.search.space import Candidate
from dse.search.spec import StudySpec, parse_spec
from dse.search.study import create_study, run_study


def grid_spec(name: str, **overrides: object) -> str:
    """The tiny study, 60 trials."""
    return spec(name, **{"n_trials": 60, **overrides})


pytestmark = pytest.mark.usefixtures("study_folder")


@pytest.fixture(scope="module", name="spec")
def grid_tiny() -> StudySpec:
    return parse_spec(grid_spec("grid-tiny"), where="grid-tiny.toml")


@pytest.fixture(scope="module")
def explorer(spec: StudySpec, shared_cache: Path) -> Explorer:
    return Explorer(spec, cache=Cache(shared_cache), progress=False)


@pytest.fixture(scope="module")
def grid(explorer: Explorer) -> Grid:
    return run_grid(explorer)


def _as_loss(values: np.ndarray, directions: list[str]) -> np.ndarray:
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float) * sign


KNOBS = ["knob_method", "knob_density", "knob_split", "knob_exits", "knob_threshold"]


def test_the_grid_holds_the_whole_space_plus_the_edgent_points(
    explorer: Explorer, grid: Grid
) -> None:
    space = explorer.space
    # 2 networks x 7 cuts x (3 non-empty exit subsets x 3 thresholds + 1 without exits)
    assert space.size() == 2 * 7 * (3 * 3 + 1) == 140
    assert len(list(space.enumerate())) == space.size()
    edgent = len(space.cuts) * len(space.allowed_exits)
    assert len(grid.frame) == space.size() + edgent
    assert (grid.frame.source == "space").sum() == space.size()
    assert (grid.frame.source == "edgent").sum() == edgent
    cands = {(c.network[0], c.density, c.split, c.exits, c.threshold) for c in space.enumerate()}
    rows = grid.frame[grid.frame.source == "space"]
    assert set(rows[KNOBS].itertuples(index=False, name=None)) == cands
    assert grid.frame.feasible.all()  # no constraint


def test_the_grid_pareto_column_is_the_non_dominated_set(spec: StudySpec, grid: Grid) -> None:
    # the reference front is the space's own candidates; the edgent right-sizing points
    # (threshold 0) lie outside what a sampler can draw and are never flagged
    names = list(spec.objectives)
    own = grid.frame[grid.frame.source == "space"]
    losses = _as_loss(own[names].to_numpy(), spec.directions)
    brute = np.array([not any(np.all(o <= x) and np.any(o < x) for o in losses) for x in losses])
    assert (own.pareto.to_numpy() == brute).all()
    assert not grid.frame[grid.frame.source == "edgent"].pareto.any()
    assert 1 < brute.sum() < len(brute)


def test_every_study_trial_is_weakly_dominated_by_the_grid_front(
    spec: StudySpec, explorer: Explorer, grid: Grid
) -> None:
    study = run_study(spec, storage="memory", progress=False, explorer=explorer)
    trials = trials_frame(study)
    assert len(trials) == spec.n_trials
    names = list(spec.objectives)
    front = _as_loss(grid.frame[grid.frame.pareto][names].to_numpy(), spec.directions)
    for values in _as_loss(trials[names].to_numpy(), spec.directions):
        assert any(np.all(p <= values) for p in front), values
    # each trial is a grid candidate, knob for knob, with the same metrics
    space = grid.frame[grid.frame.source == "space"]
    lookup = dict(
        zip(space[KNOBS].itertuples(index=False, name=None), space[names].to_numpy(), strict=True)
    )
    for knobs, values in zip(
        trials[KNOBS].itertuples(index=False, name=None), trials[names].to_numpy(), strict=True
    ):
        np.testing.assert_array_equal(lookup[knobs], values)
    # measured on the grid's ruler, the sampler cannot beat the grid
    assert study_hypervolume(study, spec, grid.ruler) <= grid_hypervolume(grid) + 1e-12


def test_restrict_picks_what_each_baseline_may_choose(explorer: Explorer, grid: Grid) -> None:
    df = grid.frame
    space = explorer.space
    n_cuts, last = len(space.cuts), max(space.cuts)
    no_exit = df.knob_exits.map(len) == 0

    edge = restrict(df, "edge-only")
    assert len(edge) == 1
    assert edge.iloc[0][KNOBS[:4]].tolist() == ["dense", 1.0, last, ()]
    assert edge.iloc[0].bandwidth == 0.0
    server = restrict(df, "server-only")
    assert len(server) == 1
    assert server.iloc[0][KNOBS[:4]].tolist() == ["dense", 1.0, 0, ()]

    neuro = restrict(df, "neurosurgeon")
    assert len(neuro) == n_cuts and set(neuro.knob_split) == set(space.cuts)
    assert (neuro.knob_method == "dense").all() and (neuro.knob_exits.map(len) == 0).all()

    edgent = restrict(df, "edgent")
    right_sized = edgent[edgent.source == "edgent"]
    assert len(edgent) == n_cuts + n_cuts * len(space.allowed_exits)
    assert (right_sized.knob_threshold == 0.0).all()
    assert (right_sized.knob_exits.map(len) == 1).all()
    # threshold 0: every sample leaves at the one exit
    assert all(r[0] == 1.0 for r in right_sized.exit_rates)
    assert len(edgent[edgent.source == "space"]) == n_cuts  # plus the no-exit cuts

    spinn = restrict(df, "spinn")
    assert (spinn.knob_method == "dense").all() and (spinn.source == "space").all()
    assert set(spinn.knob_exits) == {(), tuple(space.allowed_exits)}
    assert len(spinn) == n_cuts * (len(space.thresholds) + 1)

    assert len(restrict(df, "joint")) == len(df)
    assert not (df[no_exit & (df.knob_method == "dense")].empty)
    with pytest.raises(ValueError):
        restrict(df, "alchemy")


def _study_rows(explorer: Explorer, spec: StudySpec, cands: list[Candidate]) -> pd.DataFrame:
    """A study of exactly ``cands`` (enqueued), run to completion: its trials frame."""
    study, _ = create_study(spec, explorer=explorer)
    for c in cands:
        study.enqueue_trial(
            {
                "density": c.density,
                "split": explorer.space.cuts.index(c.split),
                **{f"exit_{i}": i in c.exits for i in explorer.space.allowed_exits},
                "threshold": c.threshold,
            }
        )
    study = run_study(spec, n_trials=len(cands), progress=False, explorer=explorer)
    return trials_frame(study)


def test_compare_scores_baselines_by_their_grid_front_and_joint_by_the_trials(
    explorer: Explorer, spec: StudySpec, grid: Grid
) -> None:
    trials = trials_frame(run_study(spec, progress=False, explorer=explorer))
    table = compare(grid, spec, trials)
    # auto-split searches codecs: a space without them has no such row (it would be
    # neurosurgeon)
    assert list(table.index) == [b for b in BASELINES if b != "auto-split"]
    names = list(spec.objectives)
    for b in table.index[:-1]:
        row = table.loc[b]
        allowed = restrict(grid.frame, b)
        assert row.candidates == len(allowed)
        assert row.hv == pytest.approx(hypervolume(grid.ruler.loss(allowed[names].to_numpy())))
    # the joint row is the study's trials, not the grid
    joint = table.loc["joint"]
    own = trials[trials.feasible]
    assert joint.candidates == len(own) == spec.n_trials
    assert joint.hv == pytest.approx(hypervolume(grid.ruler.loss(own[names].to_numpy())))
    assert joint.hv <= grid_hypervolume(grid) + 1e-12
    ref = table.attrs["reference_accuracy"]
    matched = own[own.accuracy >= ref - 0.01]
    assert joint.matched == len(matched)
    assert joint.latency_s == matched.latency_mean.min()
    assert joint.test_accuracy == matched.loc[matched.latency_mean.idxmin()].test_accuracy
    for b in table.index:
        row = table.loc[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            assert row.latency_s_ratio == pytest.approx(
                row.latency_s / joint.latency_s, nan_ok=True
            )
    # matched accuracy is measured against the dense, server-only network: its final
    # classifier's validation accuracy
    dense = explorer.scorer("dense", 1.0).trained
    assert ref == pytest.approx(dense.accuracy("val")[-1])
    assert ref == restrict(grid.frame, "server-only").accuracy.iloc[0]
    assert table.loc["server-only"].matched == 1
    # the tiny spec's thresholds start at 0.5: edgent's right-sized points are outside
    assert not table.loc["edgent"].in_space and table.loc["neurosurgeon"].in_space


def test_a_baseline_that_beats_a_short_study_is_reported_as_winning(
    explorer: Explorer, spec: StudySpec, grid: Grid
) -> None:
    """Five server-only trials against Neurosurgeon's full sweep of cuts: Neurosurgeon's
    best cut is faster than sending the input over the link, and the comparison says so."""
    short = parse_spec(grid_spec("grid-short", n_trials=5), where="grid-short.toml")
    ex = Explorer(short, cache=explorer.cache, progress=False)
    server_only = Candidate("dense", 1.0, 0, (), 0.5)
    trials = _study_rows(ex, short, [server_only] * 5)
    table = compare(grid, spec, trials)
    neuro, joint = table.loc["neurosurgeon"], table.loc["joint"]
    assert joint.latency_s == explorer.evaluate(server_only).latency_mean
    assert neuro.latency_s < joint.latency_s
    assert neuro.latency_s_ratio < 1.0  # printed as it is, not clipped or inverted
    said = verdicts(table)
    assert any(
        s.startswith("neurosurgeon beats the study's trials on mean latency") for s in said
    ), said
    assert any(s.startswith("neurosurgeon covers more of the objective space") for s in said)
    # and a study with no trials says so instead of inventing a joint row
    empty = compare(grid, spec, None)
    assert np.isnan(empty.loc["joint"].latency_s) and empty.loc["joint"].candidates == 0
    assert "no completed trials" in verdicts(empty)[0]


def test_a_spec_with_threshold_0_holds_edgent_in_its_own_space(shared_cache: Path) -> None:
    text = grid_spec("grid-right-sized", space={"thresholds": {"low": 0.0}})
    spec0 = parse_spec(text, where="grid-right-sized.toml")
    assert edgent_in_space(spec0)
    grid0 = run_grid(Explorer(spec0, cache=Cache(shared_cache), progress=False))
    assert set(grid0.frame.source) == {"space"}  # nothing scored beside the space
    edgent = restrict(grid0.frame, "edgent")
    right_sized = edgent[edgent.knob_exits.map(len) == 1]
    assert len(right_sized) > 0 and (right_sized.knob_threshold == 0.0).all()
    assert all(r[0] == 1.0 for r in right_sized.exit_rates)
    assert compare(grid0, spec0, None).loc["edgent"].in_space


def test_compare_keeps_each_baseline_to_its_own_configurations_under_constraints(
    shared_cache: Path,
) -> None:
    """A memory bound that rules out the edge-only network leaves edge-only with nothing;
    it must not turn the deepest feasible cut into an 'edge-only' candidate."""
    spec = parse_spec(grid_spec("grid-bounded", constraints={"edge_memory": "<= 1e5"}))
    explorer = Explorer(spec, cache=Cache(shared_cache), progress=False)
    grid = run_grid(explorer)
    assert not grid.frame.feasible.all() and grid.frame.feasible.any()
    assert (grid.frame[grid.frame.pareto].edge_memory <= 1e5).all()
    table = compare(grid, spec, None)
    edge_only = table.loc["edge-only"]
    assert edge_only.candidates == 0 and edge_only.hv == 0.0 and edge_only.matched == 0
    assert np.isnan(edge_only.latency_s)
    for b in table.index[:-1]:  # (the joint row is the study's trials: none here)
        allowed = restrict(grid.frame, b)
        assert table.loc[b].candidates == int(allowed.feasible.sum()), b
    assert table.loc["server-only"].candidates == 1


def test_save_and_load_grid_round_trip(spec: StudySpec, grid: Grid, tmp_path: Path) -> None:
    assert load_grid(spec.name) is None
    path = save_grid(grid, spec.name)
    assert path == Path("studies") / f"{spec.name}.grid.csv" and path.exists()
    back = load_grid(spec.name)
    assert back is not None
    assert back.ruler == grid.ruler and back.seconds == pytest.approx(grid.seconds)
    for col in ("knob_exits", "exit_rates", "test_exit_rates"):
        assert all(isinstance(v, tuple) for v in back.frame[col]), col
    assert set(back.frame.knob_exits) == set(grid.frame.knob_exits)
    pd.testing.assert_frame_equal(
        back.frame, grid.frame, check_exact=False, rtol=1e-12, check_dtype=False
    )
    assert grid_hypervolume(back) == pytest.approx(grid_hypervolume(grid), rel=1e-12)
    assert (tmp_path / "studies" / f"{spec.name}.grid.json").exists()


def test_an_edgent_point_is_a_right_sized_network(explorer: Explorer) -> None:
    """Threshold 0 at one exit: the accuracy is that exit's, the cost its path's."""
    m = explorer.evaluate(Candidate("dense", 1.0, 4, (0,), 0.0))
    trained = explorer.scorer("dense", 1.0).trained
    assert m.exit_rates == (1.0, 0.0)
    assert m.accuracy == pytest.approx(trained.accuracy("val")[0])
    assert m.bandwidth == 0.0  # exit 0 sits before cut 4: on the edge
