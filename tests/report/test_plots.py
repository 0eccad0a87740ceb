"""Tests for the figures: assertions on the info tuples, plus that renderers write files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from dse.costmodel.costs import cost_table
from dse.costmodel.devices import DeviceProfile, LinkProfile
from dse.costmodel.graph import build_graph
from dse.report import fmt, plots
from dse.search.pareto import Ruler, hypervolume
from dse.search.space import Candidate

# --------------------------------------------------------------------------------------
# Pareto front
# --------------------------------------------------------------------------------------

# accuracy (max), latency (min): a, b, c are the front; d is dominated by b; e by c;
# f would dominate everything but is infeasible.
VALUES = np.array(
    [
        [0.99, 0.050],  # a: most accurate, slow
        [0.95, 0.010],  # b
        [0.90, 0.002],  # c: fastest
        [0.94, 0.020],  # d: worse than b on both
        [0.90, 0.003],  # e: same accuracy as c, slower
        [1.00, 0.001],  # f: infeasible
    ]
)
FEASIBLE = np.array([True, True, True, True, True, False])


def test_front_info_marks_the_feasible_front_and_the_knee() -> None:
    info = plots.front_info(
        VALUES,
        ["accuracy", "latency_mean"],
        ["maximize", "minimize"],
        feasible=FEASIBLE,
        trials=[10, 11, 12, 13, 14, 15],
    )
    assert info.on_front.tolist() == [True, True, True, False, False, False]
    # on a ruler fitted to the feasible points, b is closest to the ideal corner
    assert info.knee == 1 and info.trials[info.knee] == 11


def test_front_info_knee_follows_the_ruler() -> None:
    # a ruler on which latency differences are tiny: the most accurate point wins
    ruler = Ruler(("accuracy", "latency_mean"), ("maximize", "minimize"), (0.5, 0.0), (1.0, 10.0))
    info = plots.front_info(
        VALUES,
        ["accuracy", "latency_mean"],
        ["maximize", "minimize"],
        feasible=FEASIBLE,
        ruler=ruler,
    )
    assert info.knee == 0


def test_front_info_with_nothing_feasible_has_no_front_and_no_knee(tmp_path: Path) -> None:
    info = plots.front_info(
        VALUES,
        ["accuracy", "latency_mean"],
        ["maximize", "minimize"],
        feasible=np.zeros(len(VALUES), dtype=bool),
    )
    assert not info.on_front.any() and info.knee is None
    written = plots.render_front(info, tmp_path / "front")
    assert {p.suffix for p in written} == {".png", ".svg"} and all(p.exists() for p in written)


def test_a_renderer_writes_the_formats_asked_for(tmp_path: Path) -> None:
    info = plots.front_info(VALUES, ["accuracy", "latency_mean"], ["maximize", "minimize"])
    written = plots.render_front(info, tmp_path / "a", formats=("png",), dpi=20)
    assert written == [tmp_path / "a.png"] and not (tmp_path / "a.svg").exists()
    assert plots.render_front(info, tmp_path / "b", formats=("svg",)) == [tmp_path / "b.svg"]
    with pytest.raises(ValueError, match="give one or more of"):
        plots.render_front(info, tmp_path / "c", formats=("jpg",))


def test_front_info_merges_baselines_with_the_same_best_point() -> None:
    info = plots.front_info(
        VALUES,
        ["accuracy", "latency_mean"],
        ["maximize", "minimize"],
        baselines={"edge-only": [0.9, 0.002], "neurosurgeon": [0.9, 0.002], "spinn": [0.95, 0.01]},
    )
    assert set(info.baselines) == {"edge-only = neurosurgeon", "spinn"}


def test_front_mask_ties_and_duplicates_stay_on_the_front() -> None:
    v = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 0.5], [2.0, 2.0]])
    assert plots.front_mask(v, ["minimize", "minimize"]).tolist() == [True, True, True, False]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_render_front_for_two_and_more_objectives(tmp_path: Path, m: int) -> None:
    names = ["accuracy", "latency_mean", "edge_energy", "bandwidth"][:m]
    dirs = ["maximize", "minimize", "minimize", "minimize"][:m]
    rng = np.random.default_rng(0)
    v = (
        rng.random((40, m)) * np.array([0.1, 0.05, 0.01, 4e4])[:m]
        + np.array([0.9, 1e-3, 1e-4, 0.0])[:m]
    )
    info = plots.front_info(
        v, names, dirs, reference=v[:3], baselines={"edge-only": v[0], "joint": v[1]}
    )
    out = plots.render_front(info, tmp_path / "front")
    assert all(p.stat().st_size > 1000 for p in out)


# --------------------------------------------------------------------------------------
# bandwidth regimes, layer profile and split sweep on a tiny graph
# --------------------------------------------------------------------------------------


def _tiny_graph() -> Any:
    """Linear 1000->4 (cheap, shrinks 4 kB to 16 B), then two big layers."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1000, 4), nn.Linear(4, 1000), nn.ReLU(), nn.Linear(1000, 1000))
    return build_graph(net, torch.zeros(1, 1000), name="tiny")


@pytest.fixture
def deployment(
    make_device: Callable[..., DeviceProfile], make_link: Callable[..., LinkProfile]
) -> tuple[Any, Any, Any]:
    edge = make_device()  # 1 GFLOP/s, 100 MB/s: the 4 MB layer takes ~40 ms
    server = make_device(
        name="fast",
        kind="server",
        peak_flops={"fp32": 1e14},
        mem_bandwidth_Bps=1e12,
        overhead_s=1e-6,
    )
    return edge, server, make_link(rtt_s=0.0)


def test_bandwidth_info_best_cut_per_regime(deployment: tuple[Any, Any, Any]) -> None:
    edge, server, link = deployment
    g = _tiny_graph()
    last = len(g.cuts) - 1
    info = plots.bandwidth_info(g, edge, server, link, bandwidths=[1e5, 1e9])
    # 1 Gbit/s, no RTT: sending the 4 kB input costs ~32 us, far less than any edge work
    assert info.best_cut[1] == 0 and info.regime[1] == "server-only"
    # 0.1 Mbit/s: the input takes 0.32 s to send; the first layer shrinks it to 16 bytes
    assert info.best_cut[0] == 1 and info.regime[0] == "split"
    assert info.best_s[0] == pytest.approx(info.latency_s[0].min())
    # with a 1 s RTT nothing beats keeping everything on the edge
    slow = plots.bandwidth_info(
        g, edge, server, LinkProfile(**{**link.__dict__, "rtt_s": 1.0}), bandwidths=[1e5, 1e7, 1e9]
    )
    assert list(slow.best_cut) == [last] * 3 and set(slow.regime) == {"edge-only"}
    assert plots.regime_spans(slow) == [("edge-only", 1e5, 1e9)]


def test_bandwidth_info_default_sweep_and_render(
    deployment: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    edge, server, link = deployment
    info = plots.bandwidth_info(_tiny_graph(), edge, server, link)
    assert info.uplink_bps[0] == pytest.approx(1e5) and info.uplink_bps[-1] == pytest.approx(1e9)
    spans = plots.regime_spans(info)
    assert spans[0][0] == "split" and spans[-1][0] == "server-only"  # slow -> fast
    assert all(p.exists() for p in plots.render_bandwidth(info, tmp_path / "bw"))


def test_bandwidth_info_uses_the_given_latency_function(deployment: tuple[Any, Any, Any]) -> None:
    edge, server, link = deployment
    g = _tiny_graph()
    cand = Candidate("dense", 1.0, 0, (), 0.5)
    # a policy that makes cut 2 free: it must be the best at every bandwidth
    info = plots.bandwidth_info(
        g,
        edge,
        server,
        link,
        bandwidths=[1e5, 1e9],
        candidate=cand,
        score=lambda table, c: 0.0 if c.split == 2 else 1.0,
    )
    assert list(info.best_cut) == [2, 2]


def test_a_cut_that_sends_nothing_ties_with_edge_only_and_is_not_called_a_split(
    deployment: tuple[Any, Any, Any],
) -> None:
    """Every sample leaves at an edge exit before cuts 1..last: they all cost the same as
    edge-only and send nothing, so the best is edge-only, never a 'split'."""
    edge, server, link = deployment
    g = _tiny_graph()
    last = len(g.cuts) - 1
    cand = Candidate("dense", 1.0, 0, (0,), 0.0)
    info = plots.bandwidth_info(
        g,
        edge,
        server,
        link,
        bandwidths=[1e5, 1e9],
        candidate=cand,
        score=lambda table, c: 5.0 if c.split == 0 else 1.0,
    )
    assert list(info.best_cut) == [last, last] and set(info.regime) == {"edge-only"}


def test_layer_profile_and_split_sweep(deployment: tuple[Any, Any, Any], tmp_path: Path) -> None:
    edge, server, link = deployment
    g = _tiny_graph()
    table = cost_table(g, edge, server, link)
    lp = plots.layer_profile_info(table)
    assert lp.layers == tuple(g.backbone) and len(lp.cut_bytes) == len(g.backbone) + 1
    assert lp.cut_bytes[0] == 4000 and lp.cut_bytes[1] == 16 and lp.cut_bytes[-1] == 0
    assert lp.edge_s.sum() == pytest.approx(table.total_s[-1])
    sw = plots.split_sweep_info(table, chosen=1)
    assert np.allclose(sw.edge_s + sw.transfer_s + sw.server_s, sw.total_s)
    assert sw.best == int(np.argmin(table.total_s))
    # a restricted space picks the best among its own cuts
    assert plots.split_sweep_info(table, allowed=[2, 3]).best == 2 + int(
        np.argmin(table.total_s[2:4])
    )
    assert all(p.exists() for p in plots.render_layer_profile(lp, tmp_path / "layers"))
    assert all(p.exists() for p in plots.render_split_sweep(sw, tmp_path / "split"))


# --------------------------------------------------------------------------------------
# exits, density, hypervolume, importance
# --------------------------------------------------------------------------------------


def _fake_score(c: Candidate) -> SimpleNamespace:
    """Exit 0 takes samples above the threshold: fewer the higher it is, and errs more."""
    if not c.exits:
        return SimpleNamespace(
            accuracy=0.9, test_accuracy=0.88, latency_mean=1.0, exit_rates=(1.0,)
        )
    early = 1.0 - c.threshold
    return SimpleNamespace(
        accuracy=0.9 - 0.1 * early,
        test_accuracy=0.88 - 0.1 * early,
        latency_mean=1.0 - 0.5 * early,
        exit_rates=(early, *[0.0] * (len(c.exits) - 1), 1.0 - early),
    )


def test_exit_info_scores_every_subset_and_threshold(tmp_path: Path) -> None:
    cand = Candidate("dense", 1.0, 3, (0,), 0.75)
    info = plots.exit_info(
        _fake_score, cand, [(), (0,), (0, 1)], [0.5, 0.75, 1.0], exit_names=["a", "b"]
    )
    assert info.subsets == ((0,), (0, 1)) and info.labels == ("a", "a + b")
    assert info.exit_rate[0].tolist() == pytest.approx([0.5, 0.25, 0.0])
    assert info.accuracy[0, -1] == pytest.approx(info.final_accuracy)
    assert info.chosen == ((0,), 0.75)
    assert all(p.exists() for p in plots.render_exits(info, tmp_path / "exits"))


def test_density_info_joins_the_dense_network_to_every_method(tmp_path: Path) -> None:
    def net(
        acc: float, stored: int, flops: int, t: float, realised: float = 1.0
    ) -> SimpleNamespace:
        node = SimpleNamespace(stored_bytes=stored, sparse_flops=flops)
        graph = SimpleNamespace(nodes={"x": node}, backbone_nodes=lambda: [node])
        trained = SimpleNamespace(accuracy=lambda split: [0.5, acc])
        return SimpleNamespace(
            graph=graph,
            trained=trained,
            realised_density=realised,
            table=SimpleNamespace(total_s=np.array([9.0, t])),
        )

    nets = {
        ("dense", 1.0): net(0.99, 1000, 100, 1e-3),
        ("predefined", 0.5): net(0.98, 550, 50, 1e-3, 0.75),
        ("channels", 0.5): net(0.97, 500, 50, 6e-4, 0.5),
    }
    info = plots.density_info(nets, ["predefined", "channels"])
    assert info.densities["predefined"].tolist() == [1.0, 0.5]
    # one nominal density, two realised ones: the figure's x is the realised density
    assert info.realised["predefined"].tolist() == [1.0, 0.75]
    assert info.realised["channels"].tolist() == [1.0, 0.5]
    assert info.stored_bytes["channels"].tolist() == [1000, 500]
    assert info.accuracy["predefined"].tolist() == [0.99, 0.98]
    assert all(p.exists() for p in plots.render_density(info, tmp_path / "density"))


def test_hypervolume_info_is_monotone_and_ends_at_the_study_hypervolume(tmp_path: Path) -> None:
    ruler = Ruler.fit({"accuracy": "maximize", "latency_mean": "minimize"}, VALUES)
    trials = [5, 0, 1, 2, 3, 4]  # out of order on purpose
    info = plots.hypervolume_info(VALUES, trials, FEASIBLE, ruler, grid_hv=2.0)
    assert info.trials.tolist() == sorted(trials)
    assert np.all(np.diff(info.hv) >= -1e-12)
    assert info.hv[-1] == pytest.approx(hypervolume(ruler.loss(VALUES[FEASIBLE])))
    assert all(p.exists() for p in plots.render_hypervolume(info, tmp_path / "hv"))


def test_importance_info_keeps_failures_as_text(tmp_path: Path) -> None:
    info = plots.importance_info(
        {"accuracy": {"density": 0.7, "split": 0.3}, "latency_mean": "RuntimeError: too few trials"}
    )
    assert info.params == ("density", "split")
    assert info.importance[0].tolist() == [0.7, 0.3] and np.isnan(info.importance[1]).all()
    assert info.errors == {"latency_mean": "RuntimeError: too few trials"}
    assert all(p.exists() for p in plots.render_importance(info, tmp_path / "imp"))


def test_unit_for_picks_readable_units() -> None:
    assert fmt.unit_for("s", [0.0012, 0.02]) == ("ms", 1e-3)
    assert fmt.unit_for("B", [512, 40_000]) == ("kB", 1e3)
    assert fmt.unit_for("J", [3e-3]) == ("mJ", 1e-3)
    assert fmt.unit_for("s", [2e-7]) == ("µs", 1e-6)
    label, div = plots.metric_axis("edge_energy", [0.004])
    assert label == "edge energy per inference (mJ)" and div == 1e-3
