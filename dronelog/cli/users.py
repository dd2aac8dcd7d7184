"""`dronelog users`: API users, their roles and tokens."""

import sys
from datetime import UTC, datetime, timedelta

import click

from dronelog.cli.common import check_text, existing_engine, writable_engine
from dronelog.config import Settings


@click.group()
def users() -> None:
    """API users, their roles and tokens."""


@users.command("add")
@click.argument("user_id")
@click.option("--role", type=click.Choice(["lab", "dispatcher", "admin", "device"]),
              required=True)
@click.option("--site", "site_id", default=None, help="the site of a lab or device user")
@click.option("--name", "display_name", default=None)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input "
              "(devices need none: give them a token)")
@click.pass_obj
def users_add(settings: Settings, user_id: str, role: str, site_id: str | None,
              display_name: str | None, password_stdin: bool) -> None:
    """Add a user."""
    from dronelog.api.accounts import AccountError, Role, add_user, check_password

    if display_name is not None:
        from dronelog.api.schemas import Label

        check_text("--name", display_name, Label)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        if password is not None:
            check_password(user_id, password, settings.password_min_length)
        with writable_engine(settings).begin() as connection:
            add_user(connection, user_id, Role(role), datetime.now(UTC), password, site_id,
                     display_name)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"added {role} user {user_id}")


@users.command("token")
@click.argument("user_id")
@click.option("--hours", type=float, default=None, help="lifetime [DRONELOG_TOKEN_TTL_H]; "
              "a person's at most DRONELOG_PERSON_TOKEN_MAX_H")
@click.pass_obj
def users_token(settings: Settings, user_id: str, hours: float | None) -> None:
    """Issue a bearer token (printed once; only its hash is kept)."""
    from dronelog.api.accounts import AccountError, issue_token

    try:
        with writable_engine(settings).begin() as connection:
            token = issue_token(connection, user_id, datetime.now(UTC),
                                timedelta(hours=hours or settings.token_ttl_h),
                                timedelta(hours=settings.person_token_max_h))
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(token)


@users.command("revoke")
@click.argument("user_id")
@click.pass_obj
def users_revoke(settings: Settings, user_id: str) -> None:
    """Revoke every token of a user."""
    from dronelog.api.accounts import AccountError, revoke_tokens

    try:
        with writable_engine(settings).begin() as connection:
            count = revoke_tokens(connection, user_id, datetime.now(UTC))
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"revoked {count} token(s) of {user_id}")


@users.command("list")
@click.option("--role", type=click.Choice(["lab", "dispatcher", "admin", "device"]), default=None)
@click.pass_obj
def users_list(settings: Settings, role: str | None) -> None:
    """The users: id, role, site, active or not, name (never a password nor a token)."""
    from dronelog.api.accounts import Role, list_users

    with existing_engine(settings).connect() as connection:
        rows = list_users(connection, role=Role(role) if role else None)
    if not rows:
        click.echo("no users" + (f" with role {role}" if role else "") +
                   ": add one with `dronelog users add`")
        return
    click.echo(f"{'id':<16} {'role':<10} {'site':<10} {'state':<8} name")
    for row in rows:
        click.echo(f"{row.id:<16} {row.role:<10} {row.site_id or '-':<10} "
                   f"{'active' if row.active else 'inactive':<8} {row.display_name}")
