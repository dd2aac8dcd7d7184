"""The live stream (SSE) over real HTTP on SQLite and PostgreSQL: what arrives, for whom, and
resuming with Last-Event-ID after a disconnect."""

import json
import queue
import socket
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.config import Settings
from dronelog.storage.tables import TelemetryPoint
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import TOWN, scan, write_telemetry


class Listener:
    """Reads one SSE stream in a thread: frames as (id, event, data) into a queue."""

    def __init__(self, base_url: str, headers: dict, **params) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.status: queue.Queue = queue.Queue()
        self.last_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url, headers, params),
                                        daemon=True)
        self._thread.start()
        code = self.status.get(timeout=10)
        assert code == 200, code

    def _run(self, base_url: str, headers: dict, params: dict) -> None:
        try:
            self._read(base_url, headers, params)
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def _read(self, base_url: str, headers: dict, params: dict) -> None:
        with httpx.Client(base_url=base_url, timeout=httpx.Timeout(30, read=None)) as http:
            with http.stream("GET", "/api/v1/stream", headers=headers, params=params) as r:
                self._response = r
                self.status.put(r.status_code)
                frame: dict = {}
                for line in r.iter_lines():
                    if not line:
                        if "data" in frame:
                            self.frames.put((frame.get("id"), frame.get("event"),
                                             json.loads(frame["data"])))
                        frame = {}
                    elif not line.startswith(":"):
                        key, _, value = line.partition(":")
                        frame[key] = value.removeprefix(" ")

    def take(self, count: int, timeout: float = 15) -> list[tuple[str, dict]]:
        """The next `count` events as (event, data); fails if they do not come in time."""
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count:
            frame_id, event, data = self.frames.get(timeout=max(0.01, deadline -
                                                                time.monotonic()))
            if frame_id:
                self.last_id = frame_id
            got.append((event, data))
        return got

    def quiet(self, seconds: float = 1.0) -> list:
        """Whatever else arrives within `seconds` (expected: nothing)."""
        time.sleep(seconds)
        extra = []
        while not self.frames.empty():
            extra.append(self.frames.get_nowait()[1:])
        return extra

    def close(self) -> None:
        """Hang up, as a browser tab does when it closes."""
        self._stop.set()
        self._response.extensions["network_stream"].get_extra_info("socket").shutdown(
            socket.SHUT_RDWR)
        self._thread.join(5)
        assert not self._thread.is_alive()


def test_the_stream_brings_telemetry_custody_and_alert_changes(api, engine, clock):
    url = str(api.http.base_url)
    dispatcher = api.as_role(Role.DISPATCHER)
    everything = Listener(url, dispatcher)
    one_drone = Listener(url, dispatcher, drone="uav-07", types="telemetry")
    lab = Listener(url, api.as_role(Role.LAB), site=TOWN)  # a lab user gets its own site
    with engine.begin() as connection:  # the labs where the specimen is collected, and a third
        tokens = {}
        for user_id, site in (("lab-town", TOWN), ("lab-other", "wjwsy")):
            add_user(connection, user_id, Role.LAB, clock.now(), site_id=site)
            tokens[site] = issue_token(connection, user_id, clock.now(), timedelta(hours=1))
    origin = Listener(url, {"Authorization": f"Bearer {tokens[TOWN]}"}, types="alert")
    third = Listener(url, {"Authorization": f"Bearer {tokens['wjwsy']}"}, types="alert")
    sent = write_telemetry(engine, clock, "uav-03", 2) + write_telemetry(engine, clock,
                                                                          "uav-07", 1)
    got = everything.take(3)
    assert [(e, d["event_id"]) for e, d in got] == [("telemetry", i) for i in sent]
    assert got[0][1]["drone_id"] == "uav-03" and got[0][1]["payload_temp_c"] == 5.0
    assert [d["event_id"] for _, d in one_drone.take(1)] == [sent[2]]

    collected = scan("custody.collected", minutes_ago=60)
    assert api.http.post("/api/v1/custody", headers=api.as_role(Role.DEVICE),
                         json=collected).status_code == 201
    event, data = everything.take(1)[0]
    assert (event, data["event_id"], data["barcode"], data["kind"]) == (
        "custody", collected["event_id"], "CJ2611220042", "collected")
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()  # 60 min old: a breach
    event, data = everything.take(1)[0]
    assert (event, data["change"], data["alert"]["kind"]) == ("alert", "opened", "breach")
    assert (data["alert"]["details"]["barcode"], data["alert"]["origin_site_id"]) == (
        "CJ2611220042", TOWN)  # a code with parameters; the origin's lab is told too
    alert_id = data["alert"]["id"]
    assert api.http.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                         headers=dispatcher).status_code == 200
    event, data = everything.take(1)[0]
    assert (event, data["change"], data["alert"]["state"], data["alert"]["acknowledged_by"]
            ) == ("alert", "acknowledged", "acknowledged", "disp-1")
    # The lab user's site is the lab (where the specimen is due, so the breach is theirs),
    # not the township where it was collected (so the collection scan is not).
    assert [(e, d["change"]) for e, d in lab.take(2)] == [("alert", "opened"),
                                                          ("alert", "acknowledged")]
    assert lab.quiet(0.5) == []
    assert [(e, d["change"]) for e, d in origin.take(2)] == [("alert", "opened"),
                                                             ("alert", "acknowledged")]
    assert third.quiet(0.1) == []
    assert one_drone.quiet(0.1) == [] and everything.quiet(0.1) == []
    for listener in (everything, one_drone, lab, origin, third):
        listener.close()


def test_a_client_resumes_where_it_left_off(api, engine, clock):
    url = str(api.http.base_url)
    dispatcher = api.as_role(Role.DISPATCHER)
    first = Listener(url, dispatcher, types="telemetry")
    before = write_telemetry(engine, clock, "uav-01", 3)
    assert [d["event_id"] for _, d in first.take(3)] == before
    cursor = first.last_id
    first.close()
    missed = write_telemetry(engine, clock, "uav-01", 4)
    again = Listener(url, {**dispatcher, "Last-Event-ID": cursor}, types="telemetry")
    assert [d["event_id"] for _, d in again.take(4)] == missed
    assert again.quiet(0.5) == []
    again.close()
    stale = Listener(url, {**dispatcher, "Last-Event-ID": "not-a-cursor"}, types="telemetry")
    event, data = stale.take(1)[0]
    assert event == "reset" and "re-read" in data["reason"]
    later = write_telemetry(engine, clock, "uav-01", 1)
    assert [d["event_id"] for _, d in stale.take(1)] == later
    stale.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_a_row_committed_out_of_id_order_is_not_skipped(api, engine, clock):
    listener = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER),
                        types="telemetry")

    def row(seq: int) -> dict:
        return {"event_id": uuid.uuid4(), "drone_id": "uav-09", "seq": seq,
                "event_time": clock.now(), "received_at": clock.now(), "lat": 36.7,
                "lon": 119.9, "alt_m": 120.0, "ground_speed_mps": 12.0, "heading_deg": 10.0,
                "battery_pct": 70.0}

    slow_row, fast_row = row(1), row(2)
    with engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(insert(TelemetryPoint.__table__), slow_row)  # takes the lower id
        with engine.begin() as fast:
            fast.execute(insert(TelemetryPoint.__table__), fast_row)
        assert [d["event_id"] for _, d in listener.take(1)] == [str(fast_row["event_id"])]
        transaction.commit()
    assert [d["event_id"] for _, d in listener.take(1)] == [str(slow_row["event_id"])]
    listener.close()


def test_who_may_listen_and_to_what(api):
    url = str(api.http.base_url)
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/api/v1/stream").status_code == 401
        device = http.get("/api/v1/stream", headers=api.as_role(Role.DEVICE))
        assert device.status_code == 403
        wrong = http.get("/api/v1/stream", params={"types": "telemetry,gossip"},
                         headers=api.as_role(Role.DISPATCHER))
        assert wrong.status_code == 422 and "gossip" in wrong.json()["detail"]
