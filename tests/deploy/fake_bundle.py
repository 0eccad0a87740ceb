"""A small stand-in for an exported bundle: plain nn.Modules behind the API of
:class:`dse.deploy.Bundle` (``edge``, ``server``, ``manifest``), no codec (raw
little-endian float32 at the cut), one edge exit. Its reference arrays are computed the
way the study would, so run-split's checks pass on it unless a test tampers with them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dse.nets import PayloadError


@dataclass(frozen=True)
class EdgeResult:
    answered: tuple[int | None, ...]
    logits: tuple[torch.Tensor | None, ...]
    payload: bytes | None
    seconds: float


@dataclass(frozen=True)
class ServerResult:
    answered: tuple[int, ...]
    logits: tuple[torch.Tensor, ...]
    seconds: float


class FakeBundle:
    """``n_tasks`` tasks of 3 classes on a 4 -> 8 edge layer; an edge exit per task at
    max-softmax threshold ``threshold``; the server's final heads (8 -> 3 each)."""

    def __init__(
        self, *, n_tasks: int = 1, threshold: float = 0.5, seed: int = 0, policy: str = "all"
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.edge_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.exit_heads = nn.ModuleList(nn.Linear(8, 3) for _ in range(n_tasks))
        self.final_heads = nn.ModuleList(nn.Linear(8, 3) for _ in range(n_tasks))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.threshold = threshold
        self.folder = Path("fake-bundle")
        self.manifest = {
            "format": 1,
            "study": "fake",
            "trial": 0,
            "model": "fake",
            "input_shape": [1, 4],
            "cut": 2,
            "cut_after": "relu",
            "crossing": [{"name": "relu", "shape": [1, 8], "dtype": "float32"}],
            "codec": None,
            "exits": [{"name": "exit0", "site": "relu", "position": 2, "side": "edge"}],
            "thresholds": [threshold] * n_tasks,
            "criterion": "max_prob",
            "policy": policy,
            "tasks": [f"task{t}" for t in range(n_tasks)],
            "classes": [3] * n_tasks,
            "predicted": {},
        }

    def parameters(self) -> list[nn.Parameter]:
        return [
            *self.edge_net.parameters(),
            *self.exit_heads.parameters(),
            *self.final_heads.parameters(),
        ]

    @torch.no_grad()
    def edge(self, x: torch.Tensor) -> EdgeResult:
        t0 = time.perf_counter()
        h = self.edge_net(x)
        logits = [head(h) for head in self.exit_heads]
        sure = [bool(lg.softmax(-1).max() >= self.threshold) for lg in logits]
        if self.manifest["policy"] == "all":
            sure = [all(sure)] * len(sure)
        payload = None if all(sure) else h.numpy().astype("<f4").tobytes()
        return EdgeResult(
            tuple(0 if s else None for s in sure),
            tuple(lg if s else None for lg, s in zip(logits, sure, strict=True)),
            payload,
            time.perf_counter() - t0,
        )

    @torch.no_grad()
    def server(self, payload: bytes, open_tasks: tuple[bool, ...] | None = None) -> ServerResult:
        t0 = time.perf_counter()
        if len(payload) != 32:
            raise PayloadError("length", f"{len(payload)} bytes, expected 32")
        h = torch.from_numpy(np.frombuffer(payload, dtype="<f4").copy()).reshape(1, 8)
        logits = tuple(head(h) for head in self.final_heads)
        open_ = open_tasks if open_tasks is not None else (True,) * len(logits)
        # like the exported server program: -1 (and zero logits) for a closed task
        return ServerResult(
            tuple(1 if o else -1 for o in open_),
            tuple(lg if o else torch.zeros_like(lg) for lg, o in zip(logits, open_, strict=True)),
            time.perf_counter() - t0,
        )

    def reference(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """reference.npz's arrays for inputs ``x`` [N, 4], computed batched."""
        with torch.no_grad():
            h = self.edge_net(x)
            early = [head(h) for head in self.exit_heads]
            final = [head(h) for head in self.final_heads]
        sure = np.stack([(lg.softmax(-1).max(-1).values >= self.threshold).numpy() for lg in early])
        if self.manifest["policy"] == "all":
            sure = np.broadcast_to(sure.all(axis=0), sure.shape)
        answered = np.where(sure, 0, 1).astype(np.int64)
        predicted = np.stack(
            [
                np.where(s, e.argmax(-1).numpy(), f.argmax(-1).numpy())
                for s, e, f in zip(sure, early, final, strict=True)
            ]
        )
        out = {
            "answered": answered,
            "predicted": predicted,
            "payload_bytes": np.where(sure.all(axis=0), 0, 32).astype(np.int64),
        }
        for t, f in enumerate(final):
            out[f"whole_logits_task{t}"] = f.numpy().astype(np.float32)
        return out


@contextmanager
def serving(srv: Any) -> Iterator[Any]:
    """``srv`` (a bound :class:`dse.deploy.serve.SplitServer`) serving on a thread while
    the block runs; then shut down, closed and its thread joined."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
