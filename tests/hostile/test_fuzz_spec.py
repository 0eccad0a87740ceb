"""Any study spec gives a StudySpec or the one-line InputError, never another exception."""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import pytest
from helpers import HUE, assert_cli_refused, inline_text, only, spec, spec_dict
from helpers.fuzz import FUZZ, mutated, renumbered
from hypothesis import given
from hypothesis import strategies as st

from dse.errors import InputError
from dse.search.spec import StudySpec, load_spec, parse_spec

FULL = spec_dict(
    "fuzz",
    constraints={"edge_memory": "<= 1e9", "latency_mean": "<= 0.5"},
    deployment={"edge": "jetson-nano", "server": "a100", "link": "wifi", "tail_energy": False},
)
MULTI = spec_dict("fuzz-tasks", data=only(HUE))
BASES = [
    FULL,
    MULTI,
    tomllib.loads(
        (Path(__file__).resolve().parents[2] / "studies" / "quickstart.toml").read_text()
    ),
]
KEYS = [
    "name",
    "description",
    "n_trials",
    "sampler",
    "seed",
    "storage",
    "model",
    "data",
    "training",
    "space",
    "objectives",
    "constraints",
    "deployment",
    "densities",
    "methods",
    "exits",
    "thresholds",
    "splits",
    "codecs",
    "policies",
    "epochs",
    "lr",
    "tasks",
    "task_weights",
    "head",
    "options",
    "accuracy",
    "edge",
    "link",
    "criterion",
    "low",
    "high",
    "step",
]


def _parse(text: str) -> None:
    try:
        spec = parse_spec(text, where="fuzz.toml")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(spec, StudySpec) and spec.objectives


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    _parse(text)


@FUZZ
@given(st.binary(max_size=200))
def test_any_file(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        path.write_bytes(raw)
        try:
            load_spec(path)
        except InputError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(st.data())
def test_a_valid_spec_with_fields_changed(data: st.DataObject) -> None:
    _parse(inline_text(data.draw(mutated(data.draw(st.sampled_from(BASES)), KEYS))))


@FUZZ
@given(st.data())
def test_a_valid_spec_with_numbers_changed(data: st.DataObject) -> None:
    _parse(inline_text(data.draw(renumbered(data.draw(st.sampled_from(BASES))))))


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe\x00binary",
        b'name = "../x"\n',
        b"[model\n",
        spec(base=FULL, deployment={"edge": "nowhere"}).encode(),
    ],
)
def test_through_the_cli_exit_2_in_one_line(
    raw: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.toml"
    path.write_bytes(raw)
    assert_cli_refused(["study", "run", str(path), "--storage", "memory", "--quiet"], capsys)
