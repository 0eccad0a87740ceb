"""Tests for dse.nets.sparsity: exact degrees, seeded patterns, plans, training, packed storage."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib

import pytest
import torch
from torch import nn

from dse.errors import InputError
from dse.nets import sparsity as S


class PaperMLP(nn.Module):
    """The [800, 40, 40, 10] MLP of Capogrosso et al.'s public code (MNIST padded to 800)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(800, 40)
        self.fc2 = nn.Linear(40, 40)
        self.fc3 = nn.Linear(40, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallConvNet(nn.Module):
    """Every layer family: plain conv, BN (int64 buffer), depthwise, grouped, 1-channel stem."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.grouped = nn.Conv2d(16, 32, 1, groups=2)
        self.fc = nn.Linear(32, 64)
        self.head = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(self.stem(x))))
        x = self.grouped(self.dw(x)).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc(x)))


def paper_model(seed: int = 0) -> PaperMLP:
    """The paper's configuration: out-degrees [2, 9, 10] = densities 2/40, 9/40, 10/10."""
    torch.manual_seed(seed)
    net = PaperMLP()
    plan = S.plan_sparsity(net, 2 / 40, seed=seed, exclude=["fc3"], overrides={"fc2": 9 / 40})
    S.apply_sparsity(net, plan)
    return net


# --------------------------------------------------------------------------- degrees


def test_valid_densities_closed_form() -> None:
    assert S.valid_densities(6, 4) == [0.5, 1.0]  # d_out must be a multiple of 3
    assert S.valid_densities(3, 4) == [1.0]
    assert S.valid_densities(40, 800) == [d / 40 for d in range(1, 41)]
    assert S.valid_densities(10, 40) == [d / 10 for d in range(1, 11)]
    assert S.valid_densities(8, 1) == [1.0]
    for n_out, n_in in [(6, 4), (12, 18), (40, 800), (7, 5)]:
        for rho in S.valid_densities(n_out, n_in):
            d_in, d_out = S.degrees_for(n_out, n_in, rho)
            assert n_in * d_out == n_out * d_in


@pytest.mark.parametrize(
    ("n_out", "n_in", "density", "d_in", "d_out"),
    [
        (40, 800, 2 / 40, 40, 2),  # paper layer 1
        (40, 40, 9 / 40, 9, 9),  # paper layer 2
        (10, 40, 1.0, 40, 10),  # paper layer 3 (dense)
        (40, 800, 0.05, 40, 2),
        (40, 40, 0.225, 9, 9),
        (6, 4, 0.5, 2, 3),
        (64, 128, 0.125, 16, 8),
        (128, 64, 0.125, 8, 16),
        (12, 18, 1 / 3, 6, 4),
        (7, 5, 1.0, 5, 7),
        (1, 9, 1.0, 9, 1),
        (9, 1, 1.0, 1, 9),
        (100, 300, 0.37, 111, 37),
        (256, 25088, 0.125, 3136, 32),
    ],
)
def test_exact_degrees(n_out: int, n_in: int, density: float, d_in: int, d_out: int) -> None:
    assert S.degrees_for(n_out, n_in, density) == (d_in, d_out)
    mask = S.predefined_mask(n_out, n_in, density, seed=7)
    assert mask.shape == (n_out, n_in) and mask.dtype == torch.bool
    assert torch.all(mask.sum(dim=1) == d_in)
    assert torch.all(mask.sum(dim=0) == d_out)


@pytest.mark.parametrize("seed", [0, 1, 12345, -3, 2**70])
@pytest.mark.parametrize(
    ("n_out", "n_in", "density"), [(40, 800, 0.05), (30, 45, 0.4), (5, 10, 0.6)]
)
def test_degrees_exact_for_any_seed(seed: int, n_out: int, n_in: int, density: float) -> None:
    d_in, d_out = S.degrees_for(n_out, n_in, density)
    mask = S.predefined_mask(n_out, n_in, density, seed=seed)
    assert torch.all(mask.sum(dim=1) == d_in) and torch.all(mask.sum(dim=0) == d_out)


def test_paper_weight_count() -> None:
    counts = [
        S.predefined_mask(n_out, n_in, d_out / n_out, seed=0).sum().item()
        for (n_in, n_out), d_out in zip([(800, 40), (40, 40), (40, 10)], [2, 9, 10], strict=True)
    ]
    assert counts == [1600, 360, 400]  # 2360 of the dense 34000 (the paper's MLP)


def test_seed_determines_pattern() -> None:
    a = S.predefined_mask(40, 800, 0.05, seed=1)
    assert torch.equal(a, S.predefined_mask(40, 800, 0.05, seed=1))
    assert not torch.equal(a, S.predefined_mask(40, 800, 0.05, seed=2))
    assert not torch.equal(
        S.predefined_mask(64, 64, 0.25, seed=3), S.predefined_mask(64, 64, 0.25, seed=4)
    )


def test_global_rng_untouched() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    S.predefined_mask(40, 800, 0.05, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_pattern_is_mixed_not_a_permuted_band() -> None:
    # The bare cyclic band of 800 -> 40 at d_in = 40 wraps twice, so each output neuron
    # would have an identical twin; the mixed pattern must not.
    for seed in range(3):
        mask = S.predefined_mask(40, 800, 0.05, seed=seed)
        rows = {tuple(r.nonzero().flatten().tolist()) for r in mask}
        assert len(rows) == 40
        overlap = mask.float() @ mask.float().T
        overlap.fill_diagonal_(0)
        assert overlap.max() < 40 / 2


def test_invalid_density_names_nearest_valid() -> None:
    with pytest.raises(InputError) as info:
        S.degrees_for(40, 800, 0.06)
    msg = str(info.value)
    assert msg.startswith("density: ")
    assert "0.05 (d_out=2)" in msg and "0.075 (d_out=3)" in msg
    with pytest.raises(InputError) as info:
        S.degrees_for(6, 4, 0.7, where="study.toml")
    msg = str(info.value)
    assert msg.startswith("study.toml: density: ")
    assert "0.5 (d_out=3)" in msg and "1.0 (d_out=6)" in msg
    with pytest.raises(InputError, match="0.5"):
        S.predefined_mask(6, 4, 0.1, seed=0)  # below the smallest: names 0.5 and 1.0


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_out_of_range_density(density: object) -> None:
    with pytest.raises(InputError, match="must be a number in"):
        S.degrees_for(8, 8, density)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- plans


def test_plan_paper_configuration() -> None:
    net = PaperMLP()
    plan = S.plan_sparsity(net, 0.05, seed=0, exclude=["fc3"], overrides={"fc2": 0.225})
    assert plan.method == "predefined"
    assert dict(plan.layers) == {"fc1": 0.05, "fc2": 0.225}
    masks = S.apply_sparsity(net, plan)
    assert set(masks) == {"fc1", "fc2"}
    stats = S.layer_stats(net)
    assert (stats["fc1"].d_in, stats["fc1"].d_out, stats["fc1"].nonzero) == (40, 2, 1600)
    assert (stats["fc2"].d_in, stats["fc2"].d_out, stats["fc2"].nonzero) == (9, 9, 360)
    assert (stats["fc3"].d_in, stats["fc3"].nonzero, stats["fc3"].density) == (None, 400, 1.0)
    assert sum(s.total for s in stats.values()) == 34000
    assert sum(s.nonzero for s in stats.values()) == 2360
    assert S.realised_density(net) == pytest.approx(2360 / 34000)


def test_plan_dense_and_default_policy() -> None:
    net = PaperMLP()
    dense = S.plan_sparsity(net, 1.0, seed=0)
    assert dense.method == "dense" and dense.layers == {}
    assert S.apply_sparsity(net, dense) == {}
    # 0.25 is exact for all three layers; fc3 is excluded by the caller.
    plan = S.plan_sparsity(net, 0.25, seed=0, exclude=["fc3"])
    assert dict(plan.layers) == {"fc1": 0.25, "fc2": 0.25}
    assert plan.to_dict() == json.loads(json.dumps(plan.to_dict()))


def test_plan_skips_excluded_prefixes_and_impossible_layers() -> None:
    net = SmallConvNet()
    plan = S.plan_sparsity(net, 0.5, seed=0, exclude=["head"])
    # stem has one input channel and dw is depthwise: never sparsified; head.* excluded.
    assert list(plan.layers) == ["conv", "grouped", "fc"]
    # 1/3 is impossible for every layer here: all stay dense, or strict raises.
    assert S.plan_sparsity(net, 1 / 3, seed=0).method == "dense"
    with pytest.raises(InputError, match="layer 'conv'"):
        S.plan_sparsity(net, 1 / 3, seed=0, strict=True)
    # 0.125 fits conv, grouped, fc and head.0 but not head.2 (16 -> 4: d_out = 0.5), which
    # is then left dense even though nothing excludes it.
    plan = S.plan_sparsity(net, 0.125, seed=0)
    assert "head.2" not in plan.layers and "head.0" in plan.layers
    # a name excludes only itself and what lies under "name.", not names sharing a prefix
    two = nn.Sequential()
    two.add_module("head", nn.Linear(8, 8))
    two.add_module("header", nn.Linear(8, 8))
    assert list(S.plan_sparsity(two, 0.5, seed=0, exclude=["head"]).layers) == ["header"]


def test_plan_overrides_and_bad_names() -> None:
    net = PaperMLP()
    plan = S.plan_sparsity(net, 1.0, seed=0, overrides={"fc3": 0.5, "fc2": 1.0})
    assert dict(plan.layers) == {"fc3": 0.5}
    with pytest.raises(InputError, match="overrides: fc2: 0.31"):
        S.plan_sparsity(net, 0.5, seed=0, overrides={"fc2": 0.31})
    with pytest.raises(InputError, match="overrides: nope"):
        S.plan_sparsity(net, 0.5, seed=0, overrides={"nope": 0.5})
    with pytest.raises(InputError, match="exclude: fc9"):
        S.plan_sparsity(net, 0.5, seed=0, exclude=["fc9"])
    with pytest.raises(InputError, match="density"):
        S.plan_sparsity(net, 0.0, seed=0)


def test_conv_masks_at_channel_granularity() -> None:
    torch.manual_seed(0)
    net = SmallConvNet()
    dw_before = net.dw.weight.detach().clone()
    stem_before = net.stem.weight.detach().clone()
    plan = S.plan_sparsity(net, 0.25, seed=11, exclude=["head"])
    assert "dw" not in plan.layers and "stem" not in plan.layers
    masks = S.apply_sparsity(net, plan)
    conv_mask = masks["conv"]
    assert conv_mask.shape == net.conv.weight.shape
    expected = S.predefined_mask(16, 8, 0.25, seed=S.layer_seed(11, "conv"))
    assert torch.equal(conv_mask, expected[:, :, None, None].expand(16, 8, 3, 3))
    channel = conv_mask[:, :, 0, 0]
    assert torch.all(channel.sum(1) == 2) and torch.all(channel.sum(0) == 4)
    assert torch.equal(net.conv.weight != 0, conv_mask)
    # grouped conv: one regular block per group, each 16 out x 8 in per group
    g = masks["grouped"][:, :, 0, 0]
    assert g.shape == (32, 8)
    for block in (g[:16], g[16:]):
        assert torch.all(block.sum(1) == 2) and torch.all(block.sum(0) == 4)
    stats = S.layer_stats(net)
    assert (stats["grouped"].d_in, stats["grouped"].d_out) == (2, 4)
    assert stats["dw"].kind == "depthwise_conv" and stats["dw"].d_in is None
    assert stats["conv"].kind == "conv" and stats["conv"].density == pytest.approx(0.25)
    assert torch.equal(net.dw.weight, dw_before) and torch.equal(net.stem.weight, stem_before)
    assert not hasattr(net.dw, S.MASK_BUFFER)


def test_apply_registers_persistent_buffers_and_sparse_he_init() -> None:
    net = paper_model()
    keys = net.state_dict().keys()
    assert "fc1.weight_mask" in keys and "fc1.weight_mask_seed" in keys
    assert "fc3.weight_mask" not in keys
    kept = net.fc1.weight[net.fc1.weight_mask]
    assert kept.numel() == 1600
    assert kept.std().item() == pytest.approx((2 / 40) ** 0.5, rel=0.1)  # fan-in d_in = 40
    assert torch.all(net.fc1.weight[~net.fc1.weight_mask] == 0)
    again = paper_model()
    assert torch.equal(again.fc1.weight, net.fc1.weight)  # depends only on the plan


@pytest.mark.parametrize("optimiser", ["adam", "adamw"])
def test_masked_weights_stay_zero_through_training(optimiser: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )
    plan = S.plan_sparsity(net, 0.25, seed=3, exclude=["4"])
    masks = S.apply_sparsity(net, plan)
    before = {n: net.get_submodule(n).weight.detach().clone() for n in masks}
    if optimiser == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    x, y = torch.randn(64, 16), torch.randint(0, 4, (64,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        S.mask_gradients(net)
        assert torch.all(net[0].weight.grad[~masks["0"]] == 0)
        opt.step()
        S.enforce_masks(net)
    for name, mask in masks.items():
        weight = net.get_submodule(name).weight
        assert torch.all(weight[~mask] == 0)
        assert not torch.equal(weight[mask], before[name][mask])  # kept weights did train
    assert S.layer_stats(net)["0"].nonzero == 16 * 32 // 4


# --------------------------------------------------------------------------- storage


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


def _trained_convnet() -> SmallConvNet:
    torch.manual_seed(1)
    net = SmallConvNet()
    S.apply_sparsity(net, S.plan_sparsity(net, 0.25, seed=5, exclude=["head.2"]))
    net(torch.randn(4, 1, 6, 6))  # moves BN running stats and num_batches_tracked
    return net


@pytest.mark.parametrize("form", ["indices", "seed"])
@pytest.mark.parametrize("make", [paper_model, _trained_convnet])
def test_pack_round_trip_bit_exact(form: str, make: object) -> None:
    net = make()  # type: ignore[operator]
    data = S.pack_state(net, form=form)
    assert S.stored_bytes(net, form=form) == len(data)
    assert data[:8] == S.PACK_MAGIC
    torch.manual_seed(123)
    fresh = type(net)()  # same architecture, different init, no masks yet
    S.unpack_state(data, fresh)
    _assert_same_state(net, fresh)
    x = torch.randn(3, 800) if isinstance(net, PaperMLP) else torch.randn(3, 1, 6, 6)
    net.eval()
    fresh.eval()
    assert torch.equal(net(x), fresh(x))
    # restoring into an already sparsified model with other masks replaces them
    other = type(net)()
    S.apply_sparsity(other, S.plan_sparsity(other, 0.5, seed=77))
    S.unpack_state(data, other)
    _assert_same_state(net, other)


# sha256 and length of the packed bytes, as the format wrote them before it moved into
# dse.costmodel.packing: a file exported then must read the same, and bytes written now match.
PACKED = {
    ("paper_model", "indices"): (
        14095,
        "0bb8e174855895d28a86e580b263b309b4c460c88de892ec52d2ddb5d245e324",
    ),
    ("paper_model", "seed"): (
        10498,
        "a878f04f08fcdce5a1deedaa161a74997efdeb339a48cb9307535b438235cef5",
    ),
    ("_trained_convnet", "indices"): (
        9378,
        "0eb4dc4762574c252d95539b6735895dd83f48d09208ad4629ca9f219fb8184b",
    ),
    ("_trained_convnet", "seed"): (
        8447,
        "f5fa6c1e702e517d343656b1f1764ebc45019119777f34122cdaa64d00efcbb6",
    ),
}


@pytest.mark.parametrize("form", ["indices", "seed"])
@pytest.mark.parametrize("make", [paper_model, _trained_convnet])
def test_packed_bytes_are_pinned(form: str, make: object) -> None:
    data = S.pack_state(make(), form=form)  # type: ignore[operator]
    size, digest = PACKED[(make.__name__, form)]  # type: ignore[attr-defined]
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == digest


def test_unpack_removes_masks_packed_as_dense() -> None:
    dense = PaperMLP()
    data = S.pack_state(dense)
    target = paper_model()
    S.unpack_state(data, target)
    _assert_same_state(dense, target)
    assert S.MASK_BUFFER not in target.fc1._buffers


def test_storage_ordering_at_one_eighth() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128))
    S.apply_sparsity(net, S.plan_sparsity(net, 1 / 8, seed=0))
    seed_b = S.stored_bytes(net, form="seed")
    idx_b = S.stored_bytes(net, form="indices")
    dense_b = S.dense_bytes(net)
    assert seed_b < idx_b < dense_b
    assert dense_b == (256 * 256 + 256 + 256 * 128 + 128) * 4
    values = (256 * 256 + 256 * 128) // 8 * 4
    biases = (256 + 128) * 4
    indices = (256 * 256 + 256 * 128) // 8 * 1  # n_in = 256 fits uint8
    assert values + biases < seed_b < values + biases + 1024  # header + TOC overhead only
    assert idx_b - seed_b == pytest.approx(indices, abs=64)


def test_index_width_follows_input_width() -> None:
    net = nn.Sequential(nn.Linear(300, 8), nn.Linear(256, 8))  # 300 > 256: uint16
    S.apply_sparsity(net, S.plan_sparsity(net, 0.5, seed=0))
    data = S.pack_state(net)
    toc_len = struct.unpack_from("<I", data, 12)[0]
    toc = json.loads(data[20 : 20 + toc_len])
    widths = {e["name"]: e.get("index_dtype") for e in toc["entries"]}
    assert widths == {"0.weight": "uint16", "0.bias": None, "1.weight": "uint8", "1.bias": None}
    assert S.stored_bytes(net) == len(data)


def _rewrite_toc(data: bytes, edit: object) -> bytes:
    """Apply ``edit`` to the decoded TOC and re-seal the header (a well-formed but wrong file)."""
    toc_len = struct.unpack_from("<I", data, 12)[0]
    toc = json.loads(data[20 : 20 + toc_len])
    edit(toc)  # type: ignore[operator]
    new_toc = json.dumps(toc, separators=(",", ":"), sort_keys=True).encode()
    body = new_toc + data[20 + toc_len :]
    return (
        struct.pack("<8sIII", S.PACK_MAGIC, S.PACK_VERSION, len(new_toc), zlib.crc32(body)) + body
    )


@pytest.mark.parametrize("form", ["indices", "seed"])
def test_corrupt_packed_state_raises_input_error(form: str) -> None:
    net = paper_model()
    data = S.pack_state(net, form=form)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    bad_version = data[:8] + struct.pack("<I", 99) + data[12:]
    cases = {
        "truncated header": data[:10],
        "truncated payload": data[:-7],
        "flipped byte": bytes(flipped),
        "bad magic": b"NOTDSE!!" + data[8:],
        "bad version": bad_version,
        "trailing bytes": data + b"\x00",
        "empty": b"",
    }
    for label, blob in cases.items():
        target = PaperMLP()
        before = {k: v.clone() for k, v in target.state_dict().items()}
        with pytest.raises(InputError) as info:
            S.unpack_state(blob, target)
        assert str(info.value).startswith("<packed state>: "), label
        after = target.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), label  # untouched


def test_wrong_architecture_or_tampered_toc_raises() -> None:
    data = S.pack_state(paper_model())
    with pytest.raises(InputError, match="entries"):
        S.unpack_state(data, nn.Sequential())  # no matching entries at all
    other = PaperMLP()
    other.fc2 = nn.Linear(40, 41)
    with pytest.raises(InputError, match="<packed state>"):
        S.unpack_state(data, other)

    def bad_d_in(toc: dict) -> None:
        toc["entries"][[e["name"] for e in toc["entries"]].index("fc1.weight")]["d_in"] = 41

    with pytest.raises(InputError, match="d_in"):
        S.unpack_state(_rewrite_toc(data, bad_d_in), PaperMLP())

    seed_data = S.pack_state(paper_model(), form="seed")

    def bad_crc(toc: dict) -> None:
        for e in toc["entries"]:
            if e["kind"] == "sparse":
                e["pattern_crc32"] ^= 1

    with pytest.raises(InputError, match="pattern_crc32"):
        S.unpack_state(_rewrite_toc(seed_data, bad_crc), PaperMLP())


def test_pack_refuses_unmasked_nonzeros_and_bad_form() -> None:
    net = paper_model()
    with torch.no_grad():
        net.fc1.weight[~net.fc1.weight_mask] = 1.0
    with pytest.raises(ValueError, match="enforce_masks"):
        S.pack_state(net)
    S.enforce_masks(net)
    assert S.stored_bytes(net) == len(S.pack_state(net))
    with pytest.raises(InputError, match="form"):
        S.pack_state(net, form="zip")


def test_paper_model_storage_figures() -> None:
    net = paper_model()
    dense = S.dense_bytes(net)
    assert dense == (34000 + 40 + 40 + 10) * 4
    idx = S.stored_bytes(net, form="indices")
    seed = S.stored_bytes(net, form="seed")
    # values 1600 + 360 (+400 dense fc3) float32, biases dense; indices: 1600 uint16 + 360 uint8
    payload_seed = (1600 + 360 + 400 + 90) * 4
    payload_idx = payload_seed + 1600 * 2 + 360
    assert payload_seed < seed < payload_seed + 1024
    assert idx - seed == pytest.approx(payload_idx - payload_seed, abs=64)
    assert dense / idx > 4


def test_auto_init_keeps_conv_weights_and_redraws_linear_ones_for_the_sparse_fan_in() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(64, 32))
    conv_before = model[0].weight.detach().clone()
    plan = S.plan_sparsity(model, 0.25, seed=3)
    assert set(plan.layers) == {"0", "3"}
    masks = S.apply_sparsity(model, plan)
    conv, lin = model[0].weight.detach(), model[3].weight.detach()
    # the conv (followed by batch norm) keeps its own init where the mask keeps a weight
    assert torch.equal(conv[masks["0"]], conv_before[masks["0"]])
    assert (conv[~masks["0"]] == 0).all()
    # the linear layer is redrawn He-normal for its sparse fan-in d_in = 16: std ~ sqrt(2/16)
    kept = lin[masks["3"]]
    assert kept.abs().max() <= 2 * math.sqrt(2.0 / 16) / 0.87962566103423978 + 1e-6
    assert 0.25 < float(kept.std()) < 0.45  # dense default would be ~ 1/sqrt(3*64) = 0.07
    # and "he" redraws the conv too: fan-in d_in * 9 = 2 * 9
    torch.manual_seed(0)
    again = nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(64, 32))
    masks = S.apply_sparsity(again, S.plan_sparsity(again, 0.25, seed=3), init="he")
    assert not torch.equal(again[0].weight.detach()[masks["0"]], conv_before[masks["0"]])
    with pytest.raises(InputError, match="init"):
        S.apply_sparsity(again, plan, init="xavier")


# --------------------------------------------------------------------------- N:M


def test_nm_mask_keeps_n_of_every_m_and_is_regular() -> None:
    import torch as T

    from dse.costmodel.packing import degrees_of, mask_pattern
    from dse.nets.sparsity import nm_mask, nm_of

    assert nm_of(0.5) == (2, 4) and nm_of(0.25) == (1, 4) and nm_of(0.125) == (1, 8)
    assert nm_of(0.3) is None and nm_of(1.0) is None
    g = T.Generator().manual_seed(3)
    mask = nm_mask(12, 16, 2, 4, g)
    runs = mask.reshape(12, 4, 4).sum(-1)
    assert bool((runs == 2).all())  # 2 of every 4 consecutive inputs, every row
    assert mask.sum(0).tolist() == [6] * 16  # every input kept by as many rows
    assert degrees_of(mask, 1) == (8, 6)
    assert mask_pattern(mask) == "2:4"
    # a random regular (predefined) pattern at the same density is not 2:4
    from dse.nets.sparsity import predefined_mask

    assert mask_pattern(predefined_mask(12, 16, 0.5, seed=3)) == "predefined"


def test_nm_method_trains_2_4_layers_that_pack_and_regenerate() -> None:
    import torch as T

    from dse.costmodel.graph import build_graph
    from dse.nets.sparsity import apply_sparsity, pack_state, plan_sparsity, unpack_state

    def net() -> nn.Module:
        T.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16, 4),
        )

    model = net()
    plan = plan_sparsity(model, 0.5, seed=1, method="nm")
    # the 3-channel input conv cannot take 2:4 and stays dense
    assert plan.method == "nm" and set(plan.layers) == {"2", "5"}
    apply_sparsity(model, plan)
    g = build_graph(model, T.zeros(1, 3, 5, 5))
    assert [n.pattern for n in g.backbone_nodes() if n.params] == ["dense", "2:4", "2:4"]
    for form in ("indices", "seed"):
        other = net()
        unpack_state(pack_state(model, form=form), other)
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
            assert T.equal(a, b)
    with pytest.raises(InputError, match="no N:M density"):
        plan_sparsity(net(), 0.3, seed=1, method="nm")
