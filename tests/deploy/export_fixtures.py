"""Tiny studies with chosen trials for the export tests, and a walk of a bundle over the
test split (edge, then server where the edge sends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tiny_study import HUE_DATA, spec_text

from dse.deploy import Bundle
from dse.nets import confidence
from dse.search import Explorer, create_study, parse_spec, run_study

CODECS = 'codecs = ["fp32", "int8+zstd"]\n'


def study_text(name: str, *, n_trials: int, codecs: bool = False, tasks: bool = False) -> str:
    """The tiny study of tests/tiny_study.py (digits MLP), with codecs or two tasks."""
    text = spec_text(name, n_trials=n_trials, sampler="random")
    if codecs:
        text = text.replace("[objectives]", CODECS + "[objectives]")
    if tasks:  # two hues of shapes3d, a threshold per task, both policies
        start, end = text.index("[data]"), text.index("[training]")
        text = text[:start] + HUE_DATA + text[end:]
        text = text.replace(
            "[objectives]", 'policies = ["all", "per_task"]\ntask_thresholds = true\n[objectives]'
        )
    return text


def make_study(name: str, trials: list[dict[str, Any]], **kw: Any) -> None:
    """Run a study of exactly ``trials`` (Optuna parameters), in this order."""
    spec = parse_spec(study_text(name, n_trials=len(trials), **kw), where=f"{name}.toml")
    study, explorer = create_study(spec, progress=False)
    for params in trials:
        study.enqueue_trial(params)
    run_study(spec, progress=False, explorer=explorer)


#: Every numeric form a codec gives the tensors at the cut (and a lossless coder after
#: one).
CODEC_FORMS = ("fp32", "fp16", "bf16", "int8", "int8-ch", "int4", "int4-ch+zstd")
#: The lossy codecs each zoo model's trials take, between them all of them, the
#: per-channel ones on feature maps. A study scores every lossy codec at every cut (the
#: server part run again per cut and codec: seconds on the deep models), so each model
#: takes few; a model added to the zoo takes int8.
ZOO_CODECS = {
    "mlp": ("fp16", "bf16", "int4"),
    "vgg-s": ("int8",),
    "resnet-s": ("int4-ch+zstd",),
    "mobilenet-s": ("int8-ch",),
}
ZOO_SAMPLES = 16  # the test samples a zoo bundle is walked over (of 45)


def zoo_study_text(model: str, *, n_trials: int, codecs: tuple[str, ...] = ()) -> str:
    """A zoo model on 300 digits (8x8), two tasks (``digit``, ``parity``), three epochs of
    small batches (a second or two; the exits' confidences spread), every exit site, both
    policies, a threshold per task (in steps of 0.001), and ``codecs``."""
    listed = f"codecs = [{', '.join(repr(c) for c in codecs)}]\n".replace("'", '"')
    return f"""\
name = "zoo-{model}"
n_trials = {n_trials}
sampler = "random"
seed = 0
[model]
name = "{model}"
[data]
name = "digits"
n = 300
seed = 0
tasks = ["digit", "parity"]
[training]
epochs = 3
batch_size = 16
seed = 0
[space]
densities = [1.0]
methods = ["predefined"]
exits = "all"
thresholds = {{ low = 0.0, high = 1.0, step = 0.001 }}
policies = ["all", "per_task"]
task_thresholds = true
{listed if codecs else ""}[objectives]
accuracy = "maximize"
latency_mean = "minimize"
"""


@dataclass(frozen=True)
class ZooTrial:
    """One trial of a zoo study: what it exercises, and its Optuna parameters."""

    what: str
    cut: int
    exits: tuple[int, ...]
    params: dict[str, Any]


def zoo_trials(
    positions: list[int],
    crossing: list[int],
    splits: list[tuple[float, float]],
    *,
    codecs: tuple[str, ...],
) -> list[ZooTrial]:
    """Trials that put every exit site on each side of a cut: all exits with the cut
    between the first two (where the most tensors cross) and one layer past the last, each
    exit alone with the cut right at it (the edge's last stage runs no layer, the server
    starts past the exit), all exits at the edge-only cut.

    ``positions``: the exit sites in the backbone; ``crossing``: per cut, how many tensors
    cross it; ``splits``: per exit site, the (digit, parity) thresholds that about half the
    walked samples pass there (:func:`splitting`): a trial's are its first exit's.
    The trials that send take ``codecs``, then fp32, in turn; the policies alternate."""
    n = len(crossing) - 1
    p0 = positions[0]
    p1 = positions[1] if len(positions) > 1 else n

    def widest(lo: int, hi: int) -> int:
        return max(range(lo + 1, hi), key=lambda k: (crossing[k], -k), default=lo)

    every = tuple(range(len(positions)))
    plans = [
        ("all exits, cut between the first two", widest(p0, p1), every),
        ("all exits, cut past the last", min(positions[-1] + 1, n), every),
        *((f"exit {j} alone, cut at it", p, (j,)) for j, p in enumerate(positions)),
        ("all exits, edge-only cut", n, every),
    ]
    out = []
    sending = 0
    for i, (what, cut, exits) in enumerate(plans):
        policy = ("per_task", "all")[i % 2]
        codec = "fp32"  # nothing is sent at the edge-only cut: the study keeps it canonical
        if cut < n:
            codec = (*codecs, "fp32")[sending % (len(codecs) + 1)]
            sending += 1
        digit, parity = splits[exits[0]]
        params = {
            "density": 1.0,
            "split": cut,
            **{f"exit_{j}": j in exits for j in range(len(positions))},
            "policy": policy,
            "threshold.digit": digit,
            "threshold.parity": parity,
            "codec": codec,
        }
        what = f"{what} ({cut}, {crossing[cut]} crossing), {codec}, {policy}"
        out.append(ZooTrial(what, cut, exits, params))
    return out


def splitting(logits: torch.Tensor) -> float:
    """A threshold (a multiple of 0.001) that about half of the walked samples' confidences
    (max softmax of ``logits`` [N, classes]) reach: in the widest gap between two of them
    near the middle, so float rounding between a batch and one sample cannot move one
    across it."""
    c = sorted(float(v) for v in confidence(logits[:ZOO_SAMPLES], "max_prob"))
    quarter = len(c) // 4
    i = max(range(quarter, len(c) - quarter - 1), key=lambda i: c[i + 1] - c[i])
    return round((c[i] + c[i + 1]) / 2, 3)


def make_zoo_study(model: str) -> tuple[str, list[int], list[ZooTrial]]:
    """Train the zoo network of ``model`` (once: the training cache), choose its trials
    (:func:`zoo_trials`) and run a study of exactly them: its name, the positions of the
    model's exit sites in the backbone, and the trials."""
    name = f"zoo-{model}"
    probe = parse_spec(zoo_study_text(model, n_trials=1), where=f"{name}.toml")
    explorer = Explorer(probe, progress=False)
    graph = explorer.reference_graph
    trained = explorer.scorer("dense", 1.0).trained
    positions = [e.position for e in graph.exits]
    splits = [
        (splitting(trained.test_logits[0][j]), splitting(trained.test_logits[1][j]))
        for j in range(len(positions))
    ]
    crossing = [len(c.tensors) for c in graph.cuts]
    trials = zoo_trials(positions, crossing, splits, codecs=ZOO_CODECS.get(model, ("int8",)))
    codecs = tuple(dict.fromkeys(["fp32", *(t.params["codec"] for t in trials)]))
    spec = parse_spec(
        zoo_study_text(model, n_trials=len(trials), codecs=codecs), where=f"{name}.toml"
    )
    study, explorer = create_study(spec, progress=False)
    for t in trials:
        study.enqueue_trial(t.params)
    run_study(spec, progress=False, explorer=explorer)
    return name, positions, trials


@dataclass
class Walk:
    """Every test sample through the bundle."""

    answered: np.ndarray  # [T, N] path index per task
    predicted: np.ndarray  # [T, N]
    payload_bytes: np.ndarray  # [N], 0 where nothing was sent
    logits: list[list[torch.Tensor]]  # [T][N] the answering logits
    payloads: list[bytes | None]


def walk(bundle: Bundle, x: torch.Tensor) -> Walk:
    t_count = len(bundle.tasks)
    n = len(x)
    answered = np.zeros((t_count, n), dtype=np.int64)
    predicted = np.zeros((t_count, n), dtype=np.int64)
    sizes = np.zeros(n, dtype=np.int64)
    logits: list[list[torch.Tensor]] = [[] for _ in range(t_count)]
    payloads: list[bytes | None] = []
    for i in range(n):
        e = bundle.edge(x[i : i + 1])
        got = list(e.answered)
        lg = list(e.logits)
        payloads.append(e.payload)
        if e.payload is not None:
            sizes[i] = len(e.payload)
            s = bundle.server(e.payload, tuple(a is None for a in got))
            for t in range(t_count):
                if got[t] is None:
                    got[t], lg[t] = s.answered[t], s.logits[t]
                else:
                    assert s.answered[t] == -1  # a task answered on the edge is not open
        for t in range(t_count):
            assert got[t] is not None and lg[t] is not None
            answered[t, i] = got[t]
            predicted[t, i] = int(lg[t].argmax())
            logits[t].append(lg[t])
    return Walk(answered, predicted, sizes, logits, payloads)
