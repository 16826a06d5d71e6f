"""The FastAPI application: routers, error rendering, body limits, OpenAPI with every kind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

import stratum
from stratum.api.v1alpha1 import KINDS
from stratum.backends.agent.backend import AgentBackend
from stratum.backends.base import BackendContext
from stratum.backends.registry import build_backends
from stratum.core import policies
from stratum.core.clock import make_clock
from stratum.observability import tracing
from stratum.observability.metrics import Metrics
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.server.audit_trail import AuditTrail
from stratum.server.clockheader import ClockHeader
from stratum.server.instrumentation import RequestMetrics
from stratum.server.limits import BodySizeLimit
from stratum.server.routers import (
    agents,
    docs,
    governance,
    health,
    logs,
    metrics,
    previews,
    resources,
    secrets,
    simulation,
)
from stratum.server.secrets import load_keyring
from stratum.server.security import authenticate
from stratum.server.services.agents import AgentService
from stratum.server.services.governance import GovernanceService
from stratum.server.services.objects import ObjectService
from stratum.server.services.tokens import TokenService
from stratum.server.settings import ServerSettings
from stratum.server.status import install_error_handlers
from stratum.server.watch import ChangeNotifier
from stratum.store.objects import ObjectStore


def create_app(settings: ServerSettings, store: ObjectStore | None = None) -> FastAPI:
    """Build the app. The store is opened (and migrated) here unless one is handed in."""
    keyring = load_keyring(key_file=settings.secret_key_file, keys=settings.secret_keys)
    # The process's one clock: the store's, handed to the controllers and every backend.
    store = store or ObjectStore.open(settings.database_url, make_clock(settings.simulation_speed))
    notifier = ChangeNotifier()
    registry = Metrics()
    store.on_transaction = registry.observe_transaction
    tracing.configure(endpoint=settings.otlp_endpoint)
    trail = AuditTrail.for_server(store, settings)

    from stratum.store.database import stratum_home

    backends = build_backends(
        settings.backends,
        BackendContext(
            clock=store.clock, seed=settings.seed, options={"home": str(stratum_home())}
        ),
    )
    manager = ControllerManager(
        store,
        backends,
        settings=ManagerSettings(seed=settings.seed, lease_seconds=settings.lease_seconds),
        metrics=registry,
        keyring=keyring,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        trail.start()  # the audit anchor keeps up from the first write on
        await asyncio.to_thread(app.state.agents.expect_known_nodes)
        if settings.controllers:
            manager.start()
        await asyncio.to_thread(policies.warm)  # not in the first Policy request
        yield
        notifier.closing.set()
        if settings.controllers:
            await asyncio.to_thread(manager.stop)
        await asyncio.to_thread(trail.stop)
        store.close()

    app = FastAPI(
        title="Stratum",
        version=stratum.__version__,
        lifespan=lifespan,
        docs_url=None,  # served from the package by routers/docs.py (no CDN), as is redoc's
        redoc_url=None,
        description="Declarative API for sites, fleets, tenants, policies and "
        "AI workloads with resource contracts.",
    )
    app.state.store = store
    app.state.notifier = notifier
    tokens = TokenService(store)

    def written() -> None:  # wake watchers and the controllers; re-read who callers are
        notifier.notify()
        manager.wake()
        tokens.forget()
        trail.wake()

    app.state.objects = ObjectService(store, on_write=written, keyring=keyring)
    app.state.tokens = tokens
    app.state.governance = GovernanceService(store, trail)
    agent_backend = backends.get("agent")
    app.state.agents = AgentService(
        store,
        tokens,
        agent_backend if isinstance(agent_backend, AgentBackend) else None,
        keyring=keyring,
        on_write=written,
    )
    app.state.settings = settings
    # Fault injection is a simulator feature: None when this server runs no simulated fleet
    # (or runs no controllers to drive it); the routes then say so.
    app.state.simulator = backends.get("simulated") if settings.controllers else None
    app.state.manager = manager
    app.state.backends = backends  # the logs route reads a workload's output from its backend
    app.state.metrics = registry
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    app.include_router(resources.build_router())
    app.include_router(governance.build_router())
    app.include_router(secrets.build_router())
    app.include_router(logs.build_router())
    app.include_router(agents.build_router())
    app.include_router(previews.build_router())
    # Fault injection changes the fleet: as guarded as every other API route.
    app.include_router(simulation.router, dependencies=[Depends(authenticate)])
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ClockHeader, clock=store.clock)
    app.add_middleware(RequestMetrics, metrics=registry)  # outermost: sees every answer
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus a component for every kind, which the routes reference."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _, defs = models_json_schema(
        [(k, "validation") for k in KINDS],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs.get("$defs", {}))
    _document_errors(schema)
    app.openapi_schema = schema
    return schema


STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "status", "code", "reason", "message"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"const": "Status"},
        "status": {"const": "Failure"},
        "code": {"type": "integer"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {
                "causes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                            "reason": {"type": "string"},
                        },
                    },
                }
            },
        },
    },
}


def _document_errors(schema: dict[str, Any]) -> None:
    """Every error is a Status body (status.py renders them all): say so on every
    operation, for 4xx (400 undecodable body, 401, 403, 404, 409, 413, 422 invalid...) and
    503 (the store is down), in place of FastAPI's own 422 shape, which is never sent."""
    schema["components"]["schemas"]["Status"] = STATUS_SCHEMA
    error = {
        "description": "Refused: a Status body with reason, message and causes",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = error
            responses["503"] = {**error, "description": "The store cannot be reached"}
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
