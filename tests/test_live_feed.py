"""The change feed behind the live stream (issue 18), over real HTTP on SQLite and PostgreSQL:
one reader for every stream of a process and none while nothing is committed, delivery at
least once with two writers committing out of order, a slow client bounded and reset, lab
users held to their site, resuming with Last-Event-ID across a feed restart and across two
API processes."""

import socket
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import insert

from dronelog.api import live
from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.api.app import create_app
from dronelog.api.server import server_config
from dronelog.config import Settings
from dronelog.storage.change_notice import announce
from dronelog.storage.tables import TelemetryPoint
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import LAB, TOWN, Api, DronelogProcess, free_port, scan, write_telemetry
from tests.test_live import Listener


def start_api(engine, clock, **settings) -> Api:
    return Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1",
                                **settings), clock)


class AnotherProcess:
    """A second API on the same database (a new process, a new feed): the users exist."""

    def __init__(self, engine, clock) -> None:
        settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
        self.port = free_port()
        self.server = uvicorn.Server(server_config(create_app(settings, engine, clock),
                                                   settings, host="127.0.0.1", port=self.port,
                                                   log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="the second API starting")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def feed_of(api: Api):
    return api.server.config.app.state.feed


def wait_until(condition, timeout: float = 20, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


def test_one_reader_serves_every_stream_and_reads_nothing_while_idle(engine, clock):
    api = start_api(engine, clock, stream_fallback_s=60)  # PostgreSQL: notifications only
    feed = feed_of(api)
    assert feed.mark is None  # no stream, no reader
    listeners = [Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER),
                          types="telemetry") for _ in range(12)]
    time.sleep(0.5)  # the listening connection's first read
    idle = feed.reads
    assert [listener.quiet(1.0) for listener in listeners[:1]] == [[]]
    assert feed.reads == idle  # nothing committed: nothing read
    sent = write_telemetry(engine, clock, "uav-02", 3)
    for listener in listeners:
        assert [d["event_id"] for _, d in listener.take(3)] == sent
    assert feed.reads - idle <= 2  # one read for all twelve (two if a check fell in between)
    for listener in listeners:
        listener.close()
    wait_until(lambda: feed.mark is None, what="the feed stopping with its last stream")
    api.close()


def test_two_writers_committing_out_of_order_through_the_feed(engine, clock):
    api = start_api(engine, clock, stream_fallback_s=60)  # woken by the writers only
    listener = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER), types="telemetry")
    sent: list[list[str]] = [[], []]

    def writer(number: int) -> None:
        for _ in range(25):
            sent[number] += write_telemetry(engine, clock, f"uav-1{number}", 4)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    got = [d["event_id"] for _, d in listener.take(200, timeout=30)]
    assert set(got) == set(sent[0]) | set(sent[1])  # each at least once (here: once)
    assert listener.quiet(0.5) == []
    listener.close()
    api.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_a_notified_commit_out_of_id_order_is_not_skipped(engine, clock):
    """The lower id commits last, and each commit only notifies: no fallback read helps."""
    api = start_api(engine, clock, stream_fallback_s=60)
    listener = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER), types="telemetry")
    slow_row, fast_row = _row(clock, 1), _row(clock, 2)
    with engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(insert(TelemetryPoint.__table__), slow_row)  # takes the lower id
        announce(slow)
        with engine.begin() as fast:
            fast.execute(insert(TelemetryPoint.__table__), fast_row)
            announce(fast)
        assert [d["event_id"] for _, d in listener.take(1)] == [str(fast_row["event_id"])]
        transaction.commit()
    assert [d["event_id"] for _, d in listener.take(1)] == [str(slow_row["event_id"])]
    listener.close()
    api.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_resumed_stream_gets_the_row_that_was_missing_when_it_left(engine, clock):
    """The id handed out lies below the cursor's lowest hole, so the row that commits after
    the client left comes with the catch-up."""
    api = start_api(engine, clock)
    listener = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER), types="telemetry")
    slow_row, fast_row = _row(clock, 1), _row(clock, 2)
    with engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(insert(TelemetryPoint.__table__), slow_row)
        with engine.begin() as fast:
            fast.execute(insert(TelemetryPoint.__table__), fast_row)
            announce(fast)
        assert [d["event_id"] for _, d in listener.take(1)] == [str(fast_row["event_id"])]
        cursor = listener.last_id
        listener.close()
        transaction.commit()
    again = Listener(str(api.http.base_url), {**api.as_role(Role.DISPATCHER),
                                              "Last-Event-ID": cursor}, types="telemetry")
    got = [d["event_id"] for _, d in again.take(1)]
    got += [d["event_id"] for _, d in again.quiet(0.5)]
    assert str(slow_row["event_id"]) in got  # the fast one may come again: at least once
    again.close()
    api.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: no lag
def test_what_the_catch_up_sent_is_not_sent_again_by_the_feed(engine, clock):
    """Rows committed without a notification wait for the feed's next read; a client that
    resumes meanwhile gets them from its catch-up, and not a second time from the feed."""
    api = start_api(engine, clock, stream_fallback_s=60)
    url, dispatcher = str(api.http.base_url), api.as_role(Role.DISPATCHER)
    keeps_the_feed = Listener(url, dispatcher, types="telemetry")
    leaving = Listener(url, dispatcher, types="telemetry")
    first = write_telemetry(engine, clock, "uav-04", 2)
    assert [d["event_id"] for _, d in leaving.take(2)] == first
    cursor = leaving.last_id
    leaving.close()
    unannounced = [_row(clock, 10 + n) for n in range(3)]
    with engine.begin() as connection:
        connection.execute(insert(TelemetryPoint.__table__), unannounced)
    back = Listener(url, {**dispatcher, "Last-Event-ID": cursor}, types="telemetry")
    assert [d["event_id"] for _, d in back.take(3)] == [str(r["event_id"]) for r in unannounced]
    announced = write_telemetry(engine, clock, "uav-04", 1)  # the feed reads all four now
    assert {d["event_id"] for _, d in keeps_the_feed.take(6)[2:]} == {
        str(r["event_id"]) for r in unannounced} | set(announced)
    assert [d["event_id"] for _, d in back.take(1)] == announced
    assert back.quiet(0.5) == []
    for listener in (keeps_the_feed, back):
        listener.close()
    api.close()


def test_alert_changes_wake_the_feed(engine, clock):
    """Opened by the scheduler, acknowledged through the API: each commit wakes the feed
    (no fallback read within the test)."""
    api = start_api(engine, clock, stream_fallback_s=60)
    dispatcher = api.as_role(Role.DISPATCHER)
    alerts = Listener(str(api.http.base_url), dispatcher, types="alert")
    collected = scan("custody.collected", minutes_ago=60)
    assert api.http.post("/api/v1/custody", headers=api.as_role(Role.DEVICE),
                         json=collected).status_code == 201
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()  # 60 min old: a breach
    event, data = alerts.take(1)[0]
    assert (event, data["change"], data["alert"]["kind"]) == ("alert", "opened", "breach")
    assert api.http.post(f"/api/v1/alerts/{data['alert']['id']}/acknowledge",
                         headers=dispatcher).status_code == 200
    assert [d["change"] for _, d in alerts.take(1)] == ["acknowledged"]
    alerts.close()
    api.close()


def test_the_cursor_comes_with_the_last_frame_of_a_batch(engine, clock):
    """A client cut off in the middle of a batch resumes from the cursor before it."""
    api = start_api(engine, clock)
    url, dispatcher = str(api.http.base_url), api.as_role(Role.DISPATCHER)
    live = Listener(url, dispatcher, types="telemetry")
    before = write_telemetry(engine, clock, "uav-08", 1)
    live.take(1)
    cursor = live.last_id
    write_telemetry(engine, clock, "uav-08", 3)  # one commit: one batch of the feed
    frames = [live.frames.get(timeout=15) for _ in range(3)]
    assert [frame_id is not None for frame_id, _, _ in frames] == [False, False, True]
    live.close()
    resumed = Listener(url, {**dispatcher, "Last-Event-ID": cursor}, types="telemetry")
    frames = [resumed.frames.get(timeout=15) for _ in range(3)]  # the catch-up's batch
    assert [frame_id is not None for frame_id, _, _ in frames] == [False, False, True]
    assert before[0] not in [data["event_id"] for _, _, data in frames]
    resumed.close()
    api.close()


def test_a_commit_larger_than_one_read_reaches_the_stream_without_another(engine, clock,
                                                                          monkeypatch):
    """A read takes at most `live.BATCH` rows a table; what one commit holds beyond that is
    read at once, not when something else is committed."""
    monkeypatch.setattr(live, "BATCH", 4)
    api = start_api(engine, clock, stream_fallback_s=60)  # PostgreSQL: no timed read either
    feed = feed_of(api)
    listener = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER), types="telemetry")
    wait_until(lambda: len(feed.subscriptions()) == 1)
    written = write_telemetry(engine, clock, "uav-09", 4 * 2 + 1)  # the last one alone
    got = [data["event_id"] for _, data in listener.take(len(written))]
    assert got == written  # in three reads, with nothing committed after them
    listener.close()
    api.close()


def test_a_slow_client_is_bounded_and_then_reset(engine, clock):
    limit = 50
    api = start_api(engine, clock, stream_queue_events=limit)
    feed = feed_of(api)
    port = api.http.base_url.port
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.sendall(f"GET /api/v1/stream?types=telemetry HTTP/1.1\r\nHost: x\r\nAuthorization: "
                 f"Bearer {api.tokens[Role.DISPATCHER]}\r\n\r\n".encode())
    assert slow.recv(1024).startswith(b"HTTP/1.1 200")  # then it stops reading
    wait_until(lambda: len(feed.subscriptions()) == 1)
    subscription = feed.subscriptions()[0]
    written = 0
    while not subscription.resets:  # batches smaller than the limit: only a backlog overflows
        write_telemetry(engine, clock, "uav-05", 20, battery_pct=55.5)
        written += 20
        wait_until(lambda n=written: feed.mark.telemetry_floor >= n, what="the feed's read")
        assert subscription.backlog <= limit
        assert written < 100_000, "the client was never reset"
    later = write_telemetry(engine, clock, "uav-06", 1)
    received, deadline = b"", time.monotonic() + 60
    slow.settimeout(60)
    while later[0].encode() not in received and time.monotonic() < deadline:
        received += slow.recv(1 << 20)
    reset_at = received.find(b"event: reset")
    assert reset_at > 0 and b"fell too far behind" in received
    assert received.find(later[0].encode()) > reset_at  # the stream goes on after the reset
    slow.close()
    api.close()


def test_lab_users_get_their_own_site_whatever_they_ask(engine, clock):
    api = start_api(engine, clock)
    url = str(api.http.base_url)
    with engine.begin() as connection:
        add_user(connection, "lab-town", Role.LAB, clock.now(), site_id=TOWN)
        town = issue_token(connection, "lab-town", clock.now(), timedelta(hours=1))
    asks_for_other = Listener(url, {"Authorization": f"Bearer {town}"}, site=LAB,
                              types="custody")
    other_lab = Listener(url, api.as_role(Role.LAB), types="custody")  # lab-1, at LAB
    dispatcher_lab = Listener(url, api.as_role(Role.DISPATCHER), site=LAB, types="custody")
    dispatcher = Listener(url, api.as_role(Role.DISPATCHER), types="custody")
    collected = scan("custody.collected", minutes_ago=5)  # at TOWN
    assert api.http.post("/api/v1/custody", headers=api.as_role(Role.DEVICE),
                         json=collected).status_code == 201
    for listener in (asks_for_other, dispatcher):
        assert [d["event_id"] for _, d in listener.take(1)] == [collected["event_id"]]
    assert other_lab.quiet(0.5) == [] and dispatcher_lab.quiet(0.1) == []
    for listener in (asks_for_other, other_lab, dispatcher_lab, dispatcher):
        listener.close()
    api.close()


def test_a_client_resumes_across_a_feed_restart(engine, clock):
    first_api = start_api(engine, clock)
    dispatcher = first_api.as_role(Role.DISPATCHER)
    first = Listener(str(first_api.http.base_url), dispatcher, types="telemetry,alert")
    before = write_telemetry(engine, clock, "uav-01", 3)
    assert [d["event_id"] for _, d in first.take(3)] == before
    cursor = first.last_id
    first.close()
    wait_until(lambda: feed_of(first_api).mark is None, what="the feed stopping")
    first_api.close()
    missed = write_telemetry(engine, clock, "uav-01", 4)
    second_api = AnotherProcess(engine, clock)
    again = Listener(f"http://127.0.0.1:{second_api.port}", {**dispatcher, "Last-Event-ID": cursor},
                     types="telemetry,alert")
    assert [d["event_id"] for _, d in again.take(4)] == missed
    later = write_telemetry(engine, clock, "uav-01", 2)  # and on through the new feed
    assert [d["event_id"] for _, d in again.take(2)] == later
    assert again.quiet(0.5) == []  # nothing twice
    again.close()
    second_api.close()


def test_two_api_processes_each_with_its_own_feed(engine, clock, tmp_path):
    """`dronelog api` twice on one database (as behind a proxy): both stream everything, and
    a client moves from one to the other with its Last-Event-ID."""
    with engine.begin() as connection:
        add_user(connection, "disp-x", Role.DISPATCHER, clock.now())
        token = issue_token(connection, "disp-x", clock.now(), timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    ports = [free_port(), free_port()]
    workers = [DronelogProcess(["api"], str(engine.url), "mqtt://127.0.0.1:1", tmp_path,
                               f"api-{n}", api_port=port) for n, port in enumerate(ports)]
    try:
        for worker in workers:
            worker.start()
        for port in ports:
            wait_until(lambda port=port: _ready(port), timeout=60, what=f"API on {port}")
        one, other = (Listener(f"http://127.0.0.1:{port}", headers, types="telemetry")
                      for port in ports)
        sent = write_telemetry(engine, clock, "uav-03", 5)
        for listener in (one, other):
            assert [d["event_id"] for _, d in listener.take(5)] == sent
        cursor = one.last_id
        one.close()
        workers[0].terminate()
        missed = write_telemetry(engine, clock, "uav-03", 3)
        moved = Listener(f"http://127.0.0.1:{ports[1]}", {**headers, "Last-Event-ID": cursor},
                         types="telemetry")
        assert [d["event_id"] for _, d in moved.take(3)] == missed
        assert [d["event_id"] for _, d in other.take(3)] == missed
        assert moved.quiet(0.5) == []
        moved.close()
        other.close()
    finally:
        for worker in workers:
            if worker.alive():
                worker.terminate()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _row(clock, seq: int) -> dict:
    return {"event_id": uuid.uuid4(), "drone_id": "uav-09", "seq": seq,
            "event_time": clock.now(), "received_at": clock.now(), "lat": 36.7, "lon": 119.9,
            "alt_m": 120.0, "ground_speed_mps": 12.0, "heading_deg": 10.0, "battery_pct": 70.0}
