"""Whose address is the client's (issue 15, finding 7): uvicorn believed `X-Forwarded-For`
from 127.0.0.1, so any local client chose its own address for the login limit. `dronelog
api` now believes it only from DRONELOG_TRUSTED_PROXIES (none by default). The real command
is started, as an operator starts it, and asked over HTTP."""

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support import free_port


def _recorded_client(tmp_path, **environment: str) -> str:
    """Start `dronelog api`, send one wrong password claiming to come from 203.0.113.9,
    and read the address the login limit recorded."""
    database = tmp_path / f"api-{uuid.uuid4().hex}.db"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "DRONELOG_TRUSTED_PROXIES"},
           "DRONELOG_DATABASE_URL": f"sqlite:///{database}", "DRONELOG_API_PORT": str(port),
           "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
           "DRONELOG_MQTT_URL": "mqtt://127.0.0.1:9", **environment}
    server = subprocess.Popen([sys.executable, "-m", "dronelog", "api"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the API did not start within 60 s"
                time.sleep(0.2)
        refused = httpx.post(f"{base}/api/v1/auth/token", timeout=30,
                             data={"username": "dispatcher", "password": "wrong password"},
                             headers={"X-Forwarded-For": "203.0.113.9"})
        assert refused.status_code == 401
    finally:
        server.terminate()
        server.wait(30)
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        clients = connection.execute(text("SELECT client FROM login_failure")).scalars().all()
    engine.dispose()
    assert len(clients) == 1
    return clients[0]


@pytest.mark.timeout(180)
def test_forwarded_addresses_are_believed_only_from_configured_proxies(tmp_path):
    assert _recorded_client(tmp_path) == "127.0.0.1"
    assert _recorded_client(tmp_path, DRONELOG_TRUSTED_PROXIES="10.9.9.9") == "127.0.0.1"
    assert _recorded_client(tmp_path, DRONELOG_TRUSTED_PROXIES="127.0.0.1") == "203.0.113.9"
