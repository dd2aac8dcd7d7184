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
from sqlalchemy import Connection, and_, delete, func, insert, select, text, update

from dronelog.api.login_limit import KNOWN_CLIENT_FOR, LoginLimits, Refusals, wait_until
from dronelog.storage.portable import as_utc, upsert
from dronelog.storage.tables import ApiToken, AppUser, LoginClient, LoginFailure

USER = AppUser.__table__
TOKEN = ApiToken.__table__
FAILURE = LoginFailure.__table__
CLIENT = LoginClient.__table__
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


class PolicyError(AccountError):
    """A password or a token lifetime that the policy does not allow."""


PASSWORD_MAX_LENGTH = 200  # Argon2 hashes any length; this bounds what a request makes it do


def check_password(user_id: str, password: str, min_length: int) -> None:
    """The one password policy, for the API and `dronelog users` alike: at least
    `min_length` characters (DRONELOG_PASSWORD_MIN_LENGTH), at most 200, and not the user
    id. Length is what protects against guessing (NIST SP 800-63B); no composition rules."""
    if len(password) < min_length:
        raise PolicyError(f"a password has at least {min_length} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise PolicyError(f"a password has at most {PASSWORD_MAX_LENGTH} characters")
    if password.casefold() == user_id.casefold():
        raise PolicyError("a password must not be the user id")


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


def password_matches(password_hash: str | None, password: str) -> bool:
    """Argon2 verification: CPU and memory only, so call it holding no database connection.
    Without a hash (unknown or inactive user, a device) it costs a hashing all the same."""
    if not password_hash:
        _HASHER.hash(password)  # spend the same time whether or not the user exists
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(connection: Connection, user_id: str, now: datetime, ttl: timedelta,
                person_max: timedelta | None = None) -> str:
    """A new token for an active user; a person's (not a device's) lives at most
    `person_max` when given (the entrances give DRONELOG_PERSON_TOKEN_MAX_H)."""
    role = connection.execute(select(USER.c.role).where(and_(
        USER.c.id == user_id, USER.c.active.is_(True)))).scalar()
    if role is None:
        raise AccountError(f"no active user {user_id!r}")
    if person_max is not None and role != Role.DEVICE.value and ttl > person_max:
        raise PolicyError(f"a token for a person lives at most "
                          f"{person_max.total_seconds() / 3600:g} h; only devices get longer "
                          "ones")
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
    """Revoke every live token of a user; how many. An unknown user is an error, so that a
    mistyped id is not reported as done."""
    if connection.execute(select(USER.c.id).where(USER.c.id == user_id)).first() is None:
        raise AccountError(f"no user {user_id!r}")
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


def list_users(connection: Connection, limit: int | None = None, offset: int = 0,
               role: Role | None = None, user_id: str | None = None) -> list:
    """Users by id, without password hashes: a page of them, of one role, or one user."""
    query = select(USER.c.id, USER.c.display_name, USER.c.role, USER.c.site_id,
                   USER.c.active, USER.c.created_at).order_by(USER.c.id)
    if role is not None:
        query = query.where(USER.c.role == role.value)
    if user_id is not None:
        query = query.where(USER.c.id == user_id)
    return connection.execute(query.limit(limit).offset(offset)).all()


def count_users(connection: Connection, role: Role | None = None) -> int:
    query = select(func.count()).select_from(USER)
    if role is not None:
        query = query.where(USER.c.role == role.value)
    return connection.execute(query).scalar_one()


def list_tokens(connection: Connection, now: datetime, limit: int, offset: int = 0,
                user_id: str | None = None, role: Role | None = None,
                live_only: bool = True) -> tuple[list, int]:
    """Tokens, newest first, as their stored SHA-256 (never the token itself) with their
    user: those still usable (not revoked, not expired, an active user's), or every one;
    and how many there are."""
    query = select(TOKEN.c.token_hash, TOKEN.c.user_id, TOKEN.c.created_at,
                   TOKEN.c.expires_at, TOKEN.c.revoked_at, USER.c.role, USER.c.active
                   ).join(USER, USER.c.id == TOKEN.c.user_id)
    if user_id is not None:
        query = query.where(TOKEN.c.user_id == user_id)
    if role is not None:
        query = query.where(USER.c.role == role.value)
    if live_only:
        query = query.where(and_(TOKEN.c.revoked_at.is_(None), TOKEN.c.expires_at > now,
                                 USER.c.active.is_(True)))
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(query.order_by(TOKEN.c.created_at.desc(), TOKEN.c.token_hash)
                              .limit(limit).offset(offset)).all()
    return rows, total


def revoke_token_by_hash(connection: Connection, token_hash: str, now: datetime) -> str:
    """Revoke one token, named by its SHA-256 (what the token list shows); its user's id.
    An unknown token is an error; revoking a revoked one changes nothing."""
    user_id = connection.execute(select(TOKEN.c.user_id).where(
        TOKEN.c.token_hash == token_hash)).scalar()
    if user_id is None:
        raise AccountError(f"no token {token_hash[:12]}…")
    connection.execute(update(TOKEN).where(and_(TOKEN.c.token_hash == token_hash,
                                                TOKEN.c.revoked_at.is_(None)))
                       .values(revoked_at=now))
    return user_id


def update_user(connection: Connection, user_id: str, now: datetime, *,
                role: Role | None = None, site_id: str | None = None,
                display_name: str | None = None, active: bool | None = None,
                password: str | None = None) -> None:
    """Change what is given; deactivating a user, changing its role or its password revokes
    its tokens (a password changed because it leaked must take the sessions with it)."""
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
    if (active is False or password is not None
            or (role is not None and role.value != row.role)):
        revoke_tokens(connection, user_id, now)


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt on record as refused until its password proves right (`id`), or, when it
    must wait (`wait_until`), not recorded at all. `user` and `password_hash` are the user's
    as they were read with it: None for an unknown or inactive user."""

    id: int | None
    wait_until: datetime | None
    user: User | None
    password_hash: str | None


def begin_login(connection: Connection, user_id: str, client: str, now: datetime,
                limits: LoginLimits) -> LoginAttempt:
    """Record a login attempt as refused and decide, counting every attempt before it,
    whether it may be checked now. Commit at once: the refusal then counts even if the
    password check never finishes, and no connection is held while it runs.

    Attempts for one user id or from one client are serialized (on PostgreSQL by advisory
    locks taken before counting, in a fixed order; SQLite has one writer at a time and the
    insert comes first), so concurrent attempts cannot all be counted as the first."""
    user_id, client = user_id[:64], client[:64]
    if connection.dialect.name == "postgresql":
        for key in sorted(_lock_key(f"login:{kind}:{value}")
                          for kind, value in (("user", user_id), ("client", client))):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    attempt_id = connection.execute(insert(FAILURE).values(
        user_id=user_id, client=client, at=now)).inserted_primary_key[0]
    since = now - limits.window
    others = and_(FAILURE.c.id != attempt_id, FAILURE.c.at > since)

    def refusals(*where) -> Refusals:
        count, newest = connection.execute(select(func.count(), func.max(FAILURE.c.at))
                                           .where(others, *where)).one()
        return Refusals(count, as_utc(newest))

    known = connection.execute(select(CLIENT.c.user_id).where(and_(
        CLIENT.c.user_id == user_id, CLIENT.c.client == client,
        CLIENT.c.last_success_at > now - KNOWN_CLIENT_FOR))).first() is not None
    wait = wait_until(limits,
                      pair=refusals(FAILURE.c.user_id == user_id, FAILURE.c.client == client),
                      client=refusals(FAILURE.c.client == client),
                      user=refusals(FAILURE.c.user_id == user_id), known_client=known)
    if wait is not None and wait > now:
        connection.execute(delete(FAILURE).where(FAILURE.c.id == attempt_id))
        return LoginAttempt(None, wait, None, None)
    connection.execute(delete(FAILURE).where(FAILURE.c.at < now - 10 * limits.window))
    row = connection.execute(select(USER).where(USER.c.id == user_id)).first()
    if row is None or not row.active:
        return LoginAttempt(attempt_id, None, None, None)
    return LoginAttempt(attempt_id, None, _user(row), row.password_hash)


def finish_login(connection: Connection, attempt: LoginAttempt, client: str, now: datetime,
                 ttl: timedelta) -> str:
    """The password proved right: the attempt is no refusal, the client becomes known for
    the user, and the user gets a token."""
    connection.execute(delete(FAILURE).where(FAILURE.c.id == attempt.id))
    upsert(connection, CLIENT, [{"user_id": attempt.user.id, "client": client[:64],
                                 "last_success_at": now}], ["user_id", "client"])
    connection.execute(delete(CLIENT).where(CLIENT.c.last_success_at < now - KNOWN_CLIENT_FOR))
    return issue_token(connection, attempt.user.id, now, ttl)


def lift_login_limit(connection: Connection, user_id: str) -> int:
    """Forget the user's refused logins (an administrator lifting a limit); how many."""
    return connection.execute(delete(FAILURE).where(FAILURE.c.user_id == user_id)).rowcount


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
