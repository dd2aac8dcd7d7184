"""A Server-Sent Events response for endless streams of chunks that are SSE already.

The live stream's body is bytes built once per batch and shared by every stream of the same
filter (`dronelog/api/change_feed.py`); all a response has to do per chunk is hand it to the
server. sse-starlette's `EventSourceResponse`, used before, also encodes, times and locks
each send and runs three tasks beside each stream; with 500 streams at 20 chunks a second
that was a sixth of the API's CPU (docs/benchmarks.md, issue 18). This one:

- sends each chunk as it comes, with no per-chunk work of its own; keep-alive pings are the
  body's business (the live route sends a comment line when it had nothing to send for a
  while);
- ends the body when the client goes away (`http.disconnect`): uvicorn drops writes to a
  closed connection silently, so the disconnect is what stops a stream;
- ends the body when the server is asked to stop (SIGTERM or SIGINT to `dronelog api`):
  uvicorn waits for open responses before it exits, and these never end by themselves. One
  check per event loop, every `EXIT_POLL_S`, while streams are open;
- hands the connection's transport to `direct` once the response has started, when the
  server gives it (`dronelog api`'s protocol, dronelog/api/server.py, puts it in the request's
  state) and the body is chunked (HTTP/1.1): the change feed then writes each batch to it
  itself, framed as a chunk, while the body waits (change_feed.Subscription). A write through
  the ASGI server costs a turn of the stream's task, its generator, the middlewares, uvicorn
  and h11 for every stream and batch: most of the API's CPU with hundreds of streams
  (docs/benchmarks.md, issue 18). The order holds because every middleware here is plain
  ASGI that passes the body on unchanged: a body's `send` has reached the transport when it
  returns. One that passes the body through a task of its own (Starlette's
  `BaseHTTPMiddleware`, `@app.middleware("http")`) would let the feed's writes overtake it,
  and one that changes the body (GZip) would be bypassed by them.
"""

import asyncio
import signal
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

EXIT_POLL_S = 0.5
TRANSPORT = "dronelog.transport"  # the key of the connection's transport in scope["state"]
HEADERS = {"Cache-Control": "no-store", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str] | None = None,
                 background: BackgroundTask | None = None,
                 direct: Callable[[asyncio.Transport], None] | None = None) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.background = background
        self.direct = direct
        self.init_headers({**HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        transport = (scope.get("state") or {}).get(TRANSPORT)
        if self.direct and transport is not None and scope.get("http_version") == "1.1":
            self.direct(transport)  # h11 frames an HTTP/1.1 body without a length in chunks
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_until_gone, receive, tasks.cancel_scope)
                tasks.start_soon(_until_exit, tasks.cancel_scope)
                try:
                    async for chunk in self.body_iterator:
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": True})
                finally:
                    with anyio.CancelScope(shield=True):  # its cleanup runs, whatever ended it
                        await self.body_iterator.aclose()
                tasks.cancel_scope.cancel()
            # The end of the body (ended, or the server stopping; after a disconnect uvicorn
            # drops it). uvicorn waits before each write, never after, so a write cut short
            # by the cancellation was not written and the body can still be closed.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if self.background is not None:
                await self.background()


async def _until_gone(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


# per event loop: the event set when the server is to stop, and the streams waiting for it
_open: dict[asyncio.AbstractEventLoop, tuple[asyncio.Event, set[asyncio.Task]]] = {}
_watchers: set[asyncio.Task] = set()  # strong references while they run


async def _until_exit(scope: anyio.CancelScope) -> None:
    """Cancel `scope` when the server is asked to stop; one watcher per event loop, running
    while streams are open on it."""
    loop = asyncio.get_running_loop()
    if loop not in _open:
        _open[loop] = (asyncio.Event(), set())
        watcher = loop.create_task(_watch_exit(loop), name="live streams: server exit")
        _watchers.add(watcher)
        watcher.add_done_callback(_watchers.discard)
    exiting, streams = _open[loop]
    me = asyncio.current_task()
    streams.add(me)
    try:
        await exiting.wait()
        scope.cancel()
    finally:
        streams.discard(me)


async def _watch_exit(loop: asyncio.AbstractEventLoop) -> None:
    exiting, streams = _open[loop]
    try:
        while streams and not _server_exiting():
            await asyncio.sleep(EXIT_POLL_S)
        exiting.set()
    finally:
        del _open[loop]


def _server_exiting() -> bool:
    """Whether the uvicorn server of this process was asked to stop: uvicorn handles SIGTERM
    and SIGINT with its `Server.handle_exit`, which sets `should_exit`."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))
