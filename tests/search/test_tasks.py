"""One backbone for several tasks against one network per task (dse.search.tasks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import DROP, HUE, HUE_TASKS, merged, only, spec, spec_dict

from dse.errors import InputError
from dse.nets import Cache, train_network
from dse.search import Candidate, Explorer, compare_tasks, parse_spec, single_task_spec
from dse.search.tasks import SHARED_MTL, SHARED_STL, _schedule

TASKS = HUE_TASKS

#: vgg-s on the two hues, dense, no exits, on a Jetson Nano over Wi-Fi.
TASKS_DOC = spec_dict(
    "tasks-compare",
    n_trials=4,
    sampler="random",
    storage="memory",
    model={"name": "vgg-s"},
    data=only(HUE),
    deployment={"edge": "jetson-nano", "server": "a100", "link": "wifi"},
    space=only({"densities": [1.0], "exits": "none"}),
    objectives=only({"accuracy_min": "maximize", "latency_mean": "minimize"}),
    constraints=DROP,
)


def tasks_spec(stl: str = "sequential", **overrides: object) -> str:
    """TASKS_DOC, its single-task networks scheduled ``stl``, ``overrides`` merged in."""
    return spec(base=merged(TASKS_DOC, {"deployment": {"stl": stl}}), **overrides)


def test_sequential_schedule_shares_the_device_and_the_link() -> None:
    # (edge, transfer, server) per network
    parts = [(1.0, 2.0, 0.5), (1.0, 2.0, 0.5)]
    # edge parts back to back (done at 1 and 2); the second transfer waits for the link
    # (free at 3), ends at 5; its server part ends at 5.5
    assert _schedule(parts, "sequential") == pytest.approx(5.5)
    assert _schedule(parts, "parallel") == pytest.approx(3.5)
    # a network answered on the edge sends nothing and ends with its edge part
    assert _schedule([(1.0, 0.0, 0.0), (3.0, 0.0, 0.0)], "sequential") == pytest.approx(4.0)
    assert _schedule([(1.0, 0.0, 0.0), (3.0, 0.0, 0.0)], "parallel") == pytest.approx(3.0)


def test_single_task_counterparts_share_backbone_head_and_training(shared_cache: Path) -> None:
    explorer = Explorer(
        parse_spec(tasks_spec("sequential")), cache=Cache(shared_cache), progress=False
    )
    base = explorer.network_spec("dense", 1.0)
    for task in TASKS:
        one = single_task_spec(base, task)
        assert one.task_names == (task,) and one.head == base.head and one.head.kind == "mlp"
        assert (one.model, one.train, one.exits, one.density) == (
            base.model,
            base.train,
            base.exits,
            base.density,
        )
        assert one.key != base.key


@pytest.mark.parametrize("stl", ["sequential", "parallel"])
def test_compare_tasks_figures_come_from_the_networks_it_names(
    shared_cache: Path, stl: str
) -> None:
    explorer = Explorer(parse_spec(tasks_spec(stl)), cache=Cache(shared_cache), progress=False)
    c = compare_tasks(explorer)
    assert c.tasks == TASKS and c.schedule == stl
    mtl, stl_same = c.design(SHARED_MTL), c.design(SHARED_STL)
    # accuracy: each side's own final heads, per task, on validation and test
    trained = explorer.scorer("dense", 1.0).trained
    assert mtl.test_accuracy == pytest.approx(tuple(trained.task_accuracy("test")))
    singles = [
        train_network(
            single_task_spec(explorer.network_spec("dense", 1.0), t),
            cache=explorer.cache,
            progress=False,
        )
        for t in TASKS
    ]
    assert all(s.cached for s in singles)  # compare_tasks trained and cached them
    assert stl_same.test_accuracy == pytest.approx(
        tuple(s.task_accuracy("test")[0] for s in singles)
    )
    assert stl_same.accuracy == pytest.approx(tuple(s.task_accuracy("val")[0] for s in singles))
    # at the cut after the shared layers: one backbone's compute and tensor against two
    cut = mtl.cuts[0]
    assert stl_same.cuts == (cut, cut)
    assert mtl.edge_flops == pytest.approx(stl_same.edge_flops / 2)
    assert mtl.bytes == pytest.approx(stl_same.bytes / 2) and mtl.bytes > 0
    g = explorer.scorer("dense", 1.0).graph
    assert str(g.nodes[g.backbone[cut]].target).startswith("task_heads.0")  # heads after it
    assert not any(str(g.nodes[n].target).startswith("task_heads") for n in g.backbone[:cut])
    # the MTL side is the study's network scored at that cut
    m = explorer.evaluate(Candidate("dense", 1.0, cut, (), 0.5))
    assert (mtl.latency_mean, mtl.edge_energy, mtl.bytes) == pytest.approx(
        (m.latency_mean, m.edge_energy, m.bandwidth)
    )
    # best cut: the lowest mean latency of every cut
    best = c.design("MTL, best cut")
    assert best.latency_mean == pytest.approx(min(c.mtl_cuts.latency_mean))
    # all on the server sends the input once for MTL, once per network for STL
    assert c.design("MTL, all on server").bytes * 2 == pytest.approx(
        c.design("STL, all on server").bytes
    )
    assert c.design("MTL, all on edge").bytes == 0 == c.design("STL, all on edge").bytes
    frame = c.frame()
    assert list(frame.index) == [d.name for d in c.designs]
    assert {f"test_accuracy.{t}" for t in TASKS} <= set(frame.columns)
    lines = c.verdicts()
    assert any(line.startswith("mean latency") for line in lines)
    assert sum(line.startswith("task ") for line in lines) == len(TASKS)


def test_sequential_single_task_side_is_never_faster_than_parallel(shared_cache: Path) -> None:
    seq = compare_tasks(
        Explorer(parse_spec(tasks_spec("sequential")), cache=Cache(shared_cache), progress=False)
    )
    par = compare_tasks(
        Explorer(parse_spec(tasks_spec("parallel")), cache=Cache(shared_cache), progress=False)
    )
    for name in (SHARED_STL, "STL, all on server", "STL, all on edge"):
        assert seq.design(name).latency_mean >= par.design(name).latency_mean - 1e-12
    # the MTL side does not depend on how the single-task networks are scheduled
    assert seq.design(SHARED_MTL) == par.design(SHARED_MTL)


def test_compare_tasks_needs_several_tasks(shared_cache: Path) -> None:
    one = tasks_spec(
        data={"tasks": DROP, "task": "wall_hue"},
        objectives=only({"accuracy": "maximize", "latency_mean": "minimize"}),
    )
    explorer = Explorer(
        parse_spec(one, where="one.toml"), cache=Cache(shared_cache), progress=False
    )
    with pytest.raises(InputError) as err:
        compare_tasks(explorer)
    assert err.value.field == "data.tasks"


def test_dse_compare_prints_and_writes_the_multitask_comparison(
    study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dse.cli import main

    (study_folder / "spec.toml").write_text(tasks_spec("sequential"))
    assert main(["compare", "spec.toml", "--quiet", "--json", "out.json"]) == 0
    out = capsys.readouterr().out
    assert "one backbone for wall_hue, floor_hue (MTL)" in out
    assert SHARED_MTL in out and "STL, best cuts" in out
    doc = json.loads((study_folder / "out.json").read_text())
    assert doc["tasks"]["tasks"] == list(TASKS)
    assert [d["design"] for d in doc["tasks"]["designs"]][:2] == ["MTL, best cut", "STL, best cuts"]


def test_verify_reports_each_tasks_test_accuracy_before_and_after(shared_cache: Path) -> None:
    from dse.search import run_study, verify

    spec = parse_spec(tasks_spec("sequential"))
    explorer = Explorer(spec, cache=Cache(shared_cache), progress=False)
    study = run_study(spec, storage="memory", progress=False, explorer=explorer)
    (r,) = verify(study, spec, top=1, progress=False, explorer=explorer)
    assert set(r["tasks"]) == set(TASKS)
    before = [r["tasks"][t][0] for t in TASKS]
    after = [r["tasks"][t][1] for t in TASKS]
    assert r["old_test_accuracy"] == pytest.approx(sum(before) / 2)
    assert r["new_test_accuracy"] == pytest.approx(sum(after) / 2)
