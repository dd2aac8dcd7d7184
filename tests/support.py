"""Test helpers that speak the public contract, as a real drone or scanner would."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.api.app import create_app
from dronelog.api.server import server_config
from dronelog.broker import free_port
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.messages import Telemetry
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.writer import BatchWriter

LAYOUT = TopicLayout()
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


CHROMIUM = Path(os.environ.get("DRONELOG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator:
    """The real Chromium under Playwright, headless; a missing binary is listed as a missing
    real component (a failure under DRONELOG_REQUIRE_REAL)."""
    if not CHROMIUM.exists():
        import conftest  # pytest's own instance, whose summary lists what was missing

        conftest.missing_component(f"Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def run_dashboard_module(name: str, script: str, payload, what: str) -> object:
    """Run `script` under node with the dashboards' module `name` imported as `m` and
    `payload` (JSON) as `input`; returns what the script writes to stdout, as JSON."""
    node = shutil.which("node")
    if node is None:
        import conftest

        conftest.missing_component(f"node (Debian: apt-get install nodejs), to run {what}")
    module = (Path(__file__).resolve().parents[1] / "dashboards" / "js" / name).as_uri()
    done = subprocess.run(
        [node, "--input-type=module", "-e",
         f"const m = await import('{module}');"
         "const input = JSON.parse((await import('fs')).default.readFileSync(0, 'utf8'));"
         + script],
        input=json.dumps(payload), capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def telemetry(drone_id: str = "uav-01", seq: int = 0, at: datetime | None = None,
              **fields) -> Telemetry:
    values = dict(schema_version=1, event_id=uuid.uuid4(), event_time=at or datetime.now(UTC),
                  drone_id=drone_id, seq=seq, lat=36.78, lon=119.95, alt_m=150.0,
                  ground_speed_mps=15.0, heading_deg=90.0, battery_pct=80.0,
                  payload_temp_c=5.0, link_quality_pct=90.0)
    values.update(fields)
    return Telemetry(**values)


def telemetry_stream(count: int, drones: int = 10, start: datetime | None = None
                     ) -> list[tuple[str, bytes]]:
    """`count` distinct telemetry messages as (topic, payload)."""
    start = start or datetime.now(UTC) - timedelta(minutes=1)
    messages = []
    for i in range(count):
        drone = f"uav-{i % drones:02d}"
        event = telemetry(drone, seq=i // drones, at=start + timedelta(milliseconds=i))
        messages.append((LAYOUT.telemetry(drone), event.model_dump_json().encode()))
    return messages


class Publisher:
    """A QoS 1 publisher with a persistent session: unacknowledged messages survive its own
    reconnects (paho re-sends them), as a real device's client would."""

    def __init__(self, url: str, client_id: str | None = None, protocol: str = "5") -> None:
        port = int(url.rsplit(":", 1)[1])
        client_id = client_id or f"pub-{uuid.uuid4().hex[:8]}"
        if protocol == "5":
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv5)
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv311, clean_session=False)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.max_inflight_messages_set(100)
        if protocol == "5":
            self.client.connect("127.0.0.1", port, clean_start=False)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.on_publish = self._on_publish
        self.client.loop_start()
        self.published = 0
        self.acked = 0
        self._lock = threading.Lock()

    def _on_publish(self, _client, _userdata, _mid, _reason, _properties) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue a message; while disconnected paho keeps it and sends it on reconnect."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"publish refused: {mqtt.error_string(info.rc)}")
        self.published += 1

    def publish_all(self, messages, qos: int = 1) -> None:
        for topic, payload in messages:
            self.publish(topic, payload, qos)

    def wait_all_acked(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.published:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.published - self.acked} messages not acknowledged "
                                   "by the broker")
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class IngesterProcess:
    """`dronelog ingest` as a real process, so tests can SIGKILL and SIGTERM it."""

    def __init__(self, database_url: str, mqtt_url: str, workdir: Path, protocol: str = "5",
                 **settings) -> None:
        self.env = {**os.environ, "DRONELOG_DATABASE_URL": database_url,
                    "DRONELOG_MQTT_URL": mqtt_url, "DRONELOG_MQTT_PROTOCOL": protocol,
                    "DRONELOG_LOG_FORMAT": "json", "DRONELOG_CONFIG": str(workdir / "none.toml")}
        self.env.update({f"DRONELOG_{k.upper()}": str(v) for k, v in settings.items()})
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "ingester.log"

    def start(self) -> "IngesterProcess":
        log = open(self.log_path, "ab")  # the child process owns it
        self.process = subprocess.Popen([sys.executable, "-m", "dronelog", "ingest"],
                                        env=self.env, cwd=self.workdir, stdout=log, stderr=log)
        return self

    def wait_connected(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"connected to broker" in self.log_path.read_bytes():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"ingester exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError("ingester did not connect")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def count(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


def wait_for_count(engine: Engine, sql: str, expected: int, timeout: float = 60,
                   settle: float = 0.0) -> int:
    """Poll until `sql` counts `expected` (then, with `settle`, check it stays there)."""
    deadline = time.monotonic() + timeout
    value = count(engine, sql)
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = count(engine, sql)
    if settle:
        time.sleep(settle)
        value = count(engine, sql)
    return value


TOWN, LAB = "cjzxwsy", "pdrmyy"
ROLES = {"lab-1": (Role.LAB, LAB), "disp-1": (Role.DISPATCHER, None),
         "admin-1": (Role.ADMIN, None), "scanner-cj": (Role.DEVICE, TOWN)}


class Api:
    """A running API server and a token per role."""

    def __init__(self, engine, settings: Settings, clock: ManualClock) -> None:
        self.engine, self.clock = engine, clock
        port = free_port()
        config = server_config(create_app(settings, engine, clock), settings,  # as `dronelog api`
                               host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.tokens = {}
        with engine.begin() as connection:
            for user_id, (role, site) in ROLES.items():
                add_user(connection, user_id, role, clock.now(), password=f"pw-{user_id}",
                         site_id=site)
                self.tokens[role] = issue_token(connection, user_id, clock.now(),
                                                timedelta(hours=12))

    def as_role(self, role: Role) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)


def scan(name: str, minutes_ago: float = 5, **changes) -> dict:
    payload = json.loads(json.dumps(EXAMPLES[name]))
    payload.update(event_id=str(uuid.uuid4()),
                   event_time=(datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat())
    payload.update(changes)
    return payload


def write_telemetry(engine, clock, drone: str, count: int, **fields) -> list[str]:
    """`count` telemetry reports of `drone` up to now, stored as the ingester stores them."""
    events = [telemetry(drone, seq=i, at=clock.now() - timedelta(seconds=count - i), **fields)
              for i in range(count)]
    topic = LAYOUT.telemetry(drone)
    BatchWriter(engine, clock).write(
        [Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), e) for e in events],
        [])
    return [str(e.event_id) for e in events]


# --- fault suite helpers (tests/test_fault_suite.py) ---------------------------------------


def log_count(path: Path, needle: str) -> int:
    """How often `needle` occurs in a log file (0 while the file does not exist)."""
    try:
        return path.read_bytes().count(needle.encode())
    except FileNotFoundError:
        return 0


def wait_for_log(path: Path, needle: str, times: int = 1, timeout: float = 30,
                 process: subprocess.Popen | None = None) -> None:
    """Wait until `needle` occurs `times` times in the log at `path`. A restarted process
    appends to the same log, so this counts occurrences rather than looking for one."""
    deadline = time.monotonic() + timeout
    while log_count(path, needle) < times:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited ({process.returncode}) before logging "
                               f"{needle!r}: {path.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{needle!r} not logged {times} time(s) in {timeout} s: "
                               f"{path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Poll `predicate` until it returns something true; that value, or the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


class DronelogProcess:
    """`python -m dronelog <command...>` as a real process (the scheduler, the API, ...), with
    its settings as DRONELOG_* variables, so a test can SIGKILL, SIGTERM and restart it as a
    supervisor would. Every run appends to the same log file."""

    def __init__(self, command: list[str], database_url: str, mqtt_url: str, workdir: Path,
                 name: str, protocol: str = "5", **settings) -> None:
        self.command = command
        self.env = {**os.environ, "DRONELOG_DATABASE_URL": database_url,
                    "DRONELOG_MQTT_URL": mqtt_url, "DRONELOG_MQTT_PROTOCOL": protocol,
                    "DRONELOG_LOG_FORMAT": "json",
                    "DRONELOG_CONFIG": str(workdir / "none.toml")}
        self.env.update({f"DRONELOG_{k.upper()}": str(v) for k, v in settings.items()})
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "DronelogProcess":
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen([sys.executable, "-m", "dronelog", *self.command],
                                            env=self.env, cwd=self.workdir, stdout=log,
                                            stderr=log)
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if not self.alive():
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
