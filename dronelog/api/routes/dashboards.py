"""The web dashboards: the files of `dashboards/` served at `/`, with security headers.

The dashboards are plain files (HTML, ES modules, CSS, vendored libraries); nothing is built
or fetched from elsewhere at run time. They talk to this same API with the bearer token of
the person logged in. The folder is the one shipped in the package (`dronelog.resources`:
`dashboards/` of the checkout, or the copy in an installed wheel), or the one named by
DRONELOG_DASHBOARDS_DIR.

Only `/`, `/config.json` and the folders css/, js/, img/ and vendor/ are served (files of the
kinds in MEDIA_TYPES, no hidden files), so nothing here can shadow `/api`, `/docs`,
`/openapi.json`, `/metrics`, `/healthz` or `/readyz`; the router is registered last all the
same.
"""

import json
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse

from dronelog import resources
from dronelog.api.problems import Problem

router = APIRouter(tags=["dashboards"], include_in_schema=False)

DEFAULT_DIR = resources.dashboards().resolve()
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
FOLDERS = ("css", "js", "img", "vendor")  # besides index.html and config.json


def dashboards_dir(request: Request) -> Path:
    configured = request.app.state.settings.dashboards_dir
    return Path(configured).resolve() if configured else DEFAULT_DIR


@lru_cache(maxsize=8)
def _tile_origins(config_file: Path, modified: float) -> tuple[str, ...]:
    """Origins of a map tile server named in the dashboards' config.json (none by default:
    the map then draws sites and routes on a plain layer, and needs no internet)."""
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    url = config.get("tile_url") if isinstance(config, dict) else None
    if not isinstance(url, str):
        return ()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ()
    subdomains = str(config.get("tile_subdomains") or "abc")
    hosts = ([parts.netloc.replace("{s}", s) for s in subdomains] if "{s}" in parts.netloc
             else [parts.netloc])
    return tuple(f"{parts.scheme}://{host}" for host in hosts)


def security_headers(folder: Path) -> dict[str, str]:
    config_file = folder / "config.json"
    try:
        modified = config_file.stat().st_mtime
    except OSError:
        modified = 0.0
    images = " ".join(("'self'", "data:", *_tile_origins(config_file, modified)))
    policy = ("default-src 'self'; script-src 'self'; style-src 'self'; "
              f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        # the camera for the packing station's barcode reading, on this origin only
        "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
        "Cache-Control": "no-cache",
    }


@router.get("/", summary="The dashboards")
@router.head("/")
def index(request: Request) -> FileResponse:
    return _file(request, "index.html")


@router.get("/index.html")
def index_file() -> RedirectResponse:
    return RedirectResponse("/", status_code=308)


@router.get("/config.json")
def config(request: Request) -> FileResponse:
    return _file(request, "config.json")


def _serve_folder(folder: str) -> None:
    def serve(path: str, request: Request) -> FileResponse:
        return _file(request, f"{folder}/{path}")

    router.add_api_route(f"/{folder}/{{path:path}}", serve, methods=["GET", "HEAD"])


for _folder in FOLDERS:
    _serve_folder(_folder)


def _file(request: Request, path: str) -> FileResponse:
    folder = dashboards_dir(request)
    target = (folder / path).resolve()
    hidden = any(part.startswith(".") for part in Path(path).parts)
    if (hidden or not target.is_relative_to(folder) or not target.is_file()
            or target.suffix not in MEDIA_TYPES):
        raise Problem(404, "Not Found", f"no dashboard file at /{path}")
    return FileResponse(target, media_type=MEDIA_TYPES[target.suffix],
                        headers=security_headers(folder))
