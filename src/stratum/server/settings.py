"""What the server is started with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stratum.server.limits import DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class ServerSettings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # The control loops and the simulated data plane run in the server process.
    controllers: bool = True
    simulation_speed: float = 1.0
    # The backends this server runs (backends/registry.py); a Cluster names one in
    # spec.backend, and one this server does not run stays Pending with BackendUnavailable.
    backends: tuple[str, ...] = ("simulated",)
    seed: int = 0
    lease_seconds: float = 15.0
    # OTLP/HTTP endpoint for traces (None: $STRATUM_OTLP_ENDPOINT, else no tracing).
    otlp_endpoint: str | None = None
    # Keys that seal credentials at rest: this file (mode 0600), else these keys
    # (comma-separated, newest first; None: $STRATUM_SECRET_KEYS), else none.
    secret_key_file: Path | None = None
    secret_keys: str | None = field(default=None, repr=False)
    # The keys the audit chain is signed with (HMAC), kept apart from the secret keys: this
    # file (mode 0600), else these keys (None: $STRATUM_AUDIT_KEYS), else unsigned.
    audit_key_file: Path | None = None
    audit_keys: str | None = field(default=None, repr=False)
    # Where the audit chain's signed head is kept, outside the store (None: nowhere, and
    # `audit verify` says that truncating the newest records goes unseen).
    audit_anchor_file: Path | None = None
    # TLS: serve HTTPS with this certificate chain and key (PEM) when both are given; agents
    # and clients then trust it with --ca (docs/agent.md).
    tls_cert: Path | None = None
    tls_key: Path | None = None
