"""Administration over HTTP, for the admin role: users and their tokens, sites, drones.

The same operations as `dronelog users ...` and `dronelog sites import`; every change is
audited."""

from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update

from dronelog.api import audit
from dronelog.api.accounts import (
    AccountError,
    PolicyError,
    Role,
    User,
    add_user,
    check_password,
    issue_token,
    list_users,
    revoke_tokens,
    update_user,
)
from dronelog.api.deps import ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import Label, SitePublic
from dronelog.storage.portable import as_utc, insert_new, upsert
from dronelog.storage.tables import Drone, Site

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Admin = Annotated[User, Depends(require(Role.ADMIN))]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SITE, DRONE = Site.__table__, Drone.__table__


class UserPublic(BaseModel):
    id: str
    display_name: str
    role: Role
    site_id: str | None = None
    active: bool
    created_at: str


class UserCreate(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    role: Role
    site_id: str | None = Field(None, max_length=64)
    display_name: Label | None = None
    password: str | None = Field(None, description="none for devices: they use issued "
                                 "tokens; the password policy: docs/security.md")


class UserChange(BaseModel):
    role: Role | None = None
    site_id: str | None = Field(None, max_length=64)
    display_name: Label | None = None
    active: bool | None = None
    password: str | None = None


class TokenRequest(BaseModel):
    hours: float = Field(720, gt=0, le=24 * 366, description="the token expires after this; "
                         "a person's at most DRONELOG_PERSON_TOKEN_MAX_H")


class IssuedToken(BaseModel):
    user_id: str
    access_token: str
    expires_at: str


class SiteWrite(BaseModel):
    name_zh: Label
    name_en: Label
    kind: Literal["lab_hospital", "district_hospital", "health_centre", "blood_bank"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    timezone: str = Field("Asia/Shanghai", max_length=64)
    pad_radius_m: float = Field(25.0, gt=0, le=1000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. "
                             "Asia/Shanghai)") from error
        return value


class DroneWrite(BaseModel):
    display_name: Label | None = None
    model: Label | None = Field(None, max_length=100)
    home_site_id: str | None = Field(None, max_length=64)
    retired: bool = Field(False, description="out of service: left out of the fleet view")


class DroneRegistered(DroneWrite):
    id: str
    first_seen_at: str


def _user_row(row) -> UserPublic:
    return UserPublic(id=row.id, display_name=row.display_name, role=row.role,
                      site_id=row.site_id, active=row.active,
                      created_at=as_utc(row.created_at).isoformat())


def _account(action):
    """Run an accounts operation; its refusal as 404, 409, or 422 for what the password and
    token policy does not allow."""
    try:
        return action()
    except PolicyError as error:
        raise Problem(422, "Not allowed by the policy", str(error)) from error
    except AccountError as error:
        status = 404 if str(error).startswith("no ") else 409
        raise Problem(status, "Not found" if status == 404 else "Conflict",
                      str(error)) from error


def _password_allowed(request: Request, user_id: str, password: str | None) -> None:
    if password is not None:
        _account(lambda: check_password(user_id, password,
                                        request.app.state.settings.password_min_length))


def _site_exists(conn, site_id: str | None) -> None:
    if site_id and conn.execute(select(SITE.c.id).where(SITE.c.id == site_id)).first() is None:
        raise Problem(409, "Conflict", f"no site {site_id!r}: add it first "
                      "(PUT /api/v1/admin/sites/{id} or `dronelog sites import`)")


@router.get("/users", response_model=list[UserPublic], summary="Users (no password hashes)")
def users(conn: ConnectionDep, _: Admin) -> list[UserPublic]:
    return [_user_row(row) for row in list_users(conn)]


@router.post("/users", response_model=UserPublic, status_code=201, summary="Add a user")
def create_user(body: UserCreate, request: Request, conn: ConnectionDep,
                admin: Admin) -> UserPublic:
    now = request.app.state.clock.now()
    _password_allowed(request, body.id, body.password)
    _site_exists(conn, body.site_id)
    _account(lambda: add_user(conn, body.id, body.role, now, password=body.password,
                              site_id=body.site_id, display_name=body.display_name))
    audit.record(conn, admin, "user.add", body.id, now, role=body.role.value,
                 site_id=body.site_id)
    return _user_row(next(r for r in list_users(conn) if r.id == body.id))


@router.patch("/users/{user_id}", response_model=UserPublic,
              summary="Change a user: role, site, name, password, or deactivate")
def change_user(user_id: IdPath, body: UserChange, request: Request, conn: ConnectionDep,
                admin: Admin) -> UserPublic:
    now = request.app.state.clock.now()
    if user_id == admin.id and (body.active is False or body.role not in (None, Role.ADMIN)):
        raise Problem(409, "Conflict", "an administrator cannot lock themselves out; ask "
                      "another administrator")
    _password_allowed(request, user_id, body.password)
    _site_exists(conn, body.site_id)
    _account(lambda: update_user(conn, user_id, now, **body.model_dump(exclude_none=True)))
    audit.record(conn, admin, "user.change", user_id, now,
                 **body.model_dump(exclude_none=True, exclude={"password"}),
                 password_changed=body.password is not None)
    return _user_row(next(r for r in list_users(conn) if r.id == user_id))


@router.post("/users/{user_id}/tokens", response_model=IssuedToken, status_code=201,
             summary="Issue a token (for a device); it is shown once")
def user_token(user_id: IdPath, body: TokenRequest, request: Request, conn: ConnectionDep,
               admin: Admin) -> IssuedToken:
    now = request.app.state.clock.now()
    ttl = timedelta(hours=body.hours)
    person_max = timedelta(hours=request.app.state.settings.person_token_max_h)
    token = _account(lambda: issue_token(conn, user_id, now, ttl, person_max))
    audit.record(conn, admin, "token.issue", user_id, now, hours=body.hours)
    return IssuedToken(user_id=user_id, access_token=token,
                       expires_at=(now + ttl).isoformat())


@router.post("/users/{user_id}/revoke", summary="Revoke every token of a user")
def revoke(user_id: IdPath, request: Request, conn: ConnectionDep, admin: Admin) -> dict:
    now = request.app.state.clock.now()
    count = _account(lambda: revoke_tokens(conn, user_id, now))
    audit.record(conn, admin, "token.revoke", user_id, now, revoked=count)
    return {"user_id": user_id, "revoked": count}


@router.put("/sites/{site_id}", response_model=SitePublic,
            summary="Add or change a site")
def put_site(site_id: IdPath, body: SiteWrite, request: Request, conn: ConnectionDep,
             admin: Admin) -> SitePublic:
    now = request.app.state.clock.now()
    upsert(conn, SITE, [{"id": site_id, **body.model_dump()}], ["id"])
    audit.record(conn, admin, "site.put", site_id, now, **body.model_dump())
    return SitePublic(id=site_id, **body.model_dump())


@router.put("/drones/{drone_id}", response_model=DroneRegistered,
            summary="Register or describe a drone, or retire it")
def put_drone(drone_id: IdPath, body: DroneWrite, request: Request, conn: ConnectionDep,
              admin: Admin) -> DroneRegistered:
    now = request.app.state.clock.now()
    _site_exists(conn, body.home_site_id)
    insert_new(conn, DRONE, [{"id": drone_id, "first_seen_at": now}], ["id"])
    conn.execute(update(DRONE).where(DRONE.c.id == drone_id).values(**body.model_dump()))
    audit.record(conn, admin, "drone.put", drone_id, now, **body.model_dump())
    row = conn.execute(select(DRONE).where(DRONE.c.id == drone_id)).one()
    return DroneRegistered(id=drone_id, first_seen_at=as_utc(row.first_seen_at).isoformat(),
                           **body.model_dump())
