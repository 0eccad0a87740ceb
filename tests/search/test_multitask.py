"""Scoring several tasks on one backbone, and a study over them.

Per-task accuracy, its mean and its minimum are checked by closed form on hand-built
correctness arrays; the two exit policies on hand-built confidences, and the per-task
policy against its rule (a task is answered at its first used exit where it is confident,
the sample's path is the latest of its tasks) over a seeded sweep of random confidences;
then a tiny study whose objectives name tasks stores the per-task accuracies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import DROP, HUE, HUE_TASKS, only, spec, toy_scorer, toy_table

from dse.nets.cache import Cache
from dse.search.evaluate import Scorer
from dse.search.explorer import Explorer
from dse.search.frames import record_of
from dse.search.space import Candidate
from dse.search.spec import parse_spec
from dse.search.study import run_study


def _scorer(
    conf: np.ndarray,
    correct: np.ndarray,
    test_conf: np.ndarray | None = None,
    test_correct: np.ndarray | None = None,
) -> Scorer:
    """A scorer on the toy table with exits 0, 1, 2 at positions 1, 2 and 3: arrays are
    [tasks, outputs (3 exits + final), N]."""
    return toy_scorer(
        toy_table((1, 2, 3)), conf, correct, test_conf=test_conf, test_correct=test_correct
    )


# --------------------------------------------------------------------------- per-task accuracy


def test_per_task_accuracy_mean_and_min_by_closed_form() -> None:
    n = 10
    conf = np.full((2, 4, n), 0.1)
    correct = np.zeros((2, 4, n), dtype=bool)
    correct[0, 3, :7] = True  # task 0's final head: 7 of 10
    correct[1, 3, :3] = True  # task 1's final head: 3 of 10
    test_correct = np.zeros((2, 4, n), dtype=bool)
    test_correct[0, 3, :4] = True
    test_correct[1, 3, :9] = True
    scorer = _scorer(conf, correct, test_correct=test_correct)
    assert scorer.tasks == ("task0", "task1")
    m = scorer.score(Candidate("dense", 1.0, 2, (), 0.5))
    assert m.tasks == ("task0", "task1")
    assert m.task_accuracy == pytest.approx((0.7, 0.3))
    assert m.accuracy == pytest.approx(0.5)
    assert m.accuracy_min == pytest.approx(0.3)
    assert m.test_task_accuracy == pytest.approx((0.4, 0.9))
    assert m.test_accuracy == pytest.approx(0.65)
    assert m.test_accuracy_min == pytest.approx(0.4)
    d = m.as_dict()
    assert d["accuracy.task0"] == pytest.approx(0.7) and d["accuracy.task1"] == pytest.approx(0.3)
    assert d["test_accuracy.task0"] == pytest.approx(0.4)
    assert d["test_accuracy.task1"] == pytest.approx(0.9)
    assert d["accuracy_min"] == pytest.approx(0.3) and d["accuracy"] == pytest.approx(0.5)
    assert d["task_accuracy"] == pytest.approx([0.7, 0.3])

    # an exit answers both tasks where both are confident (policy "all"): samples 0-4
    # leave at exit 0, where task 0 is right on 0-1 and task 1 on 0-4
    conf[:, 0, :5] = 0.9
    correct[0, 0, :2] = True
    correct[1, 0, :5] = True
    m = _scorer(conf, correct).score(Candidate("dense", 1.0, 2, (0,), 0.5))
    assert m.exit_rates == pytest.approx((0.5, 0.5))
    # task 0: 2 at the exit + final right on 5-6; task 1: 5 at the exit + none of 5-9
    assert m.task_accuracy == pytest.approx((0.4, 0.5))
    assert m.accuracy == pytest.approx(0.45) and m.accuracy_min == pytest.approx(0.4)
    assert m.task_exit_rate == pytest.approx((0.5, 0.5))


def test_one_task_given_as_two_dimensional_arrays_is_the_single_task_scorer() -> None:
    conf = np.full((4, 5), 0.1)
    conf[0, :2] = 0.9
    correct = np.zeros((4, 5), dtype=bool)
    correct[0, :2] = True
    correct[3, 2] = True
    m = _scorer(conf, correct).score(Candidate("dense", 1.0, 2, (0,), 0.5))
    assert m.tasks == ("task0",)
    assert m.accuracy == m.accuracy_min == m.task_accuracy[0] == pytest.approx(0.6)
    assert m.as_dict()["accuracy.task0"] == m.accuracy


# --------------------------------------------------------------------------- exit policies


def _two_tasks_four_samples() -> tuple[np.ndarray, np.ndarray]:
    """Exits 0 and 1 in use. Sample 0: both tasks confident at exit 0. Sample 1: task 0 at
    exit 0 only, task 1 at exit 1 only. Sample 2: task 0 at exit 0, task 1 never.
    Sample 3: neither ever. Each task is right only at the output a per-task policy
    answers it with, so accuracy shows which output answered."""
    conf = np.full((2, 4, 4), 0.2)
    conf[0, 0, :3] = 0.9
    conf[1, 0, 0] = 0.9
    conf[1, 1, 1] = 0.9
    correct = np.zeros((2, 4, 4), dtype=bool)
    correct[0, 0, [0, 1, 2]] = True
    correct[0, 3, 3] = True
    correct[1, 0, 0] = True
    correct[1, 1, 1] = True
    correct[1, 3, [2, 3]] = True
    return conf, correct


def test_per_task_policy_answers_each_task_at_its_own_confident_exit() -> None:
    conf, correct = _two_tasks_four_samples()
    scorer = _scorer(conf, correct)
    m = scorer.score(Candidate("dense", 1.0, 1, (0, 1), 0.5, policy="per_task"))
    # paths: sample 0 at exit 0, sample 1 at exit 1 (its task 1), samples 2-3 the final
    assert m.exit_rates == pytest.approx((0.25, 0.25, 0.5))
    assert m.task_exit_rate == pytest.approx((0.75, 0.5))  # task 0: 0-2; task 1: 0-1
    assert m.task_accuracy == pytest.approx((1.0, 1.0))  # each answered where it is right
    # sample 1 is not counted as leaving at exit 0 although task 0 was answered there:
    # only sample 0 stays on the edge (exit 0 at position 1 <= cut 1); the rest send
    assert m.bandwidth == pytest.approx(0.75 * 40.0)
    _, answer = scorer._choice(
        "val", [0, 1], Candidate("dense", 1.0, 1, (0, 1), 0.5, policy="per_task")
    )
    assert answer.tolist() == [[0, 0, 0, 2], [0, 1, 2, 2]]


def test_all_policy_leaves_only_where_every_task_is_confident() -> None:
    conf, correct = _two_tasks_four_samples()
    m = _scorer(conf, correct).score(Candidate("dense", 1.0, 1, (0, 1), 0.5, policy="all"))
    # sample 1 does not leave at exit 0 (task 1 is not confident there), nor at exit 1
    # (task 0 is not confident there): only sample 0 leaves early
    assert m.exit_rates == pytest.approx((0.25, 0.0, 0.75))
    assert m.task_exit_rate == pytest.approx((0.25, 0.25))
    # both tasks answered by the final heads on samples 1-3: task 0 right on 3, task 1 on 2, 3
    assert m.task_accuracy == pytest.approx((0.5, 0.75))
    assert m.accuracy_min == pytest.approx(0.5)


def test_per_task_thresholds_apply_to_their_own_task() -> None:
    conf, correct = _two_tasks_four_samples()
    conf[1, 0, 1] = 0.7  # task 1 of sample 1: 0.7 at exit 0
    scorer = _scorer(conf, correct)
    loose = Candidate("dense", 1.0, 1, (0, 1), 0.95, policy="per_task", task_thresholds=(0.8, 0.6))
    m = scorer.score(loose)  # task 1 of sample 1 now passes at exit 0: sample 1 leaves there
    assert m.exit_rates == pytest.approx((0.5, 0.0, 0.5))
    assert m.task_exit_rate == pytest.approx((0.75, 0.5))
    strict = Candidate("dense", 1.0, 1, (0, 1), 0.6, policy="per_task", task_thresholds=(0.95, 0.6))
    m = scorer.score(strict)  # task 0 is never confident; its final head answers
    assert m.task_exit_rate == pytest.approx((0.0, 0.5))
    assert m.exit_rates == pytest.approx((0.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        Candidate("dense", 1.0, 1, (0,), 0.5, task_thresholds=(0.5,)).thresholds(2)


def _reference(
    conf: np.ndarray, used: list[int], thresholds: np.ndarray, policy: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample its path, per task and sample its answering path, written from the rule
    one sample at a time."""
    tasks, _, n = conf.shape
    answer = np.full((tasks, n), len(used))
    path = np.full(n, len(used))
    for s in range(n):
        if policy == "per_task":
            for t in range(tasks):
                answer[t, s] = next(
                    (p for p, j in enumerate(used) if conf[t, j, s] >= thresholds[t]), len(used)
                )
            path[s] = answer[:, s].max()
        else:
            path[s] = next(
                (
                    p
                    for p, j in enumerate(used)
                    if all(conf[t, j, s] >= thresholds[t] for t in range(tasks))
                ),
                len(used),
            )
            answer[:, s] = path[s]
    return path, answer


def test_per_task_policy_never_answers_a_task_at_an_exit_that_was_not_confident() -> None:
    """A seeded sweep (hypothesis is not installed) over random confidences on a 0.1 grid
    (so ties with the thresholds occur), exit subsets, task counts and thresholds."""
    rng = np.random.default_rng(20261130)
    subsets = [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    for _ in range(300):
        tasks = int(rng.integers(1, 4))
        n = int(rng.integers(1, 12))
        conf = rng.integers(0, 11, size=(tasks, 4, n)) / 10
        correct = rng.random((tasks, 4, n)) < 0.5
        used = list(subsets[int(rng.integers(len(subsets)))])
        thresholds = rng.integers(0, 11, size=tasks) / 10
        cut = int(rng.integers(0, 5))
        scorer = _scorer(conf, correct)
        for policy in ("per_task", "all"):
            cand = Candidate(
                "dense",
                1.0,
                cut,
                tuple(used),
                float(thresholds[0]),
                policy=policy,
                task_thresholds=tuple(float(x) for x in thresholds),
            )
            path, answer = scorer._choice("val", used, cand)
            if policy == "per_task":
                for t in range(tasks):
                    for s in range(n):
                        j = int(answer[t, s])
                        if j < len(used):  # answered at an exit: it passed there ...
                            assert conf[t, used[j], s] >= thresholds[t]
                        # ... and at no earlier used exit (nor any, for the final head)
                        assert all(conf[t, used[i], s] < thresholds[t] for i in range(j))
                assert (path == answer.max(axis=0)).all()  # the latest of its tasks
            want_path, want_answer = _reference(conf, used, thresholds, policy)
            assert path.tolist() == want_path.tolist()
            assert np.asarray(answer).tolist() == want_answer.tolist()
            # and the metrics are those of these paths and answers
            m = scorer.score(cand)
            rates = np.bincount(want_path, minlength=len(used) + 1) / n
            assert m.exit_rates == pytest.approx(tuple(rates))
            assert m.task_exit_rate == pytest.approx(tuple((want_answer < len(used)).mean(axis=1)))
            outputs = np.array([*used, 3])
            acc = [correct[t, outputs[want_answer[t]], np.arange(n)].mean() for t in range(tasks)]
            assert m.task_accuracy == pytest.approx(tuple(acc))
            assert m.accuracy == pytest.approx(float(np.mean(acc)))
            assert m.accuracy_min == pytest.approx(min(acc))


# --------------------------------------------------------------------------- a study


TASKS = HUE_TASKS

SPEC = spec(
    "multitask-tiny",
    n_trials=8,
    sampler="random",
    data=only(HUE),
    space={
        "densities": [1.0],
        "methods": DROP,
        "policies": ["all", "per_task"],
        "task_thresholds": True,
    },
    objectives=only(
        {
            "accuracy.wall_hue": "maximize",
            "accuracy.floor_hue": "maximize",
            "latency_mean": "minimize",
        }
    ),
    constraints={"accuracy_min": ">= 0"},
)


def test_a_study_over_two_tasks_stores_each_tasks_accuracy(
    study_folder: Path, shared_cache: Path
) -> None:
    spec = parse_spec(SPEC)
    assert spec.tasks == TASKS
    assert list(spec.objectives) == ["accuracy.wall_hue", "accuracy.floor_hue", "latency_mean"]
    explorer = Explorer(spec, cache=Cache(shared_cache), progress=False)
    assert explorer.space.policies == ("all", "per_task")
    assert explorer.space.threshold_tasks == TASKS
    study = run_study(spec, storage="memory", progress=False, explorer=explorer)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 8
    trained = explorer.scorer("dense", 1.0).trained
    assert trained.tasks == TASKS
    for trial in done:
        rec = record_of(trial)
        assert rec is not None
        metrics = rec["metrics"]
        per_task = [metrics[f"accuracy.{t}"] for t in TASKS]
        assert all(0.0 <= a <= 1.0 for a in per_task)
        assert trial.values[:2] == pytest.approx(per_task)
        assert metrics["accuracy_min"] == pytest.approx(min(per_task))
        assert metrics["accuracy"] == pytest.approx(sum(per_task) / 2)
        # the spec's own constraint, then the edge's memory capacity (Pi 4: 4 GiB)
        assert rec["constraints"] == [
            pytest.approx(-metrics["accuracy_min"]),
            pytest.approx(metrics["edge_memory"] - 4 * 2**30),
        ]
        knobs = rec["knobs"]
        if knobs["exits"]:  # the policy and one threshold per task are knobs
            assert knobs["policy"] in ("all", "per_task")
            assert len(knobs["task_thresholds"]) == 2
        # the stored numbers are those of scoring the stored knobs again
        cand = Candidate(
            knobs["method"],
            knobs["density"],
            knobs["split"],
            tuple(knobs["exits"]),
            knobs["threshold"],
            knobs["criterion"],
            knobs.get("policy", "all"),
            tuple(knobs.get("task_thresholds", ())),
        )
        assert explorer.evaluate(cand).as_dict()["accuracy.floor_hue"] == pytest.approx(
            metrics["accuracy.floor_hue"]
        )
