"""The API's interactive docs (Swagger UI) served from the installed package, never from a
CDN: Stratum runs on air-gapped and sovereign sites. Also GET /version.

Swagger UI's files come from the `swagger-ui-bundle` package (a pinned Swagger UI dist in
a wheel); only the few files the page needs are served, by name, so no path from a
request ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel

import stratum

router = APIRouter()

ASSETS = "/docs/assets"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _dist() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]

    return Path(swagger_ui_bundle.swagger_ui_path)


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Stratum API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


@router.get(ASSETS + "/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    if name not in _FILES:
        raise HTTPException(status_code=404, detail=f"no docs asset {name!r}")
    return FileResponse(
        _dist() / name,
        media_type=_FILES[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


class Version(BaseModel):
    version: str
    apiVersion: str


@router.get("/version", summary="The server's version and the API version it serves")
async def version() -> Version:
    return Version(version=stratum.__version__, apiVersion="stratum.dev/v1alpha1")
