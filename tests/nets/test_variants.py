"""dse.nets.variants: networks drawn from the zoo's families to calibrate a predictor on."""

from __future__ import annotations

import torch

from dse.costmodel.coverage import layer_configs
from dse.costmodel.graph import build_graph
from dse.nets import default_input, load_model
from dse.nets.variants import FAMILIES, sampled_networks


def test_draws_repeat_per_seed_cover_every_family_and_run() -> None:
    a, b = sampled_networks(8, seed=3), sampled_networks(8, seed=3)
    assert [x[0] for x in a] == [x[0] for x in b]
    assert [x[0] for x in sampled_networks(8, seed=4)] != [x[0] for x in a]
    assert len({x[0] for x in a}) == 8
    assert {label.split()[0] for label, _, _ in a} == set(FAMILIES)
    for _label, net, x in a:
        assert not net.training
        with torch.no_grad():
            assert net(x).shape == (1, 10)


def test_draws_time_layers_the_zoo_does_not_have() -> None:
    """Most of a draw's layer configurations occur in no zoo network: what they add to a
    calibration is new."""
    zoo = set()
    for name in ("mlp", "vgg-s", "resnet-s", "mobilenet-s"):
        net, x = load_model(name).eval(), torch.zeros((1, *default_input(name)))
        zoo.update(layer_configs(net, x, build_graph(net, x, name=name)).values())
    new = total = 0
    for label, net, x in sampled_networks(8, seed=0):
        configs = set(layer_configs(net, x, build_graph(net, x, name=label)).values())
        new += len(configs - zoo)
        total += len(configs)
    assert new > 0.8 * total


def test_drawing_leaves_torchs_global_random_numbers_as_they_were() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    sampled_networks(2, seed=0)
    assert torch.equal(torch.rand(3), expected)
