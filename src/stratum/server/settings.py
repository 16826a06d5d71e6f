"""What the server is started with."""

from __future__ import annotations

from dataclasses import dataclass

from stratum.server.limits import DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class ServerSettings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
