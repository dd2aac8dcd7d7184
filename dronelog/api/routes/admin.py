"""Administration over HTTP, for the admin role: users and their tokens, sites, drones.

The same operations as `dronelog users ...` and `dronelog sites import`, and what the
dashboards' administration screen does; every change is audited, every list is a page."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update

from dronelog.api import audit
from dronelog.api.accounts import (
    AccountError,
    PolicyError,
    Role,
    User,
    add_user,
    check_password,
    count_users,
    issue_token,
    list_tokens,
    list_users,
    revoke_token_by_hash,
    revoke_tokens,
    update_user,
)
from dronelog.api.deps import MAX_OFFSET, ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.api.schemas import Label, Page, SitePublic
from dronelog.network import PadRadius, SiteKind
from dronelog.storage.portable import as_utc, insert_new, upsert
from dronelog.storage.tables import Drone, Site
from dronelog.zones import TimeZoneName

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Admin = Annotated[User, Depends(require(Role.ADMIN))]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the token's SHA-256, "
                              "as the token list shows it")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
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


class TokenPublic(BaseModel):
    """A token as the server keeps it: its SHA-256 (`id`, which does not reveal the token),
    its user and its life."""

    id: str
    user_id: str
    role: Role
    created_at: str
    expires_at: str
    revoked_at: str | None = None
    live: bool


class SiteWrite(BaseModel):
    name_zh: Label
    name_en: Label
    short_zh: Label | None = Field(None, max_length=40, description="for narrow labels")
    short_en: Label | None = Field(None, max_length=40, description="for narrow labels")
    kind: SiteKind
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    timezone: TimeZoneName = "Asia/Shanghai"
    pad_radius_m: PadRadius = 25.0


class DroneWrite(BaseModel):
    display_name: Label | None = None
    model: Label | None = Field(None, max_length=100)
    home_site_id: str | None = Field(None, max_length=64)
    retired: bool = Field(False, description="out of service: left out of the fleet view")
    registration_number: Label | None = Field(
        None, max_length=64, description="the real-name registration number (实名登记号), "
        "copied onto each request the drone is assigned to")


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


def require_site(conn, site_id: str | None) -> None:
    if site_id and conn.execute(select(SITE.c.id).where(SITE.c.id == site_id)).first() is None:
        raise Problem(409, "Conflict", f"no site {site_id!r}: add it first "
                      "(PUT /api/v1/admin/sites/{id} or `dronelog sites import`)")


def _one_user(conn, user_id: str) -> UserPublic:
    return _user_row(list_users(conn, user_id=user_id)[0])


@router.get("/users", response_model=Page[UserPublic],
            summary="Users by id, a page at a time (no password hashes)")
def users(conn: ConnectionDep, _: Admin, role: Role | None = None, limit: Limit = 100,
          offset: Offset = 0) -> Page[UserPublic]:
    return Page[UserPublic](items=[_user_row(row) for row in list_users(
        conn, limit=limit, offset=offset, role=role)], total=count_users(conn, role),
        limit=limit, offset=offset)


@router.post("/users", response_model=UserPublic, status_code=201, summary="Add a user")
def create_user(body: UserCreate, request: Request, conn: ConnectionDep,
                admin: Admin) -> UserPublic:
    now = request.app.state.clock.now()
    _password_allowed(request, body.id, body.password)
    require_site(conn, body.site_id)
    _account(lambda: add_user(conn, body.id, body.role, now, password=body.password,
                              site_id=body.site_id, display_name=body.display_name))
    audit.record(conn, admin, "user.add", body.id, now, role=body.role.value,
                 site_id=body.site_id)
    return _one_user(conn, body.id)


@router.patch("/users/{user_id}", response_model=UserPublic,
              summary="Change a user: role, site, name, password, or deactivate")
def change_user(user_id: IdPath, body: UserChange, request: Request, conn: ConnectionDep,
                admin: Admin) -> UserPublic:
    now = request.app.state.clock.now()
    if user_id == admin.id and (body.active is False or body.role not in (None, Role.ADMIN)):
        raise Problem(409, "Conflict", "an administrator cannot lock themselves out; ask "
                      "another administrator")
    _password_allowed(request, user_id, body.password)
    require_site(conn, body.site_id)
    _account(lambda: update_user(conn, user_id, now, **body.model_dump(exclude_none=True)))
    audit.record(conn, admin, "user.change", user_id, now,
                 **body.model_dump(exclude_none=True, exclude={"password"}),
                 password_changed=body.password is not None)
    return _one_user(conn, user_id)


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


@router.get("/tokens", response_model=Page[TokenPublic],
            summary="Tokens, newest first: the live ones (or every one), of a user or a role")
def tokens(request: Request, conn: ConnectionDep, _: Admin, user_id: Annotated[
               str | None, Query(max_length=64)] = None, role: Role | None = None,
           include_ended: bool = False, limit: Limit = 100,
           offset: Offset = 0) -> Page[TokenPublic]:
    now = request.app.state.clock.now()
    rows, total = list_tokens(conn, now, limit, offset, user_id=user_id, role=role,
                              live_only=not include_ended)
    return Page[TokenPublic](items=[TokenPublic(
        id=row.token_hash, user_id=row.user_id, role=row.role,
        created_at=as_utc(row.created_at).isoformat(),
        expires_at=as_utc(row.expires_at).isoformat(),
        revoked_at=row.revoked_at and as_utc(row.revoked_at).isoformat(),
        live=row.revoked_at is None and as_utc(row.expires_at) > now and row.active)
        for row in rows], total=total, limit=limit, offset=offset)


@router.post("/tokens/{token_id}/revoke", summary="Revoke one token (a lost scanner's)")
def revoke_one(token_id: TokenId, request: Request, conn: ConnectionDep,
               admin: Admin) -> dict:
    now = request.app.state.clock.now()
    user_id = _account(lambda: revoke_token_by_hash(conn, token_id, now))
    audit.record(conn, admin, "token.revoke", user_id, now, token=token_id[:12])
    return {"id": token_id, "user_id": user_id, "revoked": True}


@router.put("/sites/{site_id}", response_model=SitePublic,
            summary="Add or change a site")
def put_site(site_id: IdPath, body: SiteWrite, request: Request, conn: ConnectionDep,
             admin: Admin) -> SitePublic:
    now = request.app.state.clock.now()
    values = body.model_dump()
    # short names left out keep what the site has (a form that does not show them, say)
    kept = [name for name in ("short_zh", "short_en") if name not in body.model_fields_set]
    stored = conn.execute(select(*(SITE.c[name] for name in kept))
                          .where(SITE.c.id == site_id)).first() if kept else None
    values.update(stored._mapping if stored else {})
    upsert(conn, SITE, [{"id": site_id, **values}], ["id"])
    audit.record(conn, admin, "site.put", site_id, now, **values)
    return SitePublic(id=site_id, **values)


@router.get("/drones", response_model=Page[DroneRegistered],
            summary="The drone registry by id, retired ones too")
def drones(conn: ConnectionDep, _: Admin, include_retired: bool = True, limit: Limit = 100,
           offset: Offset = 0) -> Page[DroneRegistered]:
    query = select(DRONE)
    if not include_retired:
        query = query.where(DRONE.c.retired.is_(False))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(DRONE.c.id).limit(limit).offset(offset)).all()
    return Page[DroneRegistered](items=[_drone_row(row) for row in rows], total=total,
                                 limit=limit, offset=offset)


def _drone_row(row) -> DroneRegistered:
    return DroneRegistered(id=row.id, first_seen_at=as_utc(row.first_seen_at).isoformat(),
                           **{name: getattr(row, name) for name in DroneWrite.model_fields})


@router.put("/drones/{drone_id}", response_model=DroneRegistered,
            summary="Register or describe a drone, or retire it")
def put_drone(drone_id: IdPath, body: DroneWrite, request: Request, conn: ConnectionDep,
              admin: Admin) -> DroneRegistered:
    now = request.app.state.clock.now()
    require_site(conn, body.home_site_id)
    insert_new(conn, DRONE, [{"id": drone_id, "first_seen_at": now}], ["id"])
    conn.execute(update(DRONE).where(DRONE.c.id == drone_id).values(**body.model_dump()))
    audit.record(conn, admin, "drone.put", drone_id, now, **body.model_dump())
    return _drone_row(conn.execute(select(DRONE).where(DRONE.c.id == drone_id)).one())
