"""Tests for ``dse train-modes``: the training cost of each mode at a cut, bad input."""

from __future__ import annotations

import re

import pytest

from dse.cli import main


def test_train_modes_prints_each_mode_at_each_exit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-modes", "mlp", "--data", "digits", "--link", "3g", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    cuts = re.findall(r"^cut (\d+) \(after", out, flags=re.M)
    assert len(cuts) == 2  # the mlp's two exits
    for mode in ("central", "split", "hierarchical"):
        assert len(re.findall(rf"^  {mode} +epoch", out, flags=re.M)) == 2
    split = [float(x) for x in re.findall(r"^  split +epoch +([0-9.e+-]+) s", out, flags=re.M)]
    hier = [
        float(x) for x in re.findall(r"^  hierarchical +epoch +([0-9.e+-]+) s", out, flags=re.M)
    ]
    assert all(h < s for h, s in zip(hier, split, strict=True))  # 3g: no gradient to wait for


def test_a_cut_outside_the_graph_exits_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-modes", "mlp", "--data", "digits", "--cut", "999"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cut" in err
