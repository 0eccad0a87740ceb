"""A user's own network, tried as a new user would: an nn.Sequential trained outside dse
(tests/helpers/user_net.py), their digits as an ``.npz`` and as a folder of PNGs, through
``dse study run``, ``dse report``, ``dse verify``, ``dse export`` and ``dse run-split``.

The backbone stays the user's throughout: the study's final logits are their model's bit
for bit, the study and verify train only the exit heads, and the exported bundle, fed its
pixels normalised as its manifest says, answers as their model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import assert_refused, only, write_spec
from helpers.fast_report import FAST
from helpers.user_net import (
    MEAN,
    N_TRAIN,
    STD,
    digits,
    folder_order,
    pixels_to_input,
    train_outside,
    user_logits,
    write_folder,
    write_model,
    write_npz,
)

from dse.cli import main
from dse.deploy import load_bundle
from dse.nets import load_data, train_network
from dse.report import write_report
from dse.search import Candidate, Explorer, front_frame, load_study, trials_frame

pytestmark = pytest.mark.slow

DATA = {
    "npz": {"name": "npz", "root": "digits.npz"},
    "folder": {"name": "folder", "root": "images"},
}


@pytest.fixture(scope="module")
def brought(module_study_folder: Path) -> Path:
    """The user's folder: their model file, their weights and their data, as they lie."""
    model = write_model(module_study_folder)
    train_outside(model, module_study_folder / "usernet.pt")
    write_npz(module_study_folder / "digits.npz")
    write_folder(module_study_folder / "images")
    return module_study_folder


def write_user_spec(root: Path, name: str, data: str) -> Path:
    return write_spec(
        root / "studies" / f"{name}.toml",
        name,
        n_trials=16,
        sampler="random",
        model={"name": "usernet.py:build", "weights": "../usernet.pt"},
        data=only({**DATA[data], "mean": [MEAN], "std": [STD]}),
        training={"epochs": 5, "backbone": "frozen"},
        space={"densities": [1.0], "thresholds": {"low": 0.5, "high": 1.0, "step": 0.1}},
    )


def users_test_inputs(data: str) -> tuple[torch.Tensor, np.ndarray]:
    """The test images as the user's own script normalises them, in the data set's order,
    and their labels."""
    x, y = digits()
    x, y = x[N_TRAIN:], y[N_TRAIN:]
    if data == "folder":
        order = folder_order(y)
        x, y = x[order], y[order]
    return pixels_to_input(x), y


@pytest.mark.heavy  # 8 s each, every stage run: make test-all (CI) runs them
@pytest.mark.parametrize("data", ["npz", "folder"])
def test_a_users_network_goes_through_every_stage(
    brought: Path, data: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"user-{data}"
    path = write_user_spec(brought, name, data)
    saved = torch.load(brought / "usernet.pt", weights_only=True)
    inputs, labels = users_test_inputs(data)
    mine = user_logits(brought / "usernet.py", brought / "usernet.pt", inputs)

    assert main(["study", "run", str(path), "--quiet"]) == 0
    study, spec = load_study(name)
    explorer = Explorer(spec, progress=False)
    trained = explorer.scorer("dense", 1.0).trained
    assert trained.cached  # the study trained it
    # the final answers are the user's model's, bit for bit; only the exit heads learned
    assert torch.equal(trained.test_logits[0][-1], mine)
    own = float((mine.argmax(-1) == torch.from_numpy(labels)).float().mean())
    assert trained.accuracy("test")[-1] == own > 0.8
    assert all(torch.equal(trained.state[k], v) for k, v in saved.items())
    assert {k.split(".")[0] for k in trained.state if k not in saved} == {"exit_heads"}
    assert trained.epochs_run == 5

    index = write_report(name, progress=False, **FAST)
    text = (index.parent / "report.md").read_text()
    assert "with the user's trained weights (usernet.pt, frozen" in text

    # verify retrains the chosen configurations' heads alone, the backbone still the user's
    assert main(["verify", name, "--top", "1"]) == 0
    cand = Candidate.from_row(front_frame(study, spec).iloc[0].to_dict())  # what verify took
    alone = explorer.network_spec(
        cand.method, cand.density, exits=tuple(explorer.exit_names[i] for i in cand.exits)
    )
    retrained = train_network(alone, cache=explorer.cache, progress=False)
    assert retrained.cached  # verify trained it (or it is the study's own network)
    assert all(torch.equal(retrained.state[k], v) for k, v in saved.items())
    assert torch.equal(retrained.test_logits[0][-1], mine)

    # export a trial that cuts inside the network and carries an exit, then run it
    frame = trials_frame(study)
    n = len(explorer.reference_graph.backbone)
    inside = frame[(frame["knob_split"] > 0) & (frame["knob_split"] < n)]
    inside = inside[inside["knob_exits"].map(len) > 0]
    assert len(inside), "the random sampler drew no split with an exit"
    trial = int(inside.iloc[0]["trial"])
    bundle_dir = brought / f"bundle-{data}"
    assert main(["export", name, "--trial", str(trial), "--out", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest["normalisation"]["mean"] == [MEAN]
    assert bundle.manifest["normalisation"]["std"] == [STD]
    out = brought / f"run-split-{data}.json"
    capsys.readouterr()
    assert main(["run-split", str(bundle_dir), "--json", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["passed"] and run["n"] == len(labels)
    assert all(c["passed"] for c in run["checks"] if not c["skipped"])

    # the device's side: its pixels normalised by the bundle are the user's inputs, and a
    # sample the final head answers gets the user's model's logits
    pixels = load_data(
        DATA[data]["name"], root=DATA[data]["root"], normalise=False, mean=MEAN, std=STD
    ).test.x
    device_inputs = bundle.normalise(pixels)
    assert torch.equal(device_inputs, inputs)
    finals = _finals(bundle, device_inputs, limit=40)
    assert finals, "no sample of the first 40 reached the final head"
    for i, logits in finals.items():
        assert torch.allclose(logits[0], mine[i], atol=1e-4), i

    # a manifest whose normalisation does not fit the input is refused in one line
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["normalisation"]["std"] = [STD, STD]
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    assert_refused(
        lambda: load_bundle(bundle_dir), field="normalisation", words=["one mean and one std"]
    )


def _finals(bundle: Any, x: torch.Tensor, *, limit: int) -> dict[int, torch.Tensor]:
    """The final head's logits of the samples (of the first ``limit``) that reach it."""
    out = {}
    for i in range(min(limit, len(x))):
        edge = bundle.edge(x[i : i + 1])
        if edge.payload is None:
            continue
        server = bundle.server(edge.payload)
        if server.answered[0] == len(bundle.manifest["exits"]):
            out[i] = server.logits[0]
    return out
