"""`dronelog alerts`: list, acknowledge and resolve alerts, as a dispatcher would."""

from datetime import UTC, datetime

import click
from sqlalchemy import Connection, select

from dronelog.cli.common import check_text, existing_engine, local_time
from dronelog.config import Settings

# Who may act on an alert: the roles the API lets acknowledge and resolve (api/accounts.py).
ACTING_ROLES = ("dispatcher", "admin")


@click.group()
def alerts() -> None:
    """List, acknowledge and resolve alerts."""


@alerts.command("list")
@click.option("--all", "show_all", is_flag=True, help="include resolved alerts")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_obj
def alerts_list(settings: Settings, show_all: bool, limit: int) -> None:
    """The newest alerts (open and acknowledged; --all adds resolved ones), with their times
    in the network's time zone and their site."""
    from dronelog.storage.tables import Alert

    table = Alert.__table__
    query = select(table).order_by(table.c.opened_at.desc()).limit(limit)
    if not show_all:
        query = query.where(table.c.state != "resolved")
    with existing_engine(settings).connect() as connection:
        rows = connection.execute(query).all()
    zone = settings.network_timezone
    if not rows:
        click.echo("no alerts" if show_all else "no open or acknowledged alerts")
        return
    click.echo(f"times in {zone}")
    for row in rows:
        site = row.site_id or row.at_site_id or row.origin_site_id or "-"
        click.echo(f"#{row.id:<6} {local_time(row.opened_at, zone)}  {row.state:<12} "
                   f"{row.severity:<8} {row.kind:<22} site {site:<10} "
                   f"{row.subject_kind} {row.subject_id}\n        {row.message}")
        if row.acknowledged_at:
            click.echo(f"        acknowledged {local_time(row.acknowledged_at, zone)} by "
                       f"{row.acknowledged_by}")
        if row.resolved_at:
            click.echo(f"        resolved {local_time(row.resolved_at, zone)} by "
                       f"{row.resolved_by}: {row.resolution_note or ''}")
    click.echo(f"{len(rows)} shown", err=True)


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", required=True, help="the acting user: an active dispatcher or admin "
              "(`dronelog users list`)")
@click.pass_obj
def alerts_ack(settings: Settings, alert_id: int, by: str) -> None:
    """Acknowledge an open alert."""
    _change_alert(settings, by, lambda c, store, now: store.acknowledge(c, alert_id, by, now))
    click.echo(f"alert {alert_id} acknowledged by {by}")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--by", required=True, help="the acting user: an active dispatcher or admin")
@click.option("--note", required=True, help="what was done")
@click.pass_obj
def alerts_resolve(settings: Settings, alert_id: int, by: str, note: str) -> None:
    """Resolve an alert by hand, with a note."""
    from dronelog.api.schemas import FreeText

    check_text("--note", note, FreeText)
    _change_alert(settings, by,
                  lambda c, store, now: store.resolve(c, alert_id, by, note, now))
    click.echo(f"alert {alert_id} resolved by {by}")


def _check_actor(connection: Connection, user_id: str) -> None:
    """`--by` names an active dispatcher or admin, or the command stops (exit 2)."""
    from dronelog.api.accounts import list_users

    found = list_users(connection, user_id=user_id)
    if not found or not found[0].active or found[0].role not in ACTING_ROLES:
        raise click.BadParameter(
            f"{user_id!r} is not an active dispatcher or admin (see `dronelog users list`)",
            param_hint="--by")


def _change_alert(settings: Settings, by: str, change) -> None:
    from dronelog.turnaround import alert_store

    try:
        with existing_engine(settings).begin() as connection:
            _check_actor(connection, by)
            change(connection, alert_store, datetime.now(UTC))
    except alert_store.AlertError as error:
        raise click.ClickException(str(error)) from error
