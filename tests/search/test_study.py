"""The joint study: determinism, what is stored per trial, one training per network,
resuming, constraints, failing candidates and name clashes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import spec, write_spec
from optuna.trial import TrialState
from other_worker import hold, hold_claim

from dse.cli import main
from dse.errors import InputError
from dse.nets.cache import Cache
from dse.search.explorer import Explorer
from dse.search.frames import front_frame, record_of, trials_frame
from dse.search.space import Candidate
from dse.search.spec import StudySpec, parse_spec
from dse.search.storage import LOST_ATTR, STUDIES_DIR
from dse.search.study import create_study, load_study, resume_study, run_study, stored_study
from dse.search.study_status import status
from dse.search.verification import verify


def make_spec(name: str, **overrides: object) -> StudySpec:
    """The tiny study named ``name`` (helpers.specs), parsed."""
    return parse_spec(spec(name, **overrides), where=f"{name}.toml")


pytestmark = pytest.mark.usefixtures("study_folder")


def explorer_for(spec: StudySpec) -> Explorer:
    return Explorer(spec, progress=False)


def run_beside_a_worker(spec: StudySpec, explorer: Explorer) -> optuna.Study:
    """``run_study`` while another process is registered as a worker of the study."""
    create_study(spec, explorer=explorer)
    other = hold(spec.name, index=0)
    try:
        return run_study(spec, progress=False, explorer=explorer)
    finally:
        other.kill()
        other.wait(timeout=30)


def enqueue(
    study: optuna.Study,
    density: float,
    split: int,
    exits: tuple[int, ...],
    threshold: float,
    **extra: object,
) -> None:
    study.enqueue_trial(
        {
            "density": density,
            "split": split,
            "exit_0": 0 in exits,
            "exit_1": 1 in exits,
            "threshold": threshold,
            **extra,
        }
    )


def snapshot(study: optuna.Study) -> list[tuple]:
    return [
        (t.number, t.state, t.params, t.values, t.user_attrs, t.datetime_start, t.datetime_complete)
        for t in study.get_trials()
    ]


def dominates(a: np.ndarray, b: np.ndarray, directions: list[str]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    la, lb = a * sign, b * sign
    return bool(np.all(la <= lb) and np.any(la < lb))


# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "n_trials"), [pytest.param("nsga2", 60, marks=pytest.mark.slow), ("tpe", 20)]
)
def test_same_spec_and_seed_give_identical_trials_and_front(
    tmp_path: Path, sampler: str, n_trials: int
) -> None:
    """NSGA-II past its first population of 50, TPE past its 10 start-up trials; one run
    in memory, one in a journal file."""
    spec = make_spec("det", sampler=sampler, n_trials=n_trials)
    runs = []
    for store in ("memory", str(tmp_path / "b.journal")):
        study = run_study(spec, storage=store, progress=False, explorer=explorer_for(spec))
        trials = study.get_trials()
        assert len(trials) == n_trials and all(t.state == TrialState.COMPLETE for t in trials)
        runs.append(
            ([(t.params, t.values) for t in trials], front_frame(study, spec).trial.tolist())
        )
    assert runs[0] == runs[1]
    params = runs[0][0]
    assert len({tuple(sorted(p.items())) for p, _ in params}) > n_trials // 2  # not one point
    assert runs[0][1]  # a front


def test_an_enqueued_candidate_stores_what_explorer_evaluate_gives() -> None:
    spec = make_spec("enq", n_trials=1, constraints={"edge_memory": "<= 1e5"})
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 0.5, 4, (0,), 0.75)
    study = run_study(spec, n_trials=1, progress=False, explorer=explorer)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    cand = Candidate("predefined", 0.5, 4, (0,), 0.75)
    expected = explorer_for(spec).evaluate(cand).as_dict()  # a fresh explorer, same cache
    stored = record_of(trial)
    assert stored["knobs"] == cand.as_dict()
    assert stored["metrics"] == expected
    assert trial.values == [expected[k] for k in spec.objectives]
    assert stored["constraints"] == [expected["edge_memory"] - 1e5]
    # one JSON string (Optuna deep-copies attributes; a string copies for free), and a
    # record an older study stored as a dict reads the same
    assert isinstance(trial.user_attrs["dse"], str)
    older = optuna.trial.create_trial(values=trial.values, user_attrs={"dse": stored})
    assert record_of(older) == stored
    # and read back from the journal by name
    again, _ = load_study("enq")
    assert record_of(again.get_trials()[0]) == stored
    row = trials_frame(again).iloc[0]
    assert row.knob_exits == (0,) and row.knob_density == 0.5 and row.knob_split == 4
    assert row.feasible == (expected["edge_memory"] <= 1e5)


def test_one_training_per_distinct_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_CACHE", str(tmp_path / "fresh-cache"))
    spec = make_spec("train-once", space={"methods": ["predefined", "channels"]}, n_trials=10)
    explorer = explorer_for(spec)
    # densities [1, 0.5] x methods [predefined, channels]: the dense net is one, so three
    assert explorer.space.networks() == [("dense", 1.0), ("predefined", 0.5), ("channels", 0.5)]
    study, _ = create_study(spec, explorer=explorer)
    for method in ("predefined", "channels"):
        for density in (1.0, 0.5):
            enqueue(study, density, 3, (0, 1), 0.5, method=method)
    study = run_study(spec, progress=False, explorer=explorer)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 10
    keys = explorer.training_keys()
    assert len(keys) == 3
    assert set(explorer.trained_now) == keys and explorer.loaded == set()
    assert sorted(Cache(tmp_path / "fresh-cache").keys()) == sorted(keys)
    info = status(study, spec)
    assert info["networks_used"] == 3 and info["trainings_run"] == 3
    assert sorted(t["network"] for t in info["trained"]) == [
        "channels@0.5",
        "dense",
        "predefined@0.5",
    ]
    assert info["training_seconds"] == pytest.approx(sum(explorer.trained_now.values()))

    # a second process (a fresh explorer) on the same cache trains nothing: its study
    # used three networks and ran no training
    again = make_spec("train-again", space={"methods": ["predefined", "channels"]}, n_trials=10)
    second = explorer_for(again)
    other, _ = create_study(again, explorer=second)
    for method in ("predefined", "channels"):
        for density in (1.0, 0.5):
            enqueue(other, density, 3, (0, 1), 0.5, method=method)
    other = run_study(again, progress=False, explorer=second)
    assert second.trained_now == {} and second.loaded == keys
    info = status(other, again)
    assert info["networks_used"] == 3 and info["trainings_run"] == 0
    assert info["trained"] == [] and info["training_seconds"] == 0


def test_without_exits_the_threshold_is_not_a_knob() -> None:
    """Three trials that differ only in a threshold no exit uses are one configuration:
    the same knobs, the same metrics, one row of the front; the threshold is not even
    drawn (no trial holds it as a parameter)."""
    spec = make_spec("no-exit", n_trials=3)
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    for tau in (0.5, 0.75, 1.0):
        enqueue(study, 1.0, 6, (), tau)
    study = run_study(spec, progress=False, explorer=explorer)
    trials = study.get_trials()
    assert ["threshold" in t.params for t in trials] == [False, False, False]
    knobs = [record_of(t)["knobs"] for t in trials]
    assert knobs[0] == knobs[1] == knobs[2] and knobs[0]["threshold"] == spec.thresholds[0]
    assert trials[0].values == trials[1].values == trials[2].values
    front = front_frame(study, spec)
    assert len(front) == 1 and front.trial[0] == 0


def test_resume_keeps_every_completed_trial() -> None:
    spec = make_spec("resume", n_trials=10)
    first = run_study(spec, n_trials=5, progress=False, explorer=explorer_for(spec))
    before = snapshot(first)
    assert len(before) == 5
    study = resume_study("resume", n_trials=10, progress=False)
    after = snapshot(study)
    assert len(after) == 10 and all(s == TrialState.COMPLETE for _, s, *_ in after)
    assert after[:5] == before
    # asking for no more than it has runs nothing
    assert len(resume_study("resume", n_trials=10, progress=False).get_trials()) == 10


def test_a_trial_left_running_by_a_crash_is_failed_on_resume() -> None:
    spec = make_spec("crash", n_trials=6)
    study = run_study(spec, n_trials=3, progress=False, explorer=explorer_for(spec))
    crashed = study.ask()  # asked, never told: what a killed process leaves behind
    explorer_for(spec).space.suggest(crashed)
    assert study.get_trials()[-1].state == TrialState.RUNNING
    done = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
    study = resume_study("crash", n_trials=6, progress=False)
    trials = study.get_trials()
    assert not study.get_trials(states=(TrialState.RUNNING,))
    stale = trials[crashed.number]
    assert stale.state == TrialState.FAIL
    assert "ended without finishing" in stale.system_attrs[LOST_ATTR]
    assert {t.number: t.values for t in trials[:3]} == done
    # the lost trial is retried with its parameters and does not count: 6 complete
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == crashed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == stale.params and stale.params
    assert len(trials) == 7
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 6


def test_a_live_workers_running_trial_survives_another_run() -> None:
    """Parallel workers: one is mid-trial (training, say) when another starts."""
    spec = make_spec("parallel", n_trials=4)
    study = run_study(spec, n_trials=2, progress=False, explorer=explorer_for(spec))
    busy = study.ask()  # the other worker's trial, in flight
    other = hold("parallel")
    try:
        # the other worker finishes its trial a while later, as if nothing happened
        finish = threading.Timer(3.0, lambda: study.tell(busy, [0.5, 0.01, 1000.0]))
        finish.start()
        started = time.monotonic()
        study = resume_study("parallel", n_trials=4, progress=False)
        finish.join()
        # the live trial was left alone and counted towards n_trials (4, not 5), and this
        # run waited for it before returning, in case its worker died
        assert time.monotonic() - started >= 3.0
        assert study.get_trials()[busy.number].state == TrialState.COMPLETE
        assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 4
        crashed = study.ask()
    finally:
        other.kill()  # it dies without cleaning up
        other.wait(timeout=30)
    study = resume_study("parallel", n_trials=6, progress=False)
    left = study.get_trials()[crashed.number]
    assert left.state == TrialState.FAIL and LOST_ATTR in left.system_attrs
    assert [t.state for t in study.get_trials()].count(TrialState.COMPLETE) == 6


def test_a_second_worker_draws_other_points_and_all_stop_at_n_trials() -> None:
    spec = make_spec("workers", sampler="random", n_trials=8)
    alone = run_study(
        make_spec("alone", sampler="random", n_trials=8),
        progress=False,
        explorer=explorer_for(spec),
    )
    explorer = explorer_for(spec)
    first = True

    def evaluate_while_another_finishes(cand: Candidate):  # type: ignore[no-untyped-def]
        nonlocal first
        if first:  # the other worker reports three trials meanwhile
            first = False
            other, _ = load_study("workers")
            for t in alone.get_trials()[:3]:
                other.add_trial(t)
        return explorer.evaluate(cand)

    explorer.evaluate = evaluate_while_another_finishes  # type: ignore[method-assign]
    study = run_beside_a_worker(spec, explorer)
    trials = study.get_trials()
    assert len(trials) == 8  # 3 of the other's and 5 of its own, not 3 + 8
    own = [t.params for t in trials if t.number == 0 or t.number > 3]
    theirs = [t.params for t in alone.get_trials()]
    # its own seed: not the other's draws again. (A threshold is drawn only with an exit,
    # so in this small space two seeds may meet on a point by chance; one seed shared
    # would repeat the other's sequence, every point of it.)
    assert own and own != theirs[: len(own)]
    assert sum(p not in theirs for p in own) > len(own) / 2


def test_parallel_workers_first_train_the_networks_no_one_else_is_training(
    tmp_path: Path,
) -> None:
    spec = make_spec("free")
    cache = Cache(tmp_path / "fresh")
    explorer = Explorer(spec, cache=cache, progress=False)
    networks = explorer.space.networks()
    keys = [explorer.network_spec(m, d).key for m, d in networks]
    assert len(networks) >= 2
    other = hold_claim(cache.root, keys[0])  # another worker is training the first
    try:
        assert cache.busy(keys[0]) and not cache.busy(keys[1])
        assert explorer.train_free() == len(networks) - 1
        assert not cache.path(keys[0]).exists()
        assert all(cache.path(k).exists() for k in keys[1:])
    finally:
        other.kill()
        other.wait(timeout=30)
    assert not cache.busy(keys[0])  # the lock went with the process
    assert explorer.train_free() == 1 and explorer.train_free() == 0
    assert set(explorer.trained_now) == set(keys)


def test_a_worker_joining_a_finished_study_trains_nothing(tmp_path: Path) -> None:
    spec = make_spec("joined", n_trials=3)
    run_study(spec, progress=False, explorer=explorer_for(spec))
    late = Explorer(spec, cache=Cache(tmp_path / "empty"), progress=False)
    study = run_beside_a_worker(spec, late)
    assert len(study.get_trials()) == 3 and not late.trained_now


def test_a_memory_bound_keeps_edge_heavy_configs_off_the_front() -> None:
    bound = 1e5  # bytes: the dense net's cuts >= 4 hold ~200 KB on the edge
    spec = make_spec("bounded", n_trials=40, constraints={"edge_memory": f"<= {bound:g}"})
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 1.0, 6, (), 0.5)  # edge-only: fastest and most frugal, and too big
    study = run_study(spec, progress=False, explorer=explorer)
    df = trials_frame(study)
    assert len(df) == 40
    heavy = df[df.edge_memory > bound]
    assert len(heavy) > 0 and not heavy.feasible.any()
    assert df[df.edge_memory <= bound].feasible.all()
    front = front_frame(study, spec)
    assert len(front) > 0 and (front.edge_memory <= bound).all()
    # the front is exactly the non-dominated feasible trials
    names, dirs = list(spec.objectives), spec.directions
    feas = df[df.feasible]
    values = feas[names].to_numpy()
    expected = {
        int(n)
        for n, v in zip(feas.trial, values, strict=True)
        if not any(dominates(w, v, dirs) for w in values)
    }
    assert set(front.trial) <= expected
    # (front_frame drops a second trial of the same knobs; values equal, so nothing lost)
    knob_cols = [c for c in df.columns if c.startswith("knob_")]
    assert len(feas[feas.trial.isin(expected)].drop_duplicates(knob_cols)) == len(front)
    # without the bound, the edge-only trial would be on the front: the bound did bite
    all_values = df[names].to_numpy()
    edge_only = df[(df.knob_split == 6) & (df.knob_exits.map(len) == 0)][names].to_numpy()[0]
    assert not any(dominates(w, edge_only, dirs) for w in all_values)


def test_a_constraint_no_trial_meets_gives_an_empty_front(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = make_spec("impossible", n_trials=8, constraints={"latency_mean": "<= 1e-9"})
    study = run_study(spec, progress=False, explorer=explorer_for(spec))
    assert len(trials_frame(study)) == 8 and not trials_frame(study).feasible.any()
    assert front_frame(study, spec).empty
    capsys.readouterr()
    assert main(["front", "impossible"]) == 0
    out = capsys.readouterr().out
    assert "no feasible trial on the front" in out and "latency_mean <= 1e-09" in out
    assert main(["front", "impossible", "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_a_failing_candidate_is_a_failed_trial_and_the_study_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Explorer.evaluate

    def evaluate(self: Explorer, cand: Candidate):  # type: ignore[no-untyped-def]
        if cand.density == 0.5:
            raise RuntimeError("boom at density 0.5")
        return real(self, cand)

    monkeypatch.setattr(Explorer, "evaluate", evaluate)
    spec = make_spec("failing", n_trials=10)
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 0.5, 2, (0,), 0.5)
    enqueue(study, 1.0, 2, (0,), 0.5)
    study = run_study(spec, progress=False, explorer=explorer)
    trials = study.get_trials()
    assert len(trials) == 10
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete and len(failed) + len(complete) == 10
    assert trials[0].state == TrialState.FAIL and trials[1].state == TrialState.COMPLETE
    for t in failed:
        assert t.params["density"] == 0.5
        assert t.user_attrs["fail_reason"] == "RuntimeError: boom at density 0.5"
        assert "dse" not in t.user_attrs
    assert all(t.params["density"] == 1.0 for t in complete)
    assert status(study, spec)["trials"] == {"COMPLETE": len(complete), "FAIL": len(failed)}
    assert set(trials_frame(study).trial) == {t.number for t in complete}


def test_the_same_name_with_a_different_spec_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_spec("clash", n_trials=2)
    run_study(spec, progress=False, explorer=explorer_for(spec))
    changed = make_spec("clash", n_trials=2, seed=1)
    with pytest.raises(InputError) as info:
        run_study(changed, progress=False, explorer=explorer_for(changed))
    assert info.value.field == "name" and "'clash'" in str(info.value)
    study, stored = load_study("clash")
    assert len(study.get_trials()) == 2 and stored.text == spec.text and stored.seed == 0
    # through the command line: exit 2, one line, the study untouched
    path = tmp_path / "clash.toml"
    write_spec(path, "clash", n_trials=4, training={"epochs": 2})
    capsys.readouterr()
    assert main(["study", "run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dse: error: {path}: name: ")
    assert len(load_study("clash")[0].get_trials()) == 2
    # the same text again is a resume, not a clash
    assert len(run_study(spec, n_trials=3, progress=False).get_trials()) == 3


def test_trials_carry_the_realised_density_beside_the_requested_one() -> None:
    """The MLP at 1/2 thins both hidden layers; its two exit heads and classifier stay
    dense, so the network keeps more than half of its weights, and the rows say how many."""
    spec = make_spec("realised", n_trials=2)
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 0.5, 6, (), 1.0)
    enqueue(study, 1.0, 6, (), 1.0)
    study = run_study(spec, progress=False, explorer=explorer)
    rows = trials_frame(study).set_index("knob_density")
    heads = 256 * 10 + 128 * 10 + 128 * 10
    assert rows.loc[0.5, "realised_density"] == pytest.approx(
        (64 * 256 / 2 + 256 * 128 / 2 + heads) / (64 * 256 + 256 * 128 + heads), rel=1e-12
    )
    assert rows.loc[1.0, "realised_density"] == 1.0


def test_learning_warnings_compare_the_reference_with_the_sparse_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dse.nets.training import TrainedNetwork

    monkeypatch.setenv("DSE_CACHE", str(tmp_path / "fresh-cache"))
    spec = make_spec("lw", n_trials=2)
    explorer = explorer_for(spec)
    assert explorer.learning_warnings() == []  # nothing trained yet, and it trains nothing
    assert explorer.trained_now == {} and Cache(tmp_path / "fresh-cache").keys() == []
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 1.0, 6, (), 0.5)  # both networks trained, whatever the sampler draws
    enqueue(study, 0.5, 6, (), 0.5)
    run_study(spec, progress=False, explorer=explorer)
    sparse = explorer.scorer("predefined", 0.5).trained.accuracy("val")[-1]
    seen: list[dict[str, float]] = []

    def lags(self: TrainedNetwork, others: dict[str, float] | None = None) -> str | None:
        seen.append(dict(others or {}))
        return "it lags" if self.spec.density == 1 else None

    monkeypatch.setattr(TrainedNetwork, "learning_problem", lags)
    lines = explorer.learning_warnings()
    assert seen == [{"the predefined@0.5 network": sparse}]
    assert lines == [
        "the reference network (mlp, dense, 1 epoch): it lags; every accuracy "
        "figure of this study is measured against it; train longer: more epochs, "
        'or epochs = "auto" in the spec\'s [training] to train until the '
        "validation accuracy stops improving; or more data"
    ]


def test_verify_retrains_distinct_networks_not_one_network_at_several_cuts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Front points may differ only in cut and threshold: they share one retraining (same
    sparsity, same exits), so ``top`` counts distinct networks, the answer first."""
    import dse.search.verification as verification_module
    from dse.search.decision import Decision, distinct_points

    spec = make_spec("verify-distinct", n_trials=3)
    explorer = explorer_for(spec)
    study, _ = create_study(spec, explorer=explorer)
    enqueue(study, 1.0, 5, (1,), 0.5)
    enqueue(study, 1.0, 6, (1,), 0.75)  # the same network and exit as the row above
    enqueue(study, 0.5, 6, (), 0.5)
    study = run_study(spec, progress=False, explorer=explorer)
    rows = trials_frame(study).sort_values("trial")  # taken as the front, in this order
    points = [distinct_points(rows.iloc[[i]], list(spec.objectives))[0] for i in range(3)]
    decision = Decision(points[0], tuple(points), (), (), 270, spec.objectives, 3, "")
    monkeypatch.setattr(verification_module, "recommend", lambda *a, **k: decision)
    done = verify(study, spec, top=2, progress=False, explorer=explorer)
    assert [d["trial"] for d in done] == [int(rows.trial.iloc[0]), int(rows.trial.iloc[2])]
    assert [d["recommended"] for d in done] == [True, False]
    assert [(d["knobs"]["density"], list(d["knobs"]["exits"])) for d in done] == [
        (1.0, [1]),
        (0.5, []),
    ]


def test_an_unknown_data_task_names_the_field_and_the_tasks() -> None:
    spec = make_spec("badtask", data={"task": "odd"})
    with pytest.raises(InputError) as info:
        explorer_for(spec)
    err = info.value
    assert (err.where, err.field, err.reason) == ("badtask", "data.task", "unknown task 'odd'")
    assert err.fix == "digits has tasks: digit, parity, ge5"


def test_stored_study_reads_a_run_study_and_creates_nothing() -> None:
    spec = make_spec("stored", n_trials=2)
    assert stored_study(spec) is None and not STUDIES_DIR.exists()  # nothing written
    run_study(spec, progress=False, explorer=explorer_for(spec))
    study = stored_study(spec)
    assert study is not None and len(study.get_trials()) == 2
    other = make_spec("stored", n_trials=3)  # same name, another spec text
    with pytest.raises(InputError, match="a different study named 'stored'"):
        stored_study(other)


@pytest.mark.parametrize("threshold", [0.5, 0.75, 1.0])
def test_decisions_are_the_paths_scoring_counts(threshold: float) -> None:
    """Scorer.decisions (what an exported split is held to) gives, sample by sample, the
    paths whose shares are the exit rates the scored metrics report."""
    ex = explorer_for(make_spec("decide"))
    sc = ex.scorer("dense", 1.0)
    cand = Candidate(
        "dense", 1.0, len(sc.graph.cuts) - 1, tuple(range(len(sc.graph.exits))), threshold
    )
    m = sc.score(cand)
    assert len(m.exit_rates) > 1  # exits to choose between
    for split, rates in (("val", m.exit_rates), ("test", m.test_exit_rates)):
        path, answer = sc.decisions(cand, split)
        assert np.allclose(np.bincount(path, minlength=len(rates)) / len(path), rates)
        assert np.array_equal(answer[0], path)  # one task: it is answered where it leaves
