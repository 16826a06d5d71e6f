"""Stratum's default policy (placeholder until tuned): FGD with a mix learned online."""

from __future__ import annotations

from stratum.scheduling.decision import Decision
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


class StratumPolicy:
    name = "stratum"

    def __init__(self, *, seed: int) -> None:
        self._seed = seed

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        raise NotImplementedError
