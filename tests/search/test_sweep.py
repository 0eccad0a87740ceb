"""Sweeping a spec's space over deployments: candidates decided once and costed per
deployment (the same numbers as scoring one by one), the best per deployment, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import DROP, edited, only, spec

from dse.cli import main
from dse.costmodel import DeviceProfile, LinkProfile, load_device, load_link
from dse.errors import InputError
from dse.nets import Cache
from dse.search import (
    COST_FIELDS,
    Explorer,
    StudySpec,
    Sweep,
    batch,
    load_sweep,
    parse_spec,
    run_sweep,
)
from dse.search.evaluate import TRAIN_FIELDS
from dse.search.pareto import Ruler, pareto_mask
from dse.search.sweep import missing_networks, place

CODEC_SPEC = spec(
    "sweep-codec",
    space={"densities": [1.0], "codecs": ["fp32", "int8", "int4+zstd"]},
    objectives=only({"accuracy": "maximize", "latency_mean": "minimize"}),
    constraints=DROP,
)


pytestmark = pytest.mark.usefixtures("study_folder")


@pytest.fixture(scope="module", name="spec")
def tiny_spec() -> StudySpec:
    return parse_spec(
        spec("sweep-tiny", constraints={"edge_memory": "<= 2e6"}), where="sweep-tiny.toml"
    )


@pytest.fixture(scope="module")
def explorer(spec: StudySpec, shared_cache: Path) -> Explorer:
    ex = Explorer(spec, cache=Cache(shared_cache), progress=False)
    for net in ex.space.networks():
        ex.scorer(*net)  # trained once into the session's cache
    return ex


def _deployments(
    make_device: Callable[..., DeviceProfile], make_link: Callable[..., LinkProfile]
) -> list[tuple[DeviceProfile, DeviceProfile, LinkProfile]]:
    return [
        (make_device(), make_device(name="server", peak_flops={"fp32": 1e12}), make_link()),
        (load_device("jetson-nano"), load_device("a100"), load_link("3g")),
    ]


def _same_as_scoring(ex: Explorer, deployments: list) -> None:
    for net in ex.space.networks():
        scorer = ex.scorer(*net)
        cands = [c for c in ex.space.enumerate() if c.network == net]
        b = batch(scorer, cands)
        for edge, server, link in deployments:
            moved = scorer.redeployed(edge, server, link)
            costs = b.costs(moved)
            one = [moved.score(c) for c in cands]
            for name in COST_FIELDS:
                np.testing.assert_allclose(
                    costs[name], [getattr(m, name) for m in one], rtol=1e-12, atol=0, err_msg=name
                )
            for name in TRAIN_FIELDS:  # training this network, priced on this deployment
                np.testing.assert_allclose(
                    costs[name], [getattr(m, name) for m in one], rtol=1e-12, atol=0, err_msg=name
                )
            for name in ("accuracy", "accuracy_min", "test_accuracy"):
                assert b.fixed[name].tolist() == [getattr(m, name) for m in one], name
            assert b.always.any() == any(c.exits and c.threshold <= 0 for c in cands)


def test_batch_costs_every_candidate_as_scoring_does(
    explorer: Explorer,
    make_device: Callable[..., DeviceProfile],
    make_link: Callable[..., LinkProfile],
) -> None:
    _same_as_scoring(explorer, _deployments(make_device, make_link))


@pytest.mark.slow
def test_batch_with_codecs_costs_as_scoring_does(
    shared_cache: Path,
    make_device: Callable[..., DeviceProfile],
    make_link: Callable[..., LinkProfile],
) -> None:
    ex = Explorer(parse_spec(CODEC_SPEC), cache=Cache(shared_cache), progress=False)
    assert any(c.lossy for c in ex.codecs)
    _same_as_scoring(ex, _deployments(make_device, make_link))


def test_redeployed_changes_costs_not_decisions(
    explorer: Explorer, make_device: Callable[..., DeviceProfile]
) -> None:
    scorer = explorer.scorer("dense", 1.0)
    slow = scorer.redeployed(
        make_device(peak_flops={"fp32": 1e6}), scorer.table.server, scorer.table.link
    )
    cand = max(
        (c for c in explorer.space.enumerate() if c.exits and c.threshold > 0.5),
        key=lambda c: c.split,
    )  # the edge runs everything it can
    a, b = scorer.score(cand), slow.score(cand)
    assert b.edge_s > 100 * a.edge_s and b.accuracy == a.accuracy
    assert b.exit_rates == a.exit_rates
    assert slow.confidence is scorer.confidence  # shared, not copied


def test_place_of_a_configuration() -> None:
    assert place(0, 3072.0) == "server-only"
    assert place(5, 0.0) == "edge-only"  # every sample answered on the edge: nothing sent
    assert place(5, 12.5) == "split"


def test_sweep_picks_each_deployments_knee(explorer: Explorer, spec: StudySpec) -> None:
    edges, links = ["raspberry-pi-4", "jetson-nano"], ["lte", "wifi", "3g"]
    sw = run_sweep(spec, edges, links, explorer=explorer)
    assert [(r.edge, r.link, r.server) for r in sw.results] == [
        (e, x, "a100") for e in edges for x in links
    ]
    names = list(spec.objectives)
    cands = list(explorer.space.enumerate())
    for r in sw.results:
        assert r.candidates == len(cands) == explorer.space.size()
        edge = load_device(r.edge)
        # every candidate scored one by one on this deployment: the best is feasible, on
        # the feasible front, and its metrics are the scorer's
        scorers = {
            n: explorer.scorer(*n).redeployed(edge, load_device(r.server), load_link(r.link))
            for n in explorer.space.networks()
        }
        ms = [scorers[c.network].score(c) for c in cands]
        ok = [m.edge_memory <= min(2e6, edge.mem_capacity_bytes) for m in ms]
        assert r.feasible == sum(ok)
        values = np.array(
            [[getattr(m, n) for n in names] for m, f in zip(ms, ok, strict=True) if f]
        )
        losses = Ruler.fit(spec.objectives, values).loss(values)
        assert r.front == int(pareto_mask(losses).sum())
        assert r.best is not None
        i = next(i for i, c in enumerate(cands) if c.as_dict() == r.best.knobs)
        assert ok[i]
        for n in names:
            assert r.best.metrics[n] == pytest.approx(getattr(ms[i], n), rel=1e-12)
        best = np.array([r.best.metrics[n] for n in names]) * [-1, 1, 1]
        signed = values * [-1, 1, 1]  # all minimised; ties within rounding are no better
        dominated = np.all(signed <= best + 1e-12 * abs(best), axis=1) & np.any(
            signed < best - 1e-12 * abs(best), axis=1
        )
        assert not dominated.any()
        assert r.where == place(r.best.split, r.best.metrics["bandwidth"])
        assert r.split_wins == (r.where == "split")
        if r.server_only is not None:
            assert r.server_only.split == 0
        if r.edge_only is not None:
            assert r.edge_only.metrics["bandwidth"] == 0
    # the results survive the JSON file
    path = Path("sweep.json")
    path.write_text(json.dumps(sw.as_dict()))
    again = load_sweep(path)
    assert again == Sweep.from_dict(json.loads(path.read_text()))
    assert again.as_dict() == json.loads(json.dumps(sw.as_dict()))


UNTRAINED = spec("sweep-untrained")


def test_sweep_names_networks_not_trained(shared_cache: Path, tmp_path: Path) -> None:
    spec = parse_spec(UNTRAINED, where="s.toml")
    ex = Explorer(spec, cache=Cache(tmp_path / "empty"), progress=False)
    assert missing_networks(ex) == ["dense", "predefined@0.5"]
    with pytest.raises(InputError) as err:
        run_sweep(spec, ["raspberry-pi-4"], ["lte"], explorer=ex)
    assert err.value.field == "networks" and "dense, predefined@0.5" in str(err.value)
    assert "--train" in str(err.value)
    with pytest.raises(InputError) as err:  # a profile is checked before anything runs
        run_sweep(spec, ["no-such-board"], ["lte"], explorer=ex)
    assert "no-such-board" in str(err.value)


def test_sweep_cli_prints_each_deployment_and_writes_json(
    explorer: Explorer, spec: StudySpec, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("s.toml").write_text(spec.text)
    rc = main(
        [
            "sweep",
            "s.toml",
            "--edge",
            "raspberry-pi-4,jetson-nano",
            "--link",
            "wifi",
            "--json",
            "out.json",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert sum(line.lstrip().startswith(("raspberry-pi-4", "jetson-nano")) for line in lines) == 2
    assert "split wins" in lines[0] and "best edge-only" in lines[0]
    assert "2 deployment(s)" in out
    assert len(load_sweep("out.json").results) == 2
    assert main(["sweep", "s.toml", "--edge", " ,", "--link", "wifi"]) == 2
    assert "--edge" in capsys.readouterr().err


TRAIN = spec("sweep-train")


@pytest.mark.slow
def test_sweep_trains_missing_networks_only_when_asked(tmp_path: Path) -> None:
    spec = parse_spec(TRAIN, where="s.toml")
    ex = Explorer(spec, cache=Cache(tmp_path / "fresh"), progress=False)
    sw = run_sweep(spec, ["raspberry-pi-4"], ["wifi"], explorer=ex, train=True)
    assert sw.trained == ("dense", "predefined@0.5") and missing_networks(ex) == []
    assert sw.results[0].best is not None
    again = run_sweep(spec, ["raspberry-pi-4"], ["wifi"], explorer=ex)  # all cached now
    assert again.trained == () and again.results[0].best == sw.results[0].best


def test_each_edge_is_held_to_its_own_memory_not_the_specs_edges(explorer: Explorer) -> None:
    """A spec for a small edge carries that edge's capacity as a constraint; sweeping a
    larger edge holds its configurations to the larger edge's capacity instead."""
    board = Path(__file__).resolve().parents[2] / "profiles" / "devices" / "esp32-s3.toml"
    text = edited(board.read_text(), 'name = "esp32-s3"', 'name = "small-board"')
    Path("board.toml").write_text(edited(text, 'capacity = "512 KiB"', 'capacity = "16 KiB"'))
    small = parse_spec(
        spec("sweep-small", deployment={"edge": "board.toml"}), where="sweep-small.toml"
    )
    assert any(c.origin for c in small.constraints)  # the board's capacity, from the spec
    ex = Explorer(small, cache=explorer.cache, progress=False)
    [r] = run_sweep(small, ["raspberry-pi-4"], ["wifi"], explorer=ex).results
    edge = load_device("raspberry-pi-4")
    scorers = {
        n: ex.scorer(*n).redeployed(edge, load_device(r.server), load_link("wifi"))
        for n in ex.space.networks()
    }
    ms = [scorers[c.network].score(c) for c in ex.space.enumerate()]
    tiny = 16 * 1024
    assert any(m.edge_memory > tiny for m in ms)  # the test means something
    assert r.feasible == sum(m.edge_memory <= edge.mem_capacity_bytes for m in ms)


HIERARCHICAL = spec("sweep-hier", training={"mode": "hierarchical"})


def test_a_sweep_refuses_networks_that_depend_on_the_cut() -> None:
    spec = parse_spec(HIERARCHICAL, where="sweep-hier.toml")
    with pytest.raises(InputError, match="training.mode"):
        run_sweep(spec, ["raspberry-pi-4"], ["wifi"])
