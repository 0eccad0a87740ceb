"""Shared fixtures: device and link profiles built in code, with round numbers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dse.costmodel import pinned_threads
from dse.costmodel.devices import DeviceProfile, LinkProfile


def _device(**overrides: Any) -> DeviceProfile:
    """1 GFLOP/s peak, conv at 50% and everything else at 25% of it, 100 MB/s memory,
    100 us per layer, 2 W active, no sparse kernels; override any field by keyword."""
    fields: dict[str, Any] = dict(
        name="test-device",
        version=1,
        kind="edge",
        description="made in a test",
        source="tests/conftest.py",
        path=None,
        peak_flops={"fp32": 1e9},
        dtype="fp32",
        efficiency={"default": 0.25, "conv": 0.5},
        sparse_efficiency={},
        overhead_s=1e-4,
        mem_bandwidth_Bps=1e8,
        mem_capacity_bytes=1e9,
        idle_power_w=1.0,
        active_power_w=2.0,
    )
    fields.update(overrides)
    return DeviceProfile(**fields)


def _link(**overrides: Any) -> LinkProfile:
    """8 Mbit/s (1 MB/s) up, 16 Mbit/s down, 20 ms RTT, radio 0.5 W/(Mbit/s) + 1 W, 3 J tail."""
    fields: dict[str, Any] = dict(
        name="test-link",
        version=1,
        description="made in a test",
        source="tests/conftest.py",
        path=None,
        uplink_bps=8e6,
        downlink_bps=16e6,
        rtt_s=0.02,
        alpha_w_per_mbps=0.5,
        beta_w=1.0,
        tail_energy_j=3.0,
    )
    fields.update(overrides)
    return LinkProfile(**fields)


@pytest.fixture
def make_device() -> Callable[..., DeviceProfile]:
    return _device


@pytest.fixture
def make_link() -> Callable[..., LinkProfile]:
    return _link


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One training cache for the whole session: tiny networks are trained once."""
    root = tmp_path_factory.getbasetemp() / "dse-shared-cache"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Run in a fresh folder (studies/, reports/ land there) with the shared cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSE_CACHE", str(shared_cache))
    return tmp_path


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small nets train far faster on one thread when the 2 cores are shared (README):
    ``pytestmark = pytest.mark.usefixtures("one_thread")`` in a module that trains."""
    with pinned_threads(1):
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session (see tests/pg.py); skipped where there is
    none, unless ``DSE_REQUIRE_POSTGRES=1`` (CI), where that is an error."""
    from pg import server

    with server() as url:
        if url is None:
            if os.environ.get("DSE_REQUIRE_POSTGRES") == "1":
                pytest.fail(
                    "DSE_REQUIRE_POSTGRES=1 but no PostgreSQL server could be "
                    "started (install Debian's postgresql, or set DSE_TEST_POSTGRES)"
                )
            pytest.skip("no PostgreSQL here (install Debian's postgresql)")
        yield url


@pytest.fixture
def postgres(postgres_server: str) -> str:
    """A fresh empty database: its ``postgresql+psycopg://`` URL."""
    from pg import new_database

    return new_database(postgres_server)
