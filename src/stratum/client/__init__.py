"""Stratum's Python client: `from stratum.client import Client` (or `AsyncClient`).

Typed collections per kind (`client.workloads.apply/get/list/watch/wait/delete`) over
the public HTTP API; needs only the package's runtime dependencies (`pip install stratum`).
`StratumClient` is the untyped layer the CLI uses.
"""

from stratum.client.http import StratumClient
from stratum.client.typed import AsyncClient, AsyncResources, Client, Resources, WatchEvent
from stratum.client.waiting import WaitFailed, WaitTimeout

__all__ = [
    "AsyncClient",
    "AsyncResources",
    "Client",
    "Resources",
    "StratumClient",
    "WaitFailed",
    "WaitTimeout",
    "WatchEvent",
]
