"""Tests for dse.nets.training: the training cache, masks through training, determinism,
accuracy."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from other_worker import hold_claim

from dse.costmodel.graph import build_graph
from dse.errors import InputError
from dse.nets import sparsity
from dse.nets import training as T
from dse.nets.cache import Cache
from dse.nets.data import DataSet, load_data
from dse.nets.training import NetworkSpec, TrainConfig, TrainedNetwork, build_network, train_network


@pytest.fixture(scope="module")
def digits() -> DataSet:
    return load_data("digits")


def spec_of(data: DataSet, **kw: Any) -> NetworkSpec:
    """A small, fast spec: mlp on digits, predefined density 1/4, 2 epochs."""
    train = kw.pop("train", TrainConfig(epochs=2))
    base: dict[str, Any] = {
        "model": "mlp",
        "data": data,
        "method": "predefined",
        "density": 0.25,
        "train": train,
    }
    return NetworkSpec(**{**base, **kw})


def _same(a: TrainedNetwork, b: TrainedNetwork) -> None:
    assert a.exit_sites == b.exit_sites
    for name in ("val_logits", "val_labels", "test_logits", "test_labels"):
        assert len(getattr(a, name)) == len(getattr(b, name)), name  # one per task
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            assert torch.equal(x, y), name
    assert a.state.keys() == b.state.keys()
    for k in a.state:
        assert torch.equal(a.state[k], b.state[k]), k


# --------------------------------------------------------------------------- cache


def test_cache_hit_returns_identical_result_without_training(
    digits: DataSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path)
    spec = spec_of(digits)
    first = train_network(spec, cache=cache, progress=False)
    assert not first.cached and first.train_seconds > 0
    assert cache.keys() == [spec.key]

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the cache holds this spec")

    monkeypatch.setattr(T, "build_network", no_training)
    monkeypatch.setattr(torch.optim, "AdamW", no_training)
    # An equal spec built anew (another DataSet object with the same key) hits too.
    again = train_network(spec_of(load_data("digits")), cache=cache, progress=False)
    monkeypatch.undo()
    assert again.cached
    _same(first, again)
    assert again.train_seconds == first.train_seconds
    assert again.history == first.history
    assert again.accuracy() == first.accuracy()
    # The cached state loads into a fresh network that gives the same logits.
    net = again.network()
    with torch.no_grad():
        out = net(digits.val.x)
    assert torch.allclose(torch.stack(list(out)), first.val_logits[0], atol=1e-6)


def _key_variants(data: DataSet, cfg: TrainConfig) -> dict[str, NetworkSpec]:
    def spec(d: DataSet = data, **kw: Any) -> NetworkSpec:
        return spec_of(d, **{"train": cfg, **kw})

    return {
        "density": spec(density=0.5),
        "dense": spec(density=1.0),
        "method": spec(method="channels"),
        "exits subset": spec(exits=("layers.1",)),
        "no exits": spec(exits=()),
        "epochs": spec(train=dataclasses.replace(cfg, epochs=cfg.epochs + 1)),
        "seed": spec(train=dataclasses.replace(cfg, seed=1)),
        "lr": spec(train=dataclasses.replace(cfg, lr=1e-3)),
        "batch size": spec(train=dataclasses.replace(cfg, batch_size=128)),
        "weight decay": spec(train=dataclasses.replace(cfg, weight_decay=0.0)),
        "exit weight": spec(train=dataclasses.replace(cfg, exit_weight=0.5)),
        "data seed": spec(load_data("digits", seed=1)),
        "data size": spec(load_data("digits", n=1500)),
        "image size": spec(load_data("digits", size=16)),
        "model option": spec(model_options={"widths": (256, 64)}),
    }


def test_a_network_another_process_is_training_is_waited_for_not_trained_again(
    digits: DataSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    spec = spec_of(digits)
    elsewhere = Cache(tmp_path / "elsewhere")  # what the other process will have written
    done = train_network(spec, cache=elsewhere, progress=False)
    shared = Cache(tmp_path / "shared")
    other = hold_claim(shared.root, spec.key, then_write=elsewhere.path(spec.key))
    try:

        def no_training(*args: object, **kwargs: object) -> None:
            raise AssertionError("trained although another process is training this spec")

        monkeypatch.setattr(T, "_train", no_training)
        got: list[TrainedNetwork] = []
        waiting = threading.Thread(
            target=lambda: got.append(train_network(spec, cache=shared, progress=False))
        )
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and not got  # blocked on the other's claim
        other.stdin.close()  # type: ignore[union-attr]
        waiting.join(timeout=60)
        assert not waiting.is_alive()
    finally:
        other.kill()
        other.wait(timeout=30)
    (result,) = got
    assert result.cached
    _same(result, done)


def test_cache_misses_on_any_key_field(digits: DataSet, tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cfg = TrainConfig(epochs=1)
    base = spec_of(digits, train=cfg)
    train_network(base, cache=cache, progress=False)
    variants = _key_variants(digits, cfg)
    keys = {name: s.key for name, s in variants.items()}
    assert len(set(keys.values()) | {base.key}) == len(variants) + 1, keys
    for name, spec in variants.items():
        assert cache.get(spec.key) is None, name
        got = train_network(spec, cache=cache, progress=False)
        assert not got.cached, name
    # Every variant is now stored under its own key, and the base entry is untouched.
    assert set(cache.keys()) == {base.key, *keys.values()}
    assert train_network(base, cache=cache, progress=False).cached
    # The variants did change what was trained (spot checks).
    assert variants["no exits"].key in cache.keys()
    alone = train_network(variants["no exits"], cache=cache, progress=False)
    assert alone.val_logits[0].shape[0] == 1


def test_dense_key_ignores_method_and_number_type(digits: DataSet) -> None:
    """At density 1 both methods build the same dense network, so they share an entry."""
    a = spec_of(digits, density=1.0, method="predefined")
    b = spec_of(digits, density=1.0, method="channels")
    assert a.key == b.key
    assert spec_of(digits, method="predefined").key != spec_of(digits, method="channels").key
    # An int density names the same network as the equal float.
    assert spec_of(digits, density=1).key == a.key


def test_corrupt_entry_is_retrained(
    digits: DataSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path)
    spec = spec_of(digits)
    train_network(spec, cache=cache, progress=False)
    path = cache.path(spec.key)
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0xFF
    path.write_bytes(bytes(raw))
    retrained = train_network(spec, cache=cache, progress=False)
    assert not retrained.cached
    assert "corrupt" in caplog.text
    assert path.with_suffix(".corrupt").read_bytes() == bytes(raw)
    _same(retrained, train_network(spec, progress=False))  # equals a fresh training
    hit = train_network(spec, cache=cache, progress=False)  # and the new entry is good
    assert hit.cached
    _same(retrained, hit)


# --------------------------------------------------------------------------- sparsity


def test_masked_weights_stay_zero_and_density_is_as_planned(digits: DataSet) -> None:
    spec = spec_of(digits, train=TrainConfig(epochs=3))
    init = dict(build_network(spec).named_modules())
    trained = train_network(spec, progress=False)
    net = trained.network()
    modules = dict(net.named_modules())
    stats = sparsity.layer_stats(net)
    planned = {"layers.0.0": (64, 256), "layers.1.0": (256, 128)}  # name: (n_in, n_out)
    for name, (n_in, n_out) in planned.items():
        mask = modules[name].weight_mask
        w = modules[name].weight.detach()
        assert mask.shape == w.shape and mask.dtype == torch.bool
        # Outside the mask: exactly +0.0 after every step of training (also in the state
        # the cache stores).
        assert torch.all(w[~mask] == 0) and not torch.any(torch.signbit(w[~mask]))
        assert torch.all(trained.state[f"{name}.weight"][~mask] == 0)
        # The pattern is the one drawn before training, and regular.
        assert torch.equal(mask, init[name].weight_mask)
        d_in, d_out = sparsity.degrees_for(n_out, n_in, 0.25)
        assert (stats[name].d_in, stats[name].d_out) == (d_in, d_out)
        assert torch.all(mask.sum(1) == d_in) and torch.all(mask.sum(0) == d_out)
        # Realised density equals the planned one exactly: every kept weight is non-zero.
        assert stats[name].nonzero == n_in * n_out // 4
        assert stats[name].density == 0.25
        # And training did move the kept weights.
        assert not torch.equal(w[mask], init[name].weight.detach()[mask])
    # Exit heads and the classifier stay dense.
    for name in ("classifier", "exit_heads.0.0", "exit_heads.1.0"):
        assert getattr(modules[name], "weight_mask", None) is None
        assert stats[name].density == 1.0


def test_density_impossible_for_every_layer_is_an_input_error(digits: DataSet) -> None:
    # layers.0 (64 -> 256) needs multiples of 1/64, layers.1 (256 -> 128) of 1/128.
    with pytest.raises(InputError, match="nearest valid"):
        build_network(spec_of(digits, density=0.3))


def test_density_met_by_some_layers_leaves_the_others_dense(digits: DataSet) -> None:
    # 1/128 is valid for layers.1 (d_out = 1 of 128) but not for layers.0 (step 1/64).
    net = build_network(spec_of(digits, density=1 / 128))
    stats = sparsity.layer_stats(net)
    assert stats["layers.0.0"].density == 1.0
    assert stats["layers.1.0"].density == 1 / 128


def test_predefined_without_exits_builds_and_trains(digits: DataSet) -> None:
    trained = train_network(spec_of(digits, exits=()), progress=False)
    assert trained.exit_sites == () and trained.val_logits[0].shape[0] == 1
    stats = sparsity.layer_stats(trained.network())
    assert stats["layers.0.0"].density == 0.25 and stats["classifier"].density == 1.0


def test_channels_method_gives_a_smaller_dense_network(digits: DataSet) -> None:
    dense = build_network(spec_of(digits, density=1.0))
    small = build_network(spec_of(digits, method="channels", density=0.25))
    x = T.example_input(digits)
    gd = build_graph(dense, x, name="dense")
    gs = build_graph(small, x, name="small")
    # Genuinely dense: no masks, every weight counted; widths scaled by sqrt(1/4).
    assert sparsity.realised_density(small) == 1.0
    assert not any(hasattr(m, "weight_mask") for m in small.modules())
    assert gs.nodes["layers_0_0"].output_shape == (1, 128)
    assert gs.nodes["layers_1_0"].output_shape == (1, 64)
    assert gs.params < gd.params / 2
    assert gs.flops < gd.flops / 2
    assert sparsity.stored_bytes(small) < sparsity.stored_bytes(dense) / 2
    # Smaller tensors at the cuts inside the network (same topology, same cut positions).
    assert [c.after for c in gs.cuts] == [c.after for c in gd.cuts]
    inner = [
        (a.bytes, b.bytes)
        for a, b in zip(gs.cuts, gd.cuts, strict=True)
        if a.after.startswith("layers")
    ]
    assert inner and all(s == d // 2 for s, d in inner)
    # And it trains.
    assert train_network(spec_of(digits, method="channels"), progress=False).accuracy()[-1] > 0.5


# --------------------------------------------------------------------------- behaviour


def test_training_is_deterministic(digits: DataSet) -> None:
    spec = spec_of(digits)
    a = train_network(spec, progress=False)
    b = train_network(spec, progress=False)
    _same(a, b)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    other = train_network(spec_of(digits, train=TrainConfig(epochs=2, seed=1)), progress=False)
    assert not torch.equal(a.val_logits[0], other.val_logits[0])


def test_short_training_beats_chance_at_every_output(digits: DataSet) -> None:
    spec = spec_of(digits, density=1.0, train=TrainConfig(epochs=8))
    trained = train_network(spec, progress=False)
    acc = trained.accuracy("test")
    assert len(acc) == 3  # two exits, then the final classifier
    assert acc[-1] > 0.9, acc  # chance is 0.1
    assert all(a > 0.8 for a in acc), acc
    assert trained.accuracy("val")[-1] > 0.9
    losses = [h["loss"] for h in trained.history]
    assert len(losses) == 8 and losses[-1] < losses[0] / 3


def test_logit_shapes_and_accuracy_match_an_independent_forward(digits: DataSet) -> None:
    trained = train_network(spec_of(digits, train=TrainConfig(epochs=3)), progress=False)
    outputs, classes = 3, 10
    assert trained.exit_sites == ("layers.0", "layers.1")
    assert trained.val_logits[0].shape == (outputs, len(digits.val), classes)
    assert trained.test_logits[0].shape == (outputs, len(digits.test), classes)
    assert len(trained.val_labels) == 1
    assert torch.equal(trained.val_labels[0], digits.val.y["digit"])
    assert torch.equal(trained.test_labels[0], digits.test.y["digit"])
    net = trained.network()
    assert not net.training
    with torch.no_grad():
        out = net(digits.test.x)
    assert isinstance(out, tuple) and len(out) == outputs
    labels = digits.test.y["digit"]
    for i, (logits, acc) in enumerate(zip(out, trained.accuracy("test"), strict=True)):
        assert torch.allclose(logits, trained.test_logits[0][i], atol=1e-5)
        correct = int((logits.argmax(-1) == labels).sum())
        assert math.isclose(acc, correct / len(labels), abs_tol=1e-7), i
    val_correct = int((trained.val_logits[0][-1].argmax(-1) == digits.val.y["digit"]).sum())
    assert math.isclose(trained.accuracy("val")[-1], val_correct / len(digits.val), abs_tol=1e-7)
    assert math.isclose(
        trained.history[-1]["val_accuracy"], trained.accuracy("val")[-1], abs_tol=1e-7
    )


def test_bad_specs_are_input_errors(digits: DataSet) -> None:
    with pytest.raises(InputError, match="method"):
        spec_of(digits, method="magnitude")
    for d in (0.0, -0.5, 1.5, math.nan):
        with pytest.raises(InputError, match="density"):
            spec_of(digits, density=d)
    with pytest.raises(InputError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=0.0)
    with pytest.raises(InputError, match="unknown model"):
        build_network(spec_of(digits, model="no-such-model"))


def test_only_a_sparse_network_outside_the_zoo_gets_the_classifier_key_field() -> None:
    """The zoo's cache keys are unchanged; a user model's sparse network (whose classifier
    now stays dense) gets a new key, so no stale network is read back."""
    from dse.nets.data import load_data
    from dse.nets.training import NetworkSpec

    data = load_data("digits")
    assert "classifier" not in NetworkSpec(model="mlp", data=data, density=0.5).fields()
    assert "classifier" not in NetworkSpec(model="my.py:build", data=data).fields()
    assert (
        NetworkSpec(model="my.py:build", data=data, density=0.5).fields()["classifier"] == "dense"
    )


def test_channels_and_predefined_at_one_nominal_density_realise_different_ones() -> None:
    """mobilenet-s at 1/8: depthwise convolutions and the stem stay dense under predefined
    sparsity, while channels thins them: the realised densities differ by about 1.5x."""
    from dse.nets.data import load_data
    from dse.nets.training import NetworkSpec, realised_density

    data = load_data("shapes", size=32, n=100)
    pre = realised_density(NetworkSpec(model="mobilenet-s", data=data, density=1 / 8))
    ch = realised_density(
        NetworkSpec(model="mobilenet-s", data=data, density=1 / 8, method="channels")
    )
    assert 0.2 < pre < 0.25 and 0.13 < ch < 0.16 and 1.4 < pre / ch < 1.6


# --------------------------------------------------------------------------- did it learn?


def test_chance_is_one_over_classes_or_the_commonest_label() -> None:
    assert T.chance_accuracy(torch.tensor([0, 1, 2, 3] * 5), 4) == 0.25
    assert T.chance_accuracy([0] * 7 + [1] * 3, 2) == pytest.approx(0.7)
    # a class absent from validation still counts in 1/classes
    assert T.chance_accuracy([0, 1] * 4, 10) == pytest.approx(0.5)
    assert T.chance_accuracy([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("chance", "floor"),
    [
        (0.25, 0.40),  # 4 classes: 20% of 0.75 = 15 points
        (0.5, 0.60),  # 2 classes: 20% of 0.5 = 10 points
        (0.01, 0.208),  # 100 classes: 20% of 0.99
        (0.9, 0.95),  # 20% of 0.1 is 2 points: the 5-point minimum
        (0.97, 0.985),  # 5 points would pass 1: halfway from chance to 1
    ],
)
def test_learning_floor_closed_form(chance: float, floor: float) -> None:
    assert T.learning_floor(chance) == pytest.approx(floor)


def test_learning_problem_closed_form() -> None:
    four = [0, 1, 2, 3] * 25  # 4 balanced classes: chance 25%, floor 40%
    # the case that started it: 31% on a 4-class task
    why = T.learning_problem(0.31, four, 4)
    assert why is not None and "31.0%" in why and "below 40.0%" in why
    assert "chance is 25.0% (1 of 4 classes)" in why and "not learned" in why
    assert T.learning_problem(0.39, four, 4) is not None
    assert T.learning_problem(0.40, four, 4) is None  # the floor itself is met
    assert T.learning_problem(0.96, four, 4) is None
    # the commonest label sets chance when it beats 1/classes
    skewed = [0] * 70 + [1] * 30  # chance 70%: floor 70 + max(5, 6) = 76%
    assert T.learning_problem(0.75, skewed, 2) is not None
    assert "the commonest label of 2 classes" in str(T.learning_problem(0.75, skewed, 2))
    assert T.learning_problem(0.76, skewed, 2) is None
    # more than 5 points below another output (an exit, another network)
    why = T.learning_problem(0.84, four, 4, {"the exit after a": 0.9, "b": 0.5})
    assert why is not None and "6.0 points below the exit after a (90.0%)" in why
    assert T.learning_problem(0.85, four, 4, {"the exit after a": 0.9}) is None
    assert T.learning_problem(0.95, four, 4, {"the exit after a": 0.9}) is None
    assert T.learning_problem(0.95, four, 4, {}) is None


def test_an_undertrained_network_is_flagged_and_a_trained_one_is_not(digits: DataSet) -> None:
    slow = train_network(
        spec_of(digits, density=1.0, train=TrainConfig(epochs=1, lr=1e-5)), progress=False
    )
    acc = slow.accuracy("val")[-1]
    chance = T.chance_accuracy(digits.val.y["digit"], 10)
    assert acc < T.learning_floor(chance)
    why = slow.learning_problem()
    assert why is not None and f"{100 * acc:.1f}% validation accuracy" in why
    assert 'epochs = "auto"' in slow.learning_fix() and "--epochs auto" in slow.learning_fix()
    good = train_network(spec_of(digits, density=1.0, train=TrainConfig(epochs=3)), progress=False)
    assert good.learning_problem() is None
    # the same well-trained network, compared with a network 10 points better, lags
    better = good.accuracy("val")[-1] + 0.1
    assert "points below the other" in str(good.learning_problem({"the other": better}))


# --------------------------------------------------------------------------- epochs = "auto"


def test_integer_epoch_keys_are_unchanged_and_auto_has_its_own() -> None:
    data = load_data("digits")
    # the keys these specs had before "auto" existed
    assert spec_of(data).key == ("7198d8c15cf1b31b4f356ff035660a546d3eaeb0b858218ac341d51bc66b1aa9")
    assert NetworkSpec(model="mlp", data=data).key == (
        "5c29c8d5a9097ae508edd7e3611c5f34b24ccb0550be7abcb2f782f2f9a8aab7"
    )
    # patience and the cap do not touch an integer-epoch key
    assert spec_of(data, train=TrainConfig(epochs=2, patience=9, max_epochs=7)).key == (
        spec_of(data).key
    )
    auto = spec_of(data, train=TrainConfig(epochs="auto"))
    assert auto.fields()["train"]["epochs"] == "auto"
    assert {"patience": 5, "max_epochs": 100}.items() <= auto.fields()["train"].items()
    keys = {
        auto.key,
        spec_of(data).key,
        spec_of(data, train=TrainConfig(epochs="auto", patience=2)).key,
        spec_of(data, train=TrainConfig(epochs="auto", max_epochs=7)).key,
    }
    assert len(keys) == 4


def test_bad_auto_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="epochs"):
        TrainConfig(epochs="many")
    with pytest.raises(InputError, match="patience"):
        TrainConfig(epochs="auto", patience=0)
    with pytest.raises(InputError, match="max_epochs"):
        TrainConfig(epochs="auto", max_epochs=0)


def test_auto_stops_after_patience_and_keeps_the_best_validation_epoch(
    digits: DataSet, tmp_path: Path
) -> None:
    cfg = TrainConfig(epochs="auto", patience=2, max_epochs=12)
    spec = spec_of(digits, train=cfg)
    cache = Cache(tmp_path)
    trained = train_network(spec, cache=cache, progress=False)
    curve = [h["val_accuracy"] for h in trained.history]
    run = len(curve)
    best = curve.index(max(curve)) + 1  # the first epoch that reached the best
    assert trained.epochs_run == run and trained.epoch_kept == best
    assert run < cfg.max_epochs  # it stopped by itself: `patience` epochs without a better
    assert run - best == cfg.patience  # one (an equal one is not better)
    assert all(a <= curve[best - 1] for a in curve[best:])
    assert trained.epochs_text() == f"epoch {best} kept of {run} run (auto)"
    # the kept weights are the best epoch's: their validation accuracy is its
    assert trained.accuracy("val")[-1] == pytest.approx(curve[best - 1], abs=1e-7)
    net = trained.network()
    with torch.no_grad():
        out = net(digits.val.x)
    assert torch.allclose(torch.stack(list(out)), trained.val_logits[0], atol=1e-5)
    with torch.no_grad():
        out = net(digits.test.x)
    assert torch.allclose(torch.stack(list(out)), trained.test_logits[0], atol=1e-5)
    # and the cache keeps which epoch was kept
    again = train_network(spec, cache=cache, progress=False)
    assert again.cached and again.epoch_kept == best and again.epochs_run == run


def test_auto_at_the_cap_says_so(digits: DataSet) -> None:
    cfg = TrainConfig(epochs="auto", patience=5, max_epochs=2)
    trained = train_network(spec_of(digits, train=cfg), progress=False)
    assert trained.epochs_run == 2
    assert trained.epochs_text().endswith("run (auto) (stopped at the cap)")
    assert "raise max_epochs (2)" in trained.learning_fix()
    assert train_network(spec_of(digits), progress=False).epochs_text() == "2 epochs"


def test_a_nan_loss_is_a_clear_error_and_nothing_is_cached(digits: DataSet, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    spec = spec_of(digits, density=1.0, train=TrainConfig(epochs=2, lr=1e6))
    with pytest.raises(
        T.TrainingDiverged, match=r"diverged: the loss is (nan|inf) at epoch 1, batch"
    ):
        train_network(spec, cache=cache, progress=False)
    assert cache.keys() == []
    assert [
        p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")
    ] == []


def test_a_growing_loss_is_divergence_and_a_one_line_input_error(digits: DataSet) -> None:
    spec = spec_of(digits, density=1.0, train=TrainConfig(epochs=2, lr=10.0))
    with pytest.raises(InputError, match=r"mean loss of epoch 1 is .* over 10 x") as err:
        train_network(spec, progress=False)
    assert isinstance(err.value, T.TrainingDiverged)
    assert "\n" not in str(err.value) and "lower the learning rate (now 10)" in str(err.value)


def test_non_finite_weights_are_divergence(
    digits: DataSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sparsity.enforce_masks  # the loop masks weights through this module

    def poison(net: torch.nn.Module) -> None:  # a finite loss, then an infinite weight
        real(net)
        with torch.no_grad():
            next(net.parameters())[0, 0] = math.inf

    monkeypatch.setattr(sparsity, "enforce_masks", poison)
    with pytest.raises(T.TrainingDiverged, match="non-finite weights in .* after epoch 1"):
        train_network(spec_of(digits, density=1.0, train=TrainConfig(epochs=1)), progress=False)
