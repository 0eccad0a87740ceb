"""The servers' command lines: their bounds reach the server, their defaults keep them on
this machine, and the parser does not import torch to show them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import assert_cli_refused

from dse.cli import build_parser, main
from dse.deploy import limits


def test_storage_serve_listens_on_this_machine_only_by_default() -> None:
    args = build_parser().parse_args(["storage", "serve", "--storage", "sqlite:///x.db"])
    assert args.host == "127.0.0.1"


def test_serve_passes_its_bounds_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run_server(folder, host, port, **limits_given):  # noqa: ANN001, ANN003
        seen.update(folder=folder, host=host, port=port, **limits_given)
        return 0

    import dse.deploy.serve

    def leave(code: int) -> None:  # the command leaves by os._exit once the server stops
        raise SystemExit(code)

    monkeypatch.setattr(dse.deploy.serve, "run_server", fake_run_server)
    monkeypatch.setattr("dse.cli.deploy.os._exit", leave)
    argv = ["serve", "b", "--max-connections", "3", "--max-payload", "1000",
            "--max-buffered", "5000", "--idle-timeout", "2.5", "--frame-timeout", "4",
            "--backlog", "7"]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 0
    assert seen == dict(
        folder="b", host="127.0.0.1", port=0, max_connections=3, max_payload=1000,
        max_buffered=5000, idle_timeout=2.5, frame_timeout=4.0, backlog=7,
    )  # fmt: skip


def test_serve_defaults_are_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", "b"])
    assert (args.max_connections, args.max_payload, args.max_buffered, args.backlog) == (
        limits.MAX_CONNECTIONS, limits.MAX_PAYLOAD, limits.MAX_BUFFERED, limits.BACKLOG,
    )  # fmt: skip
    assert (args.idle_timeout, args.frame_timeout) == (
        limits.IDLE_TIMEOUT_S,
        limits.FRAME_TIMEOUT_S,
    )


def test_a_bound_out_of_range_is_refused_in_one_line(capsys: pytest.CaptureFixture) -> None:
    assert_cli_refused(["serve", "nowhere", "--max-connections", "0"], capsys,
                       words=["--max-connections"])  # fmt: skip


def test_the_parser_does_not_import_torch() -> None:
    code = (
        "import sys; from dse.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
