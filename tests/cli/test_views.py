"""What the commands print about a configuration and a comparison: the shared rules
(no threshold without an exit, no codec where nothing is sent) and the shared ratio
format of ``dse.report.fmt``."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pandas as pd

from dse.cli.answer import front_table
from dse.cli.report import sweep_row
from dse.cli.study import baselines_table
from dse.search import Floor, decide


def _point(exits: tuple[int, ...], accuracy: float, latency: float, **knobs: Any) -> dict:
    return {
        "trial": len(exits),
        "source": "study",
        "knob_method": "predefined",
        "knob_density": 0.5,
        "knob_split": 3,
        "knob_exits": exits,
        "knob_threshold": 0.8,
        "knob_criterion": "max_prob",
        "accuracy": accuracy,
        "test_accuracy": accuracy,
        "latency_mean": latency,
        "latency_p95": latency,
        "bandwidth": 100.0,
        "edge_energy": 1e-3,
        "edge_memory": 1e4,
        "storage": 1e4,
        "feasible": True,
        **knobs,
    }


def test_a_front_configuration_without_an_exit_shows_no_threshold() -> None:
    rows = pd.DataFrame([_point((), 0.95, 0.004), _point((0, 1), 0.80, 0.002)])
    decision = decide(
        rows,
        objectives={"accuracy": "maximize", "latency_mean": "minimize"},
        floors=(Floor("accuracy", chance=0.1, floor=0.28),),
        validation_samples=10_000,
    )
    shown = front_table(decision, ("stages.0", "stages.1"), ()).configuration.tolist()
    assert shown == [
        "predefined@0.5, cut 3, no exit",
        "predefined@0.5, cut 3, exits stages.0+stages.1 @ 0.8",
    ]


def _deployment(where: str, **knobs: Any) -> SimpleNamespace:
    metrics = {"accuracy": 0.9, "latency_mean": 0.012, "bandwidth": 0.0, "edge_energy": 0.003}
    best = SimpleNamespace(
        knobs={"method": "dense", "density": 1.0, "split": 5, "criterion": "max_prob", **knobs},
        metrics=metrics,
    )
    return SimpleNamespace(
        edge="esp32-s3",
        link="wifi-mcu",
        server="a100",
        candidates=10,
        best=best,
        where=where,
        split_wins=where == "split",
        edge_only=best,
        server_only=None,
    )


def test_a_sweep_row_leaves_out_the_knobs_that_decide_nothing() -> None:
    names = ("stages.0", "stages.1")
    silent = sweep_row(_deployment("edge-only", exits=[1], threshold=0.9, codec="int8"), names)
    # the label every view gives, the codec left out where nothing is sent
    assert silent["best"] == "dense, cut 5, exits stages.1 @ 0.9 (edge-only)"
    sent = sweep_row(_deployment("split", exits=[], threshold=0.9, codec="int8"), names)
    assert sent["best"] == "dense, cut 5, no exit, codec int8 (split)"
    assert sent["split wins"] == "yes" and silent["split wins"] == "no"
    assert sent["best edge-only"] == "same" and sent["best server-only"] == "none feasible"
    assert sent["latency"] == "12 ms" and sent["accuracy"] == "90.0%"
    nothing = SimpleNamespace(edge="e", link="l", server="s", candidates=4, best=None)
    assert sweep_row(nothing, names)["best"] == "nothing feasible (4 candidates)"


def test_compare_prints_ratios_as_the_report_does() -> None:
    table = pd.DataFrame(
        {
            "candidates": [3, 4, 5],
            "hv": [0.5, 0.25, 0.125],
            "matched": [1, 0, 2],
            "latency_s": [0.01, math.nan, 0.002],
            "test_accuracy": [0.9, math.nan, 0.8],
            "bytes": [1000.0, math.nan, 0.0],
            "edge_energy_j": [0.001, math.nan, 0.002],
            "latency_s_ratio": [2.5, math.nan, 1.0],
            "bytes_ratio": [math.inf, math.nan, 0.5],
            "edge_energy_j_ratio": [1.234, math.nan, 0.04],
        },
        index=["edge-only", "edgent", "joint"],
    )
    shown = baselines_table(table)
    assert list(shown.columns) == [
        "candidates",
        "hv",
        "matched",
        "latency",
        "test_acc",
        "latency x",
        "sent",
        "sent x",
        "energy",
        "energy x",
    ]
    assert shown["latency x"].tolist() == ["2.5x", "-", "1x"]
    assert shown["sent x"].tolist() == ["∞", "-", "0.5x"]
    assert shown["energy x"].tolist() == ["1.23x", "-", "0.04x"]
    assert "inf" not in shown.to_string()
