"""Engine creation and migrations for SQLite (embedded default) and PostgreSQL (production)."""

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).parent / "migrations"


def create_db_engine(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for `url`. SQLite runs in WAL mode so readers never block the ingester."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"invalid sqlite_synchronous {sqlite_synchronous!r}")
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head", attempts: int = 10) -> None:
    """Bring the schema to `revision` (idempotent; safe to run at every start).

    Services started together (the ingester and the scheduler on a new database) may race
    to migrate. Each migration runs in one transaction (SQLite and PostgreSQL both have
    transactional DDL), so the loser rolls back whole; it waits and tries again, and then
    finds the schema current.
    """
    for attempt in range(1, attempts + 1):
        try:
            command.upgrade(alembic_config(engine), revision)
            return
        except DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)


class DatabaseUnavailable(RuntimeError):
    """A database a reader cannot use as it is: missing, not migrated, or unreachable."""


def open_existing(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine on a database that exists and is migrated to this version's head, for
    commands that only read: they never create a database file nor run a migration."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            raise DatabaseUnavailable(
                f"no database at {parsed.database}: nothing has been recorded here yet (start "
                "`dronelog demo` or the services, or set DRONELOG_HOME / DRONELOG_DATABASE_URL "
                "to where the data is)")
    engine = create_db_engine(url, sqlite_synchronous)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot reach the database {shown}: "
                                  f"{str(error.orig).strip().splitlines()[0]}") from error
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if current != head:
        engine.dispose()
        state = "is empty (no dronelog tables)" if current is None else f"is at {current}"
        raise DatabaseUnavailable(f"the database {shown} {state}; this dronelog needs "
                                  f"{head}: run `dronelog db upgrade`")
    return engine
