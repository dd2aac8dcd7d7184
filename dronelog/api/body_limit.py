"""A limit on request bodies, enforced while they are read and before anything else runs.

FastAPI reads a route's whole body (JSON, form) before it resolves the route's dependencies,
authentication included, so without a limit anyone could make the API hold a body of any
size: a 60 MB PUT with no token grew the API by 96 MiB before its 401. This ASGI middleware
sits outside the application:

- a `Content-Length` over the limit is answered 413 at once, before the application runs;
- a body without a length (chunked) is counted as the application reads it; the read that
  passes the limit is answered 413, and the application is told the client went away.

Either way no more than the limit (plus one chunk) is ever held. The custody entrance has a
limit of its own, the contract's payload limit, which it enforces while reading, after
authentication, and answers with the ingester's 422 `oversized` (docs/api.md); it is left
to it.
"""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dronelog.api.problems import MEDIA_TYPE

MAX_BODY_BYTES = 1 << 20  # every request body of the API is a few KiB at most
OWN_LIMITS = ("/api/v1/custody",)  # routes that read their body within a limit of their own


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES,
                 own_limits: tuple[str, ...] = OWN_LIMITS) -> None:
        self.app, self.max_bytes, self.own_limits = app, max_bytes, own_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in self.own_limits:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, f"the request body of {declared} bytes exceeds "
                               f"the limit of {self.max_bytes}")
            return
        received = 0
        refused = started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(scope, send, f"the request body exceeds the limit "
                                           f"of {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; what the application answers is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # the application's own failure
            # else: the application gave up reading a body it was told had gone away

    async def _refuse(self, scope: Scope, send: Send, detail: str) -> None:
        body = json.dumps({"type": "about:blank", "title": "Content Too Large", "status": 413,
                           "detail": detail, "instance": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
