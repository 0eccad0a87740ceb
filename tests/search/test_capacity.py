"""The edge device's memory capacity is a constraint of every study, and an integer-only
edge is refused by the spec: what a microcontroller-class deployment needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_refused, spec

from dse.costmodel import load_device
from dse.search.explorer import Explorer
from dse.search.frames import front_frame, trials_frame
from dse.search.spec import Constraint, parse_spec
from dse.search.study import create_study, run_study

ESP32_S3_BYTES = 512 * 1024  # [memory].capacity of the shipped esp32-s3 profile


def cap_spec(
    name: str, *, edge: str = "esp32-s3", constraints: dict[str, str] | None = None
) -> str:
    """The MLP on 8x8 digits, wide enough (1024 then 256 hidden units: ~1.3 MB of float32
    weights) that the whole network does not fit a 512 KiB microcontroller, while its
    first layer (~266 kB) does."""
    return spec(
        name,
        n_trials=24,
        model={"options": {"widths": [1024, 256]}},
        deployment={"edge": edge, "link": "wifi-mcu"},
        space={"densities": [1.0]},
        constraints=constraints or {},
    )


def test_the_edge_capacity_is_a_constraint_unless_the_spec_binds_tighter() -> None:
    spec = parse_spec(cap_spec("cap"))
    assert load_device("esp32-s3").mem_capacity_bytes == ESP32_S3_BYTES
    assert spec.constraints == (
        Constraint("edge_memory", "<=", ESP32_S3_BYTES, origin="memory capacity of esp32-s3"),
    )
    assert str(spec.constraints[0]) == "edge_memory <= 524288 (memory capacity of esp32-s3)"
    tighter = parse_spec(cap_spec("cap", constraints={"edge_memory": "<= 1e5"}))
    assert tighter.constraints == (Constraint("edge_memory", "<=", 1e5),)
    looser = parse_spec(cap_spec("cap", constraints={"edge_memory": "<= 1e7"}))
    assert looser.constraints == (
        Constraint("edge_memory", "<=", 1e7),
        Constraint("edge_memory", "<=", ESP32_S3_BYTES, origin="memory capacity of esp32-s3"),
    )


def test_an_int8_only_edge_is_refused_by_the_spec() -> None:
    text = cap_spec("int8", edge="coral-dev-board-micro")
    err = assert_refused(
        lambda: parse_spec(text, where="int8.toml"), field="deployment.edge", where="int8.toml"
    )
    assert "int8 only" in err.reason


@pytest.mark.slow
def test_configurations_that_do_not_fit_the_microcontroller_are_infeasible(
    study_folder: Path,
) -> None:
    spec = parse_spec(cap_spec("fits"))
    explorer = Explorer(spec, progress=False)
    study, _ = create_study(spec, explorer=explorer)
    # edge-only (cut 6: the whole 1.3 MB network on the MCU) and the first layer alone
    for split in (6, 3):
        study.enqueue_trial(
            {"density": 1.0, "split": split, "exit_0": False, "exit_1": False, "threshold": 0.5}
        )
    study = run_study(spec, progress=False, explorer=explorer)
    df = trials_frame(study)
    edge_only = df[df.knob_split == 6].iloc[0]
    first = df[df.knob_split == 3].iloc[0]
    assert edge_only.edge_memory > ESP32_S3_BYTES and not edge_only.feasible
    assert 0 < first.edge_memory <= ESP32_S3_BYTES and first.feasible
    assert not df[df.edge_memory > ESP32_S3_BYTES].feasible.any()
    assert df[df.edge_memory <= ESP32_S3_BYTES].feasible.all()
    front = front_frame(study, spec)
    assert len(front) > 0 and (front.edge_memory <= ESP32_S3_BYTES).all()
