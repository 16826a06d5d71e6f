"""The portal's routes, mounted on the API's app by the composition root (server/main.py).

Pages are server-rendered (Jinja2); the few lines of JavaScript in static/portal.js refresh
the live parts of a page from /portal/watch. Every read goes through a Reader holding the
caller's principal; errors are the API's own (404 for another tenant's workload, 403 for
a tenant asking for Nodes), rendered as a page with the same status code.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from stratum.core import reports
from stratum.core.errors import ApiError, NotFound
from stratum.core.templates import family_of
from stratum.portal import catalog, drawing, live, pages, session
from stratum.portal.fleet import FleetCache
from stratum.portal.reads import Reader
from stratum.portal.workloads import Samples

HERE = Path(__file__).parent
STATIC = "/portal/static"
NAV = (
    ("/", "Overview"),
    ("/fleet", "Fleet"),
    ("/catalog", "Catalog"),
    ("/workloads", "Workloads"),
    ("/tenants", "Tenants"),
    ("/audit", "Audit"),
)
PHASES = ("Pending", "Bound", "Running", "Violated", "Succeeded", "Failed", "Released", "Rejected")
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    nav=NAV, static=STATIC, phases=PHASES, tenant_colour=drawing.tenant_colour
)


def _brief(value: Any) -> str:
    """A clause's settings on one line: `gpus: 8, models: [H100-SXM5-80GB]`, empties left out."""
    if isinstance(value, dict):
        parts = [f"{k}: {_brief(v)}" for k, v in value.items() if v not in (None, [], {}, "")]
        return ", ".join(parts) or "(defaults)"
    if isinstance(value, list):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"  # as in YAML, not Python
    return "-" if value is None else str(value)


templates.env.filters["brief"] = _brief


def mount(app: FastAPI) -> None:
    """Serve the portal at / beside the API (which stays under /apis)."""
    app.state.portal_samples = Samples()
    app.state.portal_fleet = FleetCache()
    app.include_router(build_router())
    app.mount(STATIC, StaticFiles(directory=str(HERE / "static")), name="portal-static")


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (no multipart here: no extra dependency for it)."""
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _reader(request: Request) -> Reader:
    principal = await session.principal_of(request)
    return Reader(request.app.state.objects, session.context_for(request, principal))


def _render(
    request: Request,
    template: str,
    reader: Reader | None,
    data: dict[str, Any],
    *,
    status: int = 200,
    watch: str = "",
    namespace: str = "",
    since: int | None = None,
) -> HTMLResponse:
    context = {
        "request": request,
        "who": reader.ctx.principal if reader else None,
        "platform": reader.platform if reader else False,
        "csrf": session.csrf_token(request),
        "fragment": request.headers.get("x-portal-fragment") == "1",
        "watch": watch,
        "watch_namespace": namespace,
        "watch_since": "" if since is None else since,
        "path": request.url.path,
        **data,
    }
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    session.remember_csrf(request, response)
    return response


async def _page(
    request: Request,
    template: str,
    build: Callable[[Reader], dict[str, Any]],
    *,
    watch: str = "",
    namespace: str = "",
) -> Response:
    try:
        reader = await _reader(request)
    except session.NotLoggedIn:
        return _login_redirect(request)

    def read() -> tuple[int | None, dict[str, Any]]:
        since = reader.store_version() if watch else None  # before the page's own reads
        return since, build(reader)

    try:
        since, data = await to_thread.run_sync(read)
    except ApiError as err:
        return _render(request, "error.html", reader, {"error": err}, status=err.code)
    return _render(request, template, reader, data, watch=watch, namespace=namespace, since=since)


def _since(value: str) -> int | None:
    """The resourceVersion a page was rendered at; anything else means "from now"."""
    return int(value) if value.isdigit() else None


def _int(value: str | None, default: int = 1) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def build_router() -> APIRouter:  # noqa: C901 - one route per page, each a few lines
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    async def login_form(request: Request, next: str = "/") -> Response:
        return _render(request, "login.html", None, {"next": next, "error": ""})

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        target = form.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never an open redirect
        try:
            session.check_csrf(request, form.get(session.CSRF_FIELD))
            token = form.get("token", "").strip()
            if not token:
                raise session.NotLoggedIn
            await session.resolve(request, token)
        except (session.NotLoggedIn, ApiError) as err:
            message = (
                err.message
                if isinstance(err, ApiError)
                else "that token is not valid (expired, revoked or mistyped)"
            )
            return _render(
                request, "login.html", None, {"next": target, "error": message}, status=401
            )
        response = RedirectResponse(target, status_code=303)
        session.set_cookie(response, session.SESSION_COOKIE, token)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        try:
            session.check_csrf(request, form.get(session.CSRF_FIELD))
        except ApiError as err:
            return _render(request, "error.html", None, {"error": err}, status=err.code)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(session.SESSION_COOKIE, path="/")
        return response

    @router.get("/")
    async def overview(request: Request) -> Response:
        cache: FleetCache = request.app.state.portal_fleet
        return await _page(
            request,
            "overview.html",
            lambda r: pages.overview(r, cache),
            watch="Workload,Event,Site",
        )

    @router.get("/fleet")
    async def fleet(request: Request) -> Response:
        cache: FleetCache = request.app.state.portal_fleet
        return await _page(
            request, "fleet.html", lambda r: pages.fleet_page(r, cache), watch="Site,Cluster"
        )

    @router.get("/fleet/clusters/{name}")
    async def cluster(request: Request, name: str, after: str | None = None) -> Response:
        return await _page(
            request, "cluster.html", lambda r: pages.cluster_page(r, name, after), watch="Cluster"
        )

    @router.get("/fleet/nodes/{name}")
    async def node(request: Request, name: str) -> Response:
        return await _page(request, "node.html", lambda r: pages.node_page(r, name), watch="Node")

    @router.get("/catalog")
    async def catalog_list(request: Request) -> Response:
        def build(r: Reader) -> dict[str, Any]:
            return {"templates": catalog.families(r, sorted(r.ctx.principal.tenant_roles))}

        return await _page(request, "catalog.html", build)

    def _template(r: Reader, namespace: str, family: str) -> dict[str, Any]:
        for t in catalog.families(r, sorted(r.ctx.principal.tenant_roles)):
            if t["metadata"]["namespace"] == namespace and family_of(t) == family:
                return t
        raise NotFound(f'WorkloadTemplate family "{family}" not found in namespace "{namespace}"')

    def _tenants(r: Reader) -> list[str]:
        if r.platform:
            return sorted(t["metadata"]["name"] for t in r.list("Tenant"))
        return sorted(n for n, role in r.ctx.principal.tenant_roles.items() if role != "viewer")

    @router.get("/catalog/{namespace}/{family}")
    async def launch_form(request: Request, namespace: str, family: str) -> Response:
        def build(r: Reader) -> dict[str, Any]:
            template = _template(r, namespace, family)
            return {
                "template": template,
                "result": catalog.Launch(catalog.form_fields(template)),
                "tenants": _tenants(r),
                "chosen": {"tenant": "", "name": family},
            }

        return await _page(request, "launch.html", build)

    @router.post("/catalog/{namespace}/{family}")
    async def launch(request: Request, namespace: str, family: str) -> Response:
        form = await _form(request)
        try:
            reader = await _reader(request)
        except session.NotLoggedIn:
            return _login_redirect(request)
        try:
            session.check_csrf(request, form.get(session.CSRF_FIELD))
        except ApiError as err:
            return _render(request, "error.html", reader, {"error": err}, status=err.code)
        tenant, name = form.get("tenant", ""), form.get("name", "").strip()
        go = form.get("action") == "launch"

        def work() -> dict[str, Any]:
            template = _template(reader, namespace, family)
            params = {k.removeprefix("p."): v for k, v in form.items() if k.startswith("p.")}
            result = catalog.submit(reader, template, tenant, name, params, launch=go)
            return {
                "template": template,
                "result": result,
                "tenants": _tenants(reader),
                "chosen": {"tenant": tenant, "name": name},
            }

        try:
            data = await to_thread.run_sync(work)
        except ApiError as err:
            return _render(request, "error.html", reader, {"error": err}, status=err.code)
        result = data["result"]
        if result.launched:
            return RedirectResponse(f"/workloads/{quote(tenant)}/{quote(name)}", status_code=303)
        # The form comes back with the server's messages next to its fields: a page served
        # as asked (200), so the browser logs no failed load; API clients get the API's 422.
        return _render(request, "launch.html", reader, data)

    @router.get("/workloads")
    async def workload_list(
        request: Request, tenant: str = "", phase: str = "", q: str = "", page: str = "1"
    ) -> Response:
        return await _page(
            request,
            "workloads.html",
            lambda r: pages.workload_list(r, tenant, phase, q, _int(page)),
            watch="Workload",
            namespace=tenant,
        )

    @router.get("/workloads/{namespace}/{name}")
    async def workload(request: Request, namespace: str, name: str) -> Response:
        samples: Samples = request.app.state.portal_samples
        return await _page(
            request,
            "workload.html",
            lambda r: pages.workload_page(r, samples, namespace, name),
            watch="Workload,Placement,Event",
            namespace=namespace,
        )

    @router.get("/tenants")
    async def tenants(request: Request) -> Response:
        return await _page(request, "tenants.html", pages.tenants_page, watch="Tenant,Workload")

    @router.get("/audit")
    async def audit(request: Request) -> Response:
        governance = request.app.state.governance
        return await _page(request, "audit.html", lambda r: pages.audit_page(r, governance))

    @router.get("/audit/sovereignty.csv")
    async def sovereignty_csv(request: Request) -> Response:
        try:
            reader = await _reader(request)
        except session.NotLoggedIn:
            return _login_redirect(request)
        governance = request.app.state.governance
        rows = await to_thread.run_sync(lambda: governance.sovereignty(reader.ctx.principal))
        out = io.StringIO()
        reports.write_csv(out, rows, reports.COLUMNS)
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="sovereignty.csv"'},
        )

    @router.get("/portal/watch")
    async def watch(
        request: Request, kinds: str = "Workload", namespace: str = "", since: str = ""
    ) -> Response:
        try:
            principal = await session.principal_of(request)
        except session.NotLoggedIn:
            return Response(status_code=401)
        ctx = session.context_for(request, principal)
        return StreamingResponse(
            live.changes(request, kinds.split(","), namespace or None, ctx, since=_since(since)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    return router
