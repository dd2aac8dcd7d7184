"""Read-only views of the record: the daily turnaround report and the dead letters."""

import csv
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

from dronelog.cli.common import existing_engine, local_time
from dronelog.config import Settings


@click.command()
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the day (network time zone); default today")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table")
@click.pass_obj
def report(settings: Settings, day: datetime | None, as_csv: bool) -> None:
    """The turnaround report of a day per route, priority and kind."""
    from dronelog.turnaround.report import compute

    the_day = (day.date() if day
               else datetime.now(ZoneInfo(settings.network_timezone)).date())
    with existing_engine(settings).connect() as connection:
        rows = compute(connection, the_day, settings.network_timezone, datetime.now(UTC))
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=[k for k in rows[0] if k != "computed_at"]
                                if rows else ["day"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    click.echo(f"turnaround report {the_day} ({settings.network_timezone})")
    if not rows:
        click.echo("no specimens that day")
    for row in rows:
        click.echo(f"{row['origin_site_id']}→{row['destination_site_id']} {row['priority']:<8}"
                   f"{row['kind']:<14} n={row['specimens']:<4} received={row['received']:<4} "
                   f"on time={_share(row['on_time_pct'])}  p50={_minutes(row['p50_min'])} "
                   f"p90={_minutes(row['p90_min'])}  excursions={row['excursions']} "
                   f"rejections={row['rejections']} flights={row['flights']}")


def _share(percent: float | None) -> str:
    return "- (none received)" if percent is None else f"{percent}%"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value} min"


@click.command("dead-letters")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.pass_obj
def dead_letters(settings: Settings, limit: int) -> None:
    """Show the newest dead letters: input that could not be stored, with the reason."""
    from dronelog.storage.tables import DeadLetter

    table = DeadLetter.__table__
    with existing_engine(settings).connect() as connection:
        rows = connection.execute(
            select(table).order_by(table.c.received_at.desc()).limit(limit)).all()
    if not rows:
        click.echo("no dead letters: everything received was stored")
        return
    click.echo(f"received (times in {settings.network_timezone})")
    for row in rows:
        click.echo(f"{local_time(row.received_at, settings.network_timezone)}  "
                   f"{row.reason_code:<24} {row.topic}\n    {row.reason}")
    click.echo(f"{len(rows)} shown", err=True)
