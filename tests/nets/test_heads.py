"""Tests for dse.nets.heads and multi-task training: one backbone, one head per task.

What is pinned: every task head reads the one tensor the model's classifier read, and the
layer graph places the heads after the shared layers (so the cut after them sends that
tensor); one task is exactly the network, key and numbers of before tasks existed; task
weights and learned (uncertainty) weights enter the loss; the sum of the tasks' losses
learns every task.
"""

from __future__ import annotations

import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from dse.costmodel.graph import build_graph
from dse.errors import InputError
from dse.nets.data import DataSet, load_data
from dse.nets.heads import HeadConfig, attach_task_heads, make_task_head
from dse.nets.models import load_model
from dse.nets.training import (
    NetworkSpec,
    TrainConfig,
    TrainedNetwork,
    build_network,
    chance_accuracy,
    example_input,
    train_network,
)

TASKS = ("object_shape", "object_scale", "wall_hue")  # 4, 8 and 10 classes


@pytest.fixture(scope="module")
def shapes() -> DataSet:
    return load_data("shapes3d", n=400, size=16)


@pytest.fixture(scope="module")
def digits() -> DataSet:
    return load_data("digits")


def _classifier_input(net: fx.GraphModule) -> fx.Node:
    """The node the single-task network's classifier reads."""
    (call,) = [n for n in net.graph.nodes if n.op == "call_module" and n.target == "classifier"]
    return call.args[0]


def _head_entries(net: fx.GraphModule, t: int) -> list[fx.Node]:
    """The nodes of ``task_heads.t`` that read a node from outside that head."""
    prefix = f"task_heads.{t}"

    def inside(n: object) -> bool:
        return (
            isinstance(n, fx.Node)
            and n.op == "call_module"
            and (n.target == prefix or str(n.target).startswith(prefix + "."))
        )

    return [
        n
        for n in net.graph.nodes
        if inside(n) and any(isinstance(a, fx.Node) and not inside(a) for a in n.args)
    ]


# --------------------------------------------------------------------------- the cut tensor


def test_attach_task_heads_hangs_every_head_off_the_classifiers_input(shapes: DataSet) -> None:
    model = load_model("vgg-s", in_channels=3, input_size=16, num_classes=4)
    single = fx.symbolic_trace(model)
    source = _classifier_input(single).name
    gm = attach_task_heads(model, [4, 8, 10], TASKS, HeadConfig("mlp"), name="vgg-s")
    calls = [
        n
        for n in gm.graph.nodes
        if n.op == "call_module" and str(n.target).startswith("task_heads.")
    ]
    assert [n.target for n in calls] == ["task_heads.0", "task_heads.1", "task_heads.2"]
    assert len({id(n.args[0]) for n in calls}) == 1  # one fx node feeds all three
    assert calls[0].args[0].name == source
    assert "classifier" not in dict(gm.named_modules())
    assert gm.task_names == TASKS and gm.classifier_name is None
    out = gm(torch.randn(2, 3, 16, 16))
    assert [tuple(o.shape) for o in out] == [(2, 4), (2, 8), (2, 10)]
    # the heads really compute from that tensor: each is its own module on the features
    features = model.classifier.in_features
    assert isinstance(gm.get_submodule("task_heads.1"), nn.Sequential)
    assert gm.get_submodule("task_heads.1")[0].in_features == features


def test_three_task_network_heads_read_one_tensor_and_follow_the_shared_layers(
    shapes: DataSet,
) -> None:
    single = build_network(NetworkSpec("vgg-s", shapes))
    source = _classifier_input(single).name
    net = build_network(NetworkSpec("vgg-s", shapes, tasks=TASKS))
    assert net.task_names == TASKS
    entries = [_head_entries(net, t) for t in range(3)]
    assert all(len(e) == 1 for e in entries), entries
    read = {id(e[0].args[0]) for e in entries}
    assert len(read) == 1  # the same fx node, not three copies of it
    assert entries[0][0].args[0].name == source
    # the outputs: every exit's three task heads, then the three finals in task order
    out = net(torch.randn(2, 3, 16, 16))
    assert len(out) == 2 * 3 + 3
    assert [o.shape[-1] for o in out] == [4, 8, 10] * 3

    g = build_graph(net, example_input(shapes), name="vgg-s")
    backbone = list(g.backbone)
    heads = [
        [i for i, n in enumerate(backbone) if g.nodes[n].target.startswith(f"task_heads.{t}.")]
        for t in range(3)
    ]
    shared = [i for i, n in enumerate(backbone) if not g.nodes[n].target.startswith("task_heads.")]
    assert all(heads) and shared
    assert max(shared) < min(heads[0])  # the heads come after every shared layer ...
    assert max(heads[0]) < min(heads[1]) and max(heads[1]) < min(heads[2])  # ... in order
    after_shared = max(shared) + 1
    assert backbone[after_shared - 1] == source
    cut = g.cuts[after_shared]
    assert cut.tensors == (source,)
    assert cut.bytes == g.nodes[source].output_bytes == 4 * shapes_features(net)
    assert g.cuts[-1].bytes == 0 and g.cuts[-1].tensors == ()  # edge-only: nothing sent
    # the result returned after a cut: the three tasks' logits
    assert g.result_bytes == 4 * (4 + 8 + 10)
    # each exit's head holds its three tasks' heads
    for i, e in enumerate(g.exits):
        for t in range(3):
            assert any(g.nodes[n].target.startswith(f"exit_heads.{i}.{t}.") for n in e.nodes)


def shapes_features(net: nn.Module) -> int:
    """Inputs of the first task head's first Linear: the shared feature vector's length."""
    first = next(m for m in net.get_submodule("task_heads.0").modules() if isinstance(m, nn.Linear))
    return first.in_features


# --------------------------------------------------------------------------- head config


def test_head_config_resolves_auto_and_refuses_the_classifier_for_several_tasks() -> None:
    assert HeadConfig().resolved(1).kind == "classifier"
    assert HeadConfig().resolved(3) == HeadConfig("mlp")
    assert HeadConfig("mlp", hidden=16).resolved(1) == HeadConfig("mlp", hidden=16)
    with pytest.raises(InputError) as err:
        HeadConfig("classifier").resolved(2)
    assert err.value.field == "head.kind"
    with pytest.raises(InputError) as err:
        HeadConfig.parse({"kind": "mlp", "width": 3})
    assert err.value.field == "head.width"
    with pytest.raises(InputError):
        HeadConfig("conv")
    with pytest.raises(InputError):
        HeadConfig("mlp", dropout=1.0)


def test_make_task_head_layers() -> None:
    two = make_task_head(12, 5, HeadConfig("mlp", hidden=7, layers=2, dropout=0.1))
    linears = [m for m in two if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(12, 7), (7, 5)]
    assert any(isinstance(m, nn.Dropout) for m in two) and any(isinstance(m, nn.ReLU) for m in two)
    one = make_task_head(12, 5, HeadConfig("mlp", layers=1))
    assert [type(m) for m in one] == [nn.Linear]  # what the classifier read is flat already
    assert one(torch.randn(3, 12)).shape == (3, 5)


def test_bad_task_specs_are_input_errors(shapes: DataSet) -> None:
    with pytest.raises(InputError) as err:
        NetworkSpec("vgg-s", shapes, tasks=("object_shape", "nope"))
    assert err.value.field == "tasks" and "object_scale" in str(err.value)
    with pytest.raises(InputError) as err:
        NetworkSpec("vgg-s", shapes, tasks=("object_shape", "object_shape"))
    assert err.value.field == "tasks"
    with pytest.raises(InputError) as err:
        NetworkSpec("vgg-s", shapes, task="object_shape", tasks=("object_scale",))
    assert err.value.field == "tasks"
    with pytest.raises(InputError) as err:
        NetworkSpec("vgg-s", shapes, tasks=TASKS, train=TrainConfig(task_weights=(1.0, 2.0)))
    assert err.value.field == "task_weights"
    with pytest.raises(InputError) as err:
        NetworkSpec("vgg-s", shapes, tasks=TASKS, head=HeadConfig("classifier"))
    assert err.value.field == "head.kind"
    with pytest.raises(InputError) as err:
        TrainConfig(task_weights=(1.0, 1.0), task_weighting="uncertainty")
    assert err.value.field == "task_weights"
    with pytest.raises(InputError):
        TrainConfig(task_weights=(0.0, 0.0))
    with pytest.raises(InputError):
        TrainConfig(task_weighting="learned")


# --------------------------------------------------------------------------- T = 1 is today

#: The keys of networks cached before tasks existed (computed at the commit before
#: multi-task networks, with that commit's code): a single-task spec must keep them, or
#: every cached network would be trained again.
KEY_PLAIN = "5c29c8d5a9097ae508edd7e3611c5f34b24ccb0550be7abcb2f782f2f9a8aab7"
KEY_SPARSE_NO_EXITS = "875cc02217d0fdb1af8202519f480285b2214f625ca57c4697bcc5be0d341366"
KEY_SHAPES3D_TASK = "e589f39d3e964ce9049fb38d92525734190db672d6f4ada4ad1837e83f0d678d"


def test_single_task_keys_are_those_of_before_tasks(digits: DataSet, shapes: DataSet) -> None:
    assert NetworkSpec("mlp", digits).key == KEY_PLAIN
    sparse = dict(method="predefined", density=0.25, exits=(), train=TrainConfig(epochs=2))
    assert NetworkSpec("mlp", digits, **sparse).key == KEY_SPARSE_NO_EXITS
    assert NetworkSpec("vgg-s", shapes, task="object_hue").key == KEY_SHAPES3D_TASK
    # naming the one task changes nothing either
    assert NetworkSpec("mlp", digits, tasks=(digits.task,)).key == KEY_PLAIN
    assert NetworkSpec("mlp", digits, tasks=(digits.task,), **sparse).key == KEY_SPARSE_NO_EXITS
    assert NetworkSpec("vgg-s", shapes, tasks=("object_hue",)).key == KEY_SHAPES3D_TASK
    # an MLP head on one task is another network, and so is a second task
    assert NetworkSpec("mlp", digits, head=HeadConfig("mlp")).key != KEY_PLAIN
    two = NetworkSpec("vgg-s", shapes, tasks=("object_hue", "object_shape")).key
    assert two not in (
        KEY_SHAPES3D_TASK,
        NetworkSpec("vgg-s", shapes, tasks=("object_shape", "object_hue")).key,
    )  # the order of the tasks is the heads' order


def test_one_named_task_trains_exactly_the_single_task_network(digits: DataSet) -> None:
    train = TrainConfig(epochs=2)
    plain = NetworkSpec("mlp", digits, method="predefined", density=0.5, train=train)
    named = NetworkSpec(
        "mlp", digits, method="predefined", density=0.5, train=train, tasks=(digits.task,)
    )
    assert named.key == plain.key and named.head.kind == "classifier"
    assert build_network(named).state_dict().keys() == build_network(plain).state_dict().keys()
    a = train_network(plain, progress=False)
    b = train_network(named, progress=False)
    _same(a, b)
    assert len(a.val_logits) == 1 and a.tasks == (digits.task,)
    assert a.accuracy("val") == b.accuracy("val")
    assert a.task_accuracy("test") == b.task_accuracy("test") == [a.accuracy("test")[-1]]
    assert [h["val_accuracy"] for h in a.history] == [h["val_accuracy"] for h in b.history]


def _same(a: TrainedNetwork, b: TrainedNetwork) -> None:
    for name in ("val_logits", "val_labels", "test_logits", "test_labels"):
        x, y = getattr(a, name), getattr(b, name)
        assert len(x) == len(y), name
        for u, v in zip(x, y, strict=True):
            assert torch.equal(u, v), name
    assert a.state.keys() == b.state.keys()
    for k in a.state:
        assert torch.equal(a.state[k], b.state[k]), k


# --------------------------------------------------------------------------- training


def _tiny(shapes: DataSet, **train: object) -> NetworkSpec:
    return NetworkSpec(
        "mlp",
        shapes,
        tasks=("object_shape", "object_scale"),
        exits=(),
        head=HeadConfig("mlp", hidden=32),
        train=TrainConfig(**{"epochs": 1, **train}),
    )  # type: ignore[arg-type]


def test_task_weights_change_the_trained_weights(shapes: DataSet) -> None:
    equal = train_network(_tiny(shapes), progress=False)
    same = train_network(_tiny(shapes, task_weights=(1.0, 1.0)), progress=False)
    tilted = train_network(_tiny(shapes, task_weights=(1.0, 0.1)), progress=False)
    # weights (1, 1) are the plain sum of the losses: the same numbers, the same network
    _same(equal, same)
    assert same.key == equal.key
    assert not torch.equal(tilted.val_logits[0], equal.val_logits[0])
    assert not torch.equal(tilted.val_logits[1], equal.val_logits[1])
    assert len(equal.val_logits) == 2
    assert [lg.shape[-1] for lg in equal.val_logits] == [4, 8]
    assert set(equal.history[-1]) >= {"val_accuracy.object_shape", "val_accuracy.object_scale"}
    assert equal.history[-1]["val_accuracy"] == pytest.approx(sum(equal.task_accuracy("val")) / 2)


def test_uncertainty_weighting_trains_and_records_each_tasks_weight(shapes: DataSet) -> None:
    spec = _tiny(shapes, task_weighting="uncertainty", epochs=2, lr=0.05)
    assert spec.key != _tiny(shapes, epochs=2, lr=0.05).key
    t = train_network(spec, progress=False)
    assert len(t.history) == 2
    for row in t.history:
        w = [row["weight.object_shape"], row["weight.object_scale"]]
        assert all(x > 0 and x == x for x in w)  # exp(-s): positive, finite
    # the weights are learned: they moved from exp(0) = 1
    assert t.history[-1]["weight.object_shape"] != 1.0
    plain = train_network(_tiny(shapes, epochs=2, lr=0.05), progress=False)
    assert not torch.equal(t.val_logits[0], plain.val_logits[0])
    assert "weight.object_shape" not in plain.history[-1]


def test_the_sum_of_the_losses_learns_every_task(shapes: DataSet) -> None:
    """The three hues of the scene: each task well above what guessing reaches (at 16 px
    and 280 training images the shape and scale tasks do not learn in a few epochs, with
    one task or several)."""
    hues = ("wall_hue", "floor_hue", "object_hue")
    spec = NetworkSpec("mlp", shapes, tasks=hues, train=TrainConfig(epochs=5))
    t = train_network(spec, progress=False)
    acc = t.task_accuracy("val")
    for task, a, y in zip(hues, acc, t.val_labels, strict=True):
        chance = chance_accuracy(y, shapes.classes[task])
        assert a > chance + 0.2, (task, a, chance)
