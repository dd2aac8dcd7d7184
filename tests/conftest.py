"""Fixtures over real components: a private Mosquitto per test, SQLite and PostgreSQL.

Without the `mosquitto` binary, broker tests run on the embedded amqtt broker and the tests
that need Mosquitto's own behaviour are skipped; without a reachable PostgreSQL, the
PostgreSQL variants are skipped. Both skips are listed at the end of the run. With
DRONELOG_REQUIRE_REAL=1 (CI) a missing component fails the test instead.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dronelog.broker import AmqttBroker, MosquittoBroker
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.storage.database import create_db_engine, migrate
from tests.support import Api

REQUIRE_REAL = os.environ.get("DRONELOG_REQUIRE_REAL") == "1"
PG_ADMIN_URL = os.environ.get("DRONELOG_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Both lists are read from the test reports, so they are complete when the tests run in
# several worker processes (pytest-xdist): a skip's reason, a stand-in's user property.
MISSING_PREFIX = "real component missing: "
SUBSTITUTED = "stand-in"


@pytest.fixture(autouse=True)
def dronelog_home(tmp_path_factory, monkeypatch) -> Path:
    """A DRONELOG_HOME of the test's own (its processes inherit it): nothing a test runs
    writes into the user's home, and no test finds another's database or outbox there."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DRONELOG_HOME", str(home))
    return home


def missing_component(what: str) -> None:
    """Skip (or, when real components are required, fail) for want of `what`."""
    if REQUIRE_REAL:
        pytest.fail(f"{what} is required (DRONELOG_REQUIRE_REAL=1) but not available")
    pytest.skip(MISSING_PREFIX + what)


def _pg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _pg_reachable() -> bool:
    try:
        with psycopg.connect(_pg_dsn(PG_ADMIN_URL), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_reachable()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path, pg_available: bool):
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dronelog.db'}"
        return
    if not pg_available:
        missing_component(f"PostgreSQL at {PG_ADMIN_URL}")
    name = f"dronelog_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = create_db_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def mosquitto(tmp_path: Path) -> MosquittoBroker:
    """A private Mosquitto on a free loopback port, with persistence in tmp_path."""
    if not MosquittoBroker.available():
        missing_component("the mosquitto binary")
    broker = MosquittoBroker(tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def broker(request, tmp_path: Path):
    """Mosquitto when installed, else the embedded amqtt broker."""
    if MosquittoBroker.available():
        instance = MosquittoBroker(tmp_path / "broker").start()
    else:
        if REQUIRE_REAL:
            pytest.fail("the mosquitto binary is required (DRONELOG_REQUIRE_REAL=1)")
        request.node.user_properties.append(
            (SUBSTITUTED, "the embedded amqtt broker stood in for the missing mosquitto"))
        instance = AmqttBroker().start()
    yield instance
    instance.stop()


@pytest.fixture
def clock(request):
    """Now, by the wall clock. A test whose outcome depends on the time of day, the day or
    the month names its moment instead, and says why in a comment:
    `@pytest.mark.parametrize("clock", [moment], indirect=True)`."""
    return ManualClock(getattr(request, "param", None)
                       or datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def api(engine, clock, broker):
    settings = Settings(database_url=str(engine.url), mqtt_url=broker.url,
                        mqtt_protocol=broker.protocol)
    running = Api(engine, settings, clock)
    yield running
    running.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that fails on a demo (tests/test_dashboards.py's `Demo`) that is no longer
    running gets the end of the demo's terminal in its report: which service stopped and how
    (`dronelog demo` says so), where CI would otherwise show only a refused connection."""
    outcome = yield
    report = outcome.get_result()
    demo = getattr(item, "funcargs", {}).get("demo")
    process = getattr(demo, "process", None)
    if report.failed and process is not None and process.poll() is not None:
        tail = demo.log.read_text(errors="replace")[-3000:]
        report.sections.append(("the demo had stopped", f"exit code {process.returncode}\n"
                                f"{tail}"))


def pytest_terminal_summary(terminalreporter) -> None:
    reports = [report for reports in terminalreporter.stats.values() for report in reports
               if isinstance(report, pytest.TestReport)]
    missing = {_skip_reason(report).removeprefix(MISSING_PREFIX) for report in reports
               if report.skipped and _skip_reason(report).startswith(MISSING_PREFIX)}
    substituted = {value for report in reports for key, value in report.user_properties
                   if key == SUBSTITUTED}
    if missing or substituted:
        terminalreporter.section("real components missing")
        for what in sorted(missing):
            terminalreporter.write_line(
                f"SKIPPED real-component tests for want of {what}; "
                "set DRONELOG_REQUIRE_REAL=1 to make this a failure")
        for what in sorted(substituted):
            terminalreporter.write_line(f"RAN with a stand-in: {what}")


def _skip_reason(report: pytest.TestReport) -> str:
    """The message of a skip (`longrepr` is (file, line, "Skipped: <message>"))."""
    if isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    return ""


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary folder), so a test may stop and
    start it without touching the machine's server."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> "PrivatePostgres":
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", options,
                  "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_postgres():
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bindirs:
        missing_component("PostgreSQL server binaries (initdb, pg_ctl)")
    from dronelog.broker import free_port

    datadir = Path(tempfile.mkdtemp(prefix="dronelog-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    server = PrivatePostgres(bindirs[-1].parent, datadir, free_port()).init()
    server.start()
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped by the test
    shutil.rmtree(datadir, ignore_errors=True)
