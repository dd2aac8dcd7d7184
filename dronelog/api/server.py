"""How `dronelog api` runs the application under uvicorn.

Uvicorn believes `X-Forwarded-For` and `X-Forwarded-Proto` from 127.0.0.1 by default, so
any local client could name its own address, and the login limit counts per address. Here
only the proxies in DRONELOG_TRUSTED_PROXIES are believed, and none by default: the client
address is then the TCP peer's (docs/security.md, "Reverse proxy").
"""

import uvicorn
from fastapi import FastAPI

from dronelog.config import Settings


def server_config(app: FastAPI, settings: Settings, **overrides) -> uvicorn.Config:
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    options = {"host": settings.api_host, "port": settings.api_port,
               "log_level": settings.log_level.lower(), "proxy_headers": bool(proxies),
               "forwarded_allow_ips": proxies, **overrides}
    return uvicorn.Config(app, **options)
