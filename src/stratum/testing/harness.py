"""The servers, databases and commands the test suite runs against, all bound to one
platform-admin token: a real HTTP server on loopback (in a thread or as a `stratum serve`
child process), a private PostgreSQL schema, the real `stratum` command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stratum.testing.campaigns.servers import (
    POSTGRES_URL,
    free_port,
    new_admin_token,
    postgres_schema,
)
from stratum.testing.campaigns.servers import ServerProcess as _ServerProcess
from stratum.testing.pki import ServingPki

__all__ = [
    "ADMIN_TOKEN",
    "AUTH",
    "POSTGRES_URL",
    "LiveServer",
    "ServerProcess",
    "free_port",
    "postgres_schema",
    "run_cli",
]

# Every test server starts with this platform-admin token (adopted through
# --admin-token-file); tests/conftest.py hands it to every `stratum` child process through
# STRATUM_TOKEN unless a test gives it another.
ADMIN_TOKEN = new_admin_token()
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


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


class ServerProcess(_ServerProcess):
    """`stratum serve` as a real child process (stratum.testing.campaigns.servers), started
    with the tests' platform-admin token."""

    def __init__(
        self, database_url: str, home: Path, *extra_args: str, tls: ServingPki | None = None
    ) -> None:
        super().__init__(database_url, home, *extra_args, token=ADMIN_TOKEN, tls=tls)


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
