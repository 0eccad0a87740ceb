"""The model registry: every zoo model builds, traces, runs and resolves its exit sites;
unknown names and user models given by path."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.fx as fx
import torch.nn as nn
from helpers.nets import USER_MODEL

from dse.costmodel.graph import build_graph, site_nodes
from dse.costmodel.shapes import trace
from dse.errors import InputError
from dse.nets.models import default_input, list_models, load_model, model_entry

ZOO = list_models()


def test_the_zoo_is_registered() -> None:
    assert {"mlp", "vgg-s", "resnet-s", "mobilenet-s"} <= set(ZOO)
    assert ZOO == sorted(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_builds_traces_and_runs(name: str) -> None:
    shape = (2, *default_input(name))
    assert default_input(name) == model_entry(name).default_input
    model = load_model(name, num_classes=7).eval()
    gm = trace(model, name=name)
    assert isinstance(gm, fx.GraphModule)
    x = torch.randn(shape)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 7)
        torch.testing.assert_close(gm(x), out)  # the trace computes the same function
    assert model.classifier_name == "classifier"
    assert isinstance(model.get_submodule(model.classifier_name), nn.Linear)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_exit_sites_resolve_in_order(name: str) -> None:
    model = load_model(name)
    assert len(model.exit_sites) >= 2
    gm = trace(model)
    g = build_graph(model, torch.zeros(1, *default_input(name)))
    nodes = site_nodes(gm, model.exit_sites)
    positions = [g.backbone.index(n) for n in nodes]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    by_name = {n.name: n for n in gm.graph.nodes}

    def inside(node: str, path: str) -> bool:
        stack = by_name[node].meta.get("nn_module_stack") or {}
        return path in {v[0] for v in stack.values()}

    for path, n in zip(model.exit_sites, nodes, strict=True):
        # the site is the last layer run inside its module: the next backbone layer is not
        after = g.backbone[g.backbone.index(n) + 1]
        assert inside(n, path) and not inside(after, path)
    with pytest.raises(InputError, match="no layer runs inside"):
        site_nodes(gm, ["no.such.module"])


@pytest.mark.parametrize("name", ZOO)
def test_width_below_one_shrinks_params(name: str) -> None:
    def count(model: nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    full, half = count(load_model(name)), count(load_model(name, width=0.5))
    assert half < full
    # hidden widths halve, so the quadratic terms shrink about 4x; at least 2x overall
    assert half < full / 2


def test_zoo_options_reach_the_factory() -> None:
    model = load_model(
        "mlp", in_channels=1, input_size=28, num_classes=10, widths=(40, 40), pad_to=800
    )
    assert model.layers[0][0].in_features == 800
    assert [layer[0].out_features for layer in model.layers] == [40, 40]
    with pytest.raises(InputError, match="bad model option"):
        load_model("mlp", no_such_option=1)


def test_unknown_model_lists_the_known_names() -> None:
    with pytest.raises(InputError) as info:
        load_model("resnet-xxl")
    text = str(info.value)
    assert "resnet-xxl" in text and "unknown model" in text
    for name in ZOO:
        assert name in text
    assert "package.module:factory" in text


def test_user_model_from_a_file(tmp_path: Path) -> None:
    file = tmp_path / "dse_test_user_file_model.py"
    file.write_text(textwrap.dedent(USER_MODEL))
    model = load_model(f"{file}:build", in_channels=1, input_size=16, num_classes=5)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 5)
    assert model[3].in_features == 4 * 16 * 16
    with pytest.raises(InputError, match="has no callable 'nope'"):
        load_model(f"{file}:nope")
    with pytest.raises(InputError, match="has no callable 'NOT_A_MODEL'"):
        load_model(f"{file}:NOT_A_MODEL")  # there, but not callable
    (tmp_path / "dse_test_user_returns.py").write_text("def build():\n    return 3\n")
    with pytest.raises(InputError, match="factory returned int, not nn.Module"):
        load_model(f"{tmp_path / 'dse_test_user_returns.py'}:build")
    with pytest.raises(InputError, match="cannot import"):
        load_model(f"{tmp_path / 'missing.py'}:build")


def test_a_model_file_runs_once_per_version(tmp_path: Path) -> None:
    import os

    file = tmp_path / "dse_test_counted_model.py"
    runs = tmp_path / "runs.txt"
    body = (
        f"open({str(runs)!r}, 'a').write('x')\n"
        "import torch.nn as nn\n"
        "def build(num_classes=10, **_):\n    return nn.Linear(4, num_classes)\n"
    )
    file.write_text(body)
    for _ in range(3):
        load_model(f"{file}:build")
    assert runs.read_text() == "x"
    file.write_text(body + "# edited\n")
    os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 10**9))
    load_model(f"{file}:build")  # a new version of the file is executed again
    assert runs.read_text() == "xx"


def test_user_model_from_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "dse_test_user_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(textwrap.dedent(USER_MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        model = load_model("dse_test_user_pkg.nets:build", num_classes=3)
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
        with pytest.raises(InputError, match="cannot import"):
            load_model("dse_test_user_pkg.missing:build")
    finally:
        for key in [k for k in sys.modules if k.startswith("dse_test_user_pkg")]:
            del sys.modules[key]
