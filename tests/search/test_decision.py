"""The one decision: never a dominated point, never one below the learned floor, never one
that only noise puts ahead; equal points once, by their simplest configuration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.search.decision import Floor, decide, distinct_points, standard_error

OBJ = {"accuracy": "maximize", "latency_mean": "minimize", "edge_energy": "minimize"}
FLOOR = (Floor("accuracy", chance=0.25, floor=0.40),)


def _row(
    acc,
    lat,
    energy,
    *,
    split=1,
    exits=(),
    threshold=0.5,
    trial=0,
    source="study",
    feasible=True,
    method="dense",
    density=1.0,
):
    return {
        "trial": trial,
        "knob_method": method,
        "knob_density": density,
        "knob_split": split,
        "knob_exits": tuple(exits),
        "knob_threshold": threshold,
        "knob_criterion": "max_prob",
        "accuracy": acc,
        "latency_mean": lat,
        "edge_energy": energy,
        "feasible": feasible,
        "source": source,
    }


def _decide(rows, n=1000, floors=FLOOR, objectives=OBJ):
    return decide(pd.DataFrame(rows), objectives=objectives, floors=floors, validation_samples=n)


def test_a_point_beaten_on_every_objective_is_never_recommended():
    # split: 104 ms, 12.5 J; edge-only at the same accuracy: 1.75 ms, 17.5 mJ
    d = _decide(
        [_row(0.9, 0.104, 12.5, split=55, trial=0), _row(0.9, 0.00175, 0.0175, split=60, trial=1)]
    )
    assert d.recommended.config.split == 60
    assert len(d.front) == 1


def test_the_grid_can_supply_the_answer_and_says_so():
    d = _decide(
        [
            _row(0.9, 0.104, 12.5, split=55, trial=0),
            _row(0.9, 0.00175, 0.0175, split=60, trial=math.nan, source="grid"),
        ]
    )
    assert d.recommended.config.split == 60
    assert d.recommended.source == "grid" and d.recommended.trial is None


def test_below_floor_points_are_no_candidates_and_are_listed_apart():
    # a cheap exit at 22.8% on 4 classes where chance is 27.2%: a guess beats it
    floors = (Floor("accuracy", chance=0.272, floor=0.418),)
    d = _decide(
        [
            _row(0.228, 0.001, 0.001, exits=(0,), threshold=0.3, trial=0),
            _row(0.897, 0.06, 0.05, trial=1),
        ],
        floors=floors,
    )
    assert d.recommended.trial == 1
    assert [p.trial for p in d.below_floor] == [0]
    assert all(p.metrics["accuracy"] >= 0.418 for p in d.front)


def test_nothing_above_the_floor_recommends_nothing_and_says_why():
    d = _decide([_row(0.2, 0.001, 0.001, trial=0)])
    assert d.recommended is None
    assert "no configuration learned" in d.reason and "chance 25.0%" in d.reason


def test_nothing_feasible_recommends_nothing():
    d = _decide([_row(0.9, 0.001, 0.001, trial=0, feasible=False)])
    assert d.recommended is None and "constraints" in d.reason


def test_a_difference_inside_the_standard_error_goes_to_the_cheaper_point():
    # 99.6% vs 99.3% on 270 validation samples: one sample apart
    d = _decide(
        [
            _row(0.996, 0.00124, 0.00311, trial=0),
            _row(0.993, 0.00086, 0.00214, method="channels", density=0.5, trial=1),
        ],
        n=270,
    )
    assert d.recommended.trial == 1


def test_a_difference_beyond_the_noise_keeps_the_accurate_point():
    d = _decide([_row(0.95, 0.010, 0.010, trial=0), _row(0.80, 0.009, 0.009, trial=1)], n=1000)
    assert d.recommended.trial == 0


def test_accuracy_is_scaled_in_standard_errors_not_by_the_fronts_spread():
    # two points 0.4 points apart on 100k samples (many standard errors): the spread-scaled
    # knee would take the cheaper one; in standard errors the accurate one wins
    rows = [_row(0.904, 0.0100, 0.010, trial=0), _row(0.900, 0.0095, 0.0095, trial=1)]
    assert _decide(rows, n=100_000).recommended.trial == 0
    assert _decide(rows, n=100).recommended.trial == 1  # inside the noise: the cheaper


def test_equal_metrics_are_one_point_shown_by_the_simplest_configuration():
    rows = [
        _row(0.9, 0.01, 0.01, split=7, exits=(0,), threshold=0.9, trial=3),
        _row(0.9, 0.01, 0.01, split=5, exits=(), threshold=0.7, trial=4),
        _row(0.9, 0.01, 0.01, split=6, exits=(), threshold=0.2, trial=5),
    ]
    d = _decide(rows)
    assert len(d.front) == 1
    p = d.front[0]
    assert len(p.configurations) == 3
    assert (p.config.split, p.config.exits) == (5, ())
    assert p.trials == (3, 4, 5)


def test_standard_error_is_never_zero():
    assert standard_error(1.0, 270) > 0.004
    assert math.isclose(standard_error(0.5, 10_000), 0.005, rel_tol=0.01)


def test_distinct_points_of_nothing_is_nothing():
    assert distinct_points(pd.DataFrame(), ["accuracy"]) == []


_values = st.lists(
    st.tuples(st.floats(0.3, 1.0), st.floats(1e-4, 1.0), st.floats(1e-4, 1.0), st.booleans()),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None, database=None)
@given(_values, st.sampled_from([30, 300, 3000]))
def test_the_answer_is_never_beaten_on_every_objective(values, n):
    rows = [_row(a, lat, e, trial=i, feasible=f) for i, (a, lat, e, f) in enumerate(values)]
    d = _decide(rows, n=n)
    cands = [r for r in rows if r["feasible"] and r["accuracy"] >= FLOOR[0].floor]
    if not cands:
        assert d.recommended is None
        return
    rec = d.recommended.metrics
    for r in cands:
        better_or_equal = (
            r["accuracy"] >= rec["accuracy"]
            and r["latency_mean"] <= rec["latency_mean"]
            and r["edge_energy"] <= rec["edge_energy"]
        )
        strictly = (
            r["accuracy"] > rec["accuracy"]
            or r["latency_mean"] < rec["latency_mean"]
            or r["edge_energy"] < rec["edge_energy"]
        )
        assert not (better_or_equal and strictly), (r, rec)
    assert any(np.isclose(rec["accuracy"], p.metrics["accuracy"]) for p in d.front)
