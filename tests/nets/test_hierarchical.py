"""Split and hierarchical training: two parts, and what crosses the cut between them."""

from __future__ import annotations

import pytest
import torch

from dse.costmodel import build_graph
from dse.errors import InputError
from dse.nets import NetworkSpec, TrainConfig, build_network, example_input, load_data
from dse.nets.hierarchical import split_trainer
from dse.nets.training import train_network


@pytest.fixture(scope="module")
def digits():  # noqa: ANN201 - a DataSet
    return load_data("digits", n=300)


def spec_of(
    data,
    mode: str = "hierarchical",
    cut: int | None = None,  # noqa: ANN001
    **train: object,
) -> NetworkSpec:
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 32, "mode": mode, **train})  # type: ignore[arg-type]
    return NetworkSpec(model="mlp", data=data, train=cfg, cut=cut)


def exit_cut(data, index: int) -> int:  # noqa: ANN001
    """The cut right after exit ``index``'s site (its head then runs on the edge)."""
    net = build_network(spec_of(data, "central"))
    return build_graph(net, example_input(data)).exits[index].position


def test_edge_part_is_the_same_with_or_without_the_server_part(digits) -> None:  # noqa: ANN001
    cut = exit_cut(digits, 0)
    spec = spec_of(digits, cut=cut)
    both = train_network(spec, progress=False)
    alone = train_network(spec, progress=False, server=False)
    start = build_network(spec).state_dict()
    edge = [k for k in both.state if k.startswith(("layers.0.", "exit_heads.0."))]
    server = [k for k in both.state if k.startswith(("layers.1.", "classifier."))]
    assert edge and server
    for k in edge:  # bit for bit: no gradient of the server's loss reached the edge
        assert torch.equal(both.state[k], alone.state[k]), k
        assert not torch.equal(both.state[k], start[k]), k  # and the edge did train
    for k in server:  # the server part trained only where it exists
        assert not torch.equal(both.state[k], alone.state[k]), k
        assert torch.equal(alone.state[k], start[k]), k


def _grads(net: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {k: (None if p.grad is None else p.grad.clone()) for k, p in net.named_parameters()}


def test_split_gradient_crosses_the_cut_as_central_training_computes_it(digits) -> None:  # noqa: ANN001
    spec = spec_of(digits, "split", cut=exit_cut(digits, 0))
    x, y = digits.train.x[:16], digits.train.y[digits.task][:16]
    net = build_network(spec)
    graph = build_graph(net, example_input(digits))
    central = build_network(spec)  # the same initial weights (seeded)
    out = central(x)
    loss = torch.nn.functional.cross_entropy(out[-1], y) + sum(
        torch.nn.functional.cross_entropy(o, y) for o in out[:-1]
    )
    loss.backward()
    trainer = split_trainer(net, graph, mode="split", cut=spec.cut)
    trainer.step(x, [y])
    want, got = _grads(central), _grads(net)
    assert want.keys() == got.keys()
    for k in want:
        assert got[k] is not None, k
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-7)
    # the first layer's gradient came back over the cut: hierarchical gives it none of it
    hier = build_network(spec)
    split_trainer(hier, graph, mode="hierarchical", cut=spec.cut).step(x, [y])
    first = "layers.0.0.weight"
    assert not torch.allclose(_grads(hier)[first], got[first])


def test_edge_layers_past_the_training_exit_keep_their_weights(digits) -> None:  # noqa: ANN001
    cut = exit_cut(digits, 1)  # both exits on the edge
    spec = spec_of(digits, cut=cut, exit="layers.0", epochs=1)
    trained = train_network(spec, progress=False, server=False)
    start = build_network(spec).state_dict()
    assert torch.equal(trained.state["layers.1.0.weight"], start["layers.1.0.weight"])
    assert not torch.equal(trained.state["layers.0.0.weight"], start["layers.0.0.weight"])
    # exit 1's head learned on the detached features
    assert not torch.equal(trained.state["exit_heads.1.0.weight"], start["exit_heads.1.0.weight"])


def test_the_cut_enters_the_key_only_when_it_changes_the_weights(digits) -> None:  # noqa: ANN001
    central = NetworkSpec(model="mlp", data=digits, train=TrainConfig(epochs=2, batch_size=32))
    assert spec_of(digits, "central", cut=3).key == central.key
    assert TrainConfig(mode="central").key_fields() == TrainConfig().key_fields()
    keys = {spec_of(digits, m, cut=c).key for m in ("split", "hierarchical") for c in (2, 3)}
    assert len(keys) == 4 and central.key not in keys
    named = spec_of(digits, cut=3, exit="layers.0").key
    assert named not in keys


@pytest.mark.parametrize(
    ("train", "cut", "field"),
    [
        ({"mode": "federated"}, 3, "mode"),
        ({"mode": "central", "exit": "layers.0"}, None, "exit"),
        ({"mode": "split", "exit": "layers.0"}, 3, "exit"),
        ({"mode": "hierarchical"}, None, "mode"),
        ({"mode": "split", "tasks_uncertain": True}, 3, "task_weighting"),
    ],
)
def test_bad_training_settings_are_one_line_errors(
    digits,
    train: dict,
    cut: int | None,  # noqa: ANN001
    field: str,
) -> None:
    if train.pop("tasks_uncertain", False):
        train["task_weighting"] = "uncertainty"
    with pytest.raises(InputError) as err:
        NetworkSpec(model="mlp", data=digits, train=TrainConfig(**train), cut=cut)
    assert err.value.field == field and "\n" not in str(err.value)


def test_a_named_exit_past_the_cut_or_a_cut_outside_is_refused(digits) -> None:  # noqa: ANN001
    cut = exit_cut(digits, 0)
    for bad, field in (
        (spec_of(digits, cut=cut, exit="layers.1"), "exit"),
        (spec_of(digits, cut=cut, exit="layers.9"), "exit"),
        (spec_of(digits, cut=999), "cut"),
    ):
        with pytest.raises(InputError) as err:
            train_network(bad, progress=False)
        assert err.value.field == field and "\n" not in str(err.value)
