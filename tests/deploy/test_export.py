"""dse export: a trial of a tiny study as edge and server programs, run sample by sample
against what the study's own scoring says (reference.npz)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from export_fixtures import (
    CODEC_FORMS,
    ZOO_CODECS,
    ZOO_SAMPLES,
    Walk,
    make_study,
    make_zoo_study,
    walk,
    zoo_trials,
)

from dse.cli import main
from dse.deploy import FORMAT, export_bundle, load_bundle
from dse.deploy.bundle import Chain
from dse.errors import InputError
from dse.nets import Codec, PayloadError, list_models
from dse.search import Explorer, front_frame, load_study

CONTRACT_KEYS = {
    "dse_version",
    "format",
    "study",
    "spec",
    "trial",
    "candidate",
    "model",
    "input_shape",
    "cut",
    "cut_after",
    "crossing",
    "codec",
    "exits",
    "thresholds",
    "criterion",
    "policy",
    "programs",
    "tasks",
    "classes",
    "predicted",
    "files",
}


def trial(
    density: float, split: int, exits: tuple[int, ...], threshold: float = 0.5, **extra: object
) -> dict[str, object]:
    return {
        "density": density,
        "split": split,
        "exit_0": 0 in exits,
        "exit_1": 1 in exits,
        "threshold": threshold,
        **extra,
    }


@pytest.fixture(scope="module")
def place(module_study_folder: Path) -> Path:
    """The module's study folder (studies/ land there; the session's training cache): the
    bundles are written into it."""
    return module_study_folder


@pytest.fixture(scope="module")
def plain(place: Path) -> str:
    """A study without codecs: float32 crosses the cut as the layer graph counts it."""
    make_study(
        "plain",
        [
            trial(1.0, 3, (0, 1)),  # exit 0 on the edge, exit 1 on the server
            trial(1.0, 6, (0, 1)),  # edge only
            trial(1.0, 0, (0, 1)),  # server only
            trial(0.5, 3, (0, 1)),
        ],
    )  # predefined sparsity
    return "plain"


@pytest.fixture(scope="module")
def coded(place: Path) -> str:
    make_study("coded", [trial(1.0, 3, (0, 1), codec="int8+zstd")], codecs=True)
    return "coded"


def split_x(name: str) -> torch.Tensor:
    _, spec = load_study(name)
    return Explorer(spec, progress=False).data.test.x


def check_against_reference(folder: Path, x: torch.Tensor) -> tuple:
    bundle = load_bundle(folder)
    ref = bundle.reference()
    got = walk(bundle, x)
    np.testing.assert_array_equal(got.answered, ref["answered"])
    np.testing.assert_array_equal(got.predicted, ref["predicted"])
    np.testing.assert_array_equal(got.payload_bytes, ref["payload_bytes"])
    return bundle, ref, got


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_lossy_codec_split_gives_the_studys_decisions_answers_and_bytes(
    coded: str, place: Path
) -> None:
    done = export_bundle(coded, place / "b-int8", trial=0)
    m = done.manifest
    assert CONTRACT_KEYS <= set(m) and m["format"] == FORMAT == 2
    assert m["codec"] == "int8+zstd" and m["encoder"] == "program" and m["cut"] == 3
    assert [e["side"] for e in m["exits"]] == ["edge", "server"]
    assert m["crossing"] == [{"name": "layers_0_1", "shape": [1, 256], "dtype": "float32"}]
    # a program per stage: to the edge exit, to the cut; to the server exit, to the end
    assert m["programs"] == {
        "edge": ["edge.pt2", "edge.1.pt2"],
        "server": ["server.pt2", "server.1.pt2"],
    }
    assert set(m["files"]) == {*m["programs"]["edge"], *m["programs"]["server"], "reference.npz"}
    x = split_x(coded)
    bundle, ref, got = check_against_reference(place / "b-int8", x)
    # every path is taken: the edge exit, the server exit, the final head
    assert set(ref["answered"][0]) == {0, 1, 2}
    sent = ref["payload_bytes"] > 0
    assert sent.any() and not sent.all()
    # the payload's bytes are Codec.encode's own (the quantiser in the program is exact)
    net = Explorer(load_study(coded)[1], progress=False).scorer("dense", 1.0).trained.network()
    codec = Codec.parse("int8+zstd")
    for i in np.flatnonzero(sent)[:20]:
        h = net.get_submodule("layers.0.1")(
            net.get_submodule("layers.0.0")(torch.flatten(x[i : i + 1], 1))
        )
        assert got.payloads[i] == codec.encode([h])
    # a damaged payload is refused, one line
    payload = bytearray(got.payloads[int(np.flatnonzero(sent)[0])])
    payload[20] ^= 0xFF
    with pytest.raises(PayloadError):
        bundle.server(bytes(payload))


@pytest.mark.slow
def test_no_codec_sends_raw_float32_and_gives_the_whole_networks_logits(
    plain: str, place: Path
) -> None:
    done = export_bundle(plain, place / "b-plain", trial=0)
    assert done.manifest["codec"] is None
    x = split_x(plain)
    bundle, ref, got = check_against_reference(place / "b-plain", x)
    assert set(ref["answered"][0]) == {0, 1, 2}
    assert set(got.payload_bytes) == {0, 1024}  # 256 float32 crossing, no header
    i = int(np.flatnonzero(got.payload_bytes)[0])
    h = torch.relu(
        torch.nn.functional.linear(torch.flatten(x[i : i + 1], 1), *_layer(plain, "layers.0.0"))
    )
    np.testing.assert_allclose(
        np.frombuffer(got.payloads[i], "<f4"), h.numpy().ravel(), rtol=1e-5, atol=1e-6
    )
    final = ref["answered"][0] == 2
    whole = (
        ref["whole_logits_digit"]
        if "whole_logits_digit" in ref
        else next(v for k, v in ref.items() if k.startswith("whole_logits_"))
    )
    mine = torch.cat([got.logits[0][i] for i in np.flatnonzero(final)]).numpy()
    np.testing.assert_allclose(mine, whole[final], atol=1e-5, rtol=0)
    # the server's first program stops at its exit, the classifier is in the second, and
    # neither holds a branch: the host decides whether the second runs
    linears = []
    for name in ("server.pt2", "server.1.pt2"):
        ep = torch.export.load(str(place / "b-plain" / name))
        top = [n for n in ep.graph.nodes if n.op == "call_function"]
        assert not any("cond" in str(n.target) for n in top)
        linears.append(sum("linear" in str(n.target) for n in top))
    assert linears == [2, 1]  # layers.1.0 and exit 1's head; the classifier


def _layer(name: str, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    net = Explorer(load_study(name)[1], progress=False).scorer("dense", 1.0).trained.network()
    m = net.get_submodule(path)
    return m.weight.detach(), m.bias.detach()


@pytest.mark.slow
def test_edge_only_and_server_only_cuts(plain: str, place: Path) -> None:
    x = split_x(plain)
    export_bundle(plain, place / "b-edge", trial=1)
    assert not (place / "b-edge" / "server.pt2").exists()
    bundle, ref, got = check_against_reference(place / "b-edge", x)
    assert all(p is None for p in got.payloads)
    assert set(ref["answered"][0]) == {0, 1, 2}  # the final head answers on the edge too
    whole = next(v for k, v in ref.items() if k.startswith("whole_logits_"))
    final = np.flatnonzero(ref["answered"][0] == 2)
    np.testing.assert_allclose(
        torch.cat([got.logits[0][i] for i in final]).numpy(), whole[final], atol=1e-5, rtol=0
    )
    with pytest.raises(InputError, match="edge-only"):
        bundle.server(b"")

    done = export_bundle(plain, place / "b-server", trial=2)
    assert done.manifest["server_only"] and done.manifest["crossing"][0]["name"] == "input"
    bundle, ref, got = check_against_reference(place / "b-server", x)
    assert all(len(p) == x[0].numel() * 4 for p in got.payloads)  # the input, raw
    assert np.frombuffer(got.payloads[0], "<f4").tolist() == x[0].flatten().tolist()


@pytest.mark.slow
def test_a_sparse_network_is_stored_compressed_and_gives_the_same_outputs(
    plain: str, place: Path
) -> None:
    x = split_x(plain)
    dense = export_bundle(plain, place / "b-dense", trial=0, force=True)
    sparse = export_bundle(plain, place / "b-sparse", trial=3)
    info = sparse.manifest["sparse"]
    assert info["form"] == "seed" and info["layers"]
    check_against_reference(place / "b-sparse", x)

    def size(folder: Path, names: tuple[str, ...]) -> int:
        return sum((folder / n).stat().st_size for n in names)

    programs = ("edge.pt2", "edge.1.pt2", "server.pt2", "server.1.pt2")
    assert [*sparse.manifest["programs"]["edge"], *sparse.manifest["programs"]["server"]] == [
        *programs
    ]
    assert size(place / "b-sparse", programs) < 0.8 * size(place / "b-dense", programs)
    assert size(place / "b-sparse", (*programs, "weights/sparse.dsew")) < size(
        place / "b-dense", programs
    )
    assert dense.manifest["sparse"] is None


# ----------------------------------------------------------------------------- several tasks


@pytest.mark.slow
def test_two_tasks_per_task_policy(place: Path) -> None:
    make_study(
        "hues",
        [
            trial(
                1.0,
                3,
                (0, 1),
                policy="per_task",
                **{"threshold.wall_hue": 0.5, "threshold.floor_hue": 0.75},
            ),
            trial(
                1.0,
                3,
                (0, 1),
                policy="all",
                **{"threshold.wall_hue": 0.5, "threshold.floor_hue": 0.5},
            ),
        ],
        tasks=True,
    )
    x = split_x("hues")
    done = export_bundle("hues", place / "b-hues", trial=0)
    assert done.manifest["policy"] == "per_task" and done.manifest["tasks"] == [
        "wall_hue",
        "floor_hue",
    ]
    assert done.manifest["thresholds"] == [0.5, 0.75]
    _, ref, _ = check_against_reference(place / "b-hues", x)
    assert (ref["answered"][0] != ref["answered"][1]).any()  # tasks answered apart
    export_bundle("hues", place / "b-hues-all", trial=1)
    _, ref, _ = check_against_reference(place / "b-hues-all", x)
    assert (ref["answered"][0] == ref["answered"][1]).all()


# ----------------------------------------------------------------------------- the zoo

ZOO = list_models()


def counted(chain: Chain) -> list[int]:
    """Wrap each program of a bundle's chain to count its calls; the counts."""
    calls = [0] * len(chain.programs)

    def wrap(i: int, program: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: torch.Tensor) -> Any:
            calls[i] += 1
            return program(*args)

        return run

    chain.programs = [wrap(i, p) for i, p in enumerate(chain.programs)]
    return calls


def stages_run(got: Walk, n_edge: int, n_server: int, server: bool) -> tuple[list[int], list[int]]:
    """Per stage, how many samples should run it: a sample runs a side's stages up to the
    one whose exit answered its last open task there, never past it."""
    edge = [0] * (n_edge + 1)
    far = [0] * (n_server + 1)
    for i in range(got.answered.shape[1]):
        ans = got.answered[:, i]
        last = int(ans.max())
        on_edge = last < n_edge or not server  # every task answered at an edge exit
        for s in range(min(last, n_edge) + 1 if on_edge else n_edge + 1):
            edge[s] += 1
        if not on_edge:
            opened = ans[ans >= n_edge] - n_edge  # the server's tasks: its exits or final
            for s in range(min(int(opened.max()), n_server) + 1):
                far[s] += 1
    return edge, far


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    # the three largest take 7 to 16 s: make test-all (CI) runs them
    [
        pytest.param(m, marks=pytest.mark.heavy) if m in ("mobilenet-s", "resnet-s", "vgg-s") else m
        for m in ZOO
    ],
)
def test_every_zoo_model_exports_with_exits_at_every_site(model: str, place: Path) -> None:
    """Each exit alone at the cut, all of them split between edge and server, all on the
    edge and the cut past them (vgg-s there: what one program with a torch.cond per exit
    could not export), and all on an edge-only cut, through the model's codecs (between
    the models, every one) and both policies: the bundle gives the study's decisions,
    classes and payload bytes on every sample, runs no stage past the exit a sample leaves
    at, and stores no weight twice."""
    name, positions, trials = make_zoo_study(model)
    x = split_x(name)[:ZOO_SAMPLES]
    assert len(positions) == len(trials[0].exits) >= 2
    early = final = sent = 0  # answers at an exit, at the final heads; samples sent
    for i, t in enumerate(trials):
        folder = place / f"{name}-{i}"
        m = export_bundle(name, folder, trial=i).manifest
        assert [e["position"] for e in m["exits"]] == [positions[j] for j in t.exits], t.what
        n_edge = sum(1 for j in t.exits if positions[j] <= t.cut)
        n_server = len(t.exits) - n_edge
        assert len(m["programs"]["edge"]) == 1 + n_edge, t.what
        assert len(m["programs"]["server"]) == (0 if m["edge_only"] else 1 + n_server), t.what
        bundle = load_bundle(folder)
        ref = bundle.reference()
        edge_calls = counted(bundle.edge_chain)
        server_calls = counted(bundle.server_chain) if bundle.server_chain else []
        got = walk(bundle, x)
        n = len(x)
        early += int((got.answered < len(t.exits)).sum())
        final += int((got.answered == len(t.exits)).sum())
        sent += int((got.payload_bytes > 0).sum())
        np.testing.assert_array_equal(got.answered, ref["answered"][:, :n], err_msg=t.what)
        np.testing.assert_array_equal(got.predicted, ref["predicted"][:, :n], err_msg=t.what)
        np.testing.assert_array_equal(got.payload_bytes, ref["payload_bytes"][:n], err_msg=t.what)
        want_edge, want_server = stages_run(got, n_edge, n_server, not m["edge_only"])
        assert edge_calls == want_edge, t.what
        assert server_calls == (want_server if server_calls else []), t.what
        stored: list[str] = []
        for file in [*m["programs"]["edge"], *m["programs"]["server"]]:
            stored += [k for k in torch.export.load(str(folder / file)).state_dict if "gm." in k]
        assert len(stored) == len(set(stored)), f"{t.what}: a weight stored twice"
        used_heads = {f"exit_heads.{j}." for j in t.exits}
        assert not [
            k for k in stored if "exit_heads." in k and not any(h in k for h in used_heads)
        ], f"{t.what}: an unused exit's head is stored"
    # the trials that send take the model's codecs, and both policies are taken
    sending = {t.params["codec"] for t in trials if t.cut < trials[-1].cut}  # last: edge-only
    assert set(ZOO_CODECS.get(model, ("int8",))) <= sending
    assert {t.params["policy"] for t in trials} == {"all", "per_task"}
    # and the walks took the exits and the final heads, and sent
    assert early and final and sent, (early, final, sent)


def test_the_zoo_takes_every_codec() -> None:
    """Between the zoo's models, every codec form is exported (the per-channel ones where
    the cut's tensors are feature maps), and a model takes each of its codecs."""
    assert set(ZOO_CODECS) == set(ZOO)
    assert {c for codecs in ZOO_CODECS.values() for c in codecs} | {"fp32"} == set(CODEC_FORMS)
    assert not {"int8-ch", "int4-ch+zstd"} & set(ZOO_CODECS["mlp"])
    for codecs in ZOO_CODECS.values():  # two exits: four trials send
        trials = zoo_trials([2, 4], [1] * 7, [(0.5, 0.5)] * 2, codecs=codecs)
        assert set(codecs) <= {t.params["codec"] for t in trials if t.cut < 6}


# ----------------------------------------------------------------------------- bad input


def test_an_unknown_study_is_one_line_and_exit_2(
    study_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(InputError, match="no study named 'nope'"):
        export_bundle("nope", study_folder / "b", trial=0)
    assert main(["export", "nope", "--trial", "0", "--out", str(study_folder / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


@pytest.mark.slow
def test_bad_trials_and_objectives(plain: str, place: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(InputError, match="no trial 99"):
        export_bundle(plain, place / "x", trial=99)
    with pytest.raises(InputError, match="'bandwidth' is not an objective"):
        export_bundle(plain, place / "x", best="bandwidth")
    assert main(["export", plain, "--trial", "99", "--out", str(place / "x")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    study, spec = load_study(plain)
    front = front_frame(study, spec)
    done = export_bundle(plain, place / "b-best", best="latency_mean")
    assert done.manifest["trial"] == int(front.sort_values("latency_mean").iloc[0]["trial"])
    with pytest.raises(InputError, match="not empty"):
        export_bundle(plain, place / "b-best", best="latency_mean")
    assert (
        main(
            [
                "export",
                plain,
                "--best",
                "latency_mean",
                "--out",
                str(place / "b-best"),
                "--force",
                "--quiet",
            ]
        )
        == 0
    )
    assert f"exported trial {done.manifest['trial']} of plain" in capsys.readouterr().out


@pytest.mark.slow
def test_damaged_or_foreign_bundles_are_refused(plain: str, place: Path) -> None:
    src = place / "b-plain"
    if not src.exists():
        export_bundle(plain, src, trial=0)
    for name, damage in (
        ("edge.pt2", "flip"),
        ("reference.npz", "delete"),
        ("manifest.json", "format"),
    ):
        folder = place / f"bad-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(src, folder)
        path = folder / name
        if damage == "flip":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 1
            path.write_bytes(bytes(data))
            words = "sha256"
        elif damage == "delete":
            path.unlink()
            words = "missing"
        else:
            m = json.loads(path.read_text())
            m["format"] = 3
            path.write_text(json.dumps(m))
            words = "format 3"
        with pytest.raises(InputError, match=words) as err:
            load_bundle(folder)
        assert name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name", ["fp32", "fp16+zlib", "bf16", "int8", "int8-ch+zstd", "int4", "int4-ch+zstd"]
)
def test_the_quantiser_in_an_exported_program_packs_to_encodes_bytes(name: str) -> None:
    codec = Codec.parse(name)

    class Quantise(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            values, scale, lo = codec.quantize(x)
            return (values.clone(),) if scale is None else (values, scale, lo)

    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(1, 6, 5, 3, generator=g)) * 3.7
    program = torch.export.export(Quantise(), (x,)).module()
    for sample in (x, torch.randn(1, 6, 5, 3, generator=g), torch.zeros(1, 6, 5, 3)):
        out = program(sample)
        q = list(out) + [None] * (3 - len(out))
        assert codec.pack([q]) == codec.encode([sample])
