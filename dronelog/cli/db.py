"""`dronelog db`: schema migrations and telemetry retention."""

from datetime import UTC, datetime

import click

from dronelog.cli.common import existing_engine
from dronelog.config import Settings


@click.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Create the database if need be and apply the migrations up to REVISION."""
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    migrate(engine, revision)
    click.echo(f"database at revision {revision}: {engine.url.render_as_string()}")


@db.command("retention")
@click.option("--days", "max_days", type=int, default=7, show_default=True,
              help="thin at most this many days of telemetry in this run")
@click.pass_obj
def db_retention(settings: Settings, max_days: int) -> None:
    """Thin and expire old telemetry now, if DRONELOG_TELEMETRY_FULL_DAYS or
    DRONELOG_TELEMETRY_RETENTION_DAYS opt in (the scheduler does it every 30 minutes); both
    are off by default and at least 731 days (docs/operations.md, Retention)."""
    from dronelog.storage import retention

    if settings.telemetry_full_days is None and settings.telemetry_retention_days is None:
        click.echo("telemetry is kept in full (no thinning nor expiry configured)")
    with existing_engine(settings).begin() as connection:
        result = retention.run(connection, datetime.now(UTC), settings.telemetry_full_days,
                               settings.telemetry_retention_days, max_days)
    click.echo(f"partitions created: {', '.join(result.partitions_created) or 'none'}; "
               f"dropped: {', '.join(result.partitions_dropped) or 'none'}")
    click.echo(f"telemetry rows deleted: {result.rows_deleted}, thinned: {result.rows_thinned}"
               f"; thinned up to {result.thinned_until or 'nothing yet'}")
