"""Codecs at the cut in scoring: bytes from real payloads, outputs from decoded tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DROP, assert_refused, only, spec

from dse.costmodel import codec_seconds, transfer_time
from dse.nets import Cache, Codec
from dse.search import Candidate, Explorer, parse_spec, run_study

CODECS = ["fp32", "int8", "int4+zstd", "fp16+zlib"]


def codec_spec(codecs: object = CODECS) -> str:
    """The dense tiny MLP, no exits, on a Pi 4 over 3G, with ``codecs`` at the cut."""
    return spec(
        "codec-tiny",
        n_trials=12,
        sampler="random",
        storage="memory",
        deployment={"edge": "raspberry-pi-4", "server": "a100", "link": "3g"},
        space=only({"densities": [1.0], "exits": "none", "codecs": codecs}),
        objectives=only({"accuracy": "maximize", "latency_mean": "minimize"}),
        constraints=DROP,
    )


CUT = 3  # after layers.0.1 (a ReLU): one 256-float tensor crosses


@pytest.fixture(scope="module")
def explorer(shared_cache: Path) -> Explorer:
    return Explorer(parse_spec(codec_spec()), cache=Cache(shared_cache), progress=False)


def _cut_module(explorer: Explorer) -> str:
    g = explorer.reference_graph
    (name,) = g.cuts[CUT].tensors
    return str(g.nodes[name].target)


def _coded_forward(
    explorer: Explorer, codec: Codec, x: torch.Tensor
) -> tuple[torch.Tensor, list[int]]:
    """The network with the cut's tensor sent through ``codec`` one sample at a time: a
    forward hook on the cut's layer (independent of dse.nets.split's fx executor)."""
    net = explorer.scorer("dense", 1.0).trained.network()
    sizes: list[int] = []

    def code(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        rows = []
        for i in range(len(out)):
            payload = codec.encode([out[i : i + 1]])
            sizes.append(len(payload))
            rows.append(codec.decode(payload)[0])
        return torch.cat(rows)

    net.get_submodule(_cut_module(explorer)).register_forward_hook(code)
    with torch.no_grad():
        logits = net(x)
    return logits, sizes


@pytest.mark.parametrize("name", ["int8", "int4+zstd", "fp16+zlib", "fp32"])
def test_codec_scored_accuracy_and_bytes_are_those_of_the_split_network_run_for_real(
    explorer: Explorer, name: str
) -> None:
    data = explorer.data
    m = explorer.evaluate(Candidate("dense", 1.0, CUT, (), 0.5, codec=name))
    for split, acc, nbytes in (
        ("val", m.accuracy, m.bandwidth),
        ("test", m.test_accuracy, m.test_bandwidth),
    ):
        x, y = (
            (data.val.x, data.val.y[data.task])
            if split == "val"
            else (data.test.x, data.test.y[data.task])
        )
        logits, sizes = _coded_forward(explorer, Codec.parse(name), x)
        right = (logits.argmax(-1) == y).numpy()
        assert acc == pytest.approx(int(right.sum()) / len(y), abs=1e-12)
        assert nbytes == pytest.approx(float(np.mean(sizes)))  # real payloads, header and all
        # sample by sample, the cached outputs are those of the coded network
        view = explorer.scorer("dense", 1.0).codec_views[name][CUT][0 if split == "val" else 1]
        assert np.array_equal(view.sizes, sizes)
        if Codec.parse(name).lossy:
            assert np.array_equal(view.correct[0, -1], right)


def test_int4_changes_some_answers_so_the_comparison_above_has_teeth(explorer: Explorer) -> None:
    logits, _ = _coded_forward(explorer, Codec.parse("int4+zstd"), explorer.data.val.x)
    plain = explorer.scorer("dense", 1.0).trained.val_logits[0][-1]
    assert (logits.argmax(-1) != plain.argmax(-1)).any()


def test_the_cost_model_charges_the_payload_and_the_coders(explorer: Explorer) -> None:
    sc = explorer.scorer("dense", 1.0)
    t = sc.table
    codec = Codec.parse("int4+zstd")
    m = explorer.evaluate(Candidate("dense", 1.0, CUT, (), 0.5, codec=codec.name))
    sizes = sc.codec_views[codec.name][CUT][0].sizes
    assert m.bandwidth == pytest.approx(sizes.mean())
    assert m.bandwidth_p95 == pytest.approx(np.percentile(sizes, 95))
    raw = float(t.cut_bytes[CUT])
    enc = codec_seconds(
        t.edge,
        dtype="int4",
        lossless="zstd",
        raw_bytes=raw,
        coded_bytes=m.bandwidth,
        direction="encode",
    )
    dec = codec_seconds(
        t.server,
        dtype="int4",
        lossless="zstd",
        raw_bytes=raw,
        coded_bytes=m.bandwidth,
        direction="decode",
    )
    assert enc > 0 and dec > 0
    assert m.edge_s == pytest.approx(t.edge_s[CUT] + enc)
    assert m.server_s == pytest.approx(t.server_s[CUT] + dec)
    link = transfer_time(m.bandwidth, t.link, result_bytes=sc.graph.result_bytes)
    assert m.transfer_s == pytest.approx(link)
    assert m.latency_mean == pytest.approx(m.edge_s + m.transfer_s + m.server_s)
    # against float32 as the graph counts it (no codec): fewer bytes, less time on the link
    plain = explorer.evaluate(Candidate("dense", 1.0, CUT, (), 0.5))
    assert plain.bandwidth == raw and m.bandwidth < raw / 4
    assert m.transfer_s < plain.transfer_s
    # the encoder's time is paid at the edge's active power
    assert m.compute_energy == pytest.approx(plain.compute_energy + enc * t.edge.active_power_w)


def test_lossless_codecs_change_no_output_only_the_bytes(explorer: Explorer) -> None:
    plain = explorer.evaluate(Candidate("dense", 1.0, CUT, (), 0.5))
    fp32 = explorer.evaluate(Candidate("dense", 1.0, CUT, (), 0.5, codec="fp32"))
    assert (fp32.accuracy, fp32.test_accuracy) == (plain.accuracy, plain.test_accuracy)
    header = fp32.bandwidth - plain.bandwidth
    assert 0 < header < 64  # the payload's header and checksum, nothing else


def test_at_the_edge_only_cut_the_codec_decides_nothing(explorer: Explorer) -> None:
    last = len(explorer.reference_graph.cuts) - 1
    a = explorer.evaluate(Candidate("dense", 1.0, last, (), 0.5, codec="int8"))
    b = explorer.evaluate(Candidate("dense", 1.0, last, (), 0.5))
    assert a == b and a.bandwidth == 0
    assert explorer.space.silent_cuts == (last,)
    coded = [c for c in explorer.space.enumerate() if c.split == last]
    assert [c.codec for c in coded] == ["fp32"]  # one canonical candidate


def test_a_study_samples_the_codec_and_a_second_explorer_reads_the_cached_outputs(
    explorer: Explorer, study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dse.search import record_of

    study = run_study(explorer.spec, storage="memory", progress=False, explorer=explorer)
    codecs = {record_of(t)["knobs"]["codec"] for t in study.trials}
    assert codecs <= {"fp32", "int8", "int4+zstd", "fp16+zlib"} and len(codecs) > 1
    import dse.search.explorer as explorer_mod

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("codec outputs built although cached")

    monkeypatch.setattr(explorer_mod, "codec_outputs", no_build)
    again = Explorer(explorer.spec, cache=explorer.cache, progress=False)
    cand = Candidate("dense", 1.0, CUT, (), 0.5, codec="int8")
    assert again.evaluate(cand) == explorer.evaluate(cand)


def test_codec_cache_cost_is_recorded_when_a_study_builds_it(tmp_path: Path) -> None:
    from dse.search import create_study, status

    spec = parse_spec(codec_spec(["fp32", "int8"]))
    explorer = Explorer(spec, cache=Cache(tmp_path), progress=False)
    study, _ = create_study(spec, storage="memory", explorer=explorer)
    explorer.scorer("dense", 1.0)
    (rec,) = status(study, spec, "memory")["coded"]
    assert rec["codecs"] == ["fp32", "int8"]
    cuts = len(explorer.space.cuts)
    # one whole pass per split plus int8's server parts: at most 1 + 1 per cut
    assert 0 < rec["evaluation_passes"] <= 1 + cuts
    assert rec["payloads"] == 2 * (cuts - 1) * (len(explorer.data.val) + len(explorer.data.test))


@pytest.mark.parametrize(
    "codecs, field, words",
    [
        (["int8"], "space.codecs", "fp32"),
        (["fp32", "int3"], "space.codecs", "int3"),
        ("int8", "space.codecs", "list"),
    ],
)
def test_bad_codec_lists_name_the_field(codecs: object, field: str, words: str) -> None:
    text = codec_spec(codecs)
    assert_refused(
        lambda: parse_spec(text, where="c.toml"), field=field, where="c.toml", words=[words]
    )


def test_a_spec_without_codecs_has_no_codec_knob(tmp_path: Path) -> None:
    text = codec_spec(DROP)
    explorer = Explorer(parse_spec(text), cache=Cache(tmp_path), progress=False)
    assert explorer.space.codecs == ()
    assert {c.codec for c in explorer.space.enumerate()} == {None}
    assert "codec" not in Candidate("dense", 1.0, 1, (), 0.5).as_dict()


def test_a_cut_that_sends_nothing_is_fp32_whatever_the_first_codec() -> None:
    from dse.search.space import Space

    space = Space(
        densities=(1.0,),
        methods=("predefined",),
        cuts=(0, 1, 2),
        n_exits=0,
        allowed_exits=(),
        thresholds=(0.5,),
        criterion="max_prob",
        codecs=("int8", "fp32"),
        silent_cuts=(2,),
    )
    by_cut = {}
    for c in space.enumerate():
        by_cut.setdefault(c.split, []).append(c.codec)
    assert by_cut == {0: ["int8", "fp32"], 1: ["int8", "fp32"], 2: ["fp32"]}
    assert space.size() == 5
