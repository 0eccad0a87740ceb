"""Study specs: a valid spec parses as written; every bad input is one InputError that
names the file and the dotted field; ``dse study run BAD.toml`` exits 2 and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DROP, assert_cli_refused, assert_refused, only, spec, spec_dict, write_spec

from dse.costmodel.devices import list_devices, list_links
from dse.errors import InputError
from dse.nets.models import list_models
from dse.search.spec import Constraint, load_spec, parse_spec

WHERE = "bad-spec.toml"

#: Every table of a spec, each key set to something other than its default.
GOOD_DOC = spec_dict(
    "tiny",
    base={},
    description="a spec written by a test",
    n_trials=12,
    sampler="tpe",
    seed=3,
    model={"name": "mlp"},
    data={"name": "digits", "seed": 0},
    training={"epochs": 1, "seed": 0},
    deployment={"edge": "raspberry-pi-4", "server": "a100", "link": "wifi", "tail_energy": False},
    space={
        "densities": [0.25, 1.0, 0.5, 0.5],
        "methods": ["predefined", "channels"],
        "exits": ["layers.1"],
        "thresholds": {"low": 0.6, "high": 0.9, "step": 0.1},
        "criterion": "entropy",
        "splits": "clean",
    },
    objectives={"latency_mean": "minimize", "accuracy": "maximize", "edge_energy": "minimize"},
    constraints={"edge_memory": "<= 4e6", "accuracy": ">= 0.5"},
)
GOOD = spec(base=GOOD_DOC)


@pytest.fixture(autouse=True)
def _folder(study_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test in its own folder, with a cache of its own that must stay empty."""
    monkeypatch.setenv("DSE_CACHE", str(study_folder / "cache"))


def test_a_valid_spec_parses_with_thresholds_discretised_and_order_kept() -> None:
    spec = parse_spec(GOOD, where="good.toml")
    assert spec.name == "tiny" and spec.description == "a spec written by a test"
    assert (spec.n_trials, spec.sampler, spec.seed) == (12, "tpe", 3)
    assert spec.model == "mlp" and dict(spec.model_options) == {}
    assert spec.data == {"name": "digits", "seed": 0}
    assert spec.training == {"epochs": 1, "seed": 0}
    assert (spec.edge, spec.server, spec.link, spec.tail_energy) == (
        "raspberry-pi-4",
        "a100",
        "wifi",
        False,
    )
    # densities: deduplicated, sorted densest first
    assert spec.densities == (1.0, 0.5, 0.25)
    assert spec.methods == ("predefined", "channels")
    assert spec.exits == ("layers.1",)
    # 0.6 .. 0.9 by 0.1: four values, exact to 10 digits (no 0.7000000000000001)
    assert spec.thresholds == (0.6, 0.7, 0.8, 0.9)
    assert spec.criterion == "entropy" and spec.splits == "clean"
    # objectives keep the order they were written in, directions with them
    assert list(spec.objectives) == ["latency_mean", "accuracy", "edge_energy"]
    assert spec.directions == ["minimize", "maximize", "minimize"]
    assert spec.constraints == (
        Constraint("edge_memory", "<=", 4e6),
        Constraint("accuracy", ">=", 0.5),
    )
    assert spec.text == GOOD and spec.storage == "journal"


MINIMAL = spec(
    "m", base={}, model="mlp", data={"name": "digits"}, objectives={"accuracy": "maximize"}
)


def test_defaults_fill_what_a_minimal_spec_leaves_out() -> None:
    spec = parse_spec(MINIMAL)
    assert (spec.edge, spec.server, spec.link) == ("raspberry-pi-4", "a100", "lte")
    assert spec.densities == (1.0,) and spec.methods == ("predefined",)
    # no [constraints]: the edge's memory capacity (4 GiB on the default Pi 4) still binds
    assert spec.exits is None and spec.constraints == (
        Constraint("edge_memory", "<=", 4 * 2**30, origin="memory capacity of raspberry-pi-4"),
    )
    assert spec.thresholds[0] == 0.5 and spec.thresholds[-1] == 1.0
    assert len(spec.thresholds) == 11
    assert (spec.sampler, spec.seed, spec.n_trials) == ("nsga2", 0, 200)


def test_a_constraint_reports_its_violation_in_optunas_convention() -> None:
    upper, lower = Constraint("edge_memory", "<=", 100.0), Constraint("accuracy", ">=", 0.9)
    assert upper.violation(80.0) == -20.0 and upper.violation(130.0) == 30.0
    assert lower.violation(0.95) == pytest.approx(-0.05)
    assert lower.violation(0.5) == pytest.approx(0.4)
    assert str(upper) == "edge_memory <= 100" and str(lower) == "accuracy >= 0.9"


def test_a_profile_given_as_a_relative_toml_path_is_read_beside_the_spec(tmp_path: Path) -> None:
    from dse.costmodel.devices import PROFILES_DIR

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "my-link.toml").write_text((PROFILES_DIR / "links" / "wifi.toml").read_text())
    path = folder / "s.toml"
    write_spec(path, base=GOOD_DOC, deployment={"link": "my-link.toml"})
    spec = load_spec(path)
    assert spec.link == str(folder / "my-link.toml") and spec.path == path


def _good(**overrides: object) -> str:
    """GOOD with ``overrides`` merged in (see helpers.specs)."""
    return spec(base=GOOD_DOC, **overrides)


BAD: list[tuple[str, str, str, tuple[str, ...]]] = [
    # id, spec text, the dotted field, words the message must contain
    (
        "epochs-neither-number-nor-auto",
        _good(training={"epochs": "many"}),
        "training.epochs",
        ("many", '"auto"'),
    ),
    (
        "patience-without-auto",
        _good(training={"patience": 3}),
        "training.patience",
        ('only used with epochs = "auto"',),
    ),
    (
        "max-epochs-zero",
        _good(training={"epochs": "auto", "max_epochs": 0}),
        "training.max_epochs",
        ("outside",),
    ),
    ("unknown-top-level-key", _good(colour="blue"), "colour", ("unknown key", "sampler")),
    (
        "unknown-key-in-a-table",
        _good(training={"epoch": 2}),
        "training.epoch",
        ("unknown key", "epochs"),
    ),
    (
        "unknown-key-in-space",
        _good(space={"split": 3}),
        "space.split",
        ("unknown key",),
    ),
    # not TOML at all: a string never closed
    ("bad-toml", 'name = "tiny\n' + GOOD, "<toml>", ("not valid TOML",)),
    ("missing-name", _good(name=DROP), "name", ("missing",)),
    ("missing-model", _good(model=DROP), "model", ("missing",)),
    ("missing-data", _good(data=DROP), "data", ("missing",)),
    ("missing-objectives", _good(objectives=DROP), "objectives", ("missing",)),
    ("empty-objectives", _good(objectives=only({})), "objectives", ("no objective",)),
    (
        "unknown-model",
        _good(model={"name": "no-such-net"}),
        "model.name",
        ("unknown model", "no-such-net", *list_models()),
    ),
    (
        "unknown-data",
        _good(data={"name": "no-such-data"}),
        "data.name",
        ("no-such-data", "digits"),
    ),
    (
        "unknown-edge-device",
        _good(deployment={"edge": "toaster"}),
        "deployment.edge",
        ("toaster", *list_devices()),
    ),
    (
        "unknown-server-device",
        _good(deployment={"server": "abacus"}),
        "deployment.server",
        ("abacus",),
    ),
    (
        "unknown-link",
        _good(deployment={"link": "carrier-pigeon"}),
        "deployment.link",
        ("carrier-pigeon", *list_links()),
    ),
    (
        "unknown-metric-in-objectives",
        _good(objectives={"speed": "maximize"}),
        "objectives.speed",
        ("unknown key", "latency_p95"),
    ),
    (
        "unknown-metric-in-constraints",
        _good(constraints={"accuracy": DROP, "fps": ">= 30"}),
        "constraints.fps",
        ("unknown key",),
    ),
    (
        "bad-direction",
        _good(objectives={"accuracy": "max"}),
        "objectives.accuracy",
        ("'max'", "minimize, maximize"),
    ),
    (
        "unknown-sampler",
        _good(sampler="annealing"),
        "sampler",
        ("'annealing'", "nsga2"),
    ),
    (
        "density-0",
        _good(space={"densities": [1.0, 0.0]}),
        "space.densities",
        ("density of 0",),
    ),
    (
        "density-above-1",
        _good(space={"densities": [1.5]}),
        "space.densities",
        ("1.5", "outside"),
    ),
    (
        "densities-empty",
        _good(space={"densities": []}),
        "space.densities",
        ("non-empty",),
    ),
    (
        "thresholds-high-below-low",
        _good(space={"thresholds": {"low": 0.9, "high": 0.6}}),
        "space.thresholds",
        ("high 0.6 < low 0.9",),
    ),
    (
        "thresholds-step-does-not-divide",
        _good(space={"thresholds": {"step": 0.25}}),
        "space.thresholds.step",
        ("not a multiple",),
    ),
    (
        "threshold-above-1",
        _good(space={"thresholds": {"high": 1.2}}),
        "space.thresholds.high",
        ("outside",),
    ),
    (
        "unknown-method",
        _good(space={"methods": ["predefined", "magnitude"]}),
        "space.methods",
        ("'magnitude'",),
    ),
    (
        "unknown-criterion",
        _good(space={"criterion": "margin"}),
        "space.criterion",
        ("'margin'", "max_prob"),
    ),
    (
        "accuracy-above-1",
        _good(constraints={"accuracy": ">= 1.5"}),
        "constraints.accuracy",
        ("at most 1", "cannot hold"),
    ),
    (
        "negative-memory-bound",
        _good(constraints={"edge_memory": "<= -1"}),
        "constraints.edge_memory",
        ("never negative", "cannot hold"),
    ),
    (
        "negative-accuracy-bound",
        _good(constraints={"accuracy": "<= -0.1"}),
        "constraints.accuracy",
        ("never negative", "cannot hold"),
    ),
    (
        "constraint-without-operator",
        _good(constraints={"edge_memory": "4e6"}),
        "constraints.edge_memory",
        ("cannot read", "<= NUMBER"),
    ),
    (
        "constraint-strict-operator",
        _good(constraints={"edge_memory": "< 4e6"}),
        "constraints.edge_memory",
        ("cannot read",),
    ),
    (
        "constraint-malformed-number",
        _good(constraints={"edge_memory": "<= 4e"}),
        "constraints.edge_memory",
        ("4e",),
    ),
    (
        "constraint-not-a-string",
        _good(constraints={"edge_memory": 4e6}),
        "constraints.edge_memory",
        ("must be a string",),
    ),
    ("epochs-zero", _good(training={"epochs": 0}), "training.epochs", ("outside",)),
    (
        "name-with-a-slash",
        _good(name="../tiny"),
        "name",
        ("not a plain name",),
    ),
    ("n-trials-not-integer", _good(n_trials=1.5), "n_trials", ("integer",)),
    (
        "tail-energy-not-bool",
        _good(deployment={"tail_energy": "no"}),
        "deployment.tail_energy",
        ("true or false",),
    ),
    ("bad-exits", _good(space={"exits": 3}), "space.exits", ('"all", "none"',)),
]


@pytest.mark.parametrize(("text", "fld", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_an_input_error_naming_file_and_field(
    text: str, fld: str, words: tuple[str, ...]
) -> None:
    assert_refused(lambda: parse_spec(text, where=WHERE), field=fld, where=WHERE, words=words)


def test_an_unreadable_spec_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    assert_refused(lambda: load_spec(path), field="<file>", where=path, words=("cannot read",))


def test_load_spec_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_good(sampler="annealing"))
    assert_refused(lambda: load_spec(path), field="sampler", where=path)


@pytest.mark.parametrize("case", ["unknown-model", "accuracy-above-1", "bad-toml"])
def test_study_run_on_a_bad_spec_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text = next(b[1] for b in BAD if b[0] == case)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert_cli_refused(["study", "run", str(path), "--quiet"], capsys, where=path)
    # no study storage of any kind, nothing trained
    assert not any(tmp_path.glob("studies/*")) and not (tmp_path / "cache").exists()


def test_edge_energy_description_names_every_part_it_sums() -> None:
    """The objective's description says what the number is: each ``*_energy`` part that
    the scorer adds into ``edge_energy`` (compute, radio, idle while waiting)."""
    from dataclasses import fields

    from dse.search.evaluate import Metrics
    from dse.search.spec import METRICS

    parts = [
        f.name.removesuffix("_energy")
        for f in fields(Metrics)
        if f.name.endswith("_energy")
        and f.name not in ("edge_energy", "test_edge_energy")
        # radio_up, radio_down, ...: the parts of radio, not of edge_energy
        and not (f.name.startswith("radio_") and f.name != "radio_energy")
        # training's own edge energy is another quantity, not a part of inference's
        and f.name != "train_edge_energy"
    ]
    assert parts == ["compute", "radio", "idle"]
    for part in parts:
        assert part in METRICS["edge_energy"], part
    assert "idle while waiting" in METRICS["edge_energy"]


def test_epochs_auto_with_its_patience_and_cap() -> None:
    from dse.nets.training import TrainConfig

    spec = parse_spec(
        _good(training={"epochs": "auto", "patience": 3, "max_epochs": 40}), where="auto.toml"
    )
    assert spec.training == {"epochs": "auto", "patience": 3, "max_epochs": 40, "seed": 0}
    cfg = TrainConfig(**spec.training)
    assert cfg.auto and (cfg.patience, cfg.max_epochs) == (3, 40)


def test_nm_is_a_searchable_method_with_n_m_densities() -> None:
    text = _good(space={"methods": ["predefined", "nm"]})
    assert 'methods = ["predefined", "nm"]' in text
    spec = parse_spec(text, where=WHERE)
    assert spec.methods == ("predefined", "nm") and spec.densities == (1.0, 0.5, 0.25)
    with pytest.raises(InputError, match="no N:M density") as info:
        parse_spec(
            _good(space={"methods": ["predefined", "nm"], "densities": [0.3, 1.0, 0.5, 0.5]}),
            where=WHERE,
        )
    assert info.value.field == "space.densities"


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_study_spec_parses(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem


def test_the_shipped_multitask_spec_names_three_tasks_and_a_per_task_constraint() -> None:
    spec = load_spec(next(p for p in SHIPPED if p.stem == "mtl-shapes"))
    assert spec.tasks == ("object_shape", "object_scale", "object_hue")
    assert [str(c) for c in spec.constraints][0] == "accuracy.object_scale >= 0.8"
    assert spec.policies == ("all", "per_task") and spec.task_thresholds
