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
                   another bundle), 3 payload longer than the server's limit, 4 server error,
                   5 busy (connections or buffered bytes at the server's limit: try again),
                   6 timed out (no request for the idle time, or a frame too slow to arrive)
    6       2      zero (reserved)
    8       4      body length B in bytes
    12      B      status 0: the server's compute seconds (float64: decoding + the server
                   program), T (uint16), then per task: the answering exit (int16: index into
                   manifest["exits"], len(exits) for the final head, -1 where the server
                   did not answer it: a task the request marked closed), its number of
                   classes C (uint32), C logits (float32);
                   status != 0: a one-line reason (UTF-8)

After status 1 for a bad magic or version, and after statuses 3, 5 and 6, the server
cannot tell where the next frame starts (or will not read it): it sends the error reply,
reads and discards what the client already sent, and closes that connection. After the
other errors (a wrong task count or mask, a bad payload, a server error) the frame was read
whole and the connection stays open. In every case the server goes on serving.

The server bounds what clients can make it hold (each limit a keyword option of
:func:`run_server`, :func:`serve_bundle` and :func:`make_server`):

- ``max_connections`` connections at a time, one thread each; one more is answered status
  5 and closed (``backlog`` connections may wait to be accepted);
- ``max_payload`` bytes in one request (status 3 past it);
- ``max_buffered`` payload bytes held at once over all connections, counted from a
  request's header to its reply: a request that would pass it gets status 5;
- ``idle_timeout``: a connection with no request for that long gets status 6 and is
  closed; ``frame_timeout``: a frame must arrive within that long after its first byte,
  plus its payload at :data:`MIN_RATE` bytes per second (status 6 otherwise), and a
  reply must be taken within that long.

Times in seconds, sizes in bytes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dse.deploy.limits import (
    BACKLOG,
    FRAME_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_BUFFERED,
    MAX_CONNECTIONS,
    MAX_PAYLOAD,
    MIN_RATE,
)
from dse.errors import InputError

REQUEST = struct.Struct("<4sBBHII")
REPLY = struct.Struct("<4sBBHI")
REQUEST_MAGIC = b"DSEQ"
REPLY_MAGIC = b"DSEA"
VERSION = 1
MAX_TASKS = 32  # the open-task mask is 32 bits wide
OK, BAD_FRAME, BAD_PAYLOAD, TOO_LARGE, SERVER_ERROR, BUSY, TIMED_OUT = range(7)
STATUS_NAMES = {
    OK: "ok",
    BAD_FRAME: "malformed frame",
    BAD_PAYLOAD: "bad payload",
    TOO_LARGE: "payload too large",
    SERVER_ERROR: "server error",
    BUSY: "server busy",
    TIMED_OUT: "timed out",
}
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


class FrameTimeout(Exception):
    """A frame did not arrive by its deadline."""

    def __init__(self, got: int, want: int) -> None:
        self.got, self.want = got, want
        super().__init__(f"{got} of {want} bytes arrived in time")


def recv_exact(sock: socket.socket, n: int, *, deadline: float | None = None) -> bytes | None:
    """Exactly ``n`` bytes, or None when the peer closed before the first byte; a close in
    the middle raises ConnectionError. With ``deadline`` (``time.monotonic()`` seconds),
    :class:`FrameTimeout` once it passes; without, the socket's own timeout applies."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FrameTimeout(got, n)
            sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:], min(n - got, 1 << 20))
        except TimeoutError:
            if deadline is None:
                raise
            raise FrameTimeout(got, n) from None
        if not k:
            if got == 0:
                return None
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        got += k
    view.release()
    return bytes(buf)


# ----------------------------------------------------------------------------- server


@dataclass(frozen=True)
class Limits:
    """What one server lets its clients make it hold (see the module docstring); checked
    here, each error naming the ``dse serve`` option that sets it."""

    max_payload: int = MAX_PAYLOAD  # bytes
    max_connections: int = MAX_CONNECTIONS
    max_buffered: int = MAX_BUFFERED  # bytes
    idle_timeout: float = IDLE_TIMEOUT_S  # seconds
    frame_timeout: float = FRAME_TIMEOUT_S  # seconds
    backlog: int = BACKLOG

    def __post_init__(self) -> None:
        for name in ("max_payload", "max_connections", "max_buffered", "backlog"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _option(name, f"must be a whole number >= 1, got {value!r}")
        for name in ("idle_timeout", "frame_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < math.inf
            ):
                raise _option(name, f"must be a number of seconds > 0, got {value!r}")
        if self.max_buffered < self.max_payload:
            raise _option(
                "max_buffered",
                f"{self.max_buffered} bytes hold no request of the largest payload "
                f"({self.max_payload} bytes)",
            )


def _option(name: str, reason: str) -> InputError:
    flag = "--" + name.replace("_", "-")
    return InputError("command line", flag, reason, f"give {flag} a value that fits")


class _Handler(socketserver.BaseRequestHandler):
    server: SplitServer

    def handle(self) -> None:
        sock: socket.socket = self.request
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

    One thread per connection, at most ``limits.max_connections``; calls into the bundle
    are serialised by a lock (one inference at a time, so the compute seconds it reports
    are not shared with another).
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
        limits: Limits = Limits(),
    ) -> None:
        self.bundle = bundle
        self.n_tasks = len(bundle.manifest["tasks"])
        self.limits = limits
        self.max_payload = limits.max_payload
        self.request_queue_size = limits.backlog  # listen()'s backlog
        self.lock = threading.Lock()  # one inference at a time
        self.counting = threading.Lock()
        self.served = 0  # requests answered with status 0 (counted before the reply is sent)
        self.refused = 0  # requests and connections answered with an error status (likewise)
        self.buffered = 0  # payload bytes held now, over all connections
        self.connections = 0  # connections served now (each with its thread)
        self.open_sockets: set[socket.socket] = set()
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while one is free; else status 5 and close, here on
        the accepting thread (a short reply into a new socket's buffer: no wait)."""
        if not self._slots.acquire(blocking=False):
            self._turn_away(request)
            return
        with self.counting:
            self.connections += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self.counting:
            self.connections -= 1
        self._slots.release()

    def _turn_away(self, sock: socket.socket) -> None:
        with self.counting:
            self.refused += 1
        n = self.limits.max_connections
        with contextlib.suppress(OSError):
            sock.settimeout(DRAIN_S)
            sock.sendall(
                error_frame(BUSY, f"{n} connections are open, the server's limit: try again later")
            )
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)  # discard what already came, never wait for more
            while sock.recv(65536):
                pass
        self.shutdown_request(sock)

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
        sock.settimeout(self.limits.frame_timeout)
        sock.sendall(error_frame(status, reason))
        if close:  # cannot find the next frame: discard what was sent, then close
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(DRAIN_S)
                deadline = time.monotonic() + DRAIN_S
                while time.monotonic() < deadline and sock.recv(65536):
                    pass
        return not close

    def _reserve(self, n: int) -> bool:
        """Count ``n`` more payload bytes as held, if the limit allows."""
        with self.counting:
            if self.buffered + n > self.limits.max_buffered:
                return False
            self.buffered += n
            return True

    def _release(self, n: int) -> None:
        with self.counting:
            self.buffered -= n

    def answer_one(self, sock: socket.socket) -> bool:
        """Read one request from ``sock`` and answer it; False when the connection ends."""
        lim = self.limits
        sock.settimeout(lim.idle_timeout)
        try:
            first = sock.recv(1)
        except TimeoutError:
            return self._refuse(
                sock,
                TIMED_OUT,
                f"no request for {lim.idle_timeout:g} s: the server closes idle connections",
                close=True,
            )
        if not first:
            return False
        start = time.monotonic()
        try:
            rest = recv_exact(sock, REQUEST.size - 1, deadline=start + lim.frame_timeout)
        except FrameTimeout as exc:
            return self._too_slow(sock, exc.got + 1, REQUEST.size, lim.frame_timeout)
        if rest is None:
            raise ConnectionError("connection closed inside a request header")
        magic, version, flags, n_tasks, mask, length = REQUEST.unpack(first + rest)
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
        if not self._reserve(length):
            return self._refuse(
                sock,
                BUSY,
                f"payload of {length} bytes: the server holds {self.buffered} of its "
                f"{lim.max_buffered} bytes for other requests; try again later",
                close=True,
            )
        try:
            return self._answer(sock, start, flags, n_tasks, mask, length)
        finally:
            self._release(length)

    def _too_slow(self, sock: socket.socket, got: int, want: int, limit: float) -> bool:
        return self._refuse(
            sock,
            TIMED_OUT,
            f"{got} of the frame's {want} bytes arrived in {limit:.3g} s: too slow",
            close=True,
        )

    def _answer(
        self, sock: socket.socket, start: float, flags: int, n_tasks: int, mask: int, length: int
    ) -> bool:
        """Read the payload of a request whose header was read at ``start`` and answer it."""
        limit = self.limits.frame_timeout + length / MIN_RATE
        try:
            payload = recv_exact(sock, length, deadline=start + limit) if length else b""
        except FrameTimeout as exc:
            return self._too_slow(sock, REQUEST.size + exc.got, REQUEST.size + length, limit)
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
        sock.settimeout(self.limits.frame_timeout)  # a reply not taken in time ends it
        sock.sendall(reply_frame(OK, body))
        return True


def make_server(
    bundle: ServerSide,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_payload: int = MAX_PAYLOAD,
    max_connections: int = MAX_CONNECTIONS,
    max_buffered: int = MAX_BUFFERED,
    idle_timeout: float = IDLE_TIMEOUT_S,
    frame_timeout: float = FRAME_TIMEOUT_S,
    backlog: int = BACKLOG,
) -> SplitServer:
    """A bound, not yet serving server (port 0: a free port; see ``.address``) with the
    limits of the module docstring; :class:`InputError` for a limit out of range."""
    limits = Limits(
        max_payload, max_connections, max_buffered, idle_timeout, frame_timeout, backlog
    )
    try:
        return SplitServer(bundle, host, port, limits=limits)
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
    max_payload: int = MAX_PAYLOAD,
    max_connections: int = MAX_CONNECTIONS,
    max_buffered: int = MAX_BUFFERED,
    idle_timeout: float = IDLE_TIMEOUT_S,
    frame_timeout: float = FRAME_TIMEOUT_S,
    backlog: int = BACKLOG,
) -> int:
    """Serve the bundle in ``folder`` until Ctrl-C or SIGTERM; returns requests answered.

    Prints ``serving DIR on HOST:PORT`` (the real port when ``port`` is 0) and flushes, so a
    caller can read the port from the first line. The limits are the module docstring's.
    """
    limits = Limits(
        max_payload, max_connections, max_buffered, idle_timeout, frame_timeout, backlog
    )  # checked before the bundle is read
    from dse.deploy.bundle import load_bundle

    bundle = load_bundle(folder)
    if bundle.manifest.get("edge_only"):
        raise InputError(
            Path(folder) / "manifest.json",
            "cut",
            "the cut is edge-only: the bundle has no server part to serve",
            "run it alone: dse run-split DIR",
        )
    return serve_bundle(bundle, str(folder), host, port, out=out, **asdict(limits))


def serve_bundle(
    bundle: ServerSide,
    label: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    out: Callable[[str], None] | None = None,
    max_payload: int = MAX_PAYLOAD,
    max_connections: int = MAX_CONNECTIONS,
    max_buffered: int = MAX_BUFFERED,
    idle_timeout: float = IDLE_TIMEOUT_S,
    frame_timeout: float = FRAME_TIMEOUT_S,
    backlog: int = BACKLOG,
) -> int:
    """:func:`run_server` for a loaded bundle (``label`` names it in the first line)."""
    say = out or (lambda s: print(s, flush=True))
    srv = make_server(
        bundle,
        host,
        port,
        max_payload=max_payload,
        max_connections=max_connections,
        max_buffered=max_buffered,
        idle_timeout=idle_timeout,
        frame_timeout=frame_timeout,
        backlog=backlog,
    )
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
        try:
            self.sock.sendall(frame)
        except OSError as exc:  # a server that refused the request closed: its reply says why
            try:
                head = recv_exact(self.sock, REPLY.size)
            except OSError:
                head = None
            if head is None:
                raise exc from None
        else:
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
