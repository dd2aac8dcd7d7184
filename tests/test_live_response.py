"""The live stream's response (dronelog/api/sse.py and the route's loop), over real HTTP on
SQLite and PostgreSQL: a quiet stream is pinged, a stream ends when the server is asked to
stop (uvicorn waits for open responses) and when its client hangs up, and streams of the same
filter get the same batches."""

import socket
import time

from dronelog.api import sse
from dronelog.api.accounts import Role
from dronelog.api.routes import live as live_route
from tests.support import write_telemetry
from tests.test_live import Listener
from tests.test_live_feed import feed_of, start_api, wait_until


def open_raw(api, types: str = "telemetry") -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", api.http.base_url.port), timeout=10)
    raw.sendall(f"GET /api/v1/stream?types={types} HTTP/1.1\r\nHost: x\r\nAuthorization: "
                f"Bearer {api.tokens[Role.DISPATCHER]}\r\n\r\n".encode())
    return raw


def read_until(raw: socket.socket, wanted: bytes, seconds: float = 10) -> bytes:
    received, deadline = b"", time.monotonic() + seconds
    while wanted not in received and time.monotonic() < deadline:
        chunk = raw.recv(1 << 16)
        if not chunk:
            break
        received += chunk
    return received


def test_a_quiet_stream_is_pinged_and_goes_on(engine, clock, monkeypatch):
    monkeypatch.setattr(live_route, "PING_S", 0.3)
    api = start_api(engine, clock)
    raw = open_raw(api)
    head = read_until(raw, b": ping\n\n", 5)
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
    assert b": ping\n\n" in head  # a comment line: clients ignore it, proxies see traffic
    sent = write_telemetry(engine, clock, "uav-07", 1)
    assert sent[0].encode() in read_until(raw, sent[0].encode())
    raw.close()
    api.close()


def test_streams_end_when_the_server_is_asked_to_stop(engine, clock, monkeypatch):
    stopping = []
    monkeypatch.setattr(sse, "_server_exiting", lambda: bool(stopping))
    api = start_api(engine, clock)
    feed = feed_of(api)
    raws = [open_raw(api) for _ in range(3)]
    wait_until(lambda: len(feed.subscriptions()) == 3, what="three streams")
    stopping.append(True)  # what uvicorn's SIGTERM handler does to `should_exit`
    for raw in raws:  # the last chunk of a chunked body: the response ended
        assert read_until(raw, b"0\r\n\r\n", 5).endswith(b"0\r\n\r\n")
        raw.close()
    wait_until(lambda: feed.mark is None, what="the feed stopping with its last stream")
    api.close()
    assert not api.thread.is_alive()


def test_a_client_that_hangs_up_leaves_the_feed(engine, clock):
    api = start_api(engine, clock)
    feed = feed_of(api)
    raw = open_raw(api)
    assert read_until(raw, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
    kept = Listener(str(api.http.base_url), api.as_role(Role.DISPATCHER), types="telemetry")
    wait_until(lambda: len(feed.subscriptions()) == 2, what="two streams")
    raw.close()  # nothing is sent to it: only the disconnect can tell
    wait_until(lambda: len(feed.subscriptions()) == 1, what="the stream leaving the feed")
    sent = write_telemetry(engine, clock, "uav-07", 2)
    assert [d["event_id"] for _, d in kept.take(2)] == sent
    kept.close()
    api.close()


def test_streams_of_one_filter_get_each_batch_with_its_cursor(engine, clock):
    """The feed joins a batch once per filter and every stream of the filter sends it: the
    same frames and cursors on each, and resuming from a batch's cursor brings the next."""
    api = start_api(engine, clock)
    url, dispatcher = str(api.http.base_url), api.as_role(Role.DISPATCHER)
    listeners = [Listener(url, dispatcher, types="telemetry") for _ in range(3)]
    first = write_telemetry(engine, clock, "uav-08", 2)
    taken = [[(i, e, d["event_id"]) for i, (e, d) in enumerate(listener.take(2))]
             for listener in listeners]
    assert all(t == taken[0] for t in taken) and [t[2] for t in taken[0]] == first
    cursor = listeners[0].last_id
    second = write_telemetry(engine, clock, "uav-08", 2)
    for listener in listeners:
        assert [d["event_id"] for _, d in listener.take(2)] == second
        assert listener.last_id != cursor
        listener.close()
    resumed = Listener(url, {**dispatcher, "Last-Event-ID": cursor}, types="telemetry")
    assert [d["event_id"] for _, d in resumed.take(2)] == second
    resumed.close()
    api.close()


def test_the_stream_is_described_in_the_openapi_document(engine, clock):
    api = start_api(engine, clock)
    document = api.http.get("/openapi.json")
    assert document.status_code == 200, document.text[:300]
    ok = document.json()["paths"]["/api/v1/stream"]["get"]["responses"]["200"]
    assert "text/event-stream" in ok["content"]
