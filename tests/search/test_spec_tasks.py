"""Study specs with several tasks: what parses, and every bad task setting as one
InputError naming the field (and, for a task the data set lacks, the tasks it has)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DROP, only, spec, spec_dict

from dse.errors import InputError
from dse.nets.cache import Cache
from dse.search.explorer import Explorer
from dse.search.spec import parse_spec

WHERE = "tasks-spec.toml"
SHAPES3D_TASKS = (
    "object_shape",
    "object_scale",
    "object_hue",
    "wall_hue",
    "floor_hue",
    "orientation",
)


#: The MLP on two hues of 300 shapes3d images at 16x16, one epoch, dense only.
TASKS_DOC = spec_dict(
    "tasks",
    base={},
    n_trials=4,
    model={"name": "mlp"},
    data={"name": "shapes3d", "n": 300, "size": 16, "tasks": ["wall_hue", "floor_hue"]},
    training={"epochs": 1},
    space={"densities": [1.0]},
    objectives={"accuracy.wall_hue": "maximize", "latency_mean": "minimize"},
    constraints={},
)


def tasks_spec(**overrides: object) -> str:
    """TASKS_DOC with ``overrides`` merged in (``objectives`` replaces the table)."""
    if "objectives" in overrides:
        overrides["objectives"] = only(overrides["objectives"])  # type: ignore[arg-type]
    return spec(base=TASKS_DOC, **overrides)


def _error(text: str) -> InputError:
    with pytest.raises(InputError) as err:
        parse_spec(text, where=WHERE)
    assert err.value.where == WHERE
    return err.value


def test_a_spec_with_tasks_parses_as_written() -> None:
    s = parse_spec(
        tasks_spec(
            model={"head": {"kind": "mlp", "hidden": 64, "layers": 2, "dropout": 0.1}},
            training={"task_weights": {"floor_hue": 1.0, "wall_hue": 2.0}},
            space={"policies": ["per_task", "all"], "task_thresholds": True},
            objectives={"accuracy.floor_hue": "maximize", "accuracy_min": "maximize"},
            constraints={"accuracy.wall_hue": ">= 0.2"},
        ),
        where=WHERE,
    )
    assert s.tasks == ("wall_hue", "floor_hue")
    assert s.head == {"kind": "mlp", "hidden": 64, "layers": 2, "dropout": 0.1}
    assert s.training["task_weights"] == [2.0, 1.0]  # a table is put in task order
    assert s.policies == ("per_task", "all") and s.task_thresholds is True
    assert s.objectives == {"accuracy.floor_hue": "maximize", "accuracy_min": "maximize"}
    c, cap = s.constraints  # the spec's own, then the edge's memory capacity
    assert (c.metric, c.op, c.bound) == ("accuracy.wall_hue", ">=", 0.2)
    assert (cap.metric, cap.op, cap.origin) == (
        "edge_memory",
        "<=",
        "memory capacity of raspberry-pi-4",
    )


TWO = ["wall_hue", "floor_hue"]


@pytest.mark.parametrize(
    ("data", "training", "field", "words"),
    [
        ({"tasks": ["wall_hue", "wall_hue"]}, {}, "data.tasks", "twice"),
        ({"task": "wall_hue", "tasks": TWO}, {}, "data.tasks", "not both"),
        ({"tasks": []}, {}, "data.tasks", "non-empty"),
        ({"tasks": "wall_hue"}, {}, "data.tasks", "list"),
        ({}, {"task_weights": [1.0]}, "training.task_weights", "one weight per task"),
        ({}, {"task_weights": [1.0, 2.0, 3.0]}, "training.task_weights", "one weight per task"),
        ({}, {"task_weights": {"wall_hue": 1.0}}, "training.task_weights", "not every task"),
        (
            {},
            {"task_weights": {"wall_hue": 1.0, "nope": 1.0}},
            "training.task_weights",
            "nope",
        ),
        ({}, {"task_weights": [1.0, -1.0]}, "training.task_weights", ""),
        (
            {},
            {"task_weights": [1.0, 2.0], "task_weighting": "uncertainty"},
            "training.task_weights",
            "exclude",
        ),
        ({}, {"task_weighting": "learned"}, "training.task_weighting", ""),
    ],
)
def test_bad_task_settings_name_their_field(
    data: dict, training: dict, field: str, words: str
) -> None:
    err = _error(tasks_spec(data=data, training=training, objectives={"latency_mean": "minimize"}))
    assert err.field == field
    assert words in str(err)


def test_per_task_accuracy_of_a_task_the_spec_lacks_names_it_and_the_tasks() -> None:
    err = _error(tasks_spec(objectives={"accuracy.nope": "maximize"}))
    assert err.field == "objectives.accuracy.nope"
    assert "wall_hue" in str(err) and "floor_hue" in str(err)
    err = _error(tasks_spec(constraints={"accuracy.nope": ">= 0.5"}))
    assert err.field == "constraints.accuracy.nope"
    # without [data] tasks there is no per-task accuracy to name
    err = _error(tasks_spec(data={"tasks": DROP}, objectives={"accuracy.wall_hue": "maximize"}))
    assert err.field == "objectives.accuracy.wall_hue" and "[data] tasks" in str(err)
    # a per-task accuracy is a fraction like the accuracy
    err = _error(tasks_spec(constraints={"accuracy.wall_hue": ">= 1.5"}))
    assert err.field == "constraints.accuracy.wall_hue"


@pytest.mark.parametrize(
    ("model", "space", "field"),
    [
        ({"head": {"kind": "mlp", "width": 3}}, {}, "model.head"),
        ({"head": "tower"}, {}, "model.head"),
        ({"head": {"kind": "mlp", "dropout": 1.5}}, {}, "model.head"),
        ({}, {"policies": ["any"]}, "space.policies"),
        ({}, {"task_thresholds": 1}, "space.task_thresholds"),
    ],
)
def test_bad_head_and_policy_settings_name_their_field(
    model: dict, space: dict, field: str
) -> None:
    assert _error(tasks_spec(model=model, space=space)).field == field


def test_a_bad_stl_schedule_names_its_field() -> None:
    assert _error(tasks_spec(deployment={"stl": "interleaved"})).field == "deployment.stl"


def test_a_task_the_data_set_lacks_is_named_with_the_sets_tasks(tmp_path: Path) -> None:
    s = parse_spec(
        tasks_spec(data={"tasks": ["wall_hue", "nope"]}, objectives={"latency_mean": "minimize"}),
        where=WHERE,
    )
    with pytest.raises(InputError) as err:
        Explorer(s, cache=Cache(tmp_path), progress=False)
    assert err.value.field == "data.tasks"
    assert "nope" in str(err.value)
    for task in SHAPES3D_TASKS:
        assert task in str(err.value)


def test_the_models_classifier_for_several_tasks_fails_at_parse_time() -> None:
    err = _error(tasks_spec(model={"head": "classifier"}))
    assert err.field == "model.head.kind" and str(err).startswith(WHERE)
    assert "mlp" in str(err)


def test_explorer_trains_with_the_specs_task_weights_and_head(tmp_path: Path) -> None:
    s = parse_spec(
        tasks_spec(
            model={"head": {"kind": "mlp", "hidden": 16}},
            training={"task_weights": {"floor_hue": 1.0, "wall_hue": 3.0}},
        ),
        where=WHERE,
    )
    e = Explorer(s, cache=Cache(tmp_path), progress=False)
    net = e.network_spec("dense", 1.0)
    assert net.task_names == ("wall_hue", "floor_hue")
    assert net.train.task_weights == (3.0, 1.0)
    assert net.head.kind == "mlp" and net.head.hidden == 16
