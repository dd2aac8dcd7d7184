"""Tokens for people: user id and password in, an expiring bearer token out; and out again.

A login never holds a database connection while the password is checked (Argon2 takes tens
of milliseconds and 64 MiB): one short transaction records the attempt as refused and
decides whether it may be checked (dronelog.api.login_limit), the check runs in a worker
thread, and a second short transaction turns the refusal into a token if the password was
right. At most `LOGIN_CHECKS` checks run at once per process; an attempt that cannot get a
turn within `LOGIN_QUEUE_S` is answered 503 with Retry-After, so a flood of logins costs
neither the database pool nor the worker threads that other requests need.
"""

import math
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Form, Path, Request, Response
from starlette.datastructures import State

from dronelog.api import audit
from dronelog.api.accounts import (
    Role,
    User,
    begin_login,
    finish_login,
    lift_login_limit,
    password_matches,
    revoke_token,
)
from dronelog.api.deps import ConnectionDep, UserDep, bearer_token, require
from dronelog.api.login_limit import LoginLimits
from dronelog.api.problems import Problem
from dronelog.api.schemas import Me, TokenResponse
from dronelog.contract.messages import TEXT_FORBIDDEN

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
LOGIN_CHECKS = 4  # password checks at once per API process (each: ~64 MiB, one core)
LOGIN_QUEUE_S = 2.0  # how long a login waits for a turn before it is told to come back
Admin = Annotated[User, Depends(require(Role.ADMIN))]
LoginIdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/token", response_model=TokenResponse, summary="Log in (OAuth2 password form)",
             responses={429: {"description": "too many refused logins: wait Retry-After"},
                        503: {"description": "too many logins at once: retry after "
                                             "Retry-After"}})
async def token(request: Request, username: Annotated[str, Form(
                    min_length=1, max_length=200, pattern=rf"^[^{TEXT_FORBIDDEN}\t\n\r]*$")],
                password: Annotated[str, Form()]) -> TokenResponse:
    state = request.app.state
    gate = _login_gate(state)
    admitted = False
    with anyio.move_on_after(LOGIN_QUEUE_S):
        await gate.acquire()
        admitted = True
    if not admitted:
        raise Problem(503, "Service Unavailable", "too many logins at once; try again "
                      "shortly", headers={"Retry-After": "1"})
    try:
        client = request.client.host if request.client else "unknown"
        return await anyio.to_thread.run_sync(_login, state, username, password, client)
    finally:
        gate.release()


def _login(state: State, username: str, password: str, client: str) -> TokenResponse:
    now = state.clock.now()
    settings = state.settings
    limits = LoginLimits(settings.login_max_failures, timedelta(seconds=settings.login_window_s))
    with state.engine.begin() as conn:  # committed before the password is checked
        attempt = begin_login(conn, username, client, now, limits)
    if attempt.wait_until is not None:
        wait = max(1, math.ceil((attempt.wait_until - now).total_seconds()))
        raise Problem(429, "Too Many Requests", f"too many refused logins; try again in "
                      f"{wait} s", headers={"Retry-After": str(wait)})
    matches = password_matches(attempt.password_hash, password)  # unknown users too
    if attempt.user is None or not matches:
        raise Problem(401, "Unauthorized", "unknown user or wrong password",
                      headers={"WWW-Authenticate": "Bearer"})
    ttl = timedelta(hours=min(settings.token_ttl_h, settings.person_token_max_h))
    with state.engine.begin() as conn:
        issued = finish_login(conn, attempt, client, now, ttl)
    return TokenResponse(access_token=issued, expires_at=now + ttl,
                         role=attempt.user.role.value, user_id=attempt.user.id,
                         site_id=attempt.user.site_id)


def _login_gate(state: State) -> anyio.Semaphore:
    """The process's turns for password checks (made on first use, inside the event loop;
    no await between the look and the assignment, so only one is made)."""
    gate = getattr(state, "login_gate", None)
    if gate is None:
        gate = state.login_gate = anyio.Semaphore(LOGIN_CHECKS)
    return gate


@router.post("/logout", status_code=204, response_class=Response,
             summary="Log out: revoke the token this request presents")
def logout(request: Request, conn: ConnectionDep, user: UserDep) -> Response:
    revoke_token(conn, bearer_token(request), request.app.state.clock.now())
    return Response(status_code=204)


@router.get("/me", response_model=Me, summary="Who the token belongs to: user, role and site")
def me(user: UserDep) -> Me:
    return Me(user_id=user.id, role=user.role.value, site_id=user.site_id)


@router.delete("/login-limits/{user_id}", summary="Lift the login attempt limit of a user id "
               "(administrators): forget its refused logins")
def lift_limit(user_id: LoginIdPath, request: Request, conn: ConnectionDep,
               admin: Admin) -> dict:
    now = request.app.state.clock.now()
    lifted = lift_login_limit(conn, user_id)
    audit.record(conn, admin, "login.lift_limit", user_id, now, refusals=lifted)
    return {"user_id": user_id, "refusals_forgotten": lifted}
