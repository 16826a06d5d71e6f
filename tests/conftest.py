"""Shared fixtures: a real SQLite file and a real PostgreSQL for every store test, and a
real HTTP server on loopback for API tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stratum.testing.campaigns.servers import ServerProcess as _ServerProcess

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
POSTGRES_URL = os.environ.get(
    "STRATUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _admin_token() -> str:
    from stratum.core.tokens import new_token

    return new_token().value


# Every test server starts with this platform-admin token (adopted through
# --admin-token-file), and every `stratum` child process uses it through STRATUM_TOKEN
# unless a test gives it another.
ADMIN_TOKEN = _admin_token()
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
os.environ["STRATUM_TOKEN"] = ADMIN_TOKEN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on an SQLite file and on a private schema of the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stratum.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A private schema of the real PostgreSQL for one test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _postgres_schema_url(schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    from stratum.store.objects import ObjectStore

    s = ObjectStore.open(database_url)
    yield s
    s.close()


class LiveServer:
    """uvicorn serving the real app on a loopback port, in a thread of this process."""

    def __init__(
        self,
        database_url: str,
        max_body_bytes: int = 1024 * 1024,
        controllers: bool = False,
        **settings: Any,
    ) -> None:
        import uvicorn

        from stratum.server.app import create_app
        from stratum.server.settings import ServerSettings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(
            ServerSettings(
                database_url=database_url,
                port=self.port,
                max_body_bytes=max_body_bytes,
                controllers=controllers,
                **settings,
            )
        )
        self.token = ADMIN_TOKEN
        self.headers = dict(AUTH)
        self.app.state.tokens.bootstrap(ADMIN_TOKEN)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.app.state.notifier.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


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


def run_cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `stratum` command in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "stratum", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        check=False,
    )


class ServerProcess(_ServerProcess):
    """`stratum serve` as a real child process (the shared harness in stratum.testing),
    started with the tests' platform-admin token."""

    def __init__(self, database_url: str, home: Path, *extra_args: str) -> None:
        super().__init__(database_url, home, *extra_args, token=ADMIN_TOKEN)


@pytest.fixture
def server_process(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, tmp_path).start()
    yield server
    server.stop()
