"""A throwaway PostgreSQL server on loopback, for the tests of studies shared by workers.

``DSE_TEST_POSTGRES`` (a ``postgresql+psycopg://`` URL to a server whose user may create
databases; ``.ci/run`` starts one and sets it) is used when set. Otherwise a server is
started here from Debian's binaries (``initdb``/``pg_ctl``) in a temporary folder, as the
``postgres`` user when run as root, and stopped at the end of the session. With
``DSE_REQUIRE_POSTGRES=1`` a missing server is an error, not a skip: CI sets it, so the
tests that need PostgreSQL cannot pass there by not running.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server() -> Iterator[str | None]:
    """A URL to a running server (its default database), or None when none can be had."""
    url = os.environ.get("DSE_TEST_POSTGRES")
    if url:
        yield url
        return
    bin_dir = _binaries()
    if bin_dir is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="dse-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(folder / "log"),
                "-o",
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def new_database(url: str) -> str:
    """A new empty database on ``url``'s server; its URL."""
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"dse_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"
