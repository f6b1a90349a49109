"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from local assets: they work on a closed network.

The assets are those the pinned package ``fastapi-offline`` ships (``fastapi_offline/static``),
served under ``/docs-assets``; the pages are FastAPI's own, pointed at them. Nothing loads from a CDN
(no Google fonts, no Swagger validator badge, no ReDoc logo from Redocly's CDN), and each page sends a Content-Security-Policy that
allows only this origin plus the one inline script that starts Swagger UI (by its hash).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
#: ReDoc's sidebar shows an attribution logo it loads from Redocly's CDN; served here with that one
#: URL replaced by an empty image (the ``img`` then removes itself), the text link stays
REDOC_LOGO = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _csp(page: str) -> str:
    """Scripts from this origin and the page's own inline scripts (by hash); styles inline (both UIs set
    them at run time); requests to this origin only (the OpenAPI document); ReDoc's blob worker."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ).replace("  ", " ")


def _page(response: HTMLResponse) -> tuple[str, dict[str, str]]:
    body = bytes(response.body).decode("utf-8")
    return body, {"Content-Security-Policy": _csp(body), "X-Content-Type-Options": "nosniff"}


@functools.cache
def _redoc_script() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b'src:"data:,"')


def install(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` (the app is built with both turned off)."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} — API reference"
    swagger = _page(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
    )
    redoc = _page(
        get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
    )
    async def redoc_script(_request: Request) -> Response:
        return Response(_redoc_script(), media_type="text/javascript; charset=utf-8")

    app.add_route(f"{ASSETS_URL}/redoc.standalone.js", redoc_script, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    async def docs(_request: Request) -> HTMLResponse:
        return HTMLResponse(swagger[0], headers=swagger[1])

    async def redoc_page(_request: Request) -> HTMLResponse:
        return HTMLResponse(redoc[0], headers=redoc[1])

    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)
