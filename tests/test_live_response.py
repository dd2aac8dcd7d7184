"""The live stream's response (dronelog/api/sse.py and the route's loop), over real HTTP on
SQLite and PostgreSQL: a quiet stream is pinged, a stream ends when the server is asked to
stop (uvicorn waits for open responses) and when its client hangs up, and streams of the same
filter get the same batches."""

import asyncio
import json
import socket
import time
from datetime import UTC, datetime

import h11
import pytest

from dronelog.api import live, sse
from dronelog.api.accounts import Role
from dronelog.api.change_feed import DIRECT_BUFFER_BYTES, Batch, Subscription
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


@pytest.mark.parametrize("direct", [True, False])
def test_the_feed_writes_a_waiting_streams_batches_as_chunks_of_its_body(engine, clock,
                                                                         monkeypatch, direct):
    """DRONELOG_STREAM_DIRECT_WRITES: under `dronelog api`'s protocol the feed writes each
    batch to a waiting stream's connection itself. Between the pings and the end, which go
    through the server, the body stays one valid chunked HTTP/1.1 body (read by h11 as a
    client), with every event once, in order, and a cursor per batch."""
    stopping = []
    monkeypatch.setattr(sse, "_server_exiting", lambda: bool(stopping))
    monkeypatch.setattr(live_route, "PING_S", 0.2)
    api = start_api(engine, clock, stream_direct_writes=direct)
    feed = feed_of(api)
    raw = open_raw(api)
    received = read_until(raw, b": ping\n\n")
    subscription = feed.subscriptions()[0]
    sent = []
    for batch in range(3):
        sent += write_telemetry(engine, clock, f"uav-0{batch}", 2)
        received += read_until(raw, sent[-1].encode())
        received += read_until(raw, b": ping\n\n")  # a ping after each batch
    stopping.append(True)
    received += read_until(raw, b"0\r\n\r\n")
    raw.close()
    api.close()

    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/api/v1/stream",
                            headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(received)
    events, body = [], b""
    while (event := client.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(type(event).__name__)
        if isinstance(event, h11.Data):
            body += event.data
    assert events[0] == "Response" and events[-1] == "EndOfMessage"
    frames = [frame for frame in body.decode().split("\n\n") if frame]
    data = [json.loads(line[6:]) for frame in frames for line in frame.split("\n")
            if line.startswith("data: ")]
    assert [d["event_id"] for d in data] == sent
    assert sum(frame.startswith(": ping") for frame in frames) >= 4
    assert sum("\nid: " in f"\n{frame}" for frame in frames) == 3  # one cursor per batch
    assert subscription.direct_writes == (3 if direct else 0)


class Connection:
    """What the feed sees of a stream's connection: its writes, unsent bytes and state."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.unsent = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return self.closing


def test_the_feed_writes_a_batch_itself_only_to_a_stream_that_waits_with_nothing_queued():
    """Anything else would put a batch before one still queued or being sent, or pile up
    behind a slow client without the queue's bound: each such batch is queued instead, for
    the stream to send in order through the server."""
    mark = live.Mark("t1.a0.c0", 1, 0, datetime(2026, 12, 7, tzinfo=UTC))

    def batch(n: int) -> Batch:
        change = live.Change("telemetry", n, "uav-01", (), b"event: telemetry\ndata: {}\n\n")
        return Batch.of((change,), b"id: %d\n" % n + change.frame)

    async def scenario() -> list:
        subscription = Subscription(live.Filter(frozenset({"telemetry"})), limit=100)
        connection = Connection()
        subscription.write_directly_to(connection)
        seen = []

        async def waiting(offers, expect_direct: int) -> None:
            waiter = asyncio.ensure_future(subscription.next(0.05, None))  # its ping timer
            await asyncio.sleep(0)  # the stream now waits
            offers()
            seen.append((len(connection.written), await waiter))
            assert subscription.direct_writes == expect_direct

        subscription.offer(batch(1), mark)  # not waiting (sending, or catching up)
        assert connection.written == [] and subscription.backlog == 1
        seen.append(await subscription.next(5, None))
        await waiting(lambda: subscription.offer(batch(2), mark), 1)
        assert connection.written == [batch(2).wire]
        assert batch(2).wire == b"%x\r\n%b\r\n" % (len(batch(2).chunk), batch(2).chunk)
        await waiting(lambda: (subscription.offer(batch(3), mark),
                               subscription.offer(batch(4), mark)), 3)  # both, in order

        def slow_then_fast() -> None:
            connection.unsent = DIRECT_BUFFER_BYTES + 1  # a slow client: through the queue
            subscription.offer(batch(5), mark)
            connection.unsent = 0
            subscription.offer(batch(6), mark)  # behind 5, which is queued
        await waiting(slow_then_fast, 3)
        connection.closing = True
        await waiting(lambda: subscription.offer(batch(7), mark), 3)
        connection.closing = False
        await waiting(lambda: (subscription.reset(b"test", mark),  # the reset first
                               subscription.offer(batch(8), mark)), 3)
        return seen, connection.written

    seen, written = asyncio.run(scenario())
    assert written == [batch(n).wire for n in (2, 3, 4)]
    assert seen[0] == batch(1).chunk
    assert seen[1:3] == [(1, b""), (3, b"")]  # written by the feed: nothing left to send
    assert seen[3] == (3, batch(5).chunk + batch(6).chunk)
    assert seen[4] == (3, batch(7).chunk)
    assert seen[5][1].startswith(b"id: t1.a0.c0\nevent: reset") and seen[5][1].endswith(
        batch(8).chunk)


def test_an_http_1_0_client_gets_its_stream_unchunked(engine, clock):
    """HTTP/1.0 knows no chunks: h11 sends the body as it is and ends it by closing, so the
    feed must leave such a stream's batches to the server."""
    api = start_api(engine, clock)
    feed = feed_of(api)
    raw = socket.create_connection(("127.0.0.1", api.http.base_url.port), timeout=10)
    raw.sendall(f"GET /api/v1/stream?types=telemetry HTTP/1.0\r\nHost: x\r\nAuthorization: "
                f"Bearer {api.tokens[Role.DISPATCHER]}\r\n\r\n".encode())
    head = read_until(raw, b"\r\n\r\n")
    wait_until(lambda: len(feed.subscriptions()) == 1, what="the stream")
    sent = write_telemetry(engine, clock, "uav-07", 2)
    received = head + read_until(raw, sent[-1].encode())
    raw.close()
    api.close()
    _, _, body = received.partition(b"\r\n\r\n")
    assert body.startswith(b"event: telemetry\n") and b"\r\n" not in body
