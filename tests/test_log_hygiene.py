"""No password or token reaches the logs: the API, the ingester and the scheduler run as real
processes at DEBUG level while passwords and tokens go through them; their logs must not hold
either (issue 7: "no secrets or tokens in logs")."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from dronelog.broker import free_port
from tests.support import IngesterProcess

PASSWORD = "correct horse battery staple"
BROKER_SECRET = "broker-secret-4711"


def run(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dronelog", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=True)


@pytest.mark.timeout(120)
def test_passwords_and_tokens_stay_out_of_the_logs(mosquitto, database_url, tmp_path):
    url = mosquitto.url.replace("mqtt://", f"mqtt://ingester:{BROKER_SECRET}@")
    env = {**os.environ, "DRONELOG_DATABASE_URL": database_url, "DRONELOG_MQTT_URL": url,
           "DRONELOG_LOG_LEVEL": "DEBUG", "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
           "DRONELOG_API_PORT": str(free_port())}
    run(env, "users", "add", "disp-9", "--role", "dispatcher", "--password-stdin",
        stdin=PASSWORD + "\n")
    device_token = run(env, "users", "token", "disp-9").stdout.strip()
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = [subprocess.Popen([sys.executable, "-m", "dronelog", name], env=env,
                                  cwd=tmp_path, stdout=open(logs / f"{name}.out", "wb"),
                                  stderr=open(logs / f"{name}.err", "wb"))
                 for name in ("api", "scheduler")]
    ingester = IngesterProcess(database_url, url, tmp_path, log_level="DEBUG").start()
    base = f"http://127.0.0.1:{env['DRONELOG_API_PORT']}"
    try:
        ingester.wait_connected()
        deadline = time.monotonic() + 30
        while not _answers(base) and time.monotonic() < deadline:
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as http:
            wrong = http.post("/api/v1/auth/token", data={"username": "disp-9",
                                                          "password": PASSWORD + "x"})
            assert wrong.status_code == 401
            login = http.post("/api/v1/auth/token", data={"username": "disp-9",
                                                          "password": PASSWORD})
            token = login.json()["access_token"]
            for bearer in (token, device_token, "not-a-token-" + token[:8]):
                http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {bearer}"})
            http.get("/api/v1/alerts", params={"access_token": token})  # tokens in URLs too
        time.sleep(1)
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)
        ingester.terminate()
    written = "".join(path.read_text(errors="replace") for path in logs.iterdir())
    written += ingester.log_path.read_text(errors="replace")
    assert "GET /api/v1/alerts" in written  # the access log is on: requests are logged...
    for secret in (PASSWORD, token, device_token, BROKER_SECRET):  # ...secrets are not
        assert secret not in written, secret[:6]


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
