"""A configuration is written the same way in every view, without knobs that change
nothing."""

from __future__ import annotations

from dse.search import Candidate, exit_label

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
