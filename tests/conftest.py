"""Shared fixtures: a real SQLite file and a real PostgreSQL for every store test, and a
real HTTP server on loopback for API tests. The harness itself is stratum.testing.harness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.testing.harness import ADMIN_TOKEN, LiveServer, ServerProcess, postgres_schema

# Every `stratum` child process uses the tests' platform-admin token unless a test gives
# it another.
os.environ["STRATUM_TOKEN"] = ADMIN_TOKEN


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on an SQLite file and on a private schema of the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stratum.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    from stratum.store.objects import ObjectStore

    s = ObjectStore.open(database_url)
    yield s
    s.close()


@pytest.fixture
def live_server(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url).start()
    yield server
    server.stop()


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Any]:
    from stratum.client.http import StratumClient

    with StratumClient(live_server.url, live_server.token) as c:
        yield c


@pytest.fixture
def server_process(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, tmp_path)
    server.start()
    yield server
    server.stop()
