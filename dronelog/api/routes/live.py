"""Live updates as Server-Sent Events: telemetry, custody events and alert changes.

A stream holds no database connection between polls, re-checks its token every
`TOKEN_RECHECK_S` and ends when the token expires or is revoked."""

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from dronelog.api import live
from dronelog.api.accounts import Role, user_for_token
from dronelog.api.deps import authenticate
from dronelog.api.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["live"])
TOKEN_RECHECK_S = 30.0
STREAM_DOC = """Server-Sent Events. Frames: `event: telemetry|custody|alert|reset`, `data:` JSON
with an `event_id`, and an `id:` cursor after each batch. Reconnect with the last id in the
`Last-Event-ID` header to resume without a gap (events may repeat: deduplicate by
`event_id`). `reset` means the cursor is too old or unknown: re-read the state and go on.
Lab users get their own site's events only (for alerts: those about their site, or about a
specimen collected there or lying there); devices may not listen."""


@router.get("/stream", summary="Live telemetry, custody events and alert changes (SSE)",
            description=STREAM_DOC, response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request,
                 types: Annotated[str, Query(description="comma-separated: telemetry, "
                                             "custody, alert")] = "telemetry,custody,alert",
                 site: str | None = None, drone: str | None = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    engine, clock = request.app.state.engine, request.app.state.clock
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

    def start() -> tuple[live.Cursor, bool]:
        with engine.connect() as conn:
            if last_event_id:
                try:
                    cursor = live.Cursor.decode(last_event_id)
                    if not live.too_far_behind(conn, cursor):
                        return cursor, False
                except live.CursorError:
                    pass
            return live.cursor_now(conn), bool(last_event_id)

    def poll(cursor: live.Cursor) -> list[tuple[str, dict]]:
        with engine.connect() as conn:
            return live.read(conn, cursor, wanted, time.monotonic())

    def still_allowed() -> bool:
        with engine.connect() as conn:
            return user_for_token(conn, token, clock.now()) is not None

    cursor, reset = await anyio.to_thread.run_sync(start)  # fixed before the response starts

    async def events() -> AsyncIterator[ServerSentEvent]:
        if reset:
            yield ServerSentEvent(json.dumps({"reason": "the cursor is too old or unknown; "
                                                        "re-read the state"}),
                                  event="reset", id=cursor.encode())
        checked = time.monotonic()
        interval = request.app.state.settings.stream_poll_s
        while True:
            batch = await anyio.to_thread.run_sync(poll, cursor)
            for number, (kind, data) in enumerate(batch, 1):
                yield ServerSentEvent(json.dumps(data), event=kind,
                                      id=cursor.encode() if number == len(batch) else None)
            if time.monotonic() - checked > TOKEN_RECHECK_S:
                if not await anyio.to_thread.run_sync(still_allowed):
                    return
                checked = time.monotonic()
            if len(batch) < live.BATCH:
                await anyio.sleep(interval)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store",
                                                            "X-Accel-Buffering": "no"})
