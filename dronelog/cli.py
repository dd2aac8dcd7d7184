"""The `dronelog` command. Every subcommand reads settings from DRONELOG_* and dronelog.toml."""

import signal
import sys
from pathlib import Path

import click
import structlog
from pydantic import ValidationError
from sqlalchemy import select

from dronelog import __version__
from dronelog.config import Settings
from dronelog.logs import configure_logging

log = structlog.get_logger("dronelog")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid configuration:\n{error}") from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dronelog")
@click.pass_context
def main(ctx: click.Context) -> None:
    """dronelog: track drone transport of lab specimens and blood between hospitals.

    Configuration comes from environment variables DRONELOG_* (for example
    DRONELOG_DATABASE_URL, DRONELOG_MQTT_URL) and from dronelog.toml or the file named by
    DRONELOG_CONFIG.
    """
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


@main.command()
@click.pass_obj
def ingest(settings: Settings) -> None:
    """Store every event from the broker exactly once (runs until SIGTERM or Ctrl-C)."""
    _run_ingester(settings)


@main.command()
@click.option("--port", type=int, default=18830, show_default=True,
              help="port of the local broker the demo starts on 127.0.0.1")
@click.option("--external-broker", is_flag=True,
              help="use the broker of DRONELOG_MQTT_URL instead of starting one")
@click.pass_obj
def demo(settings: Settings, port: int, external_broker: bool) -> None:
    """Run the system on embedded defaults: a local broker, the ingester and SQLite.

    The local broker is Mosquitto with dronelog's configuration (persistent sessions, no
    queue limit) when the mosquitto binary is installed, else the embedded amqtt broker.
    """
    from dronelog.broker import start_local_broker

    broker = None
    if not external_broker:
        broker = start_local_broker(Path(".dronelog/broker"), port)
        settings = settings.model_copy(update={"mqtt_url": broker.url,
                                               "mqtt_protocol": broker.protocol})
    click.echo(
        f"dronelog demo\n  broker:   {settings.mqtt_url} (MQTT {settings.mqtt_protocol})\n"
        f"  database: {settings.database_url}\n"
        f"  topics:   {settings.topic_prefix}/drones/<id>/telemetry|flight|custody|status, "
        f"{settings.topic_prefix}/sites/<id>/custody (docs/contract.md)\n"
        "  Ctrl-C stops; `dronelog dead-letters` shows refused input.", err=True)
    try:
        _run_ingester(settings)
    finally:
        if broker:
            broker.stop()


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    migrate(engine, revision)
    click.echo(f"database at revision {revision}: {engine.url.render_as_string()}")


@main.group()
def contract() -> None:
    """The public event contract."""


@contract.command("export")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              default=Path("docs/schemas"), show_default=True)
@click.option("--check", is_flag=True, help="fail if the files differ from the models")
def contract_export(directory: Path, check: bool) -> None:
    """Write the JSON Schema files generated from the message models."""
    from dronelog.contract.schemas import render_schemas, write_schemas

    if check:
        stale = [name for name, text in render_schemas().items()
                 if not (directory / name).exists()
                 or (directory / name).read_text(encoding="utf-8") != text]
        if stale:
            raise click.ClickException(f"out of date: {', '.join(stale)}; run "
                                       "`dronelog contract export`")
        click.echo("schemas are current")
        return
    for path in write_schemas(directory):
        click.echo(f"wrote {path}")


@main.command("dead-letters")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_obj
def dead_letters(settings: Settings, limit: int) -> None:
    """Show the newest dead letters: input that could not be stored, with the reason."""
    from dronelog.storage.database import create_db_engine
    from dronelog.storage.tables import DeadLetter

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    table = DeadLetter.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).order_by(table.c.received_at.desc()).limit(limit)).all()
    for row in rows:
        click.echo(f"{row.received_at:%Y-%m-%d %H:%M:%S}  {row.reason_code:<24} {row.topic}\n"
                   f"    {row.reason}")
    click.echo(f"{len(rows)} shown", err=True)


def _run_ingester(settings: Settings) -> None:
    from dronelog.ingest.service import Ingester
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    if settings.auto_migrate:
        migrate(engine)
    ingester = Ingester(settings, engine)

    def stop(signum: int, _frame) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        ingester.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ingester.run()
    sys.exit(0)
