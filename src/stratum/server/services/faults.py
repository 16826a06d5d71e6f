"""Fault injection into the simulated fleet: platform admins only, every change audited.

Faults fail GPUs, take nodes down and cap power for every tenant at once, so they are an
operator's tool: a fault injected or cleared joins the audit log with who did it."""

from __future__ import annotations

from typing import Any

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.backends.simulated.faults import Fault
from stratum.core.access import Principal
from stratum.core.audit import digest
from stratum.core.errors import Cause, Forbidden, Invalid, NotFound
from stratum.store import audit
from stratum.store.objects import ObjectStore

NO_SIMULATOR = (
    "this server runs no simulator: faults are injected into the simulated fleet, which "
    "runs with the controllers (`stratum serve` without --no-controllers, or `stratum up`)"
)


def _wire(fault: Fault) -> dict[str, Any]:
    return {"kind": "Fault", "metadata": {"name": fault.id}, "spec": fault.to_wire()}


class FaultService:
    def __init__(self, store: ObjectStore, simulator: SimulatedBackend | None) -> None:
        self.store = store
        self.simulator = simulator

    def simulator_for(self, principal: Principal, *, write: bool) -> SimulatedBackend:
        if write and not principal.is_admin:
            raise Forbidden(
                f"{principal.describe()} may not inject or clear faults: platform admins only"
            )
        if not write and not principal.reads_everything:
            raise Forbidden(f"{principal.describe()} may not see faults: platform roles only")
        if self.simulator is None:
            raise NotFound(NO_SIMULATOR)
        return self.simulator

    def inject(self, principal: Principal, body: object, *, source: str | None) -> Fault:
        sim = self.simulator_for(principal, write=True)
        try:
            fault = sim.inject(body)
        except ValueError as err:
            field = str(err).split(":", 1)[0]
            raise Invalid(str(err), causes=[Cause(field, str(err))]) from None
        try:
            self._audit(principal, "create", [fault], source=source)
        except BaseException:
            sim.clear(fault.id)  # never a fault in force that the log does not show
            raise
        return fault

    def clear(
        self, principal: Principal, fault_id: str | None, *, source: str | None
    ) -> list[Fault]:
        sim = self.simulator_for(principal, write=True)
        try:
            cleared = sim.clear(fault_id)
        except KeyError:
            raise NotFound(f'fault "{fault_id}" is not in force') from None
        self._audit(principal, "delete", cleared, source=source)
        return cleared

    def _audit(
        self, principal: Principal, action: str, faults: list[Fault], *, source: str | None
    ) -> None:
        if not faults:
            return
        with self.store.write() as tx:
            for fault in faults:
                wire = digest(_wire(fault))
                audit.append(
                    tx,
                    actor=principal,
                    action=action,
                    object_ref={"kind": "Fault", "name": fault.id},
                    source=source,
                    before=wire if action == "delete" else None,
                    after=wire if action == "create" else None,
                )
