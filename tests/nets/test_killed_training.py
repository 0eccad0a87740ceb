"""A training process killed (SIGKILL) at any moment leaves nothing in the cache that a
reader takes for an entry: an entry present is whole, a temp file is never read, and the
network trains again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dse.nets.cache import Cache
from dse.nets.data import load_data
from dse.nets.training import NetworkSpec, TrainConfig, train_network

pytestmark = pytest.mark.slow

#: Trains the tiny network into the cache at argv[1]. Each fsync of the cache's writes
#: says "writing" and sleeps first, which widens the moment between a temp file written
#: and its rename, so that kills can land there.
CHILD = """
import sys, time
from dse.nets import cache as C
from dse.nets.data import load_data
from dse.nets.training import NetworkSpec, TrainConfig, train_network
real = C.os.fsync
def slow_fsync(fd):
    print("writing", flush=True)
    time.sleep(0.3)
    real(fd)
C.os.fsync = slow_fsync
spec = NetworkSpec(model="mlp", data=load_data("digits"), density=1.0,
                   train=TrainConfig(epochs=2))
print("start", flush=True)
train_network(spec, cache=C.Cache(sys.argv[1]), progress=False)
print("done", flush=True)
"""


def spec() -> NetworkSpec:
    return NetworkSpec(
        model="mlp", data=load_data("digits"), density=1.0, train=TrainConfig(epochs=2)
    )


def start(root: Path) -> tuple[subprocess.Popen[str], float]:
    """The child, and when it began training."""
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DSE_THREADS": "1"},
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "start"
    return p, time.perf_counter()


def check_readable(root: Path) -> list[str]:
    """Every file under ``root`` is a whole entry, a claim lock or a temp file; returns
    the keys of the entries (each one read back)."""
    cache = Cache(root)
    for f in root.rglob("*"):
        if f.is_file():
            assert f.name.endswith((".dse", ".lock")) or (
                f.name.startswith(".") and f.name.endswith(".tmp")
            ), f.name
            if f.name.endswith(".dse"):
                assert Cache._check(f.read_bytes()) is None, f"{f} is not whole"
    keys = cache.keys()
    assert all(not k.startswith(".") for k in keys)  # no temp file listed as an entry
    for key in keys:
        assert cache.get(key) is not None
    return keys


@pytest.mark.slow
@pytest.mark.heavy
def test_a_training_killed_at_random_moments_leaves_no_entry_that_is_read(tmp_path: Path) -> None:
    whole, began = start(tmp_path / "whole")
    assert whole.wait(timeout=300) == 0
    seconds = time.perf_counter() - began  # training and writing, measured
    assert check_readable(tmp_path / "whole") == [spec().key]
    outcomes = []
    for seed in (*range(3), "writing"):
        root = tmp_path / f"killed-{seed}"
        p, began = start(root)
        if seed == "writing":  # the temp file is written, not yet renamed
            assert p.stdout is not None and p.stdout.readline().strip() == "writing"
        else:
            time.sleep(
                max(
                    0.0,
                    began + random.Random(seed).uniform(0.0, 1.1) * seconds - time.perf_counter(),
                )
            )
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        keys = check_readable(root)
        temps = [f for f in root.rglob(".*.tmp")]
        outcomes.append(("entry" if keys else "none") + (" + temp" if temps else ""))
        if seed == "writing":
            assert not keys and temps
        again = train_network(spec(), cache=Cache(root), progress=False)  # trains again
        assert again.cached == bool(keys)
        assert check_readable(root) == [spec().key]
        assert Cache(root).get(spec().key) is not None
    print(f"training {seconds:.2f} s; kills left:", outcomes)
