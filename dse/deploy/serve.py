"""The server part of an exported bundle as a small TCP service (``dse serve DIR``), and
the client the edge side (``dse run-split --server``) talks to it with.

One connection carries any number of requests, one at a time: the client sends a request
frame, the server answers with one reply frame. Integers are unsigned little-endian.

Request (client -> server), a 16-byte header then the payload::

    offset  bytes  field
    0       4      magic b"DSEQ"
    4       1      protocol version: 1
    5       1      flags: 0 (reserved)
    6       2      number of tasks T the client's bundle has (must equal the server's)
    8       4      open-task mask: bit t set = task t is still unanswered (bits >= T zero,
                   at least one bit set)
    12      4      payload length L in bytes (at most the server's limit, 64 MiB by default)
    16      L      the codec payload exactly as ``Bundle.edge`` produced it (dse.nets codecs
                   format v2, or raw little-endian float32 when the bundle has no codec)

Reply (server -> client), a 12-byte header then the body::

    offset  bytes  field
    0       4      magic b"DSEA"
    4       1      protocol version: 1
    5       1      status: 0 ok, 1 malformed frame, 2 bad payload (damaged, foreign, or for
                   another bundle), 3 payload longer than the server's limit, 4 server error
    6       2      zero (reserved)
    8       4      body length B in bytes
    12      B      status 0: the server's compute seconds (float64: decoding + the server
                   program), T (uint16), then per task: the answering exit (int16: index into
                   manifest["exits"], len(exits) for the final head, -1 where the server
                   did not answer it: a task the request marked closed), its number of
                   classes C (uint32), C logits (float32);
                   status != 0: a one-line reason (UTF-8)

After status 1 for a bad magic or version, and after status 3, the server cannot tell
where the next frame starts: it sends the error reply, reads and discards what the client
already sent, and closes that connection. After the other errors (a wrong task count or
mask, a bad payload, a server error) the frame was read whole and the connection stays
open. In every case the server goes on serving.

Times in seconds, sizes in bytes.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dse.errors import InputError

REQUEST = struct.Struct("<4sBBHII")
REPLY = struct.Struct("<4sBBHI")
REQUEST_MAGIC = b"DSEQ"
REPLY_MAGIC = b"DSEA"
VERSION = 1
MAX_PAYLOAD = 64 * 1024 * 1024  # bytes: a request announcing more gets status 3
MAX_TASKS = 32  # the open-task mask is 32 bits wide
OK, BAD_FRAME, BAD_PAYLOAD, TOO_LARGE, SERVER_ERROR = range(5)
STATUS_NAMES = {
    OK: "ok",
    BAD_FRAME: "malformed frame",
    BAD_PAYLOAD: "bad payload",
    TOO_LARGE: "payload too large",
    SERVER_ERROR: "server error",
}
IDLE_TIMEOUT_S = 300.0  # a connection silent this long is closed by the server
DRAIN_S = 0.5  # after an unframeable request: seconds spent discarding what was sent


class ServerSide(Protocol):
    """What the service needs of a bundle: its manifest and its server program."""

    manifest: dict

    def server(self, payload: bytes, open_tasks: tuple[bool, ...] | None = None) -> Any: ...


@dataclass(frozen=True)
class Reply:
    """The server's answer to one request, as the client received it.

    ``answered``: per task, index into manifest["exits"] of the answering exit,
    len(exits) for the final head, or -1 for a task the request marked closed;
    ``logits``: per task, [1, classes] float32;
    ``seconds``: the server's compute seconds as it measured them; ``wire_up`` /
    ``wire_down``: bytes of the request and reply frames, headers included.
    """

    answered: tuple[int, ...]
    logits: tuple[torch.Tensor, ...]
    seconds: float
    wire_up: int
    wire_down: int


class ServerError(Exception):
    """The server answered with an error status (``status``) and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {reason}")


# ----------------------------------------------------------------------------- frames


def mask_of(open_tasks: tuple[bool, ...] | None, n_tasks: int) -> int:
    """The open-task bit mask (None: every task open)."""
    if open_tasks is None:
        return (1 << n_tasks) - 1
    return sum(1 << t for t, is_open in enumerate(open_tasks) if is_open)


def request_frame(payload: bytes, open_tasks: tuple[bool, ...] | None, n_tasks: int) -> bytes:
    """A whole request: header + payload."""
    return (
        REQUEST.pack(REQUEST_MAGIC, VERSION, 0, n_tasks, mask_of(open_tasks, n_tasks), len(payload))
        + payload
    )


def ok_body(answered: tuple[int, ...], logits: tuple[torch.Tensor, ...], seconds: float) -> bytes:
    """The body of a status-0 reply."""
    parts = [struct.pack("<dH", float(seconds), len(answered))]
    for a, lg in zip(answered, logits, strict=True):
        values = np.ascontiguousarray(
            lg.detach().reshape(-1).to(torch.float32).numpy(), dtype="<f4"
        )
        parts.append(struct.pack("<hI", int(a), values.size))
        parts.append(values.tobytes())
    return b"".join(parts)


def reply_frame(status: int, body: bytes) -> bytes:
    return REPLY.pack(REPLY_MAGIC, VERSION, status, 0, len(body)) + body


def error_frame(status: int, reason: str) -> bytes:
    line = " ".join(str(reason).split())  # one line
    return reply_frame(status, line.encode("utf-8", "replace")[:4096])


def parse_ok(body: bytes) -> tuple[tuple[int, ...], tuple[torch.Tensor, ...], float]:
    """(answered, logits, seconds) from a status-0 body; ValueError when malformed."""
    try:
        seconds, n = struct.unpack_from("<dH", body, 0)
        at = 10
        answered, logits = [], []
        for _ in range(n):
            a, c = struct.unpack_from("<hI", body, at)
            at += 6
            end = at + 4 * c
            if end > len(body):
                raise ValueError("truncated logits")
            values = np.frombuffer(body[at:end], dtype="<f4").astype(np.float32)
            answered.append(a)
            logits.append(torch.from_numpy(values.copy()).reshape(1, c))
            at = end
    except struct.error as exc:
        raise ValueError(f"truncated reply body: {exc}") from None
    if at != len(body):
        raise ValueError(f"{len(body) - at} bytes after the last task")
    return tuple(answered), tuple(logits), float(seconds)


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly ``n`` bytes, or None when the peer closed before the first byte; a close in
    the middle raises ConnectionError."""
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            if got == 0:
                return None
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ----------------------------------------------------------------------------- server


class _Handler(socketserver.BaseRequestHandler):
    server: SplitServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(IDLE_TIMEOUT_S)
        with self.server.counting:
            self.server.open_sockets.add(sock)
        try:
            with contextlib.suppress(OSError, ConnectionError):
                while self.server.answer_one(sock):
                    pass
        finally:
            with self.server.counting:
                self.server.open_sockets.discard(sock)


class SplitServer(socketserver.ThreadingTCPServer):
    """The bundle's server program behind the framed protocol of this module's docstring.

    One thread per connection; calls into the bundle are serialised by a lock (one
    inference at a time, so the compute seconds it reports are not shared with another).
    """

    # Connection threads are joined when the server closes (their sockets shut down
    # first, so none waits on an idle client): a thread still inside torch when the
    # interpreter exits can abort the process ("terminate called ...").
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self,
        bundle: ServerSide,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.bundle = bundle
        self.n_tasks = len(bundle.manifest["tasks"])
        self.max_payload = max_payload
        self.lock = threading.Lock()  # one inference at a time
        self.counting = threading.Lock()
        self.served = 0  # requests answered with status 0 (counted before the reply is sent)
        self.refused = 0  # requests answered with an error status (likewise)
        self.open_sockets: set[socket.socket] = set()
        super().__init__((host, port), _Handler)

    def server_close(self) -> None:
        """Stop listening, end every open connection, and wait for their threads."""
        with self.counting:
            open_now = list(self.open_sockets)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        super().server_close()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def _refuse(self, sock: socket.socket, status: int, reason: str, *, close: bool) -> bool:
        with self.counting:
            self.refused += 1
        sock.sendall(error_frame(status, reason))
        if close:  # cannot find the next frame: discard what was sent, then close
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(DRAIN_S)
                deadline = time.monotonic() + DRAIN_S
                while time.monotonic() < deadline and sock.recv(65536):
                    pass
        return not close

    def answer_one(self, sock: socket.socket) -> bool:
        """Read one request from ``sock`` and answer it; False when the connection ends."""
        head = recv_exact(sock, REQUEST.size)
        if head is None:
            return False
        magic, version, flags, n_tasks, mask, length = REQUEST.unpack(head)
        if magic != REQUEST_MAGIC:
            return self._refuse(
                sock,
                BAD_FRAME,
                f"bad magic {magic!r} (expected {REQUEST_MAGIC!r}): not a dse run-split request",
                close=True,
            )
        if version != VERSION:
            return self._refuse(
                sock,
                BAD_FRAME,
                f"protocol version {version}, this server speaks {VERSION}",
                close=True,
            )
        if length > self.max_payload:
            return self._refuse(
                sock,
                TOO_LARGE,
                f"payload of {length} bytes announced, the limit is {self.max_payload}",
                close=True,
            )
        payload = recv_exact(sock, length) if length else b""
        if payload is None:
            raise ConnectionError("connection closed before the payload")
        if flags != 0:
            return self._refuse(sock, BAD_FRAME, f"flags {flags} (must be 0)", close=False)
        if n_tasks != self.n_tasks:
            return self._refuse(
                sock,
                BAD_FRAME,
                f"request for {n_tasks} tasks, this bundle "
                f"has {self.n_tasks}: serve the same bundle",
                close=False,
            )
        if mask == 0 or mask >> self.n_tasks:
            return self._refuse(
                sock,
                BAD_FRAME,
                f"open-task mask {mask:#x} is not a non-empty set of {self.n_tasks} task bits",
                close=False,
            )
        open_tasks = tuple(bool(mask >> t & 1) for t in range(self.n_tasks))
        try:
            with self.lock:
                result = self.bundle.server(payload, open_tasks)
            body = ok_body(tuple(result.answered), tuple(result.logits), result.seconds)
        except InputError as exc:  # dse.nets.PayloadError: damaged or foreign payload
            return self._refuse(sock, BAD_PAYLOAD, str(exc), close=False)
        except Exception as exc:  # noqa: BLE001 - reported to the client, serving goes on
            return self._refuse(sock, SERVER_ERROR, f"{type(exc).__name__}: {exc}", close=False)
        with self.counting:
            self.served += 1
        sock.sendall(reply_frame(OK, body))
        return True


def make_server(
    bundle: ServerSide, host: str = "127.0.0.1", port: int = 0, *, max_payload: int = MAX_PAYLOAD
) -> SplitServer:
    """A bound, not yet serving server (port 0: a free port; see ``.address``)."""
    try:
        return SplitServer(bundle, host, port, max_payload=max_payload)
    except OSError as exc:
        raise InputError(
            "command line",
            "--host/--port",
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "pick a free port (0: any)",
        ) from None


def run_server(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    out: Callable[[str], None] | None = None,
) -> int:
    """Serve the bundle in ``folder`` until Ctrl-C or SIGTERM; returns requests answered.

    Prints ``serving DIR on HOST:PORT`` (the real port when ``port`` is 0) and flushes, so a
    caller can read the port from the first line.
    """
    from dse.deploy.bundle import load_bundle

    bundle = load_bundle(folder)
    if bundle.manifest.get("edge_only"):
        raise InputError(
            Path(folder) / "manifest.json",
            "cut",
            "the cut is edge-only: the bundle has no server part to serve",
            "run it alone: dse run-split DIR",
        )
    return serve_bundle(bundle, str(folder), host, port, out=out)


def serve_bundle(
    bundle: ServerSide,
    label: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    out: Callable[[str], None] | None = None,
) -> int:
    """:func:`run_server` for a loaded bundle (``label`` names it in the first line)."""
    say = out or (lambda s: print(s, flush=True))
    srv = make_server(bundle, host, port)
    h, p = srv.address

    def on_term(signum: int, frame: Any) -> None:
        # ask the serving loop to end at its next poll (shutdown() waits for the loop, so
        # it cannot run on the thread that serves), rather than raise into whatever runs
        threading.Thread(target=srv.shutdown, daemon=True).start()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        say(f"serving {label} on {h}:{p}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    say(f"stopped: {srv.served} requests answered, {srv.refused} refused")
    return srv.served


# ----------------------------------------------------------------------------- client


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); InputError otherwise."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(
            "command line",
            "--server",
            f"bad address {text!r}",
            "write HOST:PORT, e.g. 127.0.0.1:5000, as `dse serve` printed it",
        )
    return host, int(port_text)


class Client:
    """One connection to a ``dse serve``: :meth:`ask` sends a payload, returns the
    :class:`Reply` (raises :class:`ServerError` on an error status)."""

    def __init__(self, host: str, port: int, n_tasks: int, *, timeout: float = 60.0) -> None:
        self.address = f"{host}:{port}"
        self.n_tasks = n_tasks
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise InputError(
                self.address,
                "--server",
                f"server not reachable ({why})",
                "start `dse serve DIR` there first and give the HOST:PORT it prints",
            ) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ask(self, payload: bytes, open_tasks: tuple[bool, ...] | None = None) -> Reply:
        frame = request_frame(payload, open_tasks, self.n_tasks)
        self.sock.sendall(frame)
        head = recv_exact(self.sock, REPLY.size)
        if head is None:
            raise ConnectionError(f"{self.address} closed the connection")
        magic, version, status, _, length = REPLY.unpack(head)
        if magic != REPLY_MAGIC or version != VERSION:
            raise ConnectionError(f"{self.address} is not a dse server (reply {head!r})")
        body = recv_exact(self.sock, length) if length else b""
        if body is None:
            raise ConnectionError(f"{self.address} closed the connection mid-reply")
        if status != OK:
            raise ServerError(status, body.decode("utf-8", "replace"))
        answered, logits, seconds = parse_ok(body)
        return Reply(answered, logits, seconds, len(frame), REPLY.size + length)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
