"""Live updates as Server-Sent Events: telemetry, custody events and alert changes.

A stream is a subscription to this process's change feed (`dronelog/api/change_feed.py`); a
stream that resumes with `Last-Event-ID` subscribes first and then catches up from the
database, so nothing committed in between is lost (repeats are dropped). It re-checks its
token every `TOKEN_RECHECK_S` and ends when the token expires or is revoked."""

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from starlette.background import BackgroundTask

from dronelog.api import live
from dronelog.api.accounts import Role, user_for_token
from dronelog.api.change_feed import TOO_OLD, ChangeFeed
from dronelog.api.deps import authenticate
from dronelog.api.problems import Problem
from dronelog.api.sse import EventStream

router = APIRouter(prefix="/api/v1", tags=["live"])
TOKEN_RECHECK_S = 30.0
PING_S = 15.0  # a comment line after this long without a frame, to keep proxies open
PING = b": ping\n\n"
STREAM_DOC = """Server-Sent Events. Frames: `event: telemetry|custody|alert|reset`, `data:` JSON
with an `event_id`, and an `id:` cursor after each batch. Reconnect with the last id in the
`Last-Event-ID` header to resume without a gap (events may repeat: deduplicate by
`event_id`). `reset` means the cursor is too old or unknown, or the client fell too far
behind: re-read the state and go on. Lab users get their own site's events only (for alerts:
those about their site, or about a specimen collected there or lying there); devices may not
listen."""


@router.get("/stream", summary="Live telemetry, custody events and alert changes (SSE)",
            description=STREAM_DOC, response_class=EventStream, status_code=200,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request,
                 types: Annotated[str, Query(description="comma-separated: telemetry, "
                                             "custody, alert")] = "telemetry,custody,alert",
                 site: str | None = None, drone: str | None = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> EventStream:
    engine, clock = request.app.state.engine, request.app.state.clock
    feed: ChangeFeed = request.app.state.feed
    with engine.connect() as conn:
        user = authenticate(request, conn)
    if user.role is Role.DEVICE:
        raise Problem(403, "Forbidden", "devices post custody scans; they do not listen")
    kinds = frozenset(k.strip() for k in types.split(",") if k.strip())
    if not kinds or not kinds <= set(live.KINDS):
        raise Problem(422, "Unprocessable", f"types must be a comma-separated subset of "
                      f"{', '.join(live.KINDS)}; got {types!r}")
    if user.role is Role.LAB:
        site = user.site_id
    wanted = live.Filter(kinds, site, drone)
    token = request.headers["authorization"].partition(" ")[2].strip()

    def resume_from() -> live.Cursor | None:
        """The client's cursor, unless it is unknown or too far behind."""
        try:
            cursor = live.Cursor.decode(last_event_id)
        except live.CursorError:
            return None
        with engine.connect() as conn:
            return None if live.too_far_behind(conn, cursor) else cursor

    def catch_up(cursor: live.Cursor) -> tuple[list[live.Change], bool]:
        with engine.connect() as conn:
            return live.read(conn, cursor, time.monotonic())

    def still_allowed() -> bool:
        with engine.connect() as conn:
            return user_for_token(conn, token, clock.now()) is not None

    # Subscribed before the response starts, and before any catch-up read: whatever commits
    # from here on reaches the stream through the feed.
    subscription = await feed.subscribe(wanted)
    cursor = None
    if last_event_id:
        try:
            cursor = await anyio.to_thread.run_sync(resume_from)
        except BaseException:
            feed.unsubscribe(subscription)
            raise
        if cursor is None:
            subscription.reset(TOO_OLD, feed.mark)

    async def events() -> AsyncIterator[bytes]:
        try:
            while cursor is not None:  # a resumed stream: what it missed, from the database
                changes, more = await anyio.to_thread.run_sync(catch_up, cursor)
                frames = [c.frame for c in changes if wanted.passes(c)]
                if frames:  # the cursor on the last frame, as in the feed's batches
                    frames[-1] = b"id: %s\n" % cursor.encode().encode() + frames[-1]
                    yield b"".join(frames)
                if not more:
                    subscription.seen = live.Seen.of(cursor)
                    break
            checked = written = time.monotonic()
            while True:
                now = time.monotonic()
                written = max(written, subscription.wrote_at)  # the feed's writes count too
                wait = max(0.0, min(TOKEN_RECHECK_S - (now - checked), PING_S - (now - written)))
                if chunk := await subscription.next(wait, feed.mark):
                    yield chunk
                    written = time.monotonic()
                elif time.monotonic() - max(written, subscription.wrote_at) >= PING_S:
                    yield PING
                    written = time.monotonic()
                if time.monotonic() - checked > TOKEN_RECHECK_S:
                    if not await anyio.to_thread.run_sync(still_allowed):
                        return
                    checked = time.monotonic()
        finally:
            feed.unsubscribe(subscription)

    direct = subscription.write_directly_to if request.app.state.settings.stream_direct_writes \
        else None
    return EventStream(events(), background=BackgroundTask(feed.unsubscribe, subscription),
                       direct=direct)
