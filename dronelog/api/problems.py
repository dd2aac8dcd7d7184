"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"


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


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _no_nul(request: Request, call_next):
        # No identifier here can hold NUL, and PostgreSQL refuses it in any query.
        if "\x00" in request.scope["path"] or b"%00" in request.scope["query_string"]:
            return problem_response(400, "Bad Request", "NUL characters are not allowed in "
                                    "the path or the query", request.url.path)
        return await call_next(request)

    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem):
        return problem_response(error.status_code, error.title, error.detail,
                                request.url.path, error.kind, error.headers, **error.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        return problem_response(error.status_code, _title(error.status_code), str(error.detail),
                                request.url.path, headers=getattr(error, "headers", None))

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
