"""Exit sites on any traceable model: module paths, top-level indices of an nn.Sequential,
and ``auto`` (one exit after each drop of the spatial size)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from dse.costmodel.graph import build_graph
from dse.errors import InputError
from dse.nets.data import load_data
from dse.nets.exits import attach_exits
from dse.nets.models import default_input, load_model
from dse.nets.sites import find_sites
from dse.nets.training import NetworkSpec, TrainConfig, build_network, train_network


def plain_cnn() -> nn.Sequential:
    """conv, relu, pool (32 -> 16), conv, relu, pool (16 -> 8), flatten, linear, relu,
    linear: no exit sites marked."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 32),
        nn.ReLU(),
        nn.Linear(32, 4),
    )


X = torch.zeros(1, 3, 32, 32)


def test_every_module_of_a_plain_sequential_but_the_classifier_is_a_site() -> None:
    sites = find_sites(plain_cnn(), X, classifier="9")
    assert sites.paths() == tuple(str(i) for i in range(9))
    assert sites.auto == ("2", "5")  # after each pooling
    assert [s.shape for s in sites.possible][5:7] == [(1, 16, 8, 8), (1, 1024)]


def test_exits_by_top_level_index_on_a_model_that_marks_none() -> None:
    model = plain_cnn().eval()
    gm = attach_exits(model, X, num_classes=4, sites=["6", "2"], head="sdn").eval()
    assert gm.exit_sites == ("2", "6")  # execution order
    assert gm.classifier_name == "9" and gm.classifier_found
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = gm(x)
        assert [tuple(o.shape) for o in out] == [(3, 4)] * 3
        torch.testing.assert_close(out[-1], model(x))  # the final answer is unchanged
        after_2 = model[:3](x)  # the exit reads the pooled 8x16x16 map
        torch.testing.assert_close(out[0], gm.get_submodule("exit_heads.0")(after_2))
        flat = model[:7](x)  # after the flatten: a 2-D site gets a linear head
        torch.testing.assert_close(out[1], gm.get_submodule("exit_heads.1")(flat))
    assert isinstance(gm.get_submodule("exit_heads.1")[0], nn.Linear)


def test_an_unknown_site_names_the_allowed_paths() -> None:
    with pytest.raises(InputError) as info:
        attach_exits(plain_cnn(), X, num_classes=4, sites=["2", "12"])
    text = str(info.value)
    assert "['12']" in text and "'0', '1', '2'" in text and "'8'" in text and "auto" in text
    assert "'9'" not in text  # the classifier is no exit site
    with pytest.raises(InputError, match="names no exits|unknown exits"):
        attach_exits(plain_cnn(), X, num_classes=4, sites="everywhere")


def test_a_module_that_runs_twice_is_no_site() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.act = nn.ReLU()
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.act(self.conv(x))
            x = self.act(x * 2)
            return self.head(x.mean((2, 3)))

    paths = find_sites(Twice(), X, classifier="head").paths()
    assert "conv" in paths and "act" not in paths


def test_auto_on_the_zoo() -> None:
    """vgg-s: after the pooling that ends its first two stages (its marks), none after the
    last (only the classifier follows); resnet-s: after the stage whose first block
    down-samples, and after the last stage's first block; mlp has no spatial map."""
    expect = {
        "vgg-s": ("stages.0", "stages.1"),
        "resnet-s": ("stages.1", "stages.2.0"),
        "mobilenet-s": ("stages.1", "stages.2", "stages.3.0"),
        "mlp": (),
    }
    for name, sites in expect.items():
        model = load_model(name)
        x = torch.zeros(1, *default_input(name))
        assert find_sites(model, x, classifier="classifier").auto == sites, name
        gm = attach_exits(model, x, num_classes=10, sites="auto", head="sdn")
        assert gm.exit_sites == sites
        if sites:  # a cut right after each auto exit's site sends one tensor
            graph = build_graph(gm, x, name=name)
            for e in graph.exits:
                assert len(graph.cuts[e.position].tensors) == 1, (name, e.site)


def test_auto_in_a_network_spec_keys_and_trains() -> None:
    data = load_data("digits", size=16)
    spec = NetworkSpec("vgg-s", data, exits="auto", train=TrainConfig(epochs=1))
    assert spec.fields()["exits"] == "auto"
    assert spec.key != NetworkSpec("vgg-s", data, train=TrainConfig(epochs=1)).key
    assert build_network(spec).exit_sites == ("stages.0", "stages.1")
    listed = NetworkSpec("vgg-s", data, exits=["stages.1.0"], train=TrainConfig(epochs=1))
    assert listed.exits == ("stages.1.0",) and listed.fields()["exits"] == ["stages.1.0"]
    trained = train_network(listed, progress=False)
    assert trained.exit_sites == ("stages.1.0",) and len(trained.accuracy("val")) == 2
    with pytest.raises(InputError, match="names no exits"):
        NetworkSpec("vgg-s", data, exits="all-of-them")
