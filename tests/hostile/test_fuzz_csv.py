"""Any calibration CSV gives a measurement table or the one-line InputError, and through
`dse calibrate --from-csv` exit 0 or 2: never another exception."""

from __future__ import annotations

import csv
import io
import tempfile
from itertools import count
from pathlib import Path

import pytest
import torch
from helpers.fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from dse.cli import main
from dse.costmodel import build_graph
from dse.costmodel.measure import CALL_NODE, CSV_COLUMNS, read_csv
from dse.errors import InputError
from dse.nets import default_input, load_model

_SHAPE = (1, *default_input("mlp"))
_GRAPH = build_graph(load_model("mlp"), torch.zeros(_SHAPE), name="mlp")
NODES = [*list(_GRAPH.backbone), CALL_NODE]
_UNIQUE = count()


def _row(node: str, i: int) -> dict[str, str]:
    kind = "call" if node == CALL_NODE else _GRAPH.nodes[node].kind
    t = 1e-5 * (1 + i % 7)
    return {
        "model": "mlp",
        "input_shape": "x".join(map(str, _SHAPE)),
        "node": node,
        "kind": kind,
        "runtime": "eager",
        "threads": "1",
        "median_s": f"{t:.3g}",
        "p10_s": f"{0.9 * t:.3g}",
        "runs": "30",
        "device": "a test machine",
    }


def _text(rows: list[dict[str, str]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


FIELD = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e308",
            "1e-300",
            "nan",
            "inf",
            "1.5",
            "2",
            "999999999999",
            "1x1x8x8",
            "1x1x8x9",
            "5",
            "0x1x8x8",
            "1x100000x100000x100000",
            "x",
            "mlp",
            "vgg-s",
            "nosuch",
            "os:system",
            "torch-export",
            "fused",
            "tensorrt",
            CALL_NODE,
            "call",
            "conv",
        ]
    ),
)


@st.composite
def near_valid_csv(draw: st.DrawFn) -> str:
    """Rows of every node of the MLP (and the call floor), repeated to have enough per
    kind, then a few fields replaced, columns dropped or rows removed."""
    rows = [_row(n, i) for i in range(draw(st.integers(1, 6))) for n in NODES]
    for _ in range(draw(st.integers(0, 3))):
        if not rows:
            break
        row = draw(st.sampled_from(rows))
        row[draw(st.sampled_from(CSV_COLUMNS))] = draw(FIELD)
    columns = list(CSV_COLUMNS)
    if draw(st.integers(0, 9)) == 0:
        columns.remove(draw(st.sampled_from(columns)))
    return _text(rows[: draw(st.sampled_from([len(rows), len(rows), 0, 1]))], columns)


def _read(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            table = read_csv(path)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
    assert set(CSV_COLUMNS) <= set(table.columns) and len(table)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    _read(raw)


@FUZZ
@given(st.lists(st.lists(FIELD, min_size=len(CSV_COLUMNS), max_size=len(CSV_COLUMNS)), max_size=4))
def test_any_rows_under_the_right_header(rows: list[list[str]]) -> None:
    _read(_text([dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows], list(CSV_COLUMNS)))


@FUZZ
@given(near_valid_csv())
def test_a_valid_csv_with_fields_changed(text: str) -> None:
    _read(text)


@pytest.mark.slow
@FUZZ
@given(near_valid_csv())
def test_calibrate_from_any_csv_exits_0_or_2(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        path.write_text(text)
        out = Path(tmp) / f"fitted-{next(_UNIQUE)}.toml"
        code = main(
            ["calibrate", "--from-csv", str(path), "--base", "raspberry-pi-4", "--out", str(out)]
        )
    assert code in (0, 2)


CASES = {  # what the search found, and its neighbours: each refused in one line
    "a stdlib function as the model": ("model", "os:system"),
    "an empty module": ("model", ":"),
    "a shape of one number": ("input_shape", "5"),
    "a shape the model does not take": ("input_shape", "1x1x8x9"),
    "a shape too large to build": ("input_shape", "1x4096x4096x4096"),
    "a kernel of a thousand seconds": ("median_s", "1e3"),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_calibrate_refuses_in_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    column, value = CASES[case]
    rows = [_row(n, i) for i in range(4) for n in NODES]
    rows[0][column] = value
    path = tmp_path / "m.csv"
    path.write_text(_text(rows, list(CSV_COLUMNS)))
    code = main(
        [
            "calibrate",
            "--from-csv",
            str(path),
            "--base",
            "raspberry-pi-4",
            "--out",
            str(tmp_path / "fitted.toml"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("dse: error: "), err
    assert not (tmp_path / "fitted.toml").exists()
