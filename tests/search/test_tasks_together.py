"""Several single-task networks' requests in flight together (dse.search.tasks.run_together):
airtime shared, round trips overlapped, one request alone what the scorer charges; the
single-task side's best cuts chosen together; and its networks given the multi-task
network's loss-weighting tries. Before, the link was held for each network's whole
exchange, round trip included, one after another, and each one's idle wait and tail were
summed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import DROP, HUE, HUE_TASKS, only, spec

from dse.nets import Cache, train_network
from dse.search import Candidate, Explorer, compare_tasks, parse_spec, single_task_spec
from dse.search.tasks import Exchange, best_cuts, run_together

TASKS = HUE_TASKS


def tasks_spec(stl: str) -> str:
    """vgg-s on the two hues, dense, no exits, on a Jetson Nano over Wi-Fi, its
    single-task networks scheduled ``stl``."""
    return spec(
        "tasks-together",
        n_trials=4,
        sampler="random",
        storage="memory",
        model={"name": "vgg-s"},
        data=only(HUE),
        deployment={"edge": "jetson-nano", "server": "a100", "link": "wifi", "stl": stl},
        space=only({"densities": [1.0], "exits": "none"}),
        objectives=only({"accuracy_min": "maximize", "latency_mean": "minimize"}),
        constraints=DROP,
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
        parse_spec(tasks_spec("sequential")), cache=Cache(shared_cache), progress=False
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


def test_single_task_networks_get_the_same_tries_as_the_multi_task_one(
    shared_cache: Path,
) -> None:
    explorer = Explorer(
        parse_spec(tasks_spec("sequential")), cache=Cache(shared_cache), progress=False
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
