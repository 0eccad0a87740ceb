"""``dse export``, ``dse serve``, ``dse run-split``: the chosen split written as an edge
and a server program, the server part behind a TCP port, and both run on the test split
against the study's predictions."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dse.cli import options
from dse.cli.options import write_json
from dse.errors import InputError


def add_parser(sub: Any) -> None:
    """Register ``export``, ``serve`` and ``run-split``."""
    ex = sub.add_parser(
        "export",
        help="one trial of a study as edge and server programs",
        parents=[options.storage(), options.quiet()],
    )
    ex.add_argument("name", help="the study")
    pick = ex.add_mutually_exclusive_group(required=True)
    pick.add_argument("--trial", type=int, default=None, help="the trial's number")
    pick.add_argument(
        "--best", default=None, metavar="OBJECTIVE", help="the front's best trial by this objective"
    )
    ex.add_argument("--out", required=True, help="the bundle folder to write")
    ex.add_argument("--force", action="store_true", help="replace a bundle in --out")
    ex.set_defaults(func=cmd_export, names_study=True)

    sv = sub.add_parser("serve", help="serve an exported bundle's server part over TCP")
    sv.add_argument("dir", help="the bundle folder (dse export)")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only)",
    )
    sv.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    _add_limits(sv)
    sv.set_defaults(func=cmd_serve)

    rs = sub.add_parser(
        "run-split",
        help="run an exported bundle on its test split, edge "
        "and server, and check it against the study's prediction",
        parents=[options.json_out("write every figure and check here")],
    )
    rs.add_argument("dir", help="the bundle folder (dse export)")
    # a spec whose data to use, a running server, a link to pace with: not the options of
    # options.data() and options.devices()
    rs.add_argument(
        "--data",
        default=None,
        help="a spec .toml whose [data] table to use (default: the bundle's own spec)",
    )
    rs.add_argument(
        "--server",
        default=None,
        help="HOST:PORT of a `dse serve` (default: the server part in this process)",
    )
    rs.add_argument(
        "--link",
        default=None,
        help="link profile (name or .toml) to pace transfers with (an emulation, not a real radio)",
    )
    rs.add_argument("--limit", type=int, default=None, help="only the first N test samples")
    rs.set_defaults(func=cmd_run_split)


def cmd_export(args: argparse.Namespace) -> int:
    """Write one trial of a study as an edge and a server program (a bundle folder)."""
    from dse.deploy import export_bundle
    from dse.nets import check_writable

    check_writable(Path(args.out).resolve().parent, field="--out")  # before any work
    done = export_bundle(
        args.name,
        args.out,
        trial=args.trial,
        best=args.best,
        force=args.force,
        storage=args.storage,
        progress=not args.quiet,
    )
    m = done.manifest
    where = (
        "edge only"
        if m["edge_only"]
        else "server only"
        if m["server_only"]
        else f"cut {m['cut']} after {m['cut_after']}"
    )
    print(
        f"exported trial {m['trial']} of {m['study']} to {done.folder}: {where}, "
        f"{len(m['exits'])} exit(s), codec {m['codec'] or 'none (float32)'}"
    )
    for name in sorted(m["files"]):
        print(f"  {name}  {(done.folder / name).stat().st_size} bytes")
    for note in done.notes:
        print(f"note: {note}")
    return 0


def _add_limits(sv: argparse.ArgumentParser) -> None:
    """The server's bounds (dse.deploy.serve): each past its cap is refused with an error
    reply, never buffered without end."""
    from dse.deploy import limits as serve

    mib = 1024 * 1024
    sv.add_argument(
        "--max-connections",
        type=int,
        default=serve.MAX_CONNECTIONS,
        help=f"connections served at once; one more is refused (default {serve.MAX_CONNECTIONS})",
    )
    sv.add_argument(
        "--max-payload",
        type=int,
        default=serve.MAX_PAYLOAD,
        help=f"bytes one request may carry (default {serve.MAX_PAYLOAD // mib} MiB)",
    )
    sv.add_argument(
        "--max-buffered",
        type=int,
        default=serve.MAX_BUFFERED,
        help="payload bytes held at once over all connections, at least --max-payload "
        f"(default {serve.MAX_BUFFERED // mib} MiB)",
    )
    sv.add_argument(
        "--idle-timeout",
        type=float,
        default=serve.IDLE_TIMEOUT_S,
        help=f"seconds a connection may stay silent between requests "
        f"(default {serve.IDLE_TIMEOUT_S:g})",
    )
    sv.add_argument(
        "--frame-timeout",
        type=float,
        default=serve.FRAME_TIMEOUT_S,
        help="seconds a request may take to arrive, beyond its payload at 1 Mbit/s "
        f"(default {serve.FRAME_TIMEOUT_S:g})",
    )
    sv.add_argument(
        "--backlog",
        type=int,
        default=serve.BACKLOG,
        help=f"connections the kernel queues before they are accepted (default {serve.BACKLOG})",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """The bundle's server part as a TCP service until Ctrl-C or SIGTERM."""
    from dse.deploy import run_server

    if not 0 <= args.port < 65536:
        raise InputError(
            "command line",
            "--port",
            f"{args.port} is not a port",
            "give 0..65535 (0: any free port)",
        )
    run_server(
        args.dir,
        args.host,
        args.port,
        max_payload=args.max_payload,
        max_connections=args.max_connections,
        max_buffered=args.max_buffered,
        idle_timeout=args.idle_timeout,
        frame_timeout=args.frame_timeout,
        backlog=args.backlog,
    )
    # Stopped cleanly (connections closed, threads joined, "stopped" printed): leave now.
    # Tearing the interpreter down after torch ran on several threads may abort it
    # ("terminate called without an active exception") once the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_run_split(args: argparse.Namespace) -> int:
    """Run the bundle on its test split, print measured against predicted and the checks;
    exit 1 when a check fails."""
    from dse.deploy import run_split

    run = run_split(args.dir, data=args.data, server=args.server, link=args.link, limit=args.limit)
    print(run.text(title=f"run-split {args.dir}"))
    if args.json:
        write_json(args.json, run.as_dict())
    return 0 if run.passed else 1
