"""The study journal holds whole lines only: a half line a killed process left at its end
is cut off before the next append, which would otherwise make the journal unreadable."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest

from dse.search.storage import storage_for


def test_a_half_line_left_by_a_killed_writer_is_cut_before_the_next_append(
    study_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="half", storage=storage_for("half"))
    study.set_user_attr("before", 1)
    journal = study_folder / "studies" / "half.journal"
    whole = journal.read_bytes()
    with journal.open("ab") as f:  # what a process killed inside its write leaves
        f.write(b'{"op_code": 9, "study_id": 0, "us')
    again = optuna.load_study(study_name="half", storage=storage_for("half"))
    with caplog.at_level(logging.WARNING, logger="dse.search.storage"):
        again.set_user_attr("after", 2)
    assert "cut off 33 byte(s) of a half-written last entry" in caplog.text
    assert journal.read_bytes().startswith(whole)
    fresh = optuna.load_study(study_name="half", storage=storage_for("half"))
    assert fresh.user_attrs == {"before": 1, "after": 2}
