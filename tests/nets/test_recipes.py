"""Training recipes: learning-rate schedules, augmentation, exit-loss schedules and
self-distillation, their settings' checks and what they do to the training key."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from dse.errors import InputError
from dse.nets import loop, recipes
from dse.nets.data import load_data
from dse.nets.training import NetworkSpec, TrainConfig, train_network

# ------------------------------------------------------------------ learning rate


def test_cosine_warms_up_then_anneals_to_zero() -> None:
    f = recipes.lr_factor("cosine", total=100, warm_up=10)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.55)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5)  # half way through the cosine
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    values = [f(i) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_step_cuts_tenfold_at_half_and_three_quarters() -> None:
    f = recipes.lr_factor("step", total=100, warm_up=10)
    assert [f(0), f(49), f(50), f(74), f(75), f(99)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def _lrs(cfg: TrainConfig, steps_per_epoch: int = 4) -> list[float]:
    net = nn.Linear(2, 2)
    plan = loop.schedule(net, cfg, None, steps_per_epoch)
    out = []
    for epoch in range(plan.epochs):
        for _ in range(steps_per_epoch):
            out.append(plan.optimizer.param_groups[0]["lr"])
            plan.optimizer.step()
            plan.after_step(epoch)
    return out


def test_the_schedules_the_loop_runs() -> None:
    cosine = _lrs(TrainConfig(epochs=5, lr=0.01, lr_schedule="cosine"))
    assert cosine[0] == pytest.approx(0.001) and max(cosine) == pytest.approx(0.01)
    assert cosine[-1] < 0.0005
    step = _lrs(TrainConfig(epochs=4, lr=0.01, lr_schedule="step"))
    assert step[:8] == pytest.approx([0.01] * 8) and step[-1] == pytest.approx(1e-4)
    one_cycle = _lrs(TrainConfig(epochs=5, lr=0.01))
    assert max(one_cycle) == pytest.approx(0.01, rel=1e-3) and one_cycle[0] < 0.001
    # with "auto" the cosine's horizon is max_epochs
    auto = TrainConfig(epochs="auto", max_epochs=3, lr=0.01, lr_schedule="cosine")
    plan = loop.schedule(nn.Linear(2, 2), auto, None, 4)
    assert plan.epochs == 3 and plan.plateau is None


def test_the_edge_part_learns_at_its_own_rate() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    edge = list(net[0].parameters())
    cfg = TrainConfig(epochs=2, lr=0.01, edge_lr=0.002, mode="hierarchical")
    plan = loop.schedule(net, cfg, None, 4, edge=edge)
    groups = plan.optimizer.param_groups
    assert [len(g["params"]) for g in groups] == [2, 2]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in edge}
    for epoch in range(plan.epochs):  # the same schedule, at a fifth of the rate
        for _ in range(4):
            server, mine = (g["lr"] for g in groups)
            assert mine == pytest.approx(server / 5)
            plan.optimizer.step()
            plan.after_step(epoch)
    assert server < 0.01 / 10  # the schedule did run


# ------------------------------------------------------------------ exit weights


def test_constant_and_ramped_exit_weights() -> None:
    assert [recipes.exit_weight("constant", 0.7, i, 10) for i in (0, 5, 90)] == [0.7] * 3
    ramp = [recipes.exit_weight("ramp", 1.0, i, 4) for i in range(7)]
    assert ramp == pytest.approx([0.01 + 0.99 * min(i, 4) / 4 for i in range(7)])
    assert ramp[0] == pytest.approx(recipes.RAMP_START) and ramp[4:] == pytest.approx([1.0] * 3)
    # over half of a fixed training's steps; over AUTO_RAMP_EPOCHS epochs with "auto"
    assert recipes.ramp_steps(10, 30) == 150 and recipes.ramp_steps(1, 7) == 3
    assert recipes.ramp_steps(None, 30) == recipes.AUTO_RAMP_EPOCHS * 30
    assert recipes.ramp_steps(1, 1) == 1


def test_distillation_is_zero_on_agreement_and_does_not_move_the_teacher() -> None:
    final = torch.randn(8, 5, requires_grad=True)
    same = final.detach().clone().requires_grad_(True)
    assert recipes.distill_loss(same, final).item() == pytest.approx(0.0, abs=1e-6)
    exit_ = torch.randn(8, 5, requires_grad=True)
    loss = recipes.distill_loss(exit_, final)
    assert loss.item() > 0
    loss.backward()
    assert final.grad is None and exit_.grad is not None
    # by hand: T^2 * mean over the batch of sum p_final * (log p_final - log p_exit)
    t = recipes.DISTILL_TEMPERATURE
    p = torch.softmax(final.detach() / t, -1)
    q = torch.log_softmax(exit_.detach() / t, -1)
    expect = (p * (p.log() - q)).sum(-1).mean() * t * t
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)


# ------------------------------------------------------------------ augmentation


def test_flip_mirrors_the_drawn_half_and_crop_shifts_with_zeros() -> None:
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    assert recipes.augment(x, (), torch.Generator()) is x
    gen = torch.Generator().manual_seed(3)
    flip = torch.rand(2, generator=torch.Generator().manual_seed(3)) < 0.5
    out = recipes.augment(x, ("flip",), gen)
    for i in range(2):
        torch.testing.assert_close(out[i], x[i].flip(-1) if flip[i] else x[i])
    crops = recipes.augment(x.repeat(50, 1, 1, 1), ("crop",), torch.Generator().manual_seed(0))
    p = 8 // recipes.CROP_SHARE
    seen = set()
    for k, img in enumerate(crops):
        src = x[k % 2, 0]
        found = [
            (dy, dx)
            for dy in range(-p, p + 1)
            for dx in range(-p, p + 1)
            if torch.equal(img[0], _shifted(src, dy, dx))
        ]
        assert found, k  # every output is its image shifted, zeros shifted in
        seen.add(found[0])
    assert len(seen) == (2 * p + 1) ** 2  # every shift is drawn
    again = recipes.augment(x.repeat(50, 1, 1, 1), ("crop",), torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``img`` moved by (dy, dx) pixels, zeros where nothing came in: the crop of the
    zero-padded image at offset (p - dy, p - dx)."""
    out = torch.zeros_like(img)
    h, w = img.shape
    out[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = img[
        max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
    ]
    return out


# ------------------------------------------------------------------ settings and keys


def test_recipe_settings_at_their_defaults_keep_the_key() -> None:
    data = load_data("digits")
    base = NetworkSpec("mlp", data, train=TrainConfig(epochs=2))
    auto = NetworkSpec("mlp", data, train=TrainConfig(epochs="auto"))
    same = [
        TrainConfig(epochs=2, lr_schedule="onecycle"),
        TrainConfig(epochs=2, augment=()),
        TrainConfig(epochs=2, exit_schedule="ramp"),  # the default in central training
        TrainConfig(epochs=2, distill=0.0),
    ]
    for cfg in same:
        assert NetworkSpec("mlp", data, train=cfg).key == base.key
    assert NetworkSpec(
        "mlp", data, train=TrainConfig(epochs="auto", lr_schedule="plateau")
    ).key == (auto.key)
    changed = [
        TrainConfig(epochs=2, lr_schedule="cosine"),
        TrainConfig(epochs=2, lr_schedule="step"),
        TrainConfig(epochs=2, lr_schedule="plateau"),
        TrainConfig(epochs=2, augment=("flip",)),
        TrainConfig(epochs=2, augment=("crop", "flip")),
        TrainConfig(epochs=2, exit_schedule="constant"),
        TrainConfig(epochs=2, distill=0.5),
        TrainConfig(epochs=2, head="linear"),
        TrainConfig(epochs=2, head="conv"),
    ]
    keys = {NetworkSpec("mlp", data, train=cfg).key for cfg in changed}
    assert len(keys) == len(changed) and base.key not in keys
    # "auto" keeps the best epoch by the final accuracy, ties to the better exits; the rule
    # of before is select = "final", with the key of before
    assert auto.fields()["train"]["select"] == "final+exits"
    old_auto = NetworkSpec("mlp", data, train=TrainConfig(epochs="auto", select="final"))
    assert "select" not in old_auto.fields()["train"] and old_auto.key != auto.key
    assert "select" not in base.fields()["train"]  # a number of epochs keeps the last one
    # the order of augmentations is no difference
    assert TrainConfig(augment=["flip", "crop"]).augment == ("crop", "flip")
    fields = TrainConfig(distill=0.5).key_fields()
    assert fields["distill"] == {"weight": 0.5, "t": recipes.DISTILL_TEMPERATURE}
    assert TrainConfig(head="conv").key_fields()["head"] == "conv v2"  # InfoPro's, not before
    # ramped exit weights by default in central training, constant where the network is
    # trained in two parts (which refuse a ramp)
    assert TrainConfig().exit_schedule_kind == "ramp"
    assert TrainConfig(mode="split").exit_schedule_kind == "constant"
    assert "exit_schedule" not in TrainConfig(mode="split").key_fields()
    assert "exit_schedule" not in TrainConfig(exit_schedule="constant").key_fields()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"augment": ("rotate",)}, "augment"),
        ({"exit_schedule": "sudden"}, "exit_schedule"),
        ({"distill": -1.0}, "distill"),
        ({"distill": math.nan}, "distill"),
        ({"distill": 0.5, "mode": "split"}, "distill"),
        ({"exit_schedule": "ramp", "mode": "hierarchical"}, "exit_schedule"),
        ({"edge_lr": 0.001}, "edge_lr"),
        ({"edge_lr": 0.0, "mode": "split"}, "edge_lr"),
        ({"head": "attention"}, "head"),
        ({"select": "best"}, "select"),
    ],
)
def test_bad_recipe_settings_are_one_line_errors(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as info:
        TrainConfig(**kwargs)
    assert info.value.field == field and "\n" not in str(info.value)


def test_a_ramped_distilled_augmented_training_runs_and_is_deterministic() -> None:
    data = load_data("digits", size=16)
    cfg = TrainConfig(
        epochs=2,
        head="sdn",
        distill=0.5,
        augment=("crop",),
        lr_schedule="cosine",
    )
    spec = NetworkSpec("vgg-s", data, train=cfg)
    a = train_network(spec, progress=False)
    b = train_network(spec, progress=False)
    for k, v in a.state.items():
        assert torch.equal(v, b.state[k]), k
    plain = train_network(
        NetworkSpec("vgg-s", data, train=TrainConfig(epochs=2, exit_schedule="constant")),
        progress=False,
    )
    assert any(not torch.equal(v, plain.state[k]) for k, v in a.state.items())
    assert len(a.accuracy("val")) == 3


def test_the_training_ramps_the_exit_weight_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_data("digits", n=300)
    seen: list[float] = []
    central = loop.central_step

    def record(*args: object, exit_weight: float, **kw: object) -> float:
        seen.append(exit_weight)
        return central(*args, exit_weight=exit_weight, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "central_step", record)
    train_network(NetworkSpec("mlp", data, train=TrainConfig(epochs=2)), progress=False)
    steps = len(seen)
    half = steps // 2
    assert seen[0] == pytest.approx(recipes.RAMP_START)
    assert seen[:half] == pytest.approx([0.01 + 0.99 * i / half for i in range(half)])
    assert seen[half:] == pytest.approx([1.0] * (steps - half))
    seen.clear()
    constant = TrainConfig(epochs=2, exit_schedule="constant", exit_weight=0.3)
    train_network(NetworkSpec("mlp", data, train=constant), progress=False)
    assert seen == pytest.approx([0.3] * steps)
