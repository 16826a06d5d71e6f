"""Fault injection into the simulated fleet: /apis/sim.stratum.dev/v1alpha1/faults."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.errors import Cause, Invalid, NotFound
from stratum.core.manifests import load_body

PREFIX = "/apis/sim.stratum.dev/v1alpha1"
router = APIRouter(prefix=PREFIX, tags=["simulation"])


def _simulator(request: Request) -> SimulatedBackend:
    sim: SimulatedBackend = request.app.state.simulator
    return sim


def _listing(sim: SimulatedBackend) -> dict[str, Any]:
    return {
        "apiVersion": "sim.stratum.dev/v1alpha1",
        "kind": "FaultList",
        "speed": getattr(sim.clock, "speed", 1.0),
        "simulatedTime": sim.clock.now().isoformat().replace("+00:00", "Z"),
        "items": [f.to_wire() for f in sim.faults()],
    }


@router.get("/faults", summary="Faults in force and the simulator's clock")
async def list_faults(request: Request) -> dict[str, Any]:
    return _listing(_simulator(request))


@router.post(
    "/faults",
    status_code=201,
    summary="Inject a fault: node-down, gpu-fail, link-degrade, power-cap or partition",
)
async def inject_fault(request: Request) -> dict[str, Any]:
    raw, content_type = await request.body(), request.headers.get("content-type")
    body = await to_thread.run_sync(load_body, raw, content_type)  # never on the loop
    sim = _simulator(request)
    try:
        fault = sim.inject(body)
    except ValueError as err:
        field = str(err).split(":", 1)[0]
        raise Invalid(str(err), causes=[Cause(field, str(err))]) from None
    request.app.state.manager.wake()
    return fault.to_wire()


@router.delete("/faults/{fault_id}", summary="Clear one fault")
async def clear_fault(request: Request, fault_id: str) -> dict[str, Any]:
    try:
        cleared = _simulator(request).clear(fault_id)
    except KeyError:
        raise NotFound(f'fault "{fault_id}" is not in force') from None
    request.app.state.manager.wake()
    return cleared[0].to_wire()


@router.delete("/faults", summary="Clear every fault")
async def clear_all(request: Request) -> dict[str, Any]:
    cleared = _simulator(request).clear()
    request.app.state.manager.wake()
    return {"cleared": [f.to_wire() for f in cleared]}
