"""Tiny studies with chosen trials for the export tests, and a walk of a bundle over the
test split (edge, then server where the edge sends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tiny_study import HUE_DATA, spec_text

from dse.deploy import Bundle
from dse.search import create_study, parse_spec, run_study

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
