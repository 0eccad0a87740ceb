"""One backbone for several tasks against one network per task (dse.search.tasks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dse.errors import InputError
from dse.nets import Cache, train_network
from dse.search import Candidate, Explorer, compare_tasks, parse_spec, single_task_spec
from dse.search.tasks import (
    SHARED_MTL,
    SHARED_STL,
    Exchange,
    best_cuts,
    run_together,
)
from tests.tiny_study import HUE_DATA, HUE_TASKS

TASKS = HUE_TASKS

SPEC = (
    """\
name = "tasks-compare"
n_trials = 4
sampler = "random"
storage = "memory"
[model]
name = "vgg-s"
"""
    + HUE_DATA
    + """\
[training]
epochs = 1
seed = 0
[deployment]
edge = "jetson-nano"
server = "a100"
link = "wifi"
stl = "{stl}"
[space]
densities = [1.0]
exits = "none"
[objectives]
accuracy_min = "maximize"
latency_mean = "minimize"
"""
)


def _x(edge: float, up: float, down: float, server: float, **j: float) -> Exchange:
    return Exchange(edge, up, down, server, j.get("compute", 0.0), j.get("up_j", 0.0), 0.0, 3.0)


def test_requests_share_the_airtime_and_overlap_their_round_trips(
    make_link: Any, make_device: Any
) -> None:
    link = make_link(rtt_s=1.0, connected_power_w=0.5)
    edge = make_device(idle_power_w=1.0)
    # (edge, up, down, server) per network: a short send, a long round trip
    two = [_x(1.0, 0.1, 0.5, 0.5, compute=2.0, up_j=0.4), _x(1.0, 0.1, 0.5, 0.5, compute=2.0)]
    seq = run_together(two, link, edge, schedule="sequential")
    # edge parts done at 1 and 2; sends [1, 1.1] and [2, 2.1]; half the round trip each
    # way: served at 2.1 and 3.1, answers [2.1, 2.6] and [3.1, 3.6], back at 3.1 and 4.1.
    # Holding the link for a whole exchange, round trip included, gave 4.7.
    assert seq.latency == pytest.approx(4.1)
    # energy: computing 4 J, sending 0.4 J, the tail once (3 J), connected from the first
    # send to the last answer less the airtime (3.1 - 1.2 = 1.9 s at 0.5 W), idle from
    # the last edge part to the answer (2.1 s at 1 W)
    assert (seq.compute_j, seq.up_j, seq.tail_j) == pytest.approx((4.0, 0.4, 3.0))
    assert seq.wait_j == pytest.approx(0.5 * 1.9) and seq.idle_j == pytest.approx(2.1)
    assert seq.edge_energy == pytest.approx(4.0 + 0.4 + 3.0 + 0.95 + 2.1)
    par = run_together(two, link, edge, schedule="parallel")
    # both ready at 1: the second send waits for the first's airtime, [1.1, 1.2]; answers
    # [2.1, 2.6] and [2.6, 3.1] share the downlink: back at 3.1 and 3.6
    assert par.latency == pytest.approx(3.6) and par.idle_j == pytest.approx(2.6)
    # a network answered on the edge sends nothing and ends with its edge part
    alone = [_x(1.0, 0.0, 0.0, 0.0), _x(3.0, 0.0, 0.0, 0.0)]
    assert run_together(alone, link, edge, schedule="sequential").latency == pytest.approx(4.0)
    assert run_together(alone, link, edge, schedule="parallel").latency == pytest.approx(3.0)
    assert run_together(alone, link, edge, schedule="parallel").tail_j == 0


def test_one_request_alone_costs_what_the_scorer_charges(shared_cache: Path) -> None:
    explorer = Explorer(
        parse_spec(SPEC.format(stl="sequential")), cache=Cache(shared_cache), progress=False
    )
    for cut in range(len(explorer.reference_graph.cuts)):
        m = explorer.evaluate(Candidate("dense", 1.0, cut, (), 0.5))
        x = run_together(
            [Exchange.of(m, explorer.link)], explorer.link, explorer.edge, schedule="sequential"
        )
        assert (x.latency, x.edge_energy) == pytest.approx((m.latency_mean, m.edge_energy))
        assert x.wait_j == pytest.approx(m.radio_wait_energy)
        assert x.idle_j == pytest.approx(m.idle_energy, abs=1e-15)


def test_best_cuts_are_the_best_together_not_each_alone(make_link: Any, make_device: Any) -> None:
    link, edge = make_link(rtt_s=0.2), make_device()
    # cut 0 sends for 3 s after 1 s on the edge (4.2 s alone); cut 1 keeps 4.5 s on the edge
    opts = [_x(1.0, 3.0, 0.0, 0.0), _x(4.5, 0.0, 0.0, 0.0)]
    nbytes = [3e6, 0.0]
    both = [opts, opts]
    # each alone prefers cut 0; together two sends share the uplink (done at 7.2 s), while
    # one network on the edge answers at 5.5 s
    assert run_together([opts[0], opts[0]], link, edge, schedule="sequential").latency == (
        pytest.approx(7.2)
    )
    assert best_cuts(both, [nbytes, nbytes], link, edge, schedule="sequential") == [0, 1]


def test_single_task_counterparts_share_backbone_head_and_training(shared_cache: Path) -> None:
    explorer = Explorer(
        parse_spec(SPEC.format(stl="sequential")), cache=Cache(shared_cache), progress=False
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
    explorer = Explorer(parse_spec(SPEC.format(stl=stl)), cache=Cache(shared_cache), progress=False)
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
        Explorer(
            parse_spec(SPEC.format(stl="sequential")), cache=Cache(shared_cache), progress=False
        )
    )
    par = compare_tasks(
        Explorer(parse_spec(SPEC.format(stl="parallel")), cache=Cache(shared_cache), progress=False)
    )
    for name in (SHARED_STL, "STL, all on server", "STL, all on edge"):
        assert seq.design(name).latency_mean >= par.design(name).latency_mean - 1e-12
    # the MTL side does not depend on how the single-task networks are scheduled
    assert seq.design(SHARED_MTL) == par.design(SHARED_MTL)


def test_compare_tasks_needs_several_tasks(shared_cache: Path) -> None:
    one = (
        SPEC.format(stl="sequential")
        .replace('tasks = ["wall_hue", "floor_hue"]', 'task = "wall_hue"')
        .replace('accuracy_min = "maximize"', 'accuracy = "maximize"')
    )
    explorer = Explorer(
        parse_spec(one, where="one.toml"), cache=Cache(shared_cache), progress=False
    )
    with pytest.raises(InputError) as err:
        compare_tasks(explorer)
    assert err.value.field == "data.tasks"


def test_dse_compare_prints_and_writes_the_multitask_comparison(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dse.cli import main

    (isolated / "spec.toml").write_text(SPEC.format(stl="sequential"))
    assert main(["compare", "spec.toml", "--quiet", "--json", "out.json"]) == 0
    out = capsys.readouterr().out
    assert "one backbone for wall_hue, floor_hue (MTL)" in out
    assert SHARED_MTL in out and "STL, best cuts" in out
    doc = json.loads((isolated / "out.json").read_text())
    assert doc["tasks"]["tasks"] == list(TASKS)
    assert [d["design"] for d in doc["tasks"]["designs"]][:2] == ["MTL, best cut", "STL, best cuts"]


def test_verify_reports_each_tasks_test_accuracy_before_and_after(shared_cache: Path) -> None:
    from dse.search import run_study, verify

    spec = parse_spec(SPEC.format(stl="sequential"))
    explorer = Explorer(spec, cache=Cache(shared_cache), progress=False)
    study = run_study(spec, storage="memory", progress=False, explorer=explorer)
    (r,) = verify(study, spec, top=1, progress=False, explorer=explorer)
    assert set(r["tasks"]) == set(TASKS)
    before = [r["tasks"][t][0] for t in TASKS]
    after = [r["tasks"][t][1] for t in TASKS]
    assert r["old_test_accuracy"] == pytest.approx(sum(before) / 2)
    assert r["new_test_accuracy"] == pytest.approx(sum(after) / 2)


def test_single_task_networks_get_the_same_tries_as_the_multi_task_one(
    shared_cache: Path,
) -> None:
    explorer = Explorer(
        parse_spec(SPEC.format(stl="sequential")), cache=Cache(shared_cache), progress=False
    )
    c = compare_tasks(explorer, stl_weightings=("fixed", "uncertainty"))
    base = explorer.network_spec("dense", 1.0)
    assert len(c.stl_weightings) == len(TASKS)
    for t, task in enumerate(TASKS):
        tries = {
            w: train_network(
                single_task_spec(base, task, weighting=w), cache=explorer.cache, progress=False
            )
            for w in ("fixed", "uncertainty")
        }
        assert all(x.cached for x in tries.values())  # compare_tasks trained both
        assert tries["uncertainty"].spec.train.task_weighting == "uncertainty"
        best = max(x.task_accuracy("val")[0] for x in tries.values())
        kept = tries[c.stl_weightings[t]]
        assert kept.task_accuracy("val")[0] == best  # the validation split chose
        assert c.design("STL, best cuts").accuracy[t] == pytest.approx(best)
    # by default one try each, with the plain loss, as before
    assert compare_tasks(explorer).stl_weightings == ("fixed",) * len(TASKS)
