"""Runtimes and fusion, kernel predictors in profiles, and the measurement CSV."""

from __future__ import annotations

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
    nodes = []
    for spec in sample_kernels(80, seed=1):
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


@pytest.mark.parametrize("method", ["terms", "trees"])
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
    assert set(fitted.scores) == {"terms", "trees"}
    assert fitted.chosen == "terms"  # the law is linear in the terms: they recover it
    assert fitted.scores["terms"]["within_10"] == 1.0
    assert isinstance(fitted.predictor, KernelPredictor)


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
