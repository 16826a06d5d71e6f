"""`stratum serve` as a real child process, and the databases it runs on: the harness the
crash tests, the reliability campaigns and their benchmarks share."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from stratum.testing.pki import ServingPki

POSTGRES_URL = os.environ.get(
    "STRATUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_admin_token() -> str:
    """A well-formed token value that a server adopts through --admin-token-file."""
    from stratum.core.tokens import new_token

    return new_token().value


def postgres_schema_url(schema: str, base: str = POSTGRES_URL) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(base: str = POSTGRES_URL) -> Iterator[str]:
    """A private schema of a real PostgreSQL, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_schema_url(schema, base)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    timeout: float,
    what: str,
    log: Callable[[], str],
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Until `url`/readyz answers 200; RuntimeError with the end of `log()` if the process
    exits first or the deadline passes. `verify`: how to trust an https `url`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready: {log()[-4000:]}")


class ServerProcess:
    """`stratum serve` as a real child process, logging to a file in `home`; over TLS with
    `tls` (its certificate and key served, its CA trusted by `verify`)."""

    def __init__(
        self,
        database_url: str,
        home: Path,
        *extra_args: str,
        token: str,
        log_level: str = "warning",
        env: dict[str, str] | None = None,
        tls: ServingPki | None = None,
    ) -> None:
        self.extra_args = extra_args
        if tls is not None:
            self.extra_args += ("--tls-cert", str(tls.cert), "--tls-key", str(tls.key))
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(tls.ca)) if tls is not None else True
        )
        self.port = free_port()
        self.url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.home = home
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.log_level = log_level
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / f"serve-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 180.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "STRATUM_HOME": str(self.home)}
        token_file = self.home / "admin-token"
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stratum",
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                "--log-level",
                self.log_level,
                "--admin-token-file",
                str(token_file),
                *self.extra_args,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(self.proc, self.url, timeout, "stratum serve", self.read_log, verify=self.verify)
        return self

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_mib(self) -> float:
        return rss_mib(self.pid) if self.alive else 0.0

    def kill9(self) -> int:
        """Pull the plug: SIGKILL, no shutdown hooks, no lease release."""
        return self.stop(signal.SIGKILL)

    def stop(self, sig: int | None = None) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=30)
        if self.log is not None:
            self.log.close()
            self.log = None
        return code


def new_audit_secret() -> str:
    """A key for $STRATUM_AUDIT_KEYS: every server of a campaign signs the audit chain with
    it, and the invariant checks verify the chain with it."""
    from stratum.core.secrets import Keyring

    return Keyring.generate_key()
