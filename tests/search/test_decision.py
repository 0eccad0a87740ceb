"""The one decision: never a dominated point, never one below the learned floor, never one
that only noise puts ahead; equal points once, by their simplest configuration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.search.decision import (
    Floor,
    Unlearned,
    alternatives,
    decide,
    distinct_points,
    rounded,
    standard_error,
)

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
    # metrics equal to 9 significant digits are one point (the rule), so compare them so
    names = ("accuracy", "latency_mean", "edge_energy")
    rec = dict(zip(names, rounded([d.recommended.metrics[k] for k in names]), strict=True))
    for raw in cands:
        r = dict(zip(names, rounded([raw[k] for k in names]), strict=True))
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


def test_rounding_keeps_two_scorings_of_one_configuration_one_decision():
    # a batch sweep and one-by-one scoring may differ in the last bits: the same answer
    rows = [
        _row(0.9, 0.010, 0.010, split=3, trial=0),
        _row(0.9, 0.010, 0.010, split=4, trial=1),
        _row(0.85, 0.005, 0.004, split=5, trial=2),
    ]
    d1 = _decide(rows)
    rows[1]["latency_mean"] = 0.010 * (1 + 1e-15)  # a hair slower: not another point
    d2 = _decide(rows)
    assert [len(p.configurations) for p in d1.front] == [len(p.configurations) for p in d2.front]
    assert d1.recommended.config == d2.recommended.config


def test_the_point_says_who_found_it_the_simplest_baseline_first():
    rows = [
        _row(0.9, 0.0017, 0.0175, split=60, trial=math.nan, source="spinn"),
        _row(0.9, 0.0017, 0.0175, split=60, exits=(0,), trial=math.nan, source="edge-only"),
        _row(0.8, 0.104, 12.5, split=55, trial=0),
    ]
    d = _decide(rows)
    assert d.recommended.sources == ("edge-only", "spinn") and d.recommended.source == "edge-only"
    assert d.recommended.found_by() == (
        "found by the exhaustive grid, on the edge-only baseline's front; the search did not "
        "reach it"
    )
    grid = _decide([_row(0.9, 0.001, 0.001, trial=math.nan, source="grid")]).recommended
    assert grid.found_by() == "found by the exhaustive grid; the search did not reach it"
    assert _decide([_row(0.9, 0.001, 0.001, trial=7)]).recommended.found_by() == (
        "found by the study's search (trial 7)"
    )


def test_below_floor_points_are_those_the_front_would_otherwise_show():
    floors = (Floor("accuracy", chance=0.272, floor=0.418),)
    rows = [
        _row(0.228, 0.001, 0.001, exits=(0,), trial=0),  # cheap, below the floor: listed
        _row(0.228, 0.001, 0.001, exits=(0,), split=3, trial=1),  # the same point again
        _row(0.200, 0.002, 0.002, exits=(0,), trial=2),  # below and dominated: not listed
        _row(0.897, 0.06, 0.05, trial=3),
    ]
    d = _decide(rows, floors=floors)
    assert [p.trials for p in d.below_floor] == [(0, 1)]
    assert d.candidates == 1 and d.distinct == 1
    assert d.recommended.trial == 3


def test_a_floor_and_an_output_under_it_read_as_the_views_print_them():
    assert Floor("accuracy", 0.272, 0.4176).text() == "accuracy 41.8% (chance 27.2%)"
    spec_floor = Floor("accuracy", 0.272, 0.6, constraint="accuracy >= 0.6")
    assert spec_floor.text() == "accuracy 60.0% (the spec's constraint accuracy >= 0.6)"
    u = Unlearned("dense", "exit stages.0", 0.228, 0.272, 0.4176)
    assert u.text(network=False) == "exit stages.0: 22.8%, chance 27.2%"
    assert u.text() == "dense, exit stages.0: 22.8%, chance 27.2%"
    assert "(wall_hue)" in Unlearned("dense", "final classifier", 0.1, 0.2, 0.3, "wall_hue").text()


def test_the_alternatives_are_each_decided_by_the_same_rule_on_their_subset():
    rows = [
        _row(0.95, 0.020, 0.020, split=2, trial=0),  # a split, the most accurate
        _row(0.90, 0.002, 0.001, split=9, trial=1) | {"bandwidth": 0.0},  # edge-only, cheap
        _row(0.94, 0.030, 0.050, split=0, trial=2),  # server-only
        _row(0.10, 0.001, 0.001, split=9, exits=(0,), trial=3) | {"bandwidth": 0.0},  # guess
    ]
    for r in rows:
        r.setdefault("bandwidth", 100.0)
    d = _decide(rows)
    found = {label: a.point for a in alternatives(d) for label in a.labels}
    assert found["recommended"].trial == d.recommended.trial
    assert found["most accurate"].trial == 0
    assert found["edge-only"].trial == 1  # the below-floor exit is no candidate
    assert found["server-only"].trial == 2
    assert found["lowest mean latency"].trial == 1 and found["lowest edge energy"].trial == 1
    # one alternative per point: the labels of the same point are merged
    points = [a.point for a in alternatives(d)]
    assert len({id(p) for p in points}) == len(points)


def test_an_end_with_nothing_above_the_floor_says_so():
    rows = [
        _row(0.95, 0.020, 0.020, split=2, trial=0) | {"bandwidth": 10.0},
        _row(0.10, 0.001, 0.001, split=9, trial=1) | {"bandwidth": 0.0},
    ]
    alts = {a.labels[-1]: a for a in alternatives(_decide(rows))}
    assert alts["edge-only"].point is None and "learned" in alts["edge-only"].why
    assert alts["server-only"].point is None and "constraints" in alts["server-only"].why


def test_the_fastest_alternative_is_not_a_guess_faster_by_microseconds():
    # the demo's case: 87.8% at 19.9 ms against 58.3% at 19.9 ms less 8 us
    rows = [
        _row(0.878, 0.019900, 0.0123, split=0, trial=47) | {"bandwidth": 12300.0},
        _row(0.583, 0.019892, 0.0123, split=0, exits=(1,), trial=266) | {"bandwidth": 12300.0},
        _row(0.692, 0.021300, 0.00966, split=7, exits=(0, 1), trial=9) | {"bandwidth": 6830.0},
    ]
    alts = {label: a.point for a in alternatives(_decide(rows, n=360)) for label in a.labels}
    assert alts["recommended"].trial == 47
    assert alts["lowest mean latency"].trial == 47  # within 1% of the lowest: the rule's pick
    assert alts["lowest edge energy"].trial == 9  # 20% less energy: a real alternative


def test_metrics_equal_to_nine_digits_are_one_point():
    rows = [_row(0.9, 0.1, 0.1, trial=0, split=2), _row(0.9000000001, 0.1, 0.1, trial=1, split=5)]
    d = _decide(rows)
    assert len(d.front) == 1 and d.recommended.trials == (0, 1)
    assert d.recommended.config.split == 2  # the simplest of the two
