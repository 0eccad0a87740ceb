"""The report of a study over several tasks: per-task columns, per-task thresholds and the
exit policy in the knobs, and the section comparing one backbone with one network per task
(its table, verdicts, schedule and figure, whose numbers are the comparison's)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers.fast_report import FAST
from helpers.report_data import report_data

from dse.report import fmt, plots
from dse.report.fmt import human
from dse.report.text import exits_text
from dse.report.write import write_report
from dse.search.space import Candidate
from tests.tiny_study import HUE_DATA, HUE_TASKS

TASKS = HUE_TASKS
SECTION = "One backbone or one network per task"

SPEC = (
    """\
name = "mtl-report"
n_trials = 6
sampler = "random"
seed = 0
[model]
name = "mlp"
"""
    + HUE_DATA
    + """\
[training]
epochs = 1
seed = 0
[space]
densities = [1.0]
thresholds = { low = 0.5, high = 1.0, step = 0.5 }
policies = ["all", "per_task"]
task_thresholds = true
[objectives]
accuracy.wall_hue = "maximize"
accuracy_min = "maximize"
latency_mean = "minimize"
[constraints]
accuracy_min = ">= 0"
"""
)

# ------------------------------------------------------------------------- knobs text


def test_knobs_text_names_each_tasks_threshold_and_the_policy_only_with_several_tasks() -> None:
    c = Candidate("dense", 1.0, 2, (0, 1), 0.5, "max_prob", "per_task", (0.5, 0.75))
    assert exits_text(c, ["e1", "e2"], short=True, tasks=TASKS) == (
        "e1+e2 @ wall_hue 0.5, floor_hue 0.75; policy per_task"
    )
    assert exits_text(c, ["e1", "e2"], tasks=TASKS) == (
        "exits e1+e2 at thresholds wall_hue 0.5, floor_hue 0.75 (policy per_task)"
    )
    one = Candidate("dense", 1.0, 2, (0,), 0.5)
    assert exits_text(one, ["e1"], short=True, tasks=TASKS) == (
        "e1 @ wall_hue 0.5, floor_hue 0.5; policy all"
    )  # one threshold serves every task
    assert exits_text(one, ["e1"], short=True) == "e1 @ 0.5"  # one task: as before
    assert exits_text(Candidate("dense", 1.0, 2, (), 0.5), ["e1"], tasks=TASKS) == "no exit"


def test_a_rows_candidate_has_the_policy_and_thresholds_the_row_has() -> None:
    row = pd.Series(
        {
            "knob_method": "dense",
            "knob_density": 1.0,
            "knob_split": 3,
            "knob_exits": (0,),
            "knob_threshold": 0.5,
            "knob_criterion": "max_prob",
            "knob_policy": "per_task",
            "knob_task_thresholds": (0.5, 1.0),
        }
    )
    c = Candidate.from_row(row)
    assert c.policy == "per_task" and c.task_thresholds == (0.5, 1.0)
    # a row without exits has no policy (NaN in a frame), a single-task row no column
    assert Candidate.from_row(row.drop(["knob_policy", "knob_task_thresholds"])) == Candidate(
        "dense", 1.0, 3, (0,), 0.5, "max_prob"
    )
    row["knob_policy"], row["knob_task_thresholds"] = float("nan"), float("nan")
    assert Candidate.from_row(row).policy == "all" and Candidate.from_row(row).task_thresholds == ()


def test_a_tasks_accuracy_reads_as_a_percentage() -> None:
    assert human("accuracy.wall_hue", 0.5) == "50.0%"
    assert human("test_accuracy.floor_hue", 0.25) == "25.0%"
    assert human("accuracy_min", 1.0) == "100.0%"
    assert plots.metric_axis("accuracy.wall_hue", [0.5]) == (
        "validation accuracy, wall_hue (%)",
        0.01,
    )


# ------------------------------------------------------------------------- the figure


def _design(
    name: str,
    kind: str,
    cuts: tuple[int, ...],
    lat: float,
    acc: tuple[float, ...],
) -> SimpleNamespace:
    return SimpleNamespace(
        name=name,
        kind=kind,
        cuts=cuts,
        edge_flops=1e6,
        bytes=lat * 10,
        latency_mean=lat,
        latency_p95=lat,
        edge_energy=lat * 2,
        edge_memory=1e3,
        accuracy=acc,
        test_accuracy=acc,
    )


def test_tasks_info_pairs_each_placement_and_renders(tmp_path: Path) -> None:
    mtl, stl = (0.9, 0.5), (0.95, 0.6)
    cmp = SimpleNamespace(
        tasks=TASKS,
        schedule="parallel",
        designs=(
            _design("MTL, best cut", "mtl", (2,), 1.0, mtl),
            _design("STL, best cuts", "stl", (1, 3), 3.0, stl),
            _design("MTL, all on edge", "mtl", (5,), 2.0, mtl),
            _design("STL, all on edge", "stl", (4, 4), 5.0, stl),
            _design("MTL, all on server", "mtl", (0,), 4.0, mtl),
            _design("STL, all on server", "stl", (0, 0), 7.0, stl),
        ),
    )
    info = plots.tasks_info(cmp)
    assert info.placements == ("best cut", "all on edge", "all on server")
    assert info.cuts == (("2", "5", "0"), ("1,3", "4,4", "0,0"))
    assert info.latency_s.tolist() == [[1.0, 2.0, 4.0], [3.0, 5.0, 7.0]]
    assert info.bytes_sent.tolist() == [[10.0, 20.0, 40.0], [30.0, 50.0, 70.0]]
    assert info.edge_energy_j.tolist() == [[2.0, 4.0, 8.0], [6.0, 10.0, 14.0]]
    assert info.test_accuracy.tolist() == [list(mtl), list(stl)]
    assert info.schedule == "parallel" and info.tasks == TASKS
    written = plots.render_tasks(info, tmp_path / "tasks")
    assert [p.name for p in written] == ["tasks.png", "tasks.svg"]
    assert all(p.stat().st_size > 0 for p in written)
    with pytest.raises(ValueError, match="pairs"):
        plots.tasks_info(
            SimpleNamespace(tasks=TASKS, schedule="sequential", designs=cmp.designs[:3])
        )


# ------------------------------------------------------------------------- a whole report


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path, one_thread: None
) -> Iterator[Path]:
    """The report of a tiny two-task study, in a folder of its own with the session's
    training cache, less the single-task networks: the report trains those itself."""
    from dse.search import single_task_spec
    from dse.search.spec import load_spec
    from dse.search.study import Explorer, run_study

    root = tmp_path_factory.mktemp("mtl-report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("DSE_CACHE", str(shared_cache))
        (root / "studies").mkdir()
        path = root / "studies" / "mtl-report.toml"
        path.write_text(SPEC)
        spec = load_spec(path)
        explorer = Explorer(spec, progress=False)
        run_study(spec, explorer=explorer, progress=False)
        base = explorer.network_spec("dense", 1.0)
        for task in TASKS:  # another test may have trained them into the shared cache
            explorer.cache.path(single_task_spec(base, task).key).unlink(missing_ok=True)
        yield write_report("mtl-report", progress=False, **FAST)


def _comparison(report: Path):  # type: ignore[no-untyped-def]
    """The comparison again, from the networks the report trained (cached, no training)."""
    from dse.search import compare_tasks
    from dse.search.study import Explorer, load_study

    _, spec = load_study("mtl-report")
    return compare_tasks(Explorer(spec, progress=False))


@pytest.mark.slow
def test_report_of_several_tasks_has_the_section_columns_and_figure(report: Path) -> None:
    out = report.parent
    md = (out / "report.md").read_text()
    page = report.read_text()
    assert f"## {SECTION}" in md and f'<h2 id="tasks">{SECTION}</h2>' in page
    assert f'<a href="#tasks">{SECTION}</a>' in page  # in the table of contents
    for ext in FAST["figure_formats"]:
        assert (out / "figures" / f"tasks.{ext}").is_file()
    assert "](figures/tasks.png)" in md and 'src="figures/tasks.png"' in page
    section = md[md.index(f"## {SECTION}") : md.index("## Why this cut")]
    # how many single-task networks, and that the report trained them (own cache)
    assert "against 2 single-task networks (STL)" in section
    assert "2 trained for this report, 0 from the cache" in section
    assert 'stl = "sequential"' in section and "one after another" in section
    assert "1/2 of what 2 single-task networks do" in section
    # the front table: each task's validation and test accuracy, by name, grouped by task
    header = next(line for line in md.splitlines() if line.startswith("| trial | network"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    i = cols.index("accuracy.wall_hue")
    assert cols[i : i + 4] == [
        "accuracy.wall_hue",
        "test_accuracy.wall_hue",
        "accuracy.floor_hue",
        "test_accuracy.floor_hue",
    ]
    # the recommendation: each task's accuracy, and thresholds per task where exits are used
    start = md.index("## Recommended configuration")
    rec = md[start : md.index("\n## ", start + 1)]  # up to the next section
    for t in TASKS:
        assert f"| · accuracy, {t} |" in rec
    assert ("| exit policy |" in rec) == ("| exits used | none |" not in rec)
    # the trial's policy and thresholds are read back: scoring it again gives its numbers
    assert "scoring this configuration again" not in md
    # the objectives naming a task are described
    assert (
        "`accuracy.wall_hue` (maximize): fraction of validation samples classified "
        "right for task wall_hue" in md
    )


@pytest.mark.slow
def test_report_section_and_figure_show_the_comparisons_numbers(report: Path) -> None:
    c = _comparison(report)
    md = (report.parent / "report.md").read_text()
    section = md[md.index(f"## {SECTION}") : md.index("## Why this cut")]
    frame = c.frame()
    for name, r in frame.iterrows():
        cells = [str(name), str(r["cuts"])]
        row = next(line for line in section.splitlines() if line.startswith(f"| {name} |"))
        got = [x.strip() for x in row.strip("|").split("|")]
        assert got[:2] == cells
        assert got[3:7] == [
            fmt.nbytes(r["bytes"]),
            fmt.seconds(r["latency_mean"]),
            fmt.joules(r["edge_energy"]),
            fmt.nbytes(r["edge_memory"]),
        ]
        assert got[7:] == [fmt.percent(r[f"test_accuracy.{t}"]) for t in TASKS]
    for v in c.verdicts():
        assert f"- {v[0].upper()}{v[1:]}." in section
    info = plots.tasks_info(c)
    assert info.placements[0] == "best cut"
    assert info.placements[-2:] == ("all on edge", "all on server")
    for k, kind in enumerate(("mtl", "stl")):
        ds = [d for d in c.designs if d.kind == kind]  # in the comparison's order
        assert len(ds) == len(info.placements)
        np.testing.assert_array_equal(info.latency_s[k], [d.latency_mean for d in ds])
        np.testing.assert_array_equal(info.edge_energy_j[k], [d.edge_energy for d in ds])
        np.testing.assert_array_equal(info.bytes_sent[k], [d.bytes for d in ds])
        np.testing.assert_array_equal(info.test_accuracy[k], ds[0].test_accuracy)
        assert info.cuts[k] == tuple(",".join(map(str, d.cuts)) for d in ds)


@pytest.mark.slow
def test_a_second_report_reads_the_single_task_networks_from_the_cache(report: Path) -> None:
    again = write_report("mtl-report", progress=False, **FAST)
    md = (again.parent / "report.md").read_text()
    assert "all of them came from the cache this time" in md


def _section_md(section: object, *, schedule: str = "sequential") -> str:
    """The section alone, laid out by the report from a given TasksSection."""
    from dse.report.doc import Doc
    from dse.report.sections import tasks

    data = report_data(tasks=TASKS, task_comparison=section, spec=SimpleNamespace(name="s"))
    doc = Doc("t")
    tasks(data, doc)
    return doc.markdown()


def test_section_says_how_the_single_task_side_is_scheduled_and_when_it_failed() -> None:
    from dse.report.data import TasksSection
    from dse.search.tasks import Design, TaskComparison

    def design(name: str, kind: str, cuts: tuple[int, ...]) -> Design:
        return Design(name, kind, cuts, 1e6, 0.0, 1e-3, 1e-3, 1e-3, 1e3, (0.5, 0.5), (0.5, 0.25))

    designs = tuple(
        design(f"{k}, {p}", k.lower(), (0,) if k == "MTL" else (0, 0))
        for p in ("best cut", "all on edge", "all on server")
        for k in ("MTL", "STL")
    )
    designs = (designs[0], replace(designs[1], name="STL, best cuts"), *designs[2:])
    cuts = pd.DataFrame(
        {
            "cut": [0, 1],
            "edge_flops": [0.0, 1e6],
            "bytes": [1.0, 0.0],
            "latency_mean": [1.0, 1.0],
            "edge_energy": [1.0, 1.0],
            "in_heads": [False, False],
        }
    )
    for schedule, said in (
        ("parallel", 'stl = "parallel"): as if the edge device ran every'),
        ("sequential", 'stl = "sequential"): the edge parts run one after'),
    ):
        cmp = TaskComparison(TASKS, schedule, designs, cuts, (cuts, cuts))
        md = _section_md(TasksSection(cmp, 2, 1, None))
        assert said in md
        assert "1 trained for this report, 1 from the cache" in md
        assert (
            "| MTL, all on server | 0 | 1 MFLOP | 0 B | 1 ms | 1 mJ | 1 kB | 50.0% | 25.0% |" in md
        )
    md = _section_md(TasksSection(None, 2, 0, "RuntimeError: out of memory"))
    assert "**Not computed:** the comparison failed (RuntimeError: out of memory)" in md
    assert "`dse compare s`" in md and "| design |" not in md
