"""``dse study``, ``dse front``, ``dse compare`` and ``dse verify`` end to end through
``dse.cli.main``, each test in its own folder with a tiny spec."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import write_spec
from optuna.trial import TrialState
from other_worker import hold

from dse.cli import main
from dse.search import Explorer, recommend
from dse.search.baselines import BASELINES, load_grid
from dse.search.study import load_study
from dse.search.workers import registered

STATUS_KEYS = {
    "name",
    "trials",
    "networks_used",
    "networks",
    "trainings_run",
    "trained",
    "training_seconds",
    "hypervolume",
    "ruler",
    "workers",
}
KNOB_KEYS = {"method", "density", "split", "exits", "threshold", "criterion"}
OBJECTIVES = ("accuracy", "latency_mean", "edge_energy")
#: How long a helper worker may take to complete its first trial (seconds): its start
#: (importing torch, reading the cached networks) takes seconds, far more on a loaded
#: machine; past this something is wrong.
HELPER_WAIT_S = 300


@pytest.fixture(autouse=True)
def _isolated(study_folder: Path) -> None:
    """Every test in its own folder, all sharing one training cache (see conftest)."""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``dse ARGV``, insist on exit 0, return stdout."""
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def test_study_run_status_and_front_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-front.toml", "cli-front")
    out = run(capsys, "study", "run", str(spec), "--quiet")
    # the two networks may come from the session's shared cache: they are counted as
    # used by trials, and the trainings this study ran (if any) apart
    assert "study cli-front: trials complete 20; 2 network(s) used by trials, " in out
    ran = re.search(
        r"used by trials, (\d+) training\(s\) run by this study \(([\d.]+) s\)"
        r"|used by trials, no training run by this study",
        out,
    )
    assert ran is not None, out
    assert "hypervolume" in out and "next: dse recommend cli-front" in out
    assert (tmp_path / "studies" / "cli-front.journal").exists()
    # the run ends with its answer, which scores the (small) exhaustive grid first
    assert re.search(r"^front: \d+ distinct point\(s\), \d+ configuration\(s\)", out, re.M)
    assert re.search(r"^Deploy .* validation accuracy [0-9.]+% ± [0-9.]+ ", out, re.M)

    out = run(capsys, "study", "status", "cli-front", "--json", "status.json", "--quiet")
    info = json.loads(Path("status.json").read_text())
    assert STATUS_KEYS <= set(info)
    assert info["name"] == "cli-front" and info["trials"] == {"COMPLETE": 20}
    assert info["networks_used"] == 2
    assert info["trainings_run"] == len(info["trained"]) == int(ran.group(1) or 0)
    assert info["networks"] == [["dense", 1.0], ["predefined", 0.5]]
    assert info["ruler"] == "grid" and 0 < info["hypervolume"] <= 1.1**3
    assert 0 < info["hv_fraction_of_grid"] <= 1 + 1e-9
    assert "trials complete 20" in out
    assert info["workers"] == 0 and "worker" not in out
    other = hold("cli-front")  # a run in progress
    try:
        out = run(capsys, "study", "status", "cli-front", "--json", "status.json", "--quiet")
    finally:
        other.kill()
        other.wait(timeout=30)
    assert json.loads(Path("status.json").read_text())["workers"] == 1
    assert "1 worker(s) running" in out

    study, spec_back = load_study("cli-front")
    decision = recommend(study, spec_back, Explorer(spec_back, progress=False))
    front = decision.front
    assert len(front) > 0
    # every view counts the same points: status, recommend, and front in every format
    assert info["front"] == {
        "points": len(front),
        "configurations": decision.configurations,
        "below_floor": len(decision.below_floor),
    }
    run(capsys, "recommend", "cli-front", "--json", "answer.json", "--quiet")
    answer = json.loads(Path("answer.json").read_text())
    assert len(answer["front"]) == len(front)

    assert run(capsys, "front", "cli-front", "--format", "json", "--out", "front.json") == ""
    data = json.loads(Path("front.json").read_text())
    assert isinstance(data, list) and len(data) == len(front)
    assert data == answer["front"]
    for item, point in zip(data, front, strict=True):
        assert item["trial"] == point.trial and item["source"] == point.source
        assert set(item["config"]) == KNOB_KEYS
        assert item["config"]["exits"] == list(point.config.exits)
        assert item["config"]["split"] == point.config.split
        assert len(item["configurations"]) == len(point.configurations)
        assert item["configurations"][0] == item["config"]
        assert set(OBJECTIVES) <= set(item["metrics"])
        for k in OBJECTIVES:
            assert item["metrics"][k] == point.metrics[k]
        assert item["test_metrics"]["accuracy"] == point.row["test_accuracy"]
        assert item["metrics"]["exit_rates"] == list(point.row["exit_rates"])
    # accuracy is an objective: the best first
    accs = [d["metrics"]["accuracy"] for d in data]
    assert accs == sorted(accs, reverse=True)
    # without --out the JSON goes to stdout
    assert json.loads(run(capsys, "front", "cli-front", "--format", "json", "--quiet")) == data

    run(capsys, "front", "cli-front", "--format", "csv", "--out", "front.csv")
    csv = pd.read_csv("front.csv")
    assert list(csv.columns[:5]) == ["trial", "source", "configurations", "feasible", "below_floor"]
    assert len(csv) == len(front) and csv.configurations.sum() == decision.configurations
    assert {"knob_split", "knob_exits", "accuracy", "latency_mean", "edge_energy"} <= set(
        csv.columns
    )
    assert csv.accuracy.tolist() == pytest.approx([p.metrics["accuracy"] for p in front])
    # exits as JSON lists, as in the grid's and the report's CSV files
    assert [tuple(json.loads(e)) for e in csv.knob_exits] == [p.config.exits for p in front]

    table = run(capsys, "front", "cli-front", "--quiet")
    lines = table.splitlines()
    assert "configuration" in lines[0] and "accuracy" in lines[0]
    rows = [ln for ln in lines if re.match(r"[* ]\s*(dense|predefined@0\.5), cut ", ln)]
    assert len(rows) == len(front)
    assert f"{len(front)} distinct point(s), {decision.configurations} configuration(s)" in table
    assert "% of the grid front's" in table


def test_grid_then_front_shows_the_hypervolume_fraction_and_compare_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-grid.toml", "cli-grid")
    run(capsys, "study", "run", str(spec), "--quiet")
    out = run(capsys, "study", "grid", str(spec), "--quiet")
    m = re.search(
        r"grid of cli-grid: (\d+) candidates scored in .*, (\d+) on the front, "
        r"hypervolume ([0-9.]+); wrote (\S+)",
        out,
    )
    assert m, out
    assert int(m.group(1)) == 140 + 14  # the space, plus 7 cuts x 2 edgent exits
    assert Path(m.group(4)) == Path("studies/cli-grid.grid.csv") and Path(m.group(4)).exists()
    reach = re.search(r"the study's trials reach ([0-9.]+)% of it", out)
    assert reach and 0 < float(reach.group(1)) <= 100.0

    info_out = run(capsys, "study", "status", "cli-grid", "--json", "status.json")
    info = json.loads(Path("status.json").read_text())
    assert info["ruler"] == "grid"
    assert 0 < info["hv_fraction_of_grid"] <= 1.0 + 1e-9
    assert info["hv_fraction_of_grid"] == pytest.approx(float(reach.group(1)) / 100, abs=1e-3)
    assert "of the grid front's" in info_out

    table = run(capsys, "front", "cli-grid")
    frac = re.search(r"([0-9.]+)% of the grid front's", table)
    assert frac and float(frac.group(1)) == pytest.approx(
        100 * info["hv_fraction_of_grid"], abs=0.05
    )

    out = run(capsys, "compare", str(spec), "--json", "compare.json", "--quiet")
    assert "matched accuracy" in out and "joint" in out
    result = json.loads(Path("compare.json").read_text())
    assert set(result) == {"reference_accuracy", "baselines", "trials", "verdicts"}
    rows = {r["baseline"]: r for r in result["baselines"]}
    assert list(rows) == [b for b in BASELINES if b != "auto-split"]  # no codec in space
    # the joint row is the study's own trials (all feasible here), measured as status does
    assert result["trials"] == 20 and rows["joint"]["candidates"] == 20
    assert rows["joint"]["hv"] == pytest.approx(
        info["hv_fraction_of_grid"] * float(m.group(3)), rel=1e-3
    )
    assert rows["edgent"]["in_space"] is False  # thresholds from 0.5: right-sizing is outside
    assert isinstance(result["verdicts"], list)
    assert 0 < result["reference_accuracy"] <= 1


def test_compare_without_a_grid_scores_one_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-compare.toml", "cli-compare")
    out = run(capsys, "compare", str(spec), "--quiet")
    assert "edge-only" in out and "neurosurgeon" in out
    assert (tmp_path / "studies" / "cli-compare.grid.csv").exists()
    study, _ = load_study("cli-compare")  # the ruler is written into the (empty) study
    assert "ruler" in study.user_attrs and study.user_attrs["grid_hypervolume"] > 0
    assert run(capsys, "compare", str(spec), "--quiet") == out  # read back, same table


def test_verify_retrains_the_top_configuration_and_prints_old_to_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-verify.toml", "cli-verify")
    run(capsys, "study", "run", str(spec), "--quiet")
    study, spec_back = load_study("cli-verify")
    explorer = Explorer(spec_back, progress=False)
    top = recommend(study, spec_back, explorer).recommended
    assert top is not None
    out = run(capsys, "verify", "cli-verify", "--top", "1", "--quiet")
    lines = out.strip().splitlines()
    assert len(lines) == 1
    m = re.match(
        r"(trial \d+|\S+ point) \(recommended\): (.*): test accuracy ([0-9.]+)% \(shared "
        r"training\) -> ([0-9.]+)% \(retrained alone\), ([-+][0-9.]+) points",
        lines[0],
    )
    assert m, lines[0]
    assert m.group(1) == (f"trial {top.trial}" if top.trial is not None else f"{top.source} point")
    assert m.group(2) == top.config.label(explorer.exit_names)
    assert float(m.group(3)) == pytest.approx(100 * top.row["test_accuracy"], abs=0.05)
    stored = load_study("cli-verify")[0].user_attrs["verify"]
    assert len(stored) == 1 and stored[0]["trial"] == top.trial
    assert stored[0]["old_test_accuracy"] == top.row["test_accuracy"]
    assert 0 < stored[0]["new_test_accuracy"] <= 1
    assert float(m.group(4)) == pytest.approx(100 * stored[0]["new_test_accuracy"], abs=0.05)
    assert float(m.group(5)) == pytest.approx(100 * stored[0]["delta"], abs=0.05)
    assert stored[0]["delta"] == pytest.approx(
        stored[0]["new_test_accuracy"] - stored[0]["old_test_accuracy"]
    )


def test_resume_continues_a_stored_study_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-resume.toml", "cli-resume")
    run(capsys, "study", "run", str(spec), "--n-trials", "4", "--quiet")
    before = [(t.params, t.values) for t in load_study("cli-resume")[0].get_trials()]
    assert len(before) == 4
    out = run(capsys, "study", "resume", "cli-resume", "--n-trials", "7", "--quiet")
    assert "trials complete 7" in out
    trials = load_study("cli-resume")[0].get_trials()
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    assert [(t.params, t.values) for t in trials[:4]] == before


def test_an_unknown_study_name_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["study", "status", "nobody"],
        ["front", "nobody"],
        ["study", "resume", "nobody"],
        ["verify", "nobody"],
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no study named 'nobody'" in err[0], err


def test_study_run_with_workers_shares_the_study_with_helper_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helpers are real ``python -m dse.cli`` processes; this one is slowed down and
    notes the trials it ran, so the others were the helper's. It starts its own first
    trial only once the helper has completed one, so a helper slow to start on a loaded
    machine still shares the study; a helper that completes none in HELPER_WAIT_S fails
    the test (rather than letting this process run the study alone)."""
    import time

    import dse.search.study

    spec = write_spec(tmp_path / "cli-workers.toml", "cli-workers", n_trials=40)
    run(capsys, "study", "run", str(spec), "--quiet", "--n-trials", "2")  # networks cached
    plain = dse.search.study.objective_for
    mine: list[int] = []

    def slow(*a: object, **kw: object):  # type: ignore[no-untyped-def]
        objective = plain(*a, **kw)  # type: ignore[arg-type]

        def trial(t):  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + HELPER_WAIT_S
            while not mine:  # the helper has finished one of its own (2 came before)
                done = t.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if len(done) > 2:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"the helper worker completed no trial in {HELPER_WAIT_S} s")
                time.sleep(0.1)
            mine.append(t.number)
            time.sleep(0.25)
            return objective(t)

        return trial

    monkeypatch.setattr(dse.search.study, "objective_for", slow)
    out = run(capsys, "study", "run", str(spec), "--quiet", "--workers", "2")
    assert "network(s) used by trials" in out
    trials = load_study("cli-workers")[0].get_trials(states=(TrialState.COMPLETE,))
    assert 40 <= len(trials) <= 41
    theirs = [t for t in trials[2:] if t.number not in mine]
    ours = [t for t in trials[2:] if t.number in mine]
    assert theirs and ours  # both processes ran trials of the one study
    took = [(t.datetime_complete - t.datetime_start).total_seconds() for t in ours]
    assert all(s >= 0.25 for s in took)  # the slowed process's trials are the noted ones
    workers = registered(load_study("cli-workers")[0])  # this process (both runs), the helper
    assert len(workers) == 2 and all(r["ended"] for r in workers.values())  # both left cleanly


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--workers", "0"], ">= 1"),
        (["--workers", "2", "--storage", "memory"], "private to one process"),
    ],
)
def test_study_run_bad_workers_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    spec = write_spec(tmp_path / "cli-bad-workers.toml", "cli-bad-workers")
    assert main(["study", "run", str(spec), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_a_failing_helper_fails_the_command_and_resume_takes_workers_too(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """capfd: the helper writes its error to the real standard error."""
    import dse.search.study

    spec = write_spec(tmp_path / "cli-helper-fails.toml", "cli-helper-fails", n_trials=10)
    plain = dse.search.study.run_study

    def spec_gone_before_helpers_start(*a, on_start=None, **kw):  # type: ignore[no-untyped-def]
        def start() -> None:
            spec.unlink()  # the helper cannot read what this process already has
            on_start()  # type: ignore[misc]

        return plain(*a, on_start=start if on_start else None, **kw)

    monkeypatch.setattr(dse.search.study, "run_study", spec_gone_before_helpers_start)
    assert main(["study", "run", str(spec), "--quiet", "--workers", "2"]) == 2
    err = capfd.readouterr().err
    assert "cli-helper-fails.toml" in err and "1 of 1 helper worker(s) failed (exit 2)" in err
    monkeypatch.setattr(dse.search.study, "run_study", plain)  # (undo() would leave the tmp dir)
    # the study itself was run by this process; resume continues it with two workers
    assert len(load_study("cli-helper-fails")[0].get_trials()) == 10
    out = run(
        capfd,
        "study",
        "resume",
        "cli-helper-fails",
        "--n-trials",
        "30",
        "--quiet",
        "--workers",
        "2",
    )
    assert "trials complete 3" in out  # 30, or 31 if both workers finished one at the end
    trials = load_study("cli-helper-fails")[0].get_trials()
    assert 30 <= len(trials) <= 31


def test_compare_with_a_clashing_spec_keeps_the_stored_studys_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "cli-clash.toml", "cli-clash")
    run(capsys, "study", "run", str(spec), "--quiet")
    run(capsys, "study", "grid", str(spec), "--quiet")
    saved = [Path("studies/cli-clash.grid.csv"), Path("studies/cli-clash.grid.json")]
    before = [p.read_bytes() for p in saved]
    other = write_spec(tmp_path / "other.toml", "cli-clash", n_trials=21)
    assert main(["compare", str(other), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cli-clash" in err
    assert [p.read_bytes() for p in saved] == before
    assert load_grid("cli-clash", load_study("cli-clash")[1]) is not None


@pytest.mark.heavy  # 9 s, a study run: make test-all (CI) runs it
def test_study_run_warns_when_the_reference_network_has_not_learned(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    capsys = capfd  # the helper workers' own output too
    path = write_spec(tmp_path / "unlearned.toml", "unlearned", n_trials=3, training={"lr": 1e-5})
    capsys.readouterr()
    assert main(["study", "run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(
        "dse: warning: the reference network (mlp, dense, 1 epoch): the final classifier reaches "
    )
    assert "it has not learned" in line and 'epochs = "auto" in the spec\'s [training]' in line
    assert "every accuracy figure of this study is measured against it" in line
    # with helper workers, said once (by the process the user started)
    assert main(["study", "run", str(path), "--quiet", "--workers", "2", "--n-trials", "6"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [line]
    # a study whose networks learned says nothing
    learned = write_spec(tmp_path / "learned.toml", "learned", n_trials=3)
    assert main(["study", "run", str(learned), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_killing_the_parent_of_workers_stops_its_helpers(tmp_path: Path) -> None:
    """``kill -9`` of ``study run --workers 2`` must not leave its helper running."""
    import signal
    import subprocess
    import sys
    import time

    spec = write_spec(tmp_path / "cli-orphan.toml", "cli-orphan", n_trials=100000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen(
        [sys.executable, "-m", "dse.cli", "study", "run", str(spec), "--quiet", "--workers", "2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    helpers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not helpers and time.monotonic() < deadline:
            assert parent.poll() is None, "the run ended before its helper started"
            helpers = _children(parent.pid)
            time.sleep(0.2)
        assert helpers, "no helper process started"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not all(_gone(h) for h in helpers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(_gone(h) for h in helpers), "the helper outlived its parent"
    finally:
        parent.kill()
        for h in helpers:
            if not _gone(h):
                os.kill(h, signal.SIGKILL)


def _fails_with(capsys: pytest.CaptureFixture[str], rc_expected: int, *argv: str) -> str:
    """Run ``dse ARGV``; insist on exit ``rc_expected`` with one line on stderr."""
    capsys.readouterr()
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert rc == rc_expected, err
    assert err.startswith("dse: error: ") and "\n" not in err, err
    return err


def test_a_constraint_no_trial_meets_exits_2_and_keeps_the_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path / "nothing.toml", "nothing", n_trials=4, constraints={"latency_mean": "<= 1e-12"}
    )
    err = _fails_with(capsys, 2, "study", "run", str(spec), "--quiet")
    assert "none of the 4 complete trials meets latency_mean <= 1e-12" in err
    study, _ = load_study("nothing")
    assert len(study.trials) == 4  # what ran is kept


def test_every_trial_failing_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dse.search import study as study_mod

    def broken(self: object, cand: object) -> None:
        raise RuntimeError("the scorer broke")

    monkeypatch.setattr(study_mod.Explorer, "evaluate", broken)
    spec = write_spec(tmp_path / "broken.toml", "broken", n_trials=3)
    err = _fails_with(capsys, 1, "study", "run", str(spec), "--quiet")
    assert "every trial failed; the first: RuntimeError: the scorer broke" in err


def test_bad_files_and_storages_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path / "badio.toml", "badio", n_trials=2)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    assert "not a text file" in _fails_with(capsys, 2, "study", "run", str(binary))
    err = _fails_with(
        capsys, 2, "study", "run", str(spec), "--storage", "sqlite:////nonexistent/dir/x.db"
    )
    assert "storage: the folder /nonexistent/dir does not exist" in err
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cache = os.environ["DSE_CACHE"]
    monkeypatch.setenv("DSE_CACHE", str(a_file))
    assert "DSE_CACHE: is a file, not a folder" in _fails_with(
        capsys, 2, "study", "run", str(spec), "--quiet"
    )
    monkeypatch.setenv("DSE_CACHE", cache)
    assert not list(Path("studies").glob("badio*"))  # nothing half-made was stored


def test_report_into_a_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "rep-out.toml", "rep-out", n_trials=4)
    run(capsys, "study", "run", str(spec), "--quiet")
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert "--out: is a file, not a folder" in _fails_with(
        capsys, 2, "report", "rep-out", "--out", str(target), "--quiet"
    )
    assert target.read_text() == "keep me"


@pytest.mark.slow
@pytest.mark.heavy
def test_two_runs_started_together_end_with_exactly_n_trials(tmp_path: Path) -> None:
    """Two ``study run`` processes started at once share the study: neither fails the
    other's live trial as stale, and together they stop at n_trials, not one more."""
    import subprocess
    import sys

    from optuna.trial import TrialState

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for attempt in range(3):
        name = f"together-{attempt}"
        spec = write_spec(tmp_path / f"{name}.toml", name, n_trials=12)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "dse.cli", "study", "run", str(spec), "--quiet"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=300)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        study, _ = load_study(name)
        states = [t.state for t in study.trials]
        assert states == [TrialState.COMPLETE] * 12, (attempt, states)
