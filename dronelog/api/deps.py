"""Dependencies: the database connection per request and the authenticated user."""

from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator
from sqlalchemy import Connection

from dronelog.api.accounts import Role, User, user_for_token
from dronelog.api.problems import Problem
from dronelog.domain.barcodes import canonical_barcode


def connection(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.begin() as conn:
        yield conn


# scope="function": commit before the response is sent, so a client told 201 can read its write
ConnectionDep = Annotated[Connection, Depends(connection, scope="function")]
# The contract's barcode (dronelog.contract.messages.Barcode): nothing else can be stored. A
# typed or scanned one is looked up in its canonical form (dronelog/domain/barcodes.py).
BarcodePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9=+&%._-]{4,64}$"),
                        BeforeValidator(canonical_barcode)]
MAX_OFFSET = 10_000_000  # beyond any table here; keeps numbers within the databases' integers
# Days a report or a listing can ask for: beyond them, time-zone arithmetic overflows.
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def day_query(description: str):
    return Query(ge=EARLIEST_DAY, le=LATEST_DAY, description=f"{description} "
                 f"({EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()})")


def current_user(request: Request, conn: ConnectionDep) -> User:
    return authenticate(request, conn)


def authenticate(request: Request, conn: Connection) -> User:
    """The user of the request's bearer token (401 without a valid one)."""
    user = user_for_token(conn, bearer_token(request), request.app.state.clock.now())
    if user is None:
        raise Problem(401, "Unauthorized", "the token is unknown, expired or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return user


def bearer_token(request: Request) -> str:
    """The token of the request's `Authorization: Bearer` header (401 without one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthorized", "send a bearer token: Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


UserDep = Annotated[User, Depends(current_user)]


def require(*roles: Role):
    """A dependency that lets only `roles` through (403 for the others)."""

    def check(user: UserDep) -> User:
        if user.role not in roles:
            raise Problem(403, "Forbidden", f"the {user.role.value} role may not do this; "
                          f"allowed: {', '.join(r.value for r in roles)}")
        return user

    return check
