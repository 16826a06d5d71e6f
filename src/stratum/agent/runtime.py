"""What the agent needs of the host's runtime: the local runtime's API
(stratum.backends.local.runtime.LocalRuntime), as a Protocol so that the agent's logic is
typed against it alone."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from stratum.backends.base import LaunchSpec, NodeObservation, RunObservation
from stratum.core.clock import Clock


class Runtime(Protocol):
    def launch(self, spec: LaunchSpec, node: str) -> None: ...

    def stop(self, key: str) -> None: ...

    def observe_runs(self) -> tuple[RunObservation, ...]: ...

    def telemetry(self, node: str) -> NodeObservation: ...


def local_runtime(state_dir: Path, clock: Clock) -> Runtime:
    """The host's runtime: supervisors that outlive the agent, adopted by uid and attempt."""
    from stratum.backends.local.runtime import LocalRuntime

    return LocalRuntime(state_dir, clock)
