"""Shared fixtures: the toy device and link, the study folder (its own working folder, the
session's training cache, one torch thread) and the session's PostgreSQL server. What they
build lives in tests/helpers, imported as ``from helpers import ...`` (tests/ is on the
path, see pyproject.toml)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.costs import toy_device, toy_link
from helpers.folders import study_folder_at

from dse.costmodel import DeviceProfile, LinkProfile, pinned_threads


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the whole session, in this process and in the processes
    the tests start: the networks here are tiny, and a second thread only spins (it
    doubled the CPU time of the graph and sparsity tests and, beside other work on the two
    cores, their wall time too)."""
    with pytest.MonkeyPatch.context() as mp, pinned_threads(1):
        mp.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture
def make_device() -> Callable[..., DeviceProfile]:
    """The toy device (helpers.costs.toy_device): any field overridden by keyword."""
    return toy_device


@pytest.fixture
def make_link() -> Callable[..., LinkProfile]:
    """The toy link (helpers.costs.toy_link): any field overridden by keyword."""
    return toy_link


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One training cache for the whole session: tiny networks are trained once."""
    root = tmp_path_factory.getbasetemp() / "dse-shared-cache"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def study_folder(tmp_path: Path, shared_cache: Path) -> Iterator[Path]:
    """This test's own folder as the working folder (studies/, reports/ land there), the
    session's training cache and one torch thread (helpers.folders)."""
    with study_folder_at(tmp_path, shared_cache) as root:
        yield root


@pytest.fixture(scope="module")
def module_study_folder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_cache: Path
) -> Iterator[Path]:
    """One folder for the tests of a module (a study that several of them read), set up
    as :func:`study_folder`; a test that asks for ``study_folder`` too works in its own."""
    name = request.module.__name__.rpartition(".")[2]
    with study_folder_at(tmp_path_factory.mktemp(name), shared_cache) as root:
        yield root


@pytest.fixture
def isolated(study_folder: Path) -> Path:
    """The old name of :func:`study_folder`, for the test folders not yet moved to it."""
    return study_folder


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """The old name of :func:`one_torch_thread`'s pin, for modules that still ask for it."""
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
