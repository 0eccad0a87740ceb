"""A configuration is written the same way in every view, without knobs that change
nothing."""

from __future__ import annotations

import optuna

from dse.search import Candidate, exit_label
from dse.search.space import Space

NAMES = ("stages.0", "stages.1")


def test_exit_label_falls_back_to_the_index():
    assert exit_label(NAMES, 1) == "stages.1"
    assert exit_label(NAMES, 5) == "5"


def test_a_configuration_without_an_exit_names_no_threshold():
    c = Candidate("predefined", 0.25, 7, (), 0.8)
    assert c.label(NAMES) == "predefined@0.25, cut 7, no exit"
    assert "0.8" not in c.label(NAMES)


def test_a_configuration_with_exits_names_them_and_the_threshold():
    c = Candidate("channels", 1.0, 3, (0, 1), 0.8, codec="int8")
    assert c.label(NAMES) == "dense, cut 3, exits stages.0+stages.1 @ 0.8, codec int8"
    assert c.label(NAMES, sends=False) == "dense, cut 3, exits stages.0+stages.1 @ 0.8"


def test_several_tasks_give_each_threshold_and_the_policy():
    c = Candidate("dense", 1.0, 3, (0,), 0.5, policy="per_task", task_thresholds=(0.6, 0.7))
    assert c.exits_text(NAMES, ("shape", "hue")) == "stages.0 @ shape 0.6, hue 0.7; policy per_task"


def _space(**kw: object) -> Space:
    fields: dict[str, object] = dict(
        densities=(1.0,),
        methods=("predefined",),
        cuts=(0, 3, 6),
        n_exits=2,
        allowed_exits=(0, 1),
        thresholds=(0.5, 0.75, 1.0),
        criterion="max_prob",
        silent_cuts=(6,),
    )
    fields.update(kw)
    return Space(**fields)  # type: ignore[arg-type]


def test_a_knob_that_changes_nothing_is_not_drawn() -> None:
    space = _space(codecs=("fp32", "int8"))
    none = optuna.trial.FixedTrial(
        {"density": 1.0, "split": 1, "exit_0": False, "exit_1": False, "codec": "int8"}
    )
    c = space.suggest(none)
    assert (c.exits, c.threshold, c.codec) == ((), 0.5, "int8")
    assert "threshold" not in none.params  # no exit: no threshold drawn
    some = optuna.trial.FixedTrial(
        {"density": 1.0, "split": 2, "exit_0": True, "exit_1": False, "threshold": 0.75}
    )
    c = space.suggest(some)
    assert (c.exits, c.threshold, c.codec) == ((0,), 0.75, "fp32")
    assert some.params["threshold"] == 0.75
    assert "codec" not in some.params  # the last cut sends nothing: no codec drawn
    # what the grid enumerates holds the same canonical values
    assert c.as_dict() in [e.as_dict() for e in space.enumerate()]
