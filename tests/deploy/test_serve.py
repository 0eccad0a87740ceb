"""The TCP service of a bundle's server part: framing, answers equal to the in-process
server program, error replies for malformed frames and payloads, and a server that keeps
serving after each."""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from fake_bundle import FakeBundle, serving

from dse.deploy import serve as sv
from dse.errors import InputError


@pytest.fixture
def bundle() -> FakeBundle:
    return FakeBundle(n_tasks=2, threshold=0.99, policy="per_task")


@pytest.fixture
def server(bundle: FakeBundle) -> Iterator[sv.SplitServer]:
    with serving(sv.make_server(bundle, "127.0.0.1", 0, max_payload=1000)) as srv:
        yield srv


def payload_of(bundle: FakeBundle, seed: int = 1) -> bytes:
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(seed))
    return bundle.edge_net(x).detach().numpy().astype("<f4").tobytes()


def raw_exchange(sock: socket.socket, data: bytes) -> tuple[int, bytes]:
    """Send ``data``, read one reply frame: (status, body)."""
    sock.sendall(data)
    head = sv.recv_exact(sock, sv.REPLY.size)
    assert head is not None, "server closed without a reply"
    magic, version, status, zero, length = sv.REPLY.unpack(head)
    assert (magic, version, zero) == (sv.REPLY_MAGIC, sv.VERSION, 0)
    body = sv.recv_exact(sock, length) if length else b""
    assert body is not None
    return status, body


def connect(srv: sv.SplitServer) -> socket.socket:
    return socket.create_connection(srv.address, timeout=10)


def good_request(bundle: FakeBundle, srv: sv.SplitServer, sock: socket.socket) -> None:
    payload = payload_of(bundle)
    status, body = raw_exchange(sock, sv.request_frame(payload, (True, False), 2))
    assert status == sv.OK
    answered, logits, seconds = sv.parse_ok(body)
    direct = bundle.server(payload, (True, False))
    assert answered == direct.answered
    for a, b in zip(logits, direct.logits, strict=True):
        assert torch.equal(a, b)
    assert seconds > 0


def test_port_0_picks_a_free_port_and_answers_like_the_server_program(
    bundle: FakeBundle, server: sv.SplitServer
) -> None:
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    with sv.Client(host, port, 2) as client:
        for seed in range(3):  # several requests on one connection
            payload = payload_of(bundle, seed)
            reply = client.ask(payload, (False, True))
            direct = bundle.server(payload, (False, True))
            assert reply.answered == direct.answered == (-1, 1)  # -1: a closed task
            for a, b in zip(reply.logits, direct.logits, strict=True):
                assert a.shape == (1, 3) and torch.equal(a, b)
            assert reply.wire_up == sv.REQUEST.size + len(payload) == 16 + 32
            assert reply.wire_down == sv.REPLY.size + 10 + 2 * (6 + 3 * 4)
    assert server.served == 3 and server.refused == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # bad magic, and more bytes than a header
        sv.REQUEST.pack(b"DSEQ", 9, 0, 2, 1, 0),  # unknown version
        sv.REQUEST.pack(b"DSEQ", 1, 0, 2, 1, 10_000) + b"x" * 5000,  # over the limit (1000)
    ],
)
def test_an_unframeable_request_gets_an_error_and_the_server_survives(
    bundle: FakeBundle, server: sv.SplitServer, garbage: bytes
) -> None:
    with connect(server) as sock:
        status, body = raw_exchange(sock, garbage)
        assert status in (sv.BAD_FRAME, sv.TOO_LARGE)
        reason = body.decode()
        assert reason and "\n" not in reason
        assert ("limit is 1000" in reason) == (status == sv.TOO_LARGE)
        sock.settimeout(5)
        assert sock.recv(1) == b""  # the server closed this connection: no frame boundary
    with connect(server) as sock:  # a new connection is served
        good_request(bundle, server, sock)
    assert server.refused == 1 and server.served == 1


@pytest.mark.parametrize(
    ("frame", "status", "words"),
    [
        (sv.request_frame(b"\x00" * 31, None, 2), sv.BAD_PAYLOAD, "expected 32"),  # damaged
        (sv.request_frame(b"DSEC" + b"\x07" * 40, None, 2), sv.BAD_PAYLOAD, "payload"),
        (sv.request_frame(b"\x00" * 32, None, 3), sv.BAD_FRAME, "this bundle has 2"),
        (sv.REQUEST.pack(b"DSEQ", 1, 0, 2, 0, 32) + b"\x00" * 32, sv.BAD_FRAME, "mask"),
        (sv.REQUEST.pack(b"DSEQ", 1, 0, 2, 4, 32) + b"\x00" * 32, sv.BAD_FRAME, "mask"),
    ],
)
def test_a_framed_bad_request_gets_an_error_and_the_same_connection_goes_on(
    bundle: FakeBundle, server: sv.SplitServer, frame: bytes, status: int, words: str
) -> None:
    with connect(server) as sock:
        got, body = raw_exchange(sock, frame)
        assert got == status and words in body.decode()
        good_request(bundle, server, sock)  # the same connection
    with connect(server) as sock:  # and a new one
        good_request(bundle, server, sock)
    assert server.refused == 1 and server.served == 2


def test_the_client_raises_the_servers_reason(bundle: FakeBundle, server: sv.SplitServer) -> None:
    with sv.Client(*server.address, 2) as client:
        with pytest.raises(sv.ServerError) as err:
            client.ask(b"short")
        assert err.value.status == sv.BAD_PAYLOAD and "5 bytes, expected 32" in err.value.reason
        assert client.ask(payload_of(bundle)).answered == (1, 1)


def test_a_server_error_is_reported_and_serving_goes_on(
    server: sv.SplitServer, bundle: FakeBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(payload: bytes, open_tasks: object = None) -> object:
        calls.append(1)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(bundle, "server", broken)
    with sv.Client(*server.address, 2) as client:
        with pytest.raises(sv.ServerError, match="RuntimeError: out of memory"):
            client.ask(payload_of(bundle))
        monkeypatch.undo()
        assert client.ask(payload_of(bundle)).answered == (1, 1)
    assert calls == [1]


def test_reply_bodies_round_trip_and_truncation_is_refused() -> None:
    logits = (torch.tensor([[1.0, -2.5, 3.25]]), torch.tensor([[0.5, 7.0]]))
    body = sv.ok_body((0, 3), logits, 0.125)
    answered, back, seconds = sv.parse_ok(body)
    assert answered == (0, 3) and seconds == 0.125
    assert all(torch.equal(a, b) for a, b in zip(back, logits, strict=True))
    for bad in (body[:-1], body + b"\x00", body[:5]):
        with pytest.raises(ValueError):
            sv.parse_ok(bad)
    assert sv.mask_of(None, 3) == 0b111 and sv.mask_of((False, True, True), 3) == 0b110
    assert struct.unpack_from("<I", sv.request_frame(b"ab", (True,), 1), 12) == (2,)


@pytest.mark.parametrize("text", ["localhost", "host:", ":80", "h:0", "h:70000", "h:x"])
def test_bad_addresses_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="HOST:PORT"):
        sv.parse_address(text)
    assert sv.parse_address("[::1]:8080") == ("::1", 8080)
    assert sv.parse_address("127.0.0.1:5") == ("127.0.0.1", 5)


def test_an_unreachable_server_names_the_address_and_the_fix() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(InputError) as err:
            sv.Client("127.0.0.1", port, 1, timeout=5)
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "dse serve DIR" in msg and "\n" not in msg


SERVE_FAKE = """\
import sys
sys.path.insert(0, sys.argv[1])
from fake_bundle import FakeBundle
from dse.deploy.serve import serve_bundle
serve_bundle(FakeBundle(n_tasks=2), "fake-bundle", "127.0.0.1", 0)
sys.stdout.flush()  # then leave as `dse serve` does (see cmd_serve)
import os
os._exit(0)
"""


@pytest.mark.slow
def test_a_served_process_prints_its_port_and_stops_cleanly_on_sigterm() -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_FAKE, str(here)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # printed and flushed before serving
        assert line.startswith("serving fake-bundle on 127.0.0.1:"), line + proc.stderr.read()
        port = int(line.strip().rsplit(":", 1)[1])
        assert port > 0
        bundle = FakeBundle(n_tasks=2)
        with sv.Client("127.0.0.1", port, 2) as client:
            assert client.ask(payload_of(bundle)).answered == (1, 1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped: 1 requests answered, 0 refused" in out
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- limits


def read_reply(sock: socket.socket) -> tuple[int, str]:
    """One reply frame from ``sock``: (status, body as text)."""
    head = sv.recv_exact(sock, sv.REPLY.size)
    assert head is not None, "closed without a reply"
    _, _, status, _, length = sv.REPLY.unpack(head)
    body = sv.recv_exact(sock, length) if length else b""
    assert body is not None
    return status, body.decode("utf-8", "replace")


def closed(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (EOF, or a reset, within 5 s)."""
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def eventually(check: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_connections_past_the_cap_are_told_busy_and_closed(bundle: FakeBundle) -> None:
    before = threading.active_count()
    with serving(sv.make_server(bundle, "127.0.0.1", 0, max_connections=2)) as srv:
        held = [connect(srv) for _ in range(2)]
        for sock in held:  # both are served: each has its thread
            good_request(bundle, srv, sock)
        assert srv.connections == 2
        for _ in range(6):  # every one past the cap: status 5, closed, no thread
            with connect(srv) as extra:
                status, reason = read_reply(extra)
                assert status == sv.BUSY and "2 connections" in reason
                assert closed(extra)
        assert threading.active_count() <= before + 1 + 2  # the serving thread, 2 handlers
        with sv.Client(*srv.address, 2) as client, pytest.raises(sv.ServerError) as err:
            client.ask(payload_of(bundle))  # the client reads why, its request unread
        assert err.value.status == sv.BUSY
        held.pop().close()  # a slot frees when its connection ends
        assert eventually(lambda: srv.connections == 1)
        with connect(srv) as sock:
            good_request(bundle, srv, sock)
        for sock in held:
            good_request(bundle, srv, sock)  # the held connections still served
            sock.close()
    assert srv.refused == 7 and srv.served == 4


def test_a_request_past_the_buffered_bytes_is_told_busy(bundle: FakeBundle) -> None:
    # payloads are 32 bytes: one fits in 40 buffered bytes, two do not
    srv_ = sv.make_server(bundle, "127.0.0.1", 0, max_payload=32, max_buffered=40)
    with serving(srv_) as srv:
        payload = payload_of(bundle)
        frame = sv.request_frame(payload, (True, True), 2)
        with connect(srv) as slow, connect(srv) as other:
            slow.sendall(frame[:20])  # the header and 4 of 32 bytes: 32 held
            assert eventually(lambda: srv.buffered == 32)
            other.sendall(frame)
            status, reason = read_reply(other)
            assert status == sv.BUSY and "32 of its 40 bytes" in reason
            assert closed(other)
            slow.sendall(frame[20:])  # the first request completes: answered
            status, _ = read_reply(slow)
            assert status == sv.OK
        assert eventually(lambda: srv.buffered == 0)
        with connect(srv) as sock:
            good_request(bundle, srv, sock)
    assert srv.refused == 1 and srv.served == 2


def test_a_sender_that_trickles_is_timed_out(bundle: FakeBundle) -> None:
    """One byte every 50 ms keeps every single read alive: the frame's deadline, not a
    read's timeout, ends it."""
    with serving(sv.make_server(bundle, "127.0.0.1", 0, frame_timeout=0.5)) as srv:
        frame = sv.request_frame(payload_of(bundle), (True, True), 2)
        with connect(srv) as sock:
            stop = threading.Event()

            def trickle() -> None:
                for byte in frame:
                    if stop.wait(0.05):
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        return

            sender = threading.Thread(target=trickle, daemon=True)
            start = time.monotonic()
            sender.start()
            try:
                status, reason = read_reply(sock)
                took = time.monotonic() - start
            finally:
                stop.set()
                sender.join(5)
            assert status == sv.TIMED_OUT and "too slow" in reason, reason
            assert 0.4 < took < 2.0  # the whole frame would take 2.4 s
            assert closed(sock)
        with connect(srv) as sock:  # serving goes on
            good_request(bundle, srv, sock)


def test_a_stalled_header_is_timed_out(bundle: FakeBundle) -> None:
    with serving(sv.make_server(bundle, "127.0.0.1", 0, frame_timeout=0.3)) as srv:
        with connect(srv) as sock:
            sock.sendall(b"DSEQ")  # 4 of 16 header bytes, then nothing
            status, reason = read_reply(sock)
            assert status == sv.TIMED_OUT and "4 of the frame's 16 bytes" in reason
            assert closed(sock)


def test_an_idle_connection_is_timed_out(bundle: FakeBundle) -> None:
    with serving(sv.make_server(bundle, "127.0.0.1", 0, idle_timeout=0.3)) as srv:
        with connect(srv) as sock:
            good_request(bundle, srv, sock)  # the idle time runs between requests
            start = time.monotonic()
            status, reason = read_reply(sock)
            assert status == sv.TIMED_OUT and "no request for 0.3 s" in reason
            assert 0.25 < time.monotonic() - start < 3 and closed(sock)
        with sv.Client(*srv.address, 2) as client:
            assert client.ask(payload_of(bundle)).answered == (1, 1)
    assert srv.refused == 1


def test_an_oversize_frame_is_refused_unread_and_the_client_hears_why(
    bundle: FakeBundle,
) -> None:
    with serving(sv.make_server(bundle, "127.0.0.1", 0, max_payload=1000)) as srv:
        with sv.Client(*srv.address, 2) as client, pytest.raises(sv.ServerError) as err:
            client.ask(b"\x00" * (16 << 20))  # 16 MiB announced and sent
        assert err.value.status == sv.TOO_LARGE and "limit is 1000" in err.value.reason
        assert srv.buffered == 0  # never held
        with connect(srv) as sock:
            good_request(bundle, srv, sock)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("max_connections", 0, "--max-connections"),
        ("max_payload", -1, "--max-payload"),
        ("max_buffered", 10, "--max-buffered"),  # below the largest payload
        ("idle_timeout", 0, "--idle-timeout"),
        ("frame_timeout", float("nan"), "--frame-timeout"),
        ("backlog", True, "--backlog"),
    ],
)
def test_a_limit_out_of_range_is_one_line(
    bundle: FakeBundle, option: str, value: object, words: str, tmp_path: object
) -> None:
    with pytest.raises(InputError, match=words) as err:
        sv.make_server(bundle, "127.0.0.1", 0, **{option: value})  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=words):  # checked before the bundle is read
        sv.run_server(f"{tmp_path}/no-such-bundle", **{option: value})  # type: ignore[arg-type]


def test_the_defaults_bound_the_server(bundle: FakeBundle) -> None:
    srv = sv.make_server(bundle, "127.0.0.1", 0)
    try:
        lim = srv.limits
        assert (lim.max_connections, lim.max_payload, lim.max_buffered) == (
            sv.MAX_CONNECTIONS,
            sv.MAX_PAYLOAD,
            sv.MAX_BUFFERED,
        )
        assert lim.max_buffered < lim.max_connections * lim.max_payload  # a real bound
        assert 0 < lim.idle_timeout < math.inf and 0 < lim.frame_timeout < math.inf
        assert srv.request_queue_size == sv.BACKLOG >= 64
    finally:
        srv.server_close()


SERVE_LIMITED = """\
import sys
sys.path.insert(0, sys.argv[1])
from fake_bundle import FakeBundle
from dse.deploy.serve import serve_bundle
serve_bundle(FakeBundle(n_tasks=2), "fake-bundle", "127.0.0.1", 0, max_connections=1,
             idle_timeout=0.5)
sys.stdout.flush()
import os
os._exit(0)
"""


@pytest.mark.slow
def test_serve_bundle_applies_its_limits() -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_LIMITED, str(here)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving fake-bundle on 127.0.0.1:"), line + proc.stderr.read()
        port = int(line.strip().rsplit(":", 1)[1])
        bundle = FakeBundle(n_tasks=2)
        with sv.Client("127.0.0.1", port, 2) as first:
            assert first.ask(payload_of(bundle)).answered == (1, 1)
            with sv.Client("127.0.0.1", port, 2) as second, pytest.raises(sv.ServerError) as err:
                second.ask(payload_of(bundle))
            assert err.value.status == sv.BUSY
            with pytest.raises(sv.ServerError) as err:  # idle past 0.5 s: closed
                time.sleep(1.0)
                first.ask(payload_of(bundle))
            assert err.value.status == sv.TIMED_OUT
        proc.send_signal(signal.SIGTERM)
        out, err_text = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err_text
    assert "stopped: 1 requests answered, 2 refused" in out
