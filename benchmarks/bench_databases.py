"""Scratch databases for the benchmarks (a temporary SQLite file, or a fresh PostgreSQL
database created on a loopback server and dropped afterwards), and the machine and versions
a benchmark reports."""

import os
import platform
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pydantic
import sqlalchemy
from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dronelog.storage.database import create_db_engine, migrate


def conninfo(url) -> str:
    """A psycopg connection string for a SQLAlchemy URL."""
    parts = {"host": url.host or "127.0.0.1", "port": url.port or 5432, "dbname": url.database}
    if url.username:
        parts["user"] = url.username
    if url.password:
        parts["password"] = url.password
    return make_conninfo(**parts)


def environment(pg_url: str, databases: list[str], **versions: str) -> dict:
    """Versions (the common ones and `versions`), CPU, memory, load, and the PostgreSQL
    server's version and main settings when it is benchmarked."""
    env = {"python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
           "psycopg": psycopg.__version__, "pydantic": pydantic.__version__, **versions,
           "sqlite": sqlite3.sqlite_version, "nproc": os.cpu_count(),
           "platform": platform.platform(), "machine": platform.machine(),
           "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu"] = next((line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            env["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    if "postgresql" in databases:
        try:
            with psycopg.connect(conninfo(make_url(pg_url)), autocommit=True) as c:
                env["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
                env["postgresql_settings"] = {
                    name: c.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("shared_buffers", "work_mem", "synchronous_commit", "fsync")}
        except Exception as error:  # noqa: BLE001 - reported, not raised
            env["postgresql"] = f"unavailable: {error}"
    return env


class ScratchDatabase:
    """A fresh, migrated database; `raw_target` is what sqlite3 or psycopg connect to."""

    def __init__(self, kind: str, workdir: Path, pg_url: str, prefix: str,
                 sqlite_synchronous: str = "FULL") -> None:
        self.kind = kind
        self.name = None
        self.path = None
        if kind == "sqlite":
            self.path = workdir / f"{prefix}-{uuid.uuid4().hex[:8]}.db"
            self.url = f"sqlite:///{self.path}"
            self.raw_target = str(self.path)
        else:
            admin_url = make_url(pg_url)
            if admin_url.host not in (None, "127.0.0.1", "localhost", "::1"):
                raise SystemExit(f"refusing a non-loopback PostgreSQL host {admin_url.host!r}")
            self._admin = conninfo(admin_url)
            self.name = f"{prefix.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self._admin, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            bench_url = admin_url.set(database=self.name)
            self.url = bench_url.render_as_string(hide_password=False)
            self.raw_target = conninfo(bench_url)
        self.engine = create_db_engine(self.url, sqlite_synchronous)
        migrate(self.engine)

    def analyze(self) -> None:
        """Planner statistics on PostgreSQL, as autovacuum would gather them."""
        if self.kind == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))

    def drop(self) -> None:
        self.engine.dispose()
        if self.kind == "postgresql" and self.name:
            with psycopg.connect(self._admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.name = None
        if self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
