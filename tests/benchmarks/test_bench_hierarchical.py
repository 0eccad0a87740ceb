"""benchmarks/hierarchical.py: one rule picks every mode's cut, where the training time
goes, and the verdict. Before, split training ran once at hierarchical training's own
best cut, and nothing said how much of split's time was the downlink."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from benchmark_files import load_benchmark

from dse.costmodel import build_graph, training_cost
from dse.nets import attach_exits, load_model

hierarchical = load_benchmark("hierarchical")
verdict = load_benchmark("verdict")


def test_one_rule_picks_the_cut_ties_within_a_standard_error_go_to_the_faster() -> None:
    seconds = {7: 40.0, 14: 20.0, 21: 10.0}
    # split training: the same accuracy at every cut, so the faster cut wins
    assert hierarchical.choose_cut({7: 0.99, 14: 0.99, 21: 0.99}, seconds, 600) == 21
    # 0.2 points apart on 600 samples (standard error ~0.5): still a tie
    assert hierarchical.choose_cut({7: 0.992, 14: 0.990, 21: 0.5}, seconds, 600) == 14
    # 10 points apart: the more accurate cut, however slow
    assert hierarchical.choose_cut({7: 0.99, 14: 0.89, 21: 0.5}, seconds, 600) == 7
    # equal accuracy and time: the earlier cut
    assert hierarchical.choose_cut({14: 0.9, 7: 0.9}, {7: 1.0, 14: 1.0}, 600) == 7


@pytest.fixture(scope="module")
def graph():  # noqa: ANN201 - a LayerGraph
    torch.manual_seed(0)
    model = load_model("mlp", in_channels=1, input_size=2, num_classes=3, widths=(4,))
    net = attach_exits(model, torch.zeros(1, 1, 2, 2), num_classes=3)
    return build_graph(net, torch.zeros(1, 1, 2, 2), name="mlp")


@pytest.mark.parametrize("mode", ["central", "split", "hierarchical"])
def test_the_time_split_accounts_for_the_whole_training(
    graph: Any, make_device: Any, make_link: Any, mode: str
) -> None:
    link = make_link()
    c = training_cost(
        graph,
        make_device(),
        make_device(kind="server"),
        link,
        mode=mode,
        cut=3,
        samples=35,
        batch_size=10,
    )
    t = hierarchical.time_split(c, link, samples=35, epochs=3)
    parts = sum(t[k] for k in hierarchical.PARTS)
    assert t["total"] == pytest.approx(c.time_s(3))
    if mode == "hierarchical":  # the pipeline overlaps its stages: they add up to more
        assert t["overlapped"] and parts > t["total"] and t["downlink"] == 0
        assert t["waits"] == pytest.approx(3 * link.rtt_s)  # one round trip fills it
        assert t["pace"] in ("edge", "uplink", "server")
    else:  # one after another: they add up to the time
        assert not t["overlapped"] and parts == pytest.approx(t["total"])
    if mode == "split":
        assert t["waits"] == pytest.approx(3 * c.batches * link.rtt_s)
        # the gradient (16 B a sample) comes back at the downlink's rate, twice the uplink's
        assert t["downlink"] == pytest.approx(3 * c.batches * 8 * 10 * 16 / link.downlink_bps)
        assert t["uplink"] + t["downlink"] == pytest.approx(3 * c.batches * c.link_s)
    if mode == "central":
        assert t["edge"] == 0 and t["waits"] == pytest.approx(link.rtt_s)


def rows(
    hier_s: float, split_s: float, hier_acc: float, split_acc: float, floor: float = 0.42
) -> list[dict]:
    out = []
    for link in ("3g", "lte"):
        for mode, s, a, cut in (
            ("split", split_s, split_acc, 14),
            ("hierarchical", hier_s, hier_acc, 7),
        ):
            out.append(
                {
                    "model": "vgg-s",
                    "link": link,
                    "mode": mode,
                    "cut": cut,
                    "train_time_s": s,
                    "accuracy": a,
                    "exit_accuracy": a,
                    "floor": floor,
                }
            )
    return out


def test_verdict_on_the_target_link() -> None:
    good = hierarchical.verdict(rows(50.0, 100.0, 0.995, 0.998))
    assert [c.status for c in good] == ["PASS"]  # one check: the target link, 3g
    assert verdict.exit_code(good) == 0
    slow = hierarchical.verdict(rows(78.0, 100.0, 0.998, 0.998))  # 22% < 25%
    assert [c.status for c in slow] == ["FAIL"] and verdict.exit_code(slow) == 1
    lost = hierarchical.verdict(rows(50.0, 100.0, 0.98, 0.998))  # 1.8 points lost
    assert [c.status for c in lost] == ["FAIL"]
    # both at chance: hierarchical "gains" 6 points on a split training that learned
    # nothing, which is no pass (resnet-s with an edge learning rate of 0.01 did this)
    chance = hierarchical.verdict(rows(71.0, 100.0, 0.304, 0.244))
    assert [c.status for c in chance] == ["FAIL"], chance
    assert "at or under the learned floor of 42.0%: split 24.4%, hierarchical 30.4%" in str(
        chance[0]
    )
    lines = hierarchical.explain(rows(78.0, 100.0, 0.998, 0.998))
    assert len(lines) == 2 and "(target link)" in lines[0] and "time cut 22% < 25%" in lines[0]


def test_edge_rates_read_the_networks_own_and_numbers_and_refuse_the_rest() -> None:
    assert hierarchical.edge_rates("net,0.0003") == [None, 0.0003]
    assert hierarchical.edge_rates("0.001, net, 0.001") == [0.001, None]
    with pytest.raises(ValueError, match="learning rate > 0"):
        hierarchical.edge_rates("net,0")


def test_the_rule_chooses_among_cuts_and_edge_rates_alike() -> None:
    # (cut, rate index): the same training time at both rates of a cut
    seconds = {(19, 0): 30.0, (19, 1): 30.0, (36, 0): 20.0, (36, 1): 20.0}
    # the slower edge rate learns: it wins on validation, whatever its cut's time
    val = {(19, 0): 0.53, (19, 1): 0.99, (36, 0): 0.68, (36, 1): 0.47}
    assert hierarchical.choose_cut(val, seconds, 450) == (19, 1)
    # a tie at one cut goes to the rate listed first
    val = {(19, 0): 0.99, (19, 1): 0.99, (36, 0): 0.5, (36, 1): 0.5}
    assert hierarchical.choose_cut(val, seconds, 450) == (19, 0)
