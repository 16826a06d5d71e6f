"""Fault injection into the simulated fleet: /apis/sim.stratum.dev/v1alpha1/faults.

Platform admins inject and clear (audited), platform roles list; a server that runs no
simulator answers 404 saying so."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.manifests import load_body
from stratum.server.security import context
from stratum.server.services.faults import FaultService

PREFIX = "/apis/sim.stratum.dev/v1alpha1"
router = APIRouter(prefix=PREFIX, tags=["simulation"])


def _service(request: Request) -> FaultService:
    return FaultService(request.app.state.store, request.app.state.simulator)


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
    return _listing(_service(request).simulator_for(context(request).principal, write=False))


@router.post(
    "/faults",
    status_code=201,
    summary="Inject a fault: node-down, gpu-fail, link-degrade, power-cap or partition",
)
async def inject_fault(request: Request) -> dict[str, Any]:
    ctx = context(request)
    service = _service(request)
    service.simulator_for(ctx.principal, write=True)  # refuse before reading the body
    raw, content_type = await request.body(), request.headers.get("content-type")
    body = await to_thread.run_sync(load_body, raw, content_type)  # never on the loop
    fault = await to_thread.run_sync(lambda: service.inject(ctx.principal, body, source=ctx.source))
    request.app.state.manager.wake()
    return fault.to_wire()


@router.delete("/faults/{fault_id}", summary="Clear one fault")
async def clear_fault(request: Request, fault_id: str) -> dict[str, Any]:
    ctx = context(request)
    cleared = await to_thread.run_sync(
        lambda: _service(request).clear(ctx.principal, fault_id, source=ctx.source)
    )
    request.app.state.manager.wake()
    return cleared[0].to_wire()


@router.delete("/faults", summary="Clear every fault")
async def clear_all(request: Request) -> dict[str, Any]:
    ctx = context(request)
    cleared = await to_thread.run_sync(
        lambda: _service(request).clear(ctx.principal, None, source=ctx.source)
    )
    request.app.state.manager.wake()
    return {"cleared": [f.to_wire() for f in cleared]}
