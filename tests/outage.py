"""Storages that go away and come back: a PostgreSQL server of the test's own, restarted
with ``pg_ctl restart -m fast`` (or stopped for a while), and ``dse storage serve``
proxies stopped and started again on the same port (tests of workers riding out an
outage)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pg import _binaries, _free_port

ROOT = Path(__file__).resolve().parent.parent


class Postgres:
    """A PostgreSQL server in a folder of its own on loopback (as tests/pg.py starts one),
    which a test may stop and start again."""

    def __init__(self, bin_dir: Path, folder: Path):
        self.bin_dir, self.folder = bin_dir, folder
        self.data, self.port = folder / "data", _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._ctl(
            "-w",
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def restart(self, *, down_s: float = 0.0) -> None:
        """``pg_ctl restart -m fast``, staying down ``down_s`` seconds in between."""
        self.stop()
        time.sleep(down_s)
        self.start()


@contextmanager
def postgres() -> Iterator[Postgres | None]:
    """A server of the test's own (None where Debian's PostgreSQL is not installed)."""
    bin_dir = _binaries()
    if bin_dir is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="dse-pg-outage-"))
    server = Postgres(bin_dir, folder)
    if server.as_user:
        shutil.chown(folder, "postgres")
    try:
        subprocess.run(
            [*server.as_user, str(bin_dir / "initdb"), "-D", str(server.data)]
            + ["-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        server.start()
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(folder, ignore_errors=True)


class Proxy:
    """``dse storage serve`` in front of ``database`` on a fixed port of loopback."""

    def __init__(self, database: str, env: dict[str, str]):
        self.database, self.env, self.port = database, env, _free_port()
        self.url = f"grpc://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dse.cli", "storage", "serve", "--storage", self.database]
            + ["--port", str(self.port)],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.url in self.process.stdout.readline()

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None


#: ``dse ARGV`` in a process whose every trial takes ``DELAY`` seconds longer (a worker
#: with something to ride out or to be paused in): ``python -c SLOW DELAY ARGV...``.
# the delay is the trial's (the study's objective), not every scoring: the grid a run
# scores at its end for the answer stays as fast as it is
SLOW = """
import sys, time
import dse.search.study as study
plain, delay = study.objective_for, float(sys.argv[1])
def slow_objective_for(explorer, evaluate=None):
    objective = plain(explorer, evaluate)
    def slow(trial):
        time.sleep(delay)
        return objective(trial)
    return slow
study.objective_for = slow_objective_for
from dse.cli import main
sys.exit(main(sys.argv[2:]))
"""


def slow_dse(
    delay: float, *argv: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    """``dse ARGV`` with ``delay`` seconds more per trial, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-c", SLOW, str(delay), *argv],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def dse_env(**extra: str) -> dict[str, str]:
    """The environment of a ``dse`` child process: this worktree's dse, one thread."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "DSE_THREADS": "1", **extra}
