"""Kubernetes-shaped routes for every kind, made from the kind registry.

    /apis/stratum.dev/v1alpha1/{plural}[/{name}[/status]]                      cluster-scoped
    /apis/stratum.dev/v1alpha1/namespaces/{namespace}/{plural}[/{name}[/status]] namespaced
    /apis/stratum.dev/v1alpha1/{plural}                                        namespaced, all
    /apis/stratum.dev/v1alpha1/apply                                           a List, all or none

PUT replaces (409 on a stale metadata.resourceVersion); PATCH is server-side apply: create
or update from the whole object, which is what `stratum apply` sends.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from stratum.api.v1alpha1 import API_VERSION, KINDS, Resource
from stratum.core.access import Verb
from stratum.core.errors import Cause, Invalid, PayloadTooLarge
from stratum.core.manifests import approximate_size, load_body
from stratum.core.validation import identify
from stratum.server.limits import HEAVY_BODY_BYTES, HEAVY_WORKERS, MAX_OBJECT_BYTES
from stratum.server.security import RequestContext, authenticate, context, warning_headers
from stratum.server.services.objects import ObjectService
from stratum.server.watch import ChangeNotifier, watch_stream

PREFIX = "/apis/stratum.dev/v1alpha1"
T = TypeVar("T")


def _service(request: Request) -> ObjectService:
    service: ObjectService = request.app.state.objects
    return service


def _dry_run(value: str | None) -> bool:
    if value in (None, ""):
        return False
    if value == "All":
        return True
    raise Invalid(f"dryRun: expected 'All' or nothing, got {value!r}")


async def _off_loop(request: Request, raw: bytes, work: Callable[[], T]) -> T:
    """Run the parse-validate-write of one request in a worker thread, never on the event
    loop (a 4 MiB YAML body took 15 s there, issue #11). Large bodies share a few threads
    of their own, so that a flood of them cannot take every worker from small requests."""
    limiter = None
    if len(raw) > HEAVY_BODY_BYTES:
        limiter = getattr(request.app.state, "heavy_limiter", None)
        if limiter is None:
            limiter = request.app.state.heavy_limiter = CapacityLimiter(HEAVY_WORKERS)
    return await to_thread.run_sync(work, limiter=limiter)


def _parse(raw: bytes, request: Request) -> Any:
    return load_body(raw, request.headers.get("content-type"))


def _one_object(raw: bytes) -> bytes:
    """A body that holds one object may be no larger than an object may be."""
    if len(raw) > MAX_OBJECT_BYTES:
        raise PayloadTooLarge(
            f"request body of {len(raw)} bytes exceeds the limit of {MAX_OBJECT_BYTES} bytes "
            "for one object"
        )
    return raw


def _check_item_sizes(items: Any) -> None:
    for i, item in enumerate(items if isinstance(items, list) else []):
        size = approximate_size(item)
        if size > MAX_OBJECT_BYTES:
            message = f"about {size} bytes, over the limit of {MAX_OBJECT_BYTES} for one object"
            raise PayloadTooLarge(
                f"items[{i}] ({identify(item)}): {message}", causes=[Cause(f"items[{i}]", message)]
            )


def _ref(kind: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{kind}"}


def _body_doc(kind: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref(kind)},
                "application/yaml": {"schema": _ref(kind)},
            },
        }
    }


def _ok(kind: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": kind, "content": {"application/json": {"schema": _ref(kind)}}}}


def _respond(body: Any, ctx: RequestContext, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=warning_headers(ctx.warnings))


def _list_response(kind: str, page: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
    if page.continue_token:
        meta["continue"] = page.continue_token
    return {"apiVersion": API_VERSION, "kind": f"{kind}List", "metadata": meta, "items": page.items}


def _add_kind_routes(router: APIRouter, model: type[Resource]) -> None:
    kind, plural = model.KIND, model.PLURAL
    ns_path = "/namespaces/{namespace}" if model.NAMESPACED else ""
    base = f"{ns_path}/{plural}"
    tag: list[str | Enum] = [plural]

    async def list_objects(
        request: Request,
        namespace: str | None = None,
        label_selector: str | None = Query(None, alias="labelSelector"),
        limit: int | None = Query(None, ge=1, le=5000),
        continue_token: str | None = Query(None, alias="continue"),
        watch: bool = False,
        resource_version: str | None = Query(None, alias="resourceVersion"),
    ) -> Any:
        service = _service(request)
        ctx = context(request)
        namespace = namespace if model.NAMESPACED else None
        if watch:
            since = None
            if resource_version not in (None, "", "0"):
                try:
                    since = int(resource_version)  # type: ignore[arg-type]
                except ValueError:
                    raise Invalid(
                        f"resourceVersion: {resource_version!r} is not a number the server returned"
                    ) from None
            notifier: ChangeNotifier = request.app.state.notifier
            # Resolve errors (bad selector, compacted history) before the stream starts.
            from stratum.core.selectors import parse_selector

            parse_selector(label_selector)
            # Refuse (or 404) before the stream starts, as a list would.
            await to_thread.run_sync(
                lambda: service.list(kind, namespace=namespace, limit=1, ctx=ctx)
            )
            if since is not None:
                await to_thread.run_sync(lambda: _check_since(service, since))
            return StreamingResponse(
                watch_stream(
                    service,
                    notifier,
                    kind=kind,
                    namespace=namespace,
                    since=since,
                    label_selector=label_selector,
                    ctx=ctx,
                ),
                media_type="application/x-ndjson",
            )
        page = await to_thread.run_sync(
            lambda: service.list(
                kind,
                namespace=namespace,
                label_selector=label_selector,
                limit=limit,
                continue_token=continue_token,
                ctx=ctx,
            )
        )
        return await to_thread.run_sync(lambda: JSONResponse(_list_response(kind, page)))

    async def create_object(
        request: Request,
        namespace: str | None = None,
        dry_run: str | None = Query(None, alias="dryRun"),
    ) -> Any:
        service = _service(request)
        namespace = namespace if model.NAMESPACED else None
        ctx = context(request)
        dry = _dry_run(dry_run)
        # Authorized from the URL before the body is even read; the rest off the loop.
        service.authorize_write(kind, namespace=namespace, ctx=ctx)
        raw = _one_object(await request.body())

        def work() -> JSONResponse:
            obj = service.validate(_parse(raw, request), kind=kind, namespace=namespace)
            return _respond(service.create(obj, dry_run=dry, ctx=ctx), ctx, status_code=201)

        return await _off_loop(request, raw, work)

    async def get_object(request: Request, name: str, namespace: str | None = None) -> Any:
        service = _service(request)
        namespace = namespace if model.NAMESPACED else None
        ctx = context(request)
        return await to_thread.run_sync(
            lambda: JSONResponse(service.get(kind, namespace, name, ctx=ctx))
        )

    async def write_body(
        request: Request,
        name: str,
        namespace: str | None,
        dry_run: str | None,
        write: Callable[..., JSONResponse],
        verb: Verb = "write",
    ) -> JSONResponse:
        """Authorize from the URL, then parse and validate the body against the URL, run
        one service write and render its answer, all off the loop."""
        service = _service(request)
        namespace = namespace if model.NAMESPACED else None
        ctx = context(request)
        dry = _dry_run(dry_run)
        service.authorize_write(kind, namespace=namespace, name=name, verb=verb, ctx=ctx)
        raw = _one_object(await request.body())

        def work() -> JSONResponse:
            data = _parse(raw, request)
            obj = service.validate(data, kind=kind, namespace=namespace, name=name)
            return write(service, obj, dry, ctx)

        return await _off_loop(request, raw, work)

    async def replace_object(
        request: Request,
        name: str,
        namespace: str | None = None,
        dry_run: str | None = Query(None, alias="dryRun"),
    ) -> Any:
        return await write_body(
            request,
            name,
            namespace,
            dry_run,
            lambda s, o, d, c: _respond(s.replace(o, dry_run=d, ctx=c), c),
        )

    async def apply_object(
        request: Request,
        name: str,
        namespace: str | None = None,
        dry_run: str | None = Query(None, alias="dryRun"),
    ) -> Any:
        def apply(s: ObjectService, o: Resource, d: bool, c: RequestContext) -> JSONResponse:
            result = s.apply(o, dry_run=d, ctx=c)
            return _respond(result.object, c, 201 if result.action == "created" else 200)

        return await write_body(request, name, namespace, dry_run, apply)

    async def delete_object(
        request: Request,
        name: str,
        namespace: str | None = None,
        resource_version: str | None = Query(None, alias="resourceVersion"),
        dry_run: str | None = Query(None, alias="dryRun"),
    ) -> Any:
        service = _service(request)
        namespace = namespace if model.NAMESPACED else None
        ctx = context(request)
        return await to_thread.run_sync(
            lambda: JSONResponse(
                service.delete(
                    kind,
                    namespace,
                    name,
                    resource_version=resource_version,
                    dry_run=_dry_run(dry_run),
                    ctx=ctx,
                )
            )
        )

    async def replace_status(
        request: Request,
        name: str,
        namespace: str | None = None,
        dry_run: str | None = Query(None, alias="dryRun"),
    ) -> Any:
        return await write_body(
            request,
            name,
            namespace,
            dry_run,
            lambda s, o, d, c: _respond(s.replace_status(o, dry_run=d, ctx=c), c),
            verb="status",
        )

    item = f"{base}/{{name}}"
    router.add_api_route(
        base,
        list_objects,
        methods=["GET"],
        tags=tag,
        summary=f"List or watch {plural}",
        name=f"list_{plural}",
    )
    router.add_api_route(
        base,
        create_object,
        methods=["POST"],
        tags=tag,
        status_code=201,
        summary=f"Create a {kind}",
        openapi_extra=_body_doc(kind),
        responses={201: _ok(kind)[200]},
        name=f"create_{plural}",
    )
    router.add_api_route(
        item,
        get_object,
        methods=["GET"],
        tags=tag,
        responses=_ok(kind),
        summary=f"Read a {kind}",
        name=f"get_{plural}",
    )
    router.add_api_route(
        item,
        replace_object,
        methods=["PUT"],
        tags=tag,
        responses=_ok(kind),
        summary=f"Replace a {kind} (409 if metadata.resourceVersion is stale)",
        openapi_extra=_body_doc(kind),
        name=f"replace_{plural}",
    )
    router.add_api_route(
        item,
        apply_object,
        methods=["PATCH"],
        tags=tag,
        responses=_ok(kind),
        summary=f"Apply a {kind}: create it or update it to this state",
        openapi_extra=_body_doc(kind),
        name=f"apply_{plural}",
    )
    router.add_api_route(
        item,
        delete_object,
        methods=["DELETE"],
        tags=tag,
        responses=_ok(kind),
        summary=f"Delete a {kind}",
        name=f"delete_{plural}",
    )
    router.add_api_route(
        f"{item}/status",
        get_object,
        methods=["GET"],
        tags=tag,
        responses=_ok(kind),
        summary=f"Read a {kind}'s status",
        name=f"get_{plural}_status",
    )
    router.add_api_route(
        f"{item}/status",
        replace_status,
        methods=["PUT"],
        tags=tag,
        responses=_ok(kind),
        openapi_extra=_body_doc(kind),
        summary=f"Replace a {kind}'s status",
        name=f"status_{plural}",
    )
    if model.NAMESPACED:
        router.add_api_route(
            f"/{plural}",
            list_objects,
            methods=["GET"],
            tags=tag,
            summary=f"List or watch {plural} in every namespace",
            name=f"list_{plural}_all",
        )


def _check_since(service: ObjectService, since: int) -> None:
    with service.store.read() as tx:
        tx.changes_since(since, limit=1)


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)])

    @router.get("", tags=["discovery"], summary="The kinds this API serves")
    async def api_resources() -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "APIResourceList",
            "groupVersion": API_VERSION,
            "resources": [
                {
                    "name": k.PLURAL,
                    "kind": k.KIND,
                    "namespaced": k.NAMESPACED,
                    "shortNames": list(k.SHORT_NAMES),
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
                for k in KINDS
            ],
        }

    @router.post(
        "/apply",
        tags=["apply"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"const": "List"},
                                "items": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    }
                },
            }
        },
        summary="Apply many objects of any kinds in one transaction: all or none",
    )
    async def apply_list(
        request: Request, dry_run: str | None = Query(None, alias="dryRun")
    ) -> Any:
        service = _service(request)
        ctx = context(request)
        dry = _dry_run(dry_run)
        # The kinds are in the body: refuse a caller who may write nothing before reading
        # it; parse it off the loop, then authorize every item before validating any.
        service.authorize_any_write(ctx)
        raw = await request.body()

        def work() -> Any:
            body = _parse(raw, request)
            if not isinstance(body, dict) or body.get("kind") != "List":
                raise Invalid("kind: expected a List with items")
            _check_item_sizes(body.get("items"))
            objs = service.validate_batch(body.get("items"), ctx=ctx)
            return service.apply_many(objs, dry_run=dry, ctx=ctx)

        results = await _off_loop(request, raw, work)
        return _respond(
            {
                "apiVersion": API_VERSION,
                "kind": "ApplyResult",
                "dryRun": _dry_run(dry_run),
                "warnings": ctx.warnings,
                "items": [
                    {
                        "action": r.action,
                        "kind": r.object["kind"],
                        "namespace": r.object["metadata"].get("namespace"),
                        "name": r.object["metadata"]["name"],
                        "resourceVersion": r.object["metadata"]["resourceVersion"],
                    }
                    for r in results
                ],
            },
            ctx,
        )

    for model in KINDS:
        _add_kind_routes(router, model)
    return router
