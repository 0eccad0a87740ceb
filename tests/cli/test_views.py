"""What the commands print about a comparison: the shared ratio format of
``dse.report.fmt``."""

from __future__ import annotations

import math

import pandas as pd

from dse.cli.study import baselines_table


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
