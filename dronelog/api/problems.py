"""Errors as RFC 9457 problem details (`application/problem+json`)."""

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("dronelog.api")

# Values a request can carry that the API's own checks let through and PostgreSQL refuses as
# data, not as a fault of the server: SQLSTATE 22003 (a number beyond the column's integer,
# e.g. an id of 2**31 where the column is 32-bit), 22021 and 22P05 (characters the database
# cannot hold), and psycopg's own refusal of NUL in text, which has no SQLSTATE.
_REFUSED_VALUES = {"22003": "a number in the request is out of the range the database holds",
                   "22021": "the request holds a character the database cannot store",
                   "22P05": "the request holds a character the database cannot store"}


class Problem(HTTPException):
    """An HTTP error with a problem type and extra members."""

    def __init__(self, status: int, title: str, detail: str, kind: str = "about:blank",
                 headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.title, self.kind, self.extra = title, kind, extra


def problem_response(status: int, title: str, detail: str, instance: str,
                     kind: str = "about:blank", headers=None, **extra) -> JSONResponse:
    body = {"type": kind, "title": title, "status": status, "detail": detail,
            "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


class RefuseNul:
    """No identifier here can hold NUL, and PostgreSQL refuses it in any query: a path or
    query with one is answered 400 before any route runs. A plain ASGI middleware, not
    `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware` passes every chunk of a
    streamed body through a memory stream and a task of its own, which took a third of the
    API's CPU with 500 live streams (docs/benchmarks.md, issue 18)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"]
                                        or b"%00" in scope["query_string"]):
            response = problem_response(400, "Bad Request", "NUL characters are not allowed "
                                        "in the path or the query", Request(scope).url.path)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem):
        return problem_response(error.status_code, error.title, error.detail,
                                request.url.path, error.kind, error.headers, **error.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        return problem_response(error.status_code, _title(error.status_code), str(error.detail),
                                request.url.path, headers=getattr(error, "headers", None))

    @app.exception_handler(DataError)
    async def _refused_value(request: Request, error: DataError):
        original = error.orig
        detail = _REFUSED_VALUES.get(getattr(original, "sqlstate", None) or "")
        if detail is None and "NUL (0x00)" in str(original):
            detail = "NUL characters are not allowed"
        if detail is None:
            raise error  # any other data error is the server's own: a 500, logged
        log.warning("request refused by the database as data", path=request.url.path,
                    error=str(original).splitlines()[0][:200])
        return problem_response(400, "Bad Request", detail, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                  for e in error.errors()]
        return problem_response(422, "Invalid request", "the request does not match the API "
                                "(see errors)", request.url.path, errors=errors)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
