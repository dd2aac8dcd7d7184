"""Users, roles and bearer tokens.

Passwords are hashed with Argon2 (argon2-cffi). Tokens are 256-bit random strings shown once;
only their SHA-256 is stored, with an expiry, and a token can be revoked.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from dronelog.storage.portable import as_utc
from dronelog.storage.tables import ApiToken, AppUser, LoginFailure

USER = AppUser.__table__
TOKEN = ApiToken.__table__
FAILURE = LoginFailure.__table__
_HASHER = PasswordHasher()


class Role(StrEnum):
    LAB = "lab"  # reads specimens; records receipt or rejection at its own site
    DISPATCHER = "dispatcher"  # reads everything; acknowledges and resolves alerts
    ADMIN = "admin"  # users, sites, drones
    DEVICE = "device"  # posts custody scans at its own site


@dataclass(frozen=True)
class User:
    id: str
    role: Role
    site_id: str | None
    display_name: str


class AccountError(ValueError):
    """A user or token request that cannot be honoured (the message says why)."""


def add_user(connection: Connection, user_id: str, role: Role, now: datetime,
             password: str | None = None, site_id: str | None = None,
             display_name: str | None = None) -> None:
    if role in (Role.LAB, Role.DEVICE) and not site_id:
        raise AccountError(f"a {role.value} user belongs to a site: give its site id")
    if connection.execute(select(USER.c.id).where(USER.c.id == user_id)).first():
        raise AccountError(f"user {user_id!r} exists")
    connection.execute(insert(USER).values(
        id=user_id, display_name=display_name or user_id, role=role.value, site_id=site_id,
        password_hash=_HASHER.hash(password) if password else None, active=True,
        created_at=now))


def authenticate(connection: Connection, user_id: str, password: str) -> User | None:
    row = connection.execute(select(USER).where(USER.c.id == user_id)).first()
    if row is None or not row.active or not row.password_hash:
        _HASHER.hash(password)  # spend the same time whether or not the user exists
        return None
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(row)


def issue_token(connection: Connection, user_id: str, now: datetime, ttl: timedelta) -> str:
    if not connection.execute(select(USER.c.id).where(and_(
            USER.c.id == user_id, USER.c.active.is_(True)))).first():
        raise AccountError(f"no active user {user_id!r}")
    token = secrets.token_urlsafe(32)
    connection.execute(insert(TOKEN).values(token_hash=_digest(token), user_id=user_id,
                                            created_at=now, expires_at=now + ttl))
    return token


def user_for_token(connection: Connection, token: str, now: datetime) -> User | None:
    row = connection.execute(
        select(USER).join(TOKEN, TOKEN.c.user_id == USER.c.id).where(and_(
            TOKEN.c.token_hash == _digest(token), TOKEN.c.revoked_at.is_(None),
            TOKEN.c.expires_at > now, USER.c.active.is_(True)))).first()
    return _user(row) if row else None


def revoke_tokens(connection: Connection, user_id: str, now: datetime) -> int:
    return connection.execute(update(TOKEN).where(and_(
        TOKEN.c.user_id == user_id, TOKEN.c.revoked_at.is_(None))).values(revoked_at=now)
    ).rowcount


def revoke_token(connection: Connection, token: str, now: datetime) -> bool:
    return bool(connection.execute(update(TOKEN).where(and_(
        TOKEN.c.token_hash == _digest(token), TOKEN.c.revoked_at.is_(None)))
        .values(revoked_at=now)).rowcount)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row) -> User:
    return User(row.id, Role(row.role), row.site_id, row.display_name)


def list_users(connection: Connection) -> list:
    """Every user, without password hashes."""
    return connection.execute(select(USER.c.id, USER.c.display_name, USER.c.role,
                                     USER.c.site_id, USER.c.active, USER.c.created_at)
                              .order_by(USER.c.id)).all()


def update_user(connection: Connection, user_id: str, now: datetime, *,
                role: Role | None = None, site_id: str | None = None,
                display_name: str | None = None, active: bool | None = None,
                password: str | None = None) -> None:
    """Change what is given; deactivating a user or changing its role revokes its tokens."""
    row = connection.execute(select(USER).where(USER.c.id == user_id)).first()
    if row is None:
        raise AccountError(f"no user {user_id!r}")
    values = {key: value for key, value in (("role", role and role.value),
                                            ("site_id", site_id),
                                            ("display_name", display_name),
                                            ("active", active)) if value is not None}
    if password is not None:
        values["password_hash"] = _HASHER.hash(password)
    new_role = Role(values.get("role", row.role))
    if new_role in (Role.LAB, Role.DEVICE) and not values.get("site_id", row.site_id):
        raise AccountError(f"a {new_role.value} user belongs to a site: give its site id")
    if values:
        connection.execute(update(USER).where(USER.c.id == user_id).values(**values))
    if active is False or (role is not None and role.value != row.role):
        revoke_tokens(connection, user_id, now)


def login_blocked_until(connection: Connection, user_id: str, client: str, now: datetime,
                        max_failures: int, window: timedelta) -> datetime | None:
    """When logins for this user id, or from this client, are allowed again; None if they are.

    A user id is blocked after `max_failures` refusals within `window`; a client after four
    times as many, whatever the user ids it tried."""
    since = now - window
    until = None
    for column, value, limit in ((FAILURE.c.user_id, user_id, max_failures),
                                 (FAILURE.c.client, client, 4 * max_failures)):
        count, oldest = connection.execute(
            select(func.count(), func.min(FAILURE.c.at))
            .where(and_(column == value, FAILURE.c.at > since))).one()
        if count >= limit:
            candidate = as_utc(oldest) + window
            until = max(until, candidate) if until else candidate
    return until


def record_login_failure(connection: Connection, user_id: str, client: str,
                         now: datetime, window: timedelta) -> None:
    connection.execute(insert(FAILURE).values(user_id=user_id[:64], client=client[:64],
                                              at=now))
    connection.execute(delete(FAILURE).where(FAILURE.c.at < now - 10 * window))
