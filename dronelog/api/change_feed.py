"""One change feed per API process: a single reader of the database fans each change out to
every live stream attached to this process, filtered by the stream's kinds, site and drone.

What wakes the reader: on PostgreSQL a notification (LISTEN) that the writers send with their
commits (`dronelog/storage/change_notice.py`). It only wakes the reader, which then reads the
database, the truth; a read every `stream_fallback_s` covers a lost notification (a broken
listening connection, a writer that does not announce). On SQLite, a check of the file's data
version every `stream_poll_s` (one PRAGMA, no table read) tells that something was committed,
and the read follows in the same worker-thread call. So nothing is read while nothing is
committed, and no reader runs while no stream is attached: the first stream starts it, the last
one to leave stops it.

Each stream has a bounded queue: a client that falls `stream_queue_events` behind is sent a
`reset` (re-read the state) and goes on from the feed's position. The frames are encoded once,
and each read's frames for a filter are joined once into one chunk that every stream with
that filter sends as it is, so a queue holds references only and a stream's turn is one write.

Under `dronelog api` the feed writes that chunk, framed once per filter as an HTTP/1.1 chunk,
to each waiting stream's connection itself (`Subscription.write_directly_to`): one
`transport.write` per stream and batch, with no turn of the stream's task. It does so only
while the stream waits with nothing queued (what it sent before is written, so the order
holds) and while the connection's send buffer holds at most `DIRECT_BUFFER_BYTES`; otherwise
the batch is queued, and the stream sends it through the server, which waits for a slow
client: its queue then fills up to the reset.
"""

import asyncio
import logging
import sqlite3
import time
from collections import deque
from dataclasses import dataclass

import anyio
import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dronelog.api import live
from dronelog.config import Settings
from dronelog.storage.change_notice import CHANNEL

log = logging.getLogger(__name__)
RESET = b'event: reset\ndata: {"reason": "%s"}\n\n'
TOO_OLD = b"the cursor is too old or unknown; re-read the state"
TOO_SLOW = b"the client fell too far behind; re-read the state"
RETRY_S = 1.0  # after a failed read or a lost listening connection
DIRECT_BUFFER_BYTES = 1 << 18  # a connection holding more unsent is written through the queue


@dataclass(frozen=True, slots=True)
class Batch:
    """One read's changes for one filter, and their frames joined once for every stream of
    that filter, the feed's position (`id:`) on the last frame; `wire`: the same as an
    HTTP/1.1 chunk."""

    changes: tuple[live.Change, ...]
    chunk: bytes
    wire: bytes

    @classmethod
    def of(cls, changes: tuple[live.Change, ...], chunk: bytes) -> "Batch":
        return cls(changes, chunk, b"%x\r\n%b\r\n" % (len(chunk), chunk))


class Subscription:
    """One stream's place in the feed: the batches for it not yet sent, at most `limit`
    changes."""

    def __init__(self, wanted: live.Filter, limit: int) -> None:
        self.wanted = wanted
        self.seen: live.Seen | None = None  # what its catch-up sent (a resumed stream)
        self._limit = limit
        self._queued: deque[Batch] = deque()
        self._backlog = 0
        self._mark: live.Mark | None = None  # the feed's position after the newest queued
        self._reset: tuple[bytes, live.Mark] | None = None
        self._waiter: asyncio.Future | None = None
        self._transport: asyncio.Transport | None = None
        self.resets = 0
        self.direct_writes = 0
        self.wrote_at = 0.0  # time.monotonic() of the last direct write

    @property
    def backlog(self) -> int:
        """Changes queued, not yet sent."""
        return self._backlog

    def write_directly_to(self, transport: asyncio.Transport) -> None:
        """The stream's connection, whose body is chunked: batches may be written to it."""
        self._transport = transport

    def offer(self, batch: Batch, mark: live.Mark) -> None:
        """Write `batch` (already filtered for this stream) to the connection, or queue it;
        overflowing the queue means a reset."""
        if not batch.changes:
            return
        transport = self._transport
        if (transport is not None and self._waiter is not None and not self._queued
                and self._reset is None and self.seen is None and not transport.is_closing()
                and transport.get_write_buffer_size() <= DIRECT_BUFFER_BYTES):
            transport.write(batch.wire)
            self._mark = mark
            self.direct_writes += 1
            self.wrote_at = time.monotonic()
            return
        if self._backlog + len(batch.changes) > self._limit:
            self._queued.clear()
            self._backlog = 0
            self.reset(TOO_SLOW, mark)
            return
        self._queued.append(batch)
        self._backlog += len(batch.changes)
        self._mark = mark
        self._wake()

    def reset(self, reason: bytes, mark: live.Mark) -> None:
        """Send a reset next, with the feed's position: what follows comes after it."""
        self._reset, self._mark, self.seen = (reason, mark), None, None
        self.resets += 1
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake_up(self._waiter)

    async def next(self, timeout: float, feed: live.Mark | None) -> bytes:
        """What to send next (empty if nothing came within `timeout`). Plain asyncio: this
        runs once per stream per batch, and anyio's timeouts and events cost more than the
        rest of the stream's work."""
        if not self._queued and self._reset is None:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake_up, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._drain(feed)

    def _drain(self, feed: live.Mark | None) -> bytes:
        out = b""
        if self._reset:
            reason, mark = self._reset
            out, self._reset = b"id: %s\n" % mark.id.encode() + RESET % reason, None
        queued, self._queued, self._backlog = self._queued, deque(), 0
        if not queued:
            return out
        if self.seen is None:  # the batches as the feed built them, shared with others
            return out + b"".join(batch.chunk for batch in queued)
        changes = [c for batch in queued for c in batch.changes if not self.seen.already(c)]
        if feed is not None and self.seen.outgrown(feed):  # None: the feed stopped
            self.seen = None
        if changes and self._mark:
            frames = [c.frame for c in changes]
            frames[-1] = b"id: %s\n" % self._mark.id.encode() + frames[-1]
            out += b"".join(frames)
        return out


def _wake_up(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ChangeFeed:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.mark: live.Mark | None = None  # where the feed stands; None while stopped
        self._poll_s = settings.stream_poll_s
        self._fallback_s = settings.stream_fallback_s
        self._limit = settings.stream_queue_events
        self._groups: dict[live.Filter, set[Subscription]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._starting = asyncio.Lock()
        self.reads = 0  # how often the feed read the database (tests, metrics)

    async def subscribe(self, wanted: live.Filter) -> Subscription:
        """A stream's subscription, from the feed's position on; starts the reader if none
        runs. Raises if the database cannot be read."""
        async with self._starting:
            if self._task is None:
                cursor = await anyio.to_thread.run_sync(self._cursor_now)
                self.mark = live.Mark.of(cursor)
                self._wake = asyncio.Event()
                self._task = asyncio.create_task(self._run(cursor), name="change feed")
        subscription = Subscription(wanted, self._limit)
        self._groups.setdefault(wanted, set()).add(subscription)
        return subscription

    def subscriptions(self) -> list[Subscription]:
        return [s for group in self._groups.values() for s in group]

    def unsubscribe(self, subscription: Subscription) -> None:
        group = self._groups.get(subscription.wanted, set())
        group.discard(subscription)
        if not group:
            self._groups.pop(subscription.wanted, None)
        if not self._groups:
            self.stop()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task, self.mark = None, None

    def _cursor_now(self) -> live.Cursor:
        with self.engine.connect() as conn:
            return live.cursor_now(conn)

    def _read(self, cursor: live.Cursor) -> tuple[list[live.Change], bool, live.Mark]:
        with self.engine.connect() as conn:
            changes, more = live.read(conn, cursor, time.monotonic())
        return changes, more, live.Mark.of(cursor)

    async def _run(self, cursor: live.Cursor) -> None:
        if self.engine.dialect.name == "postgresql":
            await self._run_notified(cursor)
        else:
            await self._run_polled(cursor)

    async def _run_notified(self, cursor: live.Cursor) -> None:
        """PostgreSQL: read when a notification (or the fallback timer) wakes the reader."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._listen)
            while True:
                with anyio.move_on_after(self._fallback_s):
                    await self._wake.wait()
                self._wake.clear()  # a commit from now on wakes the next read
                await self._read_all(cursor)

    async def _run_polled(self, cursor: live.Cursor) -> None:
        """SQLite: every `stream_poll_s`, one call in a worker thread checks the file's data
        version (any commit by another connection changes it) and, if it changed, reads
        right away: one trip between the event loop and a thread per change, not one to
        check and another to read."""
        connection = await anyio.to_thread.run_sync(self.engine.raw_connection)
        try:
            version = None
            while True:
                try:
                    version, read = await anyio.to_thread.run_sync(
                        self._read_if_changed, connection, version, cursor)
                except (sqlite3.Error, SQLAlchemyError) as error:
                    log.warning("the live feed cannot read the database: %s", error)
                    version = None  # read at the next check, whatever the version says
                    await anyio.sleep(RETRY_S)
                    continue
                if read is not None:
                    changes, more, mark = read
                    self.reads += 1
                    self._fan_out(changes, mark)
                    if more:  # more than one read's worth: the rest at once
                        version = None
                        continue
                await anyio.sleep(self._poll_s)
        finally:
            connection.close()

    def _read_if_changed(self, connection, version: int | None, cursor: live.Cursor
                         ) -> tuple[int, tuple[list[live.Change], bool, live.Mark] | None]:
        """The data version now, and a read if it differs from `version`. The version is
        taken first: a commit after it is in this read or changes the next version."""
        now = _data_version(connection)
        return now, (self._read(cursor) if now != version else None)

    async def _read_all(self, cursor: live.Cursor) -> None:
        """PostgreSQL: read and fan out until nothing more is waiting; after a failed read,
        wait and wake the reader again."""
        more = True
        while more:
            try:
                changes, more, mark = await anyio.to_thread.run_sync(self._read, cursor)
            except SQLAlchemyError as error:
                log.warning("the live feed cannot read the database: %s", error)
                await anyio.sleep(RETRY_S)
                self._wake.set()
                return
            self.reads += 1
            self._fan_out(changes, mark)

    def _fan_out(self, changes: list[live.Change], mark: live.Mark) -> None:
        """Each filter's batch built once and handed to every stream with that filter."""
        self.mark = mark
        cursor_line = b"id: %s\n" % mark.id.encode()
        for wanted, group in list(self._groups.items()):
            passing = tuple(c for c in changes if wanted.passes(c))
            if not passing:
                continue
            frames = [c.frame for c in passing]
            frames[-1] = cursor_line + frames[-1]
            batch = Batch.of(passing, b"".join(frames))
            for subscription in group:
                subscription.offer(batch, mark)

    async def _listen(self) -> None:
        """PostgreSQL: wake the reader at every notification; reconnect when the link
        breaks (and read then: a notification may have been missed meanwhile)."""
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as error:
                log.warning("the live feed lost its notifications: %s", error)
            self._wake.set()
            await anyio.sleep(RETRY_S)

def _data_version(connection) -> int:
    cursor = connection.cursor()
    try:
        return cursor.execute("PRAGMA data_version").fetchone()[0]
    finally:
        cursor.close()
