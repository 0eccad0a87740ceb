"""Split or hierarchical training run for real as two processes over loopback TCP, the
link paced to a profile, with the measured epoch time beside the modelled one.

The edge process (this one) trains the edge part; a forked server process trains the
server part (:class:`dse.nets.hierarchical.SplitTrainer`'s halves, one AdamW each, a
constant learning rate: this is a timing run, not a cached training). Per batch the edge
sends a frame with the tensors crossing the cut and the labels:

- ``hierarchical``: frames go through a sender thread that paces the link (it holds each
  frame for its airtime ``8 b / uplink``, the first one also for the RTT) while the edge
  goes on with the next batch; the server trains on each frame as it arrives; nothing
  comes back until the end of the epoch.
- ``split``: the edge waits for the gradient of the tensors it sent, then runs its
  backward; each exchange is paced to ``8 b / uplink + rtt + 8 r / downlink`` plus the
  server's own seconds (as ``dse run-split`` paces inference).

Frames: magic ``b"DSET"``, a kind byte (0 batch, 1 end of epoch, 2 gradient, 3 done), the
length of a JSON header (uint32, little-endian), the header (tensor shapes, the server's
seconds), then the raw float32 tensors and int64 labels.

The modelled epoch uses the cost model's schedules (``dse.costmodel.training``) with this
run's own mean per-batch edge and server seconds and the link profile's airtime and RTT:
it checks the schedule and the pacing, not a device profile (this machine is neither the
edge device nor the server).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dse.costmodel import LinkProfile, build_graph, load_link, pinned_threads
from dse.deploy.serve import recv_exact
from dse.errors import InputError
from dse.nets import NetworkSpec, SplitTrainer, build_network, example_input, split_trainer

FRAME = struct.Struct("<4sBI")
MAGIC = b"DSET"
BATCH, END, GRADIENT, DONE = range(4)


@dataclass(frozen=True)
class LoopbackRun:
    """One epoch of two-process training over loopback (seconds, bytes)."""

    mode: str
    link: str
    cut: int
    batches: int
    batch_size: int
    measured_s: float  # the epoch's wall time, first edge step to the server's last
    modelled_s: float  # the mode's schedule with this run's stage times and the link's
    edge_s: float  # mean edge seconds per batch (forward, backward, optimizer)
    server_s: float  # mean server seconds per batch
    link_s: float  # airtime per batch of the paced link (up and, for split, down)
    up_bytes: int
    down_bytes: int

    def text(self) -> str:
        ratio = self.measured_s / self.modelled_s if self.modelled_s > 0 else float("nan")
        return (
            f"loopback {self.mode} at cut {self.cut} over {self.link}, {self.batches} "
            f"batches of {self.batch_size}: measured epoch {self.measured_s:.2f} s, "
            f"modelled {self.modelled_s:.2f} s (x{ratio:.2f}); per batch edge "
            f"{1e3 * self.edge_s:.1f} ms, server {1e3 * self.server_s:.1f} ms, link "
            f"{1e3 * self.link_s:.1f} ms; {self.up_bytes} B up, {self.down_bytes} B down"
        )


def _frame(kind: int, header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return FRAME.pack(MAGIC, kind, len(head)) + head + body


def _read(sock: socket.socket) -> tuple[int, dict[str, Any], socket.socket]:
    raw = recv_exact(sock, FRAME.size)
    if raw is None:
        raise ConnectionError("the other side closed the connection")
    magic, kind, n = FRAME.unpack(raw)
    if magic != MAGIC:
        raise ConnectionError(f"bad frame magic {magic!r}")
    head = recv_exact(sock, n)
    if head is None:
        raise ConnectionError("the other side closed the connection mid-frame")
    return kind, json.loads(head), sock


def _body(sock: socket.socket, n: int) -> bytes:
    data = recv_exact(sock, n) if n else b""
    if data is None:
        raise ConnectionError("the other side closed the connection mid-frame")
    return data


def _pack(tensors: list[torch.Tensor]) -> tuple[list[list[int]], bytes]:
    shapes = [list(t.shape) for t in tensors]
    body = b"".join(t.detach().contiguous().numpy().tobytes() for t in tensors)
    return shapes, body


def _unpack(shapes: list[list[int]], dtypes: list[str], body: bytes) -> list[torch.Tensor]:
    out, at = [], 0
    for shape, dtype in zip(shapes, dtypes, strict=True):
        dt = np.dtype(dtype)
        n = int(np.prod(shape)) * dt.itemsize
        out.append(
            torch.from_numpy(np.frombuffer(body[at : at + n], dtype=dt).copy().reshape(shape))
        )
        at += n
    return out


def _server(trainer: SplitTrainer, listener: socket.socket, lr: float) -> None:
    """The server process: train the server part on each batch frame until the end."""
    with pinned_threads(1):
        conn, _ = listener.accept()
        params = trainer.server_parameters()
        opt = torch.optim.AdamW(params, lr=lr) if params else None
        total = 0.0
        with conn:
            while True:
                kind, head, _ = _read(conn)
                if kind == END:
                    conn.sendall(_frame(DONE, {"server_s": total}))
                    return
                body = _body(conn, head["bytes"])
                t0 = time.perf_counter()
                values = _unpack(head["shapes"], head["dtypes"], body)
                n = len(trainer.crossing)
                crossing, targets = values[:n], values[n:]
                split = trainer.mode == "split"
                leaves = [t.requires_grad_(split and t.is_floating_point()) for t in crossing]
                env = trainer.run_server(leaves)
                loss = trainer.loss(env, trainer.server, targets)
                if loss is not None:
                    loss.backward()
                if opt is not None:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                grads = (
                    [
                        leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
                        for leaf in leaves
                    ]
                    if split
                    else []
                )
                seconds = time.perf_counter() - t0
                total += seconds
                if split:
                    shapes, gbody = _pack(grads)
                    conn.sendall(
                        _frame(
                            GRADIENT,
                            {"shapes": shapes, "bytes": len(gbody), "seconds": seconds},
                            gbody,
                        )
                    )


def train_loopback(
    spec: NetworkSpec,
    *,
    link: str | LinkProfile = "lte",
    samples: int = 640,
    lr: float | None = None,
) -> LoopbackRun:
    """Train ``spec`` (split or hierarchical, at ``spec.cut``) for one epoch over its first
    ``samples`` training samples as two processes over loopback, the link paced to
    ``link``; see the module docstring."""
    cfg = spec.train
    if cfg.mode not in ("split", "hierarchical") or spec.cut is None:
        raise InputError(
            "training",
            "mode",
            f"a loopback run trains in two parts, not {cfg.mode!r}",
            'use mode "split" or "hierarchical" with a cut',
        )
    profile = link if isinstance(link, LinkProfile) else load_link(link)
    data = spec.data
    net = build_network(spec)
    graph = build_graph(net, example_input(data), name=spec.model)
    if graph.cuts[spec.cut].bytes <= 0:
        raise InputError(
            "training", "cut", f"cut {spec.cut} sends nothing", "give a cut before the last"
        )
    tasks = spec.task_names
    trainer = split_trainer(
        net,
        graph,
        mode=cfg.mode,
        cut=spec.cut,
        exit=cfg.exit,
        exit_weight=cfg.exit_weight,
        task_weights=cfg.task_weights or (1.0,) * len(tasks),
        seed=cfg.seed,
    )
    net.train()
    x = data.train.x[:samples]
    ys = [data.train.y[t][:samples] for t in tasks]
    B = cfg.batch_size
    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()
    # fork: the server process starts with the same network, trainer and weights
    proc = mp.get_context("fork").Process(
        target=_server, args=(trainer, listener, lr or cfg.lr), daemon=True
    )
    proc.start()
    listener.close()  # the server process holds its own copy
    try:
        sock = socket.create_connection(address, timeout=120)
        return _edge(trainer, sock, x, ys, B, profile, lr or cfg.lr)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


def _optimise(opt: torch.optim.Optimizer | None) -> None:
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=True)


def _round_trip(
    sock: socket.socket,
    frame: bytes,
    sent: list[torch.Tensor],
    loss: torch.Tensor | None,
    opt: torch.optim.Optimizer | None,
    link: LinkProfile,
) -> tuple[int, float, float]:
    """Split training's exchange for one batch: send ``frame``, read the gradients of the
    tensors ``sent``, pace the exchange to the link (its airtime, round trip and the
    server's seconds), then run the edge's backward and step. Returns the downlink bytes,
    the airtime and the edge's backward seconds."""
    t1 = time.perf_counter()
    sock.sendall(frame)
    _, head, _ = _read(sock)
    gbody = _body(sock, head["bytes"])
    grads = _unpack(head["shapes"], ["float32"] * len(head["shapes"]), gbody)
    down = FRAME.size + len(gbody)
    airtime = 8.0 * len(frame) / link.uplink_bps + 8.0 * down / link.downlink_bps
    target = airtime + link.rtt_s + head["seconds"]
    spent = time.perf_counter() - t1
    if spent < target:
        time.sleep(target - spent)
    t2 = time.perf_counter()
    roots = [(t, g) for t, g in zip(sent, grads, strict=True) if t.requires_grad]
    if loss is not None:
        roots.insert(0, (loss, None))
    if roots:
        torch.autograd.backward([r for r, _ in roots], [g for _, g in roots])
    _optimise(opt)
    return down, airtime, time.perf_counter() - t2


def _edge(
    trainer: SplitTrainer,
    sock: socket.socket,
    x: torch.Tensor,
    ys: list[torch.Tensor],
    B: int,
    link: LinkProfile,
    lr: float,
) -> LoopbackRun:
    params = trainer.edge_parameters()
    opt = torch.optim.AdamW(params, lr=lr) if params else None
    split = trainer.mode == "split"
    up_bytes = down_bytes = 0
    edge_total = 0.0
    server_total = 0.0
    airtimes: list[float] = []
    outbox: queue.Queue[bytes | None] = queue.Queue()

    def sender() -> None:  # hierarchical: the paced uplink, beside the edge's compute
        first = True
        while True:
            frame = outbox.get()
            if frame is None:
                return
            time.sleep(8.0 * len(frame) / link.uplink_bps + (link.rtt_s if first else 0.0))
            first = False
            sock.sendall(frame)

    thread = threading.Thread(target=sender, daemon=True)
    batches = 0
    with pinned_threads(1), sock:
        if not split:
            thread.start()
        start = time.perf_counter()
        for i in range(0, len(x), B):
            batches += 1
            xb, targets = x[i : i + B], [y[i : i + B] for y in ys]
            t0 = time.perf_counter()
            env = trainer.run_edge(xb)
            loss = trainer.loss(env, trainer.edge, targets)
            sent = [env[n] for n in trainer.crossing]
            shapes, body = _pack([*sent, *targets])
            dtypes = [str(t.dtype).removeprefix("torch.") for t in [*sent, *targets]]
            frame = _frame(BATCH, {"shapes": shapes, "dtypes": dtypes, "bytes": len(body)}, body)
            up_bytes += len(frame)
            if not split:
                if loss is not None and loss.requires_grad:
                    loss.backward()
                _optimise(opt)
                edge_total += time.perf_counter() - t0
                airtimes.append(8.0 * len(frame) / link.uplink_bps)
                outbox.put(frame)
                continue
            edge_total += time.perf_counter() - t0
            down, airtime, backward_s = _round_trip(sock, frame, sent, loss, opt, link)
            down_bytes += down
            airtimes.append(airtime)
            edge_total += backward_s
        if split:
            sock.sendall(_frame(END, {}))
        else:
            outbox.put(_frame(END, {}))
            outbox.put(None)
        kind, head, _ = _read(sock)
        measured = time.perf_counter() - start
        server_total = float(head["server_s"])
    if thread.is_alive():
        thread.join(timeout=5)
    n = max(1, batches)
    E, S = edge_total / n, server_total / n
    L = sum(airtimes) / len(airtimes) if airtimes else 0.0
    rtt = link.rtt_s
    modelled = n * (E + L + rtt + S) if split else (E + L + rtt + S) + (n - 1) * max(E, L, S)
    return LoopbackRun(
        trainer.mode,
        link.name,
        trainer.cut,
        batches,
        B,
        measured,
        modelled,
        E,
        S,
        L,
        up_bytes,
        down_bytes,
    )
