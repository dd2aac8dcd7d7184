"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), from packaged
assets under a Content-Security-Policy.

FastAPI's own pages load unpinned scripts from a CDN: they are blank offline, and a CDN that
serves something else runs it with the API's origin (where a token may be typed in). The
assets come from the `fastapi-offline` package instead (Swagger UI and ReDoc's standalone
bundles, MIT and Apache-2.0, pinned with the package), served at `/docs/assets/`. Each page
is FastAPI's HTML pointed at them; its small inline script is allowed by its SHA-256 in the
page's policy, computed from the very HTML sent, and nothing else runs.
"""

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from dronelog.api.problems import Problem

router = APIRouter(include_in_schema=False)
ASSETS = Path(fastapi_offline.__file__).parent / "static"
MEDIA_TYPES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
               "swagger-ui.css": "text/css; charset=utf-8",
               "redoc.standalone.js": "text/javascript; charset=utf-8",
               "favicon.png": "image/png"}
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def page_headers(html: str, inline_styles: bool = False) -> dict[str, str]:
    """The policy for one page: its own inline scripts (by hash) and the packaged assets.
    ReDoc writes its styles into <style> elements as it renders, hence `inline_styles`."""
    hashes = {kind: " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for tag, body in _INLINE.findall(html) if tag == kind) for kind in ("script", "style")}
    styles = "'unsafe-inline'" if inline_styles else hashes["style"]
    policy = (f"default-src 'self'; script-src 'self' {hashes['script']}; "
              f"style-src 'self' {styles}; img-src 'self' data:; connect-src 'self'; "
              "worker-src 'self' blob:; font-src 'self'; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")
    return {"Content-Security-Policy": " ".join(policy.split()),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}


def _page(html: str, inline_styles: bool = False) -> HTMLResponse:
    return HTMLResponse(html, headers=page_headers(html, inline_styles))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - Swagger UI",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png", oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_ui_parameters=request.app.swagger_ui_parameters).body.decode())


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    return _page(get_swagger_ui_oauth2_redirect_html().body.decode())


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(get_redoc_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - ReDoc",
        redoc_js_url="/docs/assets/redoc.standalone.js",
        redoc_favicon_url="/docs/assets/favicon.png", with_google_fonts=False).body.decode(),
        inline_styles=True)


@router.get("/docs/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in MEDIA_TYPES:
        raise Problem(404, "Not Found", f"no documentation asset {name!r}")
    return FileResponse(ASSETS / name, media_type=MEDIA_TYPES[name],
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Cache-Control": "public, max-age=86400"})
