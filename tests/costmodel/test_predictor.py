"""Runtimes and fusion, kernel predictors in profiles, and the measurement CSV."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from dse.cli import main
from dse.costmodel.calibrate import fit_kernel_predictor, predictor_profile_files
from dse.costmodel.costs import cost_table, layer_latency
from dse.costmodel.devices import RUNTIMES, DeviceProfile, list_devices, load_device
from dse.costmodel.graph import build_graph
from dse.costmodel.measure import CSV_COLUMNS, KernelSpec, sample_kernels
from dse.costmodel.predictor import KernelPredictor, fit_predictor, term_values
from dse.errors import InputError

SHIPPED = Path(__file__).resolve().parents[2] / "profiles" / "devices"


def conv_bn_relu():  # type: ignore[no-untyped-def]
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()).eval()
    x = torch.zeros(1, 3, 8, 8)
    return build_graph(net, x, name="cbr")


def fast(make_device: Callable[..., DeviceProfile], **kw: object) -> DeviceProfile:
    """Compute and memory so fast that a layer costs its overhead (100 us) alone."""
    return make_device(peak_flops={"fp32": 1e18}, mem_bandwidth_Bps=1e18, **kw)


# ---- runtime and fusion --------------------------------------------------------------


def test_eager_costs_three_kernels_and_a_fusing_runtime_one(make_device) -> None:  # type: ignore[no-untyped-def]
    g = conv_bn_relu()
    assert [g.nodes[n].fused for n in g.backbone] == [False, True, True]
    for runtime, kernels in (
        ("eager", 3),
        ("torch-export", 3),
        ("fused", 1),
        ("executorch-xnnpack", 1),
        ("tensorrt", 1),
    ):
        d = fast(make_device, runtime=runtime)
        total = sum(layer_latency(g.nodes[n], d) for n in g.backbone)
        assert total == pytest.approx(kernels * 1e-4, rel=1e-6), runtime


@pytest.mark.parametrize("name", list_devices())
def test_shipped_profiles_keep_fused_semantics(name: str) -> None:
    assert load_device(name).runtime == "fused"


def _with_runtime(tmp_path: Path, runtime: str) -> Path:
    text = (SHIPPED / "raspberry-pi-4.toml").read_text()
    path = tmp_path / "dev.toml"
    path.write_text(text.replace("[compute]\n", f'[compute]\nruntime = "{runtime}"\n', 1))
    return path


def test_a_profile_names_its_runtime(tmp_path: Path) -> None:
    assert load_device(_with_runtime(tmp_path, "eager")).runtime == "eager"


def test_unknown_runtime_is_one_line_naming_file_field_and_fix(tmp_path: Path) -> None:
    path = _with_runtime(tmp_path, "onnx")
    with pytest.raises(InputError) as err:
        load_device(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "compute.runtime" in text
    assert all(r in text for r in RUNTIMES)


def test_masked_weights_run_dense_without_expansion_in_eager(make_device) -> None:  # type: ignore[no-untyped-def]
    from dse.costmodel.costs import execution

    g = conv_bn_relu()
    conv = g.nodes[g.backbone[0]]
    sparse = type(conv)(**{**conv.__dict__, "density": 0.5, "pattern": "unstructured"})
    assert execution(sparse, make_device(), expand=True).kernel == "expand"
    assert execution(sparse, make_device(runtime="eager"), expand=True).kernel == "dense"


# ---- predictors ----------------------------------------------------------------------


def _law(node) -> float:  # type: ignore[no-untyped-def]
    """A known latency law: 3 us + FLOPs at 20 GFLOP/s + bytes at 4 GB/s."""
    v = term_values(node)
    return 3e-6 + v[1] / 2e10 + v[2] / 4e9


@pytest.fixture(scope="module")
def kernel_nodes():  # type: ignore[no-untyped-def]
    nodes = []  # enough samples that every kind the zoo has gets a model of its own
    for spec in sample_kernels(200, seed=1):
        module, x = spec.build()
        g = build_graph(module, x, name=spec.label)
        nodes += [g.nodes[n] for n in g.backbone]
    return nodes


def test_terms_predictor_recovers_a_known_law(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    times = [_law(n) for n in kernel_nodes]
    p = fit_predictor(kernel_nodes, times, method="terms", runtime="eager")
    assert {"conv", "linear", "norm"} <= set(p.models)
    for n, t in zip(kernel_nodes, times, strict=True):
        if p.time_of(n) is not None:
            assert p.time_of(n) == pytest.approx(t, rel=0.02)
    # a configuration it never saw (a wider conv than any sampled)
    module, x = KernelSpec("conv", 512, 768, 16, 3, 1).build()
    g = build_graph(module, x, name="big")
    big = g.nodes[g.backbone[0]]
    assert p.time_of(big) == pytest.approx(_law(big), rel=0.02)


def test_trees_predictor_fits_the_law_inside_its_range(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    times = [_law(n) for n in kernel_nodes]
    p = fit_predictor(kernel_nodes, times, method="trees", runtime="eager", seed=0)
    errs = [
        abs(p.time_of(n) / t - 1)
        for n, t in zip(kernel_nodes, times, strict=True)
        if p.time_of(n) is not None
    ]
    assert errs and sorted(errs)[len(errs) // 2] < 0.15  # median error on what it saw


@pytest.mark.parametrize("method", ["terms", "trees", "hybrid"])
def test_predictor_round_trips_through_the_profile_file_and_is_used(
    kernel_nodes, method: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    times = [_law(n) for n in kernel_nodes]
    p = fit_predictor(kernel_nodes, times, method=method, runtime="torch-export", call_s=2.5e-6)
    base = load_device("raspberry-pi-4")
    out = tmp_path / "here.toml"
    text, sidecar = predictor_profile_files(base, p, name="here", out=out, how="a test")
    (tmp_path / "here.predictor.json").write_bytes(sidecar)
    out.write_text(text)
    d = load_device(out)
    assert d.runtime == "torch-export" and d.predictor is not None
    assert d.predictor.method == method and d.predictor.call_s == 2.5e-6
    assert not d.sparse_efficiency
    assert d.predictor.models.keys() == p.models.keys() and p.models  # read back, all kinds
    g = conv_bn_relu()
    for name in g.backbone:  # every node is its own kernel, priced by the predictor
        node = g.nodes[name]
        assert layer_latency(node, d) == pytest.approx(p.time_of(node), rel=1e-9)
        assert layer_latency(node, d) != pytest.approx(layer_latency(node, base))
    table = cost_table(g, d, load_device("a100"), _link())
    first = p.time_of(g.nodes[g.backbone[0]])
    assert table.edge_s[0] == 0.0
    assert table.edge_s[1] == pytest.approx(2.5e-6 + first, rel=1e-9)  # the call floor once
    # a changed sidecar is refused, even with the profile itself untouched
    (tmp_path / "here.predictor.json").write_bytes(sidecar.replace(b'"call_s"', b'"call_s" '))
    with pytest.raises(InputError, match="predictor.sha256"):
        load_device(out)


def _link():  # type: ignore[no-untyped-def]
    from dse.costmodel.devices import load_link

    return load_link("lte")


def test_without_a_predictor_nothing_changes(make_device) -> None:  # type: ignore[no-untyped-def]
    g = conv_bn_relu()
    d = make_device()
    assert d.predictor is None and d.runtime == "fused"
    conv = g.nodes[g.backbone[0]]
    compute = conv.flops / (1e9 * 0.5)
    moved = (conv.weight_bytes + conv.input_bytes + conv.output_bytes) / 1e8
    assert layer_latency(conv, d) == pytest.approx(max(compute, moved) + 1e-4)


def test_held_out_choice_prefers_the_method_that_predicts_better(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    from dse.costmodel.calibrate import LayerTimes

    g = conv_bn_relu()
    nodes = tuple(g.nodes[n] for n in g.backbone)
    nets = [LayerTimes(f"n{i}", nodes, tuple(_law(n) for n in nodes)) for i in range(2)]
    fitted = fit_kernel_predictor(
        kernel_nodes, [_law(n) for n in kernel_nodes], nets, runtime="eager", call_s=0.0
    )
    assert set(fitted.scores) == {"terms", "trees", "hybrid"}
    assert fitted.chosen == "terms"  # the law is linear in the terms: they recover it
    assert fitted.scores["terms"]["within_10"] == 1.0
    assert isinstance(fitted.predictor, KernelPredictor)


# ---- programs, hybrids, old sidecars -------------------------------------------------


def _alone(node) -> float:  # type: ignore[no-untyped-def]
    """A kernel alone in a program: the law, plus 10 us and 0.2 ns per input element (its
    dispatch path and its input are cold there)."""
    return _law(node) + 1e-5 + 2e-10 * node.input_bytes / 4


def _prefixes(name: str, call_s: float):  # type: ignore[no-untyped-def]
    """Every cut of a zoo network as a program: its nodes and call_s + the law's sum."""
    from dse.costmodel.predictor import ProgramTime, model_key
    from dse.nets import default_input, load_model

    g = build_graph(load_model(name), torch.zeros((1, *default_input(name))), name=name)
    nodes = tuple(g.nodes[n] for n in g.backbone)
    law = [_law(n) if model_key(n) is not None else 0.0 for n in nodes]  # identities vanish
    return [ProgramTime(nodes[:k], call_s + sum(law[:k])) for k in range(1, len(nodes) + 1)]


def test_programs_fit_what_programs_take_not_what_their_layers_take_alone(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    from dse.costmodel.predictor import TERMS_V1, model_key

    alone = [_alone(n) for n in kernel_nodes]
    programs = _prefixes("vgg-s", 4e-6) + _prefixes("mobilenet-s", 4e-6)
    unseen = _prefixes("resnet-s", 4e-6)
    with_programs = fit_predictor(
        kernel_nodes, alone, method="terms", runtime="eager", programs=programs, terms=TERMS_V1
    )
    # every layer of the programs is priced by a model (an unmodelled one's time would
    # have nowhere to go but the intercept); identities vanish from programs
    layers = [n for p in programs for n in p.nodes if model_key(n) is not None]
    assert all(with_programs.model_of(n) is not None for n in layers)
    assert with_programs.call_s == pytest.approx(4e-6, rel=0.05)
    errors = [abs(with_programs.program_s(p.nodes) / p.seconds - 1) for p in unseen]
    assert max(errors) < 0.02
    # fitted to kernels alone, the sums pay every kernel's cold start: far off
    alone_only = fit_predictor(
        kernel_nodes, alone, method="terms", runtime="eager", call_s=4e-6, terms=TERMS_V1
    )
    errors = [abs(alone_only.program_s(p.nodes) / p.seconds - 1) for p in unseen]
    assert sorted(errors)[len(errors) // 2] > 0.10


def test_hybrid_trees_learn_an_efficiency_the_terms_cannot_express() -> None:  # type: ignore[no-untyped-def]
    """1x1 convolutions three times as fast per FLOP as 3x3 ones, as many of each: no term
    says a kernel's size, the hybrid's trees read it (log_kernel). The convolutions are
    those of one dispatch path, so the split by kernel maker (model_key) does not say it
    either."""
    from dse.costmodel.predictor import _kernel_area, model_key

    convs = []
    for k, c, size in itertools.product(
        (1, 3), (8, 12, 16, 20, 24, 32, 40, 48, 64), (6, 8, 12, 16)
    ):
        g = build_graph(*KernelSpec("conv", c, c, size, k, 1).build(), name="c")
        convs += [g.nodes[n] for n in g.backbone if model_key(g.nodes[n]) == "conv.native"]
    assert sum(_kernel_area(n) <= 1 for n in convs) == sum(_kernel_area(n) > 1 for n in convs) == 36

    def law(n) -> float:  # type: ignore[no-untyped-def]
        return 3e-6 + n.flops / (6e10 if _kernel_area(n) <= 1 else 2e10)

    times = [law(n) for n in convs]

    def median_error(method: str) -> float:
        p = fit_predictor(convs, times, method=method, runtime="eager", seed=0)
        errs = sorted(abs(p.time_of(n) / t - 1) for n, t in zip(convs, times, strict=True))
        return errs[len(errs) // 2]

    terms, hybrid = median_error("terms"), median_error("hybrid")
    assert terms > 0.20  # one line per FLOP cannot be both speeds
    assert hybrid < 0.10 and hybrid < terms / 4


def _v1_sidecar() -> dict:  # type: ignore[type-arg]
    """A predictor file as the first format wrote it: a terms model and a trees model."""
    from dse.costmodel.predictor import FEATURES_V1, TERMS_V1

    return {
        "format": "dse-kernel-predictor",
        "version": 1,
        "method": "terms",
        "runtime": "torch-export",
        "call_s": 2e-6,
        "meta": {"kernels": 10},
        "kinds": {
            "conv": {
                "method": "terms",
                "samples": 9,
                "terms": list(TERMS_V1),
                "coef": [1e-6, 1e-10, 0.0, 0.0, 0.0],
            },
            "norm": {
                "method": "trees",
                "samples": 7,
                "features": list(FEATURES_V1),
                "trees": [
                    {
                        "left": [1, -1, -1],
                        "right": [2, -1, -1],
                        "feature": [3, -2, -2],
                        "threshold": [5.0, -2.0, -2.0],
                        "value": [0.0, -12.0, -11.0],
                    }
                ],
            },
        },
    }


def _write_profile(tmp_path: Path, sidecar: bytes) -> Path:
    import hashlib

    text = (SHIPPED / "raspberry-pi-4.toml").read_text()
    text = text.replace("[compute]\n", '[compute]\nruntime = "torch-export"\n', 1)
    digest = hashlib.sha256(sidecar).hexdigest()
    text += f'\n[predictor]\nfile = "old.predictor.json"\nsha256 = "{digest}"\n'
    (tmp_path / "old.predictor.json").write_bytes(sidecar)
    path = tmp_path / "old.toml"
    path.write_text(text)
    return path


def test_a_predictor_file_of_the_first_format_still_loads(tmp_path: Path) -> None:
    import json
    import math

    d = load_device(_write_profile(tmp_path, json.dumps(_v1_sidecar()).encode()))
    p = d.predictor
    assert p is not None and p.call_s == 2e-6 and set(p.models) == {"conv", "norm"}
    g = conv_bn_relu()
    conv, norm = (g.nodes[n] for n in g.backbone[:2])
    assert p.time_of(conv) == pytest.approx(1e-6 + 1e-10 * conv.flops)
    # norm's output: 8 x 8 x 8 = 512 elements, log1p(512) > 5: the right leaf
    assert math.log1p(512) > 5 and p.time_of(norm) == pytest.approx(math.exp(-11.0))


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda d: d.update(version=4), "version: 4, this dse reads 1, 2, 3"),
        (
            lambda d: d["kinds"]["conv"]["terms"].__setitem__(1, "flops_x"),
            "kinds.conv.terms: unknown 'flops_x'",
        ),
        (lambda d: d["kinds"]["conv"]["coef"].pop(), "kinds.conv.coef: expected 5 numbers"),
        (lambda d: d.update(threads=0), "threads: 0 is not a count >= 1"),
        (
            lambda d: d["kinds"]["norm"]["trees"][0].__setitem__("left", [7, -1, -1]),
            "kinds.norm.trees: a child index outside the tree",
        ),
        (
            lambda d: d["kinds"]["norm"].__setitem__("method", "forest"),
            "kinds.norm.method: 'forest' is not one of",
        ),
    ],
)
def test_a_broken_or_newer_predictor_file_is_refused_in_one_line(
    tmp_path: Path,
    edit: Callable[[dict], None],
    expect: str,  # type: ignore[type-arg]
) -> None:
    import json

    data = _v1_sidecar()
    edit(data)
    path = _write_profile(tmp_path, json.dumps(data).encode())
    with pytest.raises(InputError) as err:
        load_device(path)
    text = str(err.value)
    assert "\n" not in text and "predictor.file" in text and expect in text, text


# ---- the runtime's convolution dispatch ---------------------------------------------


def _conv_node(c: int, size: int, k: int, stride: int, batch: int = 1):  # type: ignore[no-untyped-def]
    net = nn.Sequential(nn.Conv2d(c, c, k, stride, padding=k // 2)).eval()
    x = torch.zeros(batch, c, size, size)
    g = build_graph(net, x, name="conv")
    return net, x, g.nodes[g.backbone[0]]


@pytest.mark.parametrize(
    "c, size, k, stride, batch, threads",
    [
        (20, 32, 3, 1, 1, 1),  # 20480 input elements: native
        (20, 36, 3, 1, 1, 1),  # more: oneDNN
        (21, 32, 3, 1, 1, 1),
        (16, 8, 5, 1, 1, 1),  # a 5x5 kernel: oneDNN at any size
        (4, 8, 3, 1, 2, 1),  # two images: oneDNN
        (64, 48, 1, 1, 1, 1),  # 1x1 stride 1 on one thread: native at any size
        (64, 48, 1, 1, 1, 2),  # ... on two threads: by size, oneDNN
        (19, 48, 1, 2, 1, 1),  # 1x1 stride 2: by size
        (16, 16, 1, 2, 1, 1),
    ],
)
def test_conv_path_names_the_kernel_pytorch_runs(
    c: int, size: int, k: int, stride: int, batch: int, threads: int
) -> None:
    """conv_path against the op the installed PyTorch dispatches to (its profiler)."""
    from torch.profiler import profile

    from dse.costmodel.measure import pinned_threads
    from dse.costmodel.predictor import conv_path, model_key

    net, x, node = _conv_node(c, size, k, stride, batch)
    with pinned_threads(threads), torch.inference_mode(), profile() as prof:
        net(x)
    ran = {e.name for e in prof.events()}
    expect = "onednn" if "aten::mkldnn_convolution" in ran else "native"
    assert expect == "onednn" or "aten::_slow_conv2d_forward" in ran
    assert conv_path(node, threads) == expect
    assert model_key(node, threads) == ("conv" if expect == "onednn" else "conv.native")


def test_convolutions_on_two_kernels_are_priced_apart(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    """A device where PyTorch's native convolution runs at two thirds of oneDNN's speed
    per FLOP: one model per kernel recovers both; one model for both could not."""
    from dse.costmodel.predictor import conv_path

    def law(n) -> float:  # type: ignore[no-untyped-def]
        slow = n.kind == "conv" and conv_path(n) == "native"
        return _law(n) * (1.5 if slow else 1.0)

    times = [law(n) for n in kernel_nodes]
    p = fit_predictor(kernel_nodes, times, method="terms", runtime="eager")
    assert {"conv", "conv.native"} <= set(p.models)
    convs = [n for n in kernel_nodes if n.kind == "conv"]
    assert {conv_path(n) for n in convs} == {"native", "onednn"}
    for n in convs:
        assert p.time_of(n) == pytest.approx(law(n), rel=0.02)
    # a network's convolutions of both kinds, none of them sampled
    for c, size in ((20, 32), (20, 36), (24, 40)):
        node = _conv_node(c, size, 3, 1)[2]
        assert p.time_of(node) == pytest.approx(law(node), rel=0.02)


def test_a_kernel_without_a_model_of_its_own_is_priced_by_its_kind(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    """Too few native convolutions to fit: they are fitted, and priced, with the oneDNN
    ones (as a predictor of the older formats prices every convolution)."""
    from dse.costmodel.predictor import MIN_SAMPLES, conv_path

    native = [n for n in kernel_nodes if n.kind == "conv" and conv_path(n) == "native"]
    nodes = [n for n in kernel_nodes if n not in native] + native[: MIN_SAMPLES - 1]
    p = fit_predictor(nodes, [_law(n) for n in nodes], method="terms", runtime="eager")
    assert "conv" in p.models and "conv.native" not in p.models
    for n in native:
        assert p.time_of(n) == pytest.approx(_law(n), rel=0.02)


def test_the_threads_a_predictor_was_fitted_at_travel_with_it(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    from dse.costmodel.predictor import KernelPredictor

    times = [_law(n) for n in kernel_nodes]
    p = fit_predictor(kernel_nodes, times, method="terms", runtime="eager", threads=2)
    back = KernelPredictor.from_json(p.to_json())
    assert back.threads == 2 and p.threads == 2
    # a 1x1 stride-1 convolution of 64 x 48 x 48 inputs runs on oneDNN at two threads
    node = _conv_node(64, 48, 1, 1)[2]
    assert back.model_of(node) is back.models["conv"]
    one = KernelPredictor.from_json({**p.to_json(), "threads": 1})
    assert one.model_of(node) is one.models["conv.native"]


def test_sampled_kernels_reach_small_linears_depthwise_layers_stems_and_odd_widths() -> None:
    specs = sample_kernels(600, seed=0)
    kinds = {s.kind for s in specs}
    assert kinds == {
        "conv",
        "depthwise_conv",
        "linear",
        "norm",
        "activation",
        "add",
        "maxpool",
        "avgpool",
        "reshape",
    }
    # a classifier's linears: 10 outputs from 64 inputs or fewer (the zoo's smallest)
    assert any(s.kind == "linear" and s.c_out == 10 and s.c_in <= 64 for s in specs)
    # depthwise convolutions at the resolution of a stem's output
    assert sum(s.kind == "depthwise_conv" and s.size >= 32 for s in specs) >= 10
    # stems: 3 channels in at 16 pixels or more
    assert sum(s.kind == "conv" and s.c_in == 3 and s.size >= 16 for s in specs) >= 10
    # widths that fill no whole vector of 8 lanes
    convs = [s for s in specs if s.kind == "conv" and s.c_in > 3]
    assert sum(s.c_in % 8 != 0 for s in convs) >= len(convs) // 4
    # pooling windows that do not overlap: a node's sizes say their work
    assert all(s.kernel == s.stride for s in specs if s.kind == "maxpool")
    assert specs == sample_kernels(600, seed=0)


def test_sampled_convolutions_reach_every_width_on_both_kernels() -> None:
    # oneDNN pads channels to whole vectors and the native kernel does not: a width off
    # the 16-lane grid costs what its neighbours on the grid do not, on each kernel, so
    # 3x3 convolutions at such widths are sampled on both sides of the dispatch
    from dse.costmodel.predictor import conv_path

    widths: dict[str, list[int]] = {"onednn": [], "native": []}
    for spec in sample_kernels(1000, seed=0):
        if spec.kind == "conv" and (spec.kernel, spec.stride) == (3, 1) and spec.c_in > 3:
            if spec.c_out <= 64 and spec.c_out % 16:
                g = build_graph(*spec.build(), name=spec.label)
                widths[conv_path(g.nodes[g.backbone[0]])].append(spec.c_out)
    for path in widths.values():
        assert len(path) >= 25
        assert len(set(path)) >= 20


def test_held_out_networks_are_judged_on_their_programs(kernel_nodes) -> None:  # type: ignore[no-untyped-def]
    from dse.costmodel.calibrate import LayerTimes

    nets = []
    for name in ("vgg-s", "mobilenet-s", "resnet-s"):
        programs = _prefixes(name, 4e-6)
        nodes = programs[-1].nodes
        nets.append(
            LayerTimes(
                name,
                nodes,
                tuple(_alone(n) for n in nodes),
                tuple((k + 1, p.seconds) for k, p in enumerate(programs)),
            )
        )
    fitted = fit_kernel_predictor(
        kernel_nodes,
        [_alone(n) for n in kernel_nodes],
        nets,
        runtime="eager",
        call_s=0.0,
        methods=("terms",),
    )
    assert list(fitted.table.cuts) == [len(w.programs) for w in nets]
    assert fitted.scores["terms"]["within_10"] == 1.0
    assert fitted.predictor.meta["programs"] == sum(len(w.programs) for w in nets)


# ---- the measurement CSV -------------------------------------------------------------


@pytest.fixture(scope="module")
def measured_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "mlp.csv"
    assert (
        main(
            [
                "profile",
                "mlp",
                "--measure",
                "--repeats",
                "2",
                "--runtime",
                "eager",
                "--csv",
                str(path),
            ]
        )
        == 0
    )
    return path


def test_measure_writes_the_schema_and_calibrate_imports_it(
    measured_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    table = pd.read_csv(measured_csv)
    assert tuple(table.columns) == CSV_COLUMNS
    g = build_graph(
        __import__("dse.nets", fromlist=["load_model"]).load_model("mlp"),
        torch.zeros(1, 1, 8, 8),
        name="mlp",
    )
    assert list(table.node) == [*g.backbone, "(call)"]
    assert (table.runtime == "eager").all() and (table.threads == 1).all()
    assert (table.p10_s >= 0).all() and (table.runs == 2).all()
    out = tmp_path / "fromcsv.toml"
    # the mlp alone has too few layers of any kind to fit a model on: one line, exit 2
    capsys.readouterr()
    assert (
        main(
            [
                "calibrate",
                "--from-csv",
                str(measured_csv),
                "--base",
                "raspberry-pi-4",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "predictor: no kind of layer was timed 4 times" in err and err.count("\n") == 1
    assert not out.exists()
    # with vgg-s's rows beside them there is something to fit
    both = tmp_path / "both.csv"
    vgg = tmp_path / "vgg.csv"
    assert (
        main(
            [
                "profile",
                "vgg-s",
                "--measure",
                "--repeats",
                "2",
                "--runtime",
                "eager",
                "--csv",
                str(vgg),
            ]
        )
        == 0
    )
    pd.concat([table, pd.read_csv(vgg)]).to_csv(both, index=False)
    capsys.readouterr()
    assert (
        main(["calibrate", "--from-csv", str(both), "--base", "raspberry-pi-4", "--out", str(out)])
        == 0
    )
    d = load_device(out)
    assert d.runtime == "eager" and d.predictor is not None and d.predictor.models
    calls = pd.read_csv(both).query("node == '(call)'").p10_s  # one floor row per network
    assert len(calls) == 2 and d.predictor.call_s == pytest.approx(float(calls.median()))
    assert "held-out" in capsys.readouterr().out


def _broken(src: Path, tmp_path: Path, edit: Callable[[list[list[str]]], None]) -> Path:
    rows = [line.split(",") for line in src.read_text().splitlines()]
    edit(rows)
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


def _col(rows: list[list[str]], name: str) -> int:
    return rows[0].index(name)


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing column", ["p10_s", "missing column", "header needs"]),
        ("non-numeric", ["row 3.median_s", "is not a number"]),
        ("negative", ["row 2.p10_s", "negative"]),
        ("unknown node", ["row 2.node", "unknown node 'nope'", "dse profile mlp"]),
        ("unknown runtime", ["row 2.runtime", "unknown runtime 'onnx'", "one of"]),
    ],
)
def test_importer_errors_are_one_line_naming_file_row_and_fix(
    measured_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    expect: list[str],
) -> None:
    def edit(rows: list[list[str]]) -> None:
        if case == "missing column":
            i = _col(rows, "p10_s")
            for r in rows:
                del r[i]
        elif case == "non-numeric":
            rows[2][_col(rows, "median_s")] = "fast"
        elif case == "negative":
            rows[1][_col(rows, "p10_s")] = "-1e-6"
        elif case == "unknown node":
            rows[1][_col(rows, "node")] = "nope"
        else:
            rows[1][_col(rows, "runtime")] = "onnx"

    path = _broken(measured_csv, tmp_path, edit)
    capsys.readouterr()
    code = main(
        [
            "calibrate",
            "--from-csv",
            str(path),
            "--base",
            "raspberry-pi-4",
            "--out",
            str(tmp_path / "x.toml"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(path) in err and all(e in err for e in expect), err
    assert not (tmp_path / "x.toml").exists()
