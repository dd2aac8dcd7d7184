"""How `dronelog api` runs the application under uvicorn.

uvicorn's h11 protocol, with each request told its connection's transport
(`StreamingH11Protocol`): the live streams write their batches to it directly
(dronelog/api/sse.py).

Uvicorn believes `X-Forwarded-For` and `X-Forwarded-Proto` from 127.0.0.1 by default, so
any local client could name its own address, and the login limit counts per address. Here
only the proxies in DRONELOG_TRUSTED_PROXIES are believed, and none by default: the client
address is then the TCP peer's (docs/security.md, "Reverse proxy").
"""

import asyncio

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from dronelog.api.sse import TRANSPORT
from dronelog.config import Settings


class StreamingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; each request's state (`scope["state"]`, a copy of the
    connection's) also holds the connection's transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A uvicorn without this attribute gives no transport: the streams then write
        # through the server, as with DRONELOG_STREAM_DIRECT_WRITES=false.
        if isinstance(getattr(self, "app_state", None), dict):
            self.app_state = {**self.app_state, TRANSPORT: transport}


def server_config(app: FastAPI, settings: Settings, **overrides) -> uvicorn.Config:
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    options = {"host": settings.api_host, "port": settings.api_port,
               "log_level": settings.log_level.lower(), "proxy_headers": bool(proxies),
               "forwarded_allow_ips": proxies, "http": StreamingH11Protocol, **overrides}
    return uvicorn.Config(app, **options)
