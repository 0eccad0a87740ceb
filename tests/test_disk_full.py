"""A disk that fills mid-write (simulated by a file-size limit, ``ulimit -f``): every
writer gives one clear line, and what was there before stays as it was, with no temp
file left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import spec
from limited import dse_limited, file_size_limit, snapshot
from optuna.trial import TrialState

from dse.cli import main
from dse.errors import InputError
from dse.nets.cache import Cache, atomic_write_bytes, key_of
from dse.search.explorer import Explorer
from dse.search.spec import StudySpec, parse_spec
from dse.search.storage import ENVIRONMENT_ATTR, budget_used
from dse.search.study import load_study, run_study

LIMIT = 100_000  # bytes a file may grow to: past a study's journal, short of a network


def random_spec(name: str, n_trials: int, *, where: str) -> StudySpec:
    """The tiny study with a random sampler, parsed."""
    return parse_spec(spec(name, n_trials=n_trials, sampler="random"), where=where)


def test_a_refused_cache_write_keeps_the_old_entry_and_no_temp_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = key_of({"what": "a refused write"})
    cache.put(key, {"key": key, "x": torch.zeros(10)})
    before = snapshot(tmp_path)
    with (
        file_size_limit(LIMIT),
        pytest.raises(
            InputError, match=r"\.dse: write: File too large; nothing was replaced \(free"
        ),
    ):
        cache.put(key, {"key": key, "x": torch.ones(LIMIT)})
    assert snapshot(tmp_path) == before
    got = cache.get(key)
    assert got is not None and torch.equal(got["x"], torch.zeros(10))
    target = tmp_path / "out.json"
    atomic_write_bytes(target, b"{}")
    with file_size_limit(LIMIT), pytest.raises(InputError, match="out.json: write: File too"):
        atomic_write_bytes(target, b" " * (2 * LIMIT))
    assert target.read_bytes() == b"{}" and not list(tmp_path.glob(".*.tmp"))


def test_a_refused_cache_write_in_a_study_stops_it_without_spending_the_budget(
    study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk, not the candidate, failed: the trial is set aside (failed, retried, not
    counted) and the worker stops with the one line, instead of failing every trial."""
    monkeypatch.setenv("DSE_CACHE", str(study_folder / "cache"))  # the networks must train
    spec = random_spec("full", 3, where="full.toml")
    with (
        file_size_limit(LIMIT),
        pytest.raises(InputError, match=r"\.dse: write: File too large; nothing was replaced"),
    ):
        run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    trials = load_study("full")[0].get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # and its retry
    assert "File too large" in trials[0].system_attrs[ENVIRONMENT_ATTR]
    assert budget_used(trials) == 0
    assert not [
        p
        for p in (study_folder / "cache").rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    ]
    study = run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials()) == 3


def one_line(stderr: str, *, where: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("dse: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert where in lines[0] and "File too large; nothing was replaced" in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.heavy
def test_a_full_disk_leaves_the_old_report_and_the_old_bundle(study_folder: Path) -> None:
    spec = random_spec("reported", 6, where="reported.toml")
    run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    assert main(["report", "reported", "--quiet"]) == 0
    report = study_folder / "reports" / "reported"
    before = snapshot(report)
    largest = max(len(b) for b in before.values())
    done = dse_limited(largest - 1, ["report", "reported", "--quiet"], cwd=study_folder)
    assert done.returncode == 2
    one_line(done.stderr, where="reports/reported: write:")
    assert snapshot(report) == before and not list(report.glob(".*"))
    done = dse_limited(
        largest - 1, ["report", "reported", "--out", "new", "--quiet"], cwd=study_folder
    )
    assert done.returncode == 2 and not (study_folder / "new").exists()  # as it was

    complete = [
        t.number for t in load_study("reported")[0].get_trials() if t.state == TrialState.COMPLETE
    ]
    assert main(["export", "reported", "--trial", str(complete[0]), "--out", "b", "--quiet"]) == 0
    before = snapshot(study_folder / "b")
    largest = max(len(b) for b in before.values())
    done = dse_limited(
        largest - 1,
        ["export", "reported", "--trial", str(complete[-1]), "--out", "b", "--force", "--quiet"],
        cwd=study_folder,
    )
    assert done.returncode == 2
    one_line(done.stderr, where="b: write:")
    assert snapshot(study_folder / "b") == before and not list((study_folder / "b").glob(".*"))
    done = dse_limited(
        largest - 1,
        ["export", "reported", "--trial", str(complete[-1]), "--out", "new-b", "--quiet"],
        cwd=study_folder,
    )
    assert done.returncode == 2 and not (study_folder / "new-b").exists()


@pytest.mark.slow
def test_a_full_disk_under_the_journal_loses_nothing_and_the_study_resumes(
    study_folder: Path,
) -> None:
    spec = random_spec("journal", 4, where="j.toml")
    run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    journal = study_folder / "studies" / "journal.journal"
    before = journal.read_bytes()
    done = dse_limited(
        len(before) + 3000, ["study", "resume", "journal", "--n-trials", "12"], cwd=study_folder
    )
    assert done.returncode == 2
    one_line(done.stderr, where="journal.journal: write:")
    after = journal.read_bytes()
    assert after.startswith(before) and after.endswith(b"\n")  # whole lines, none lost
    for line in after.splitlines():
        json.loads(line)
    study, _ = load_study("journal")
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials()) >= 4
    assert main(["study", "resume", "journal", "--n-trials", "12"]) == 0
    study, _ = load_study("journal")
    trials = study.get_trials()
    states = [t.state for t in trials]
    # the trial the full disk stopped was set aside (or lost with its worker): its retry
    # completed in its place, and it spent nothing
    assert states.count(TrialState.COMPLETE) == 12 and budget_used(trials) == 12
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAIL}
