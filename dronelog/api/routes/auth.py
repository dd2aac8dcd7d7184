"""Tokens for people: user id and password in, an expiring bearer token out."""

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request

from dronelog.api.accounts import (
    authenticate,
    issue_token,
    login_blocked_until,
    record_login_failure,
)
from dronelog.api.deps import ConnectionDep, UserDep
from dronelog.api.problems import Problem
from dronelog.api.schemas import Me, TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse, summary="Log in (OAuth2 password form)")
def token(request: Request, conn: ConnectionDep, username: Annotated[str, Form()],
          password: Annotated[str, Form()]) -> TokenResponse:
    now = request.app.state.clock.now()
    settings = request.app.state.settings
    window = timedelta(seconds=settings.login_window_s)
    client = request.client.host if request.client else "unknown"
    blocked = login_blocked_until(conn, username, client, now, settings.login_max_failures,
                                  window)
    if blocked is not None:
        wait = max(1, math.ceil((blocked - now).total_seconds()))
        raise Problem(429, "Too Many Requests", f"too many refused logins; try again in "
                      f"{wait} s", headers={"Retry-After": str(wait)})
    user = authenticate(conn, username, password)
    if user is None:
        with request.app.state.engine.begin() as own:  # kept although this request fails
            record_login_failure(own, username, client, now, window)
        raise Problem(401, "Unauthorized", "unknown user or wrong password",
                      headers={"WWW-Authenticate": "Bearer"})
    ttl = timedelta(hours=request.app.state.settings.token_ttl_h)
    return TokenResponse(access_token=issue_token(conn, user.id, now, ttl),
                         expires_at=now + ttl, role=user.role.value, user_id=user.id,
                         site_id=user.site_id)


@router.get("/me", response_model=Me, summary="Who the token belongs to: user, role and site")
def me(user: UserDep) -> Me:
    return Me(user_id=user.id, role=user.role.value, site_id=user.site_id)
