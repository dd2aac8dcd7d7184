"""What the command modules share: settings, durations, engines, local times, text rules."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import click
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from dronelog.config import Settings, invalid_configuration


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(invalid_configuration(error)) from error


def duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except (ValueError, IndexError) as error:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 2h or 1d") from error


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        return value if isinstance(value, timedelta) else duration(value)


def writable_engine(settings: Settings) -> Engine:
    """The database of a command that writes: created and migrated if need be (unless
    DRONELOG_AUTO_MIGRATE=false)."""
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    if settings.auto_migrate:
        migrate(engine)
    return engine


def existing_engine(settings: Settings) -> Engine:
    """The database of a command that reads: it must exist and be migrated; exit 1 with a
    plain message otherwise. Nothing is created, nothing is migrated."""
    from dronelog.storage.database import DatabaseUnavailable, open_existing

    try:
        return open_existing(settings.database_url, settings.sqlite_synchronous)
    except DatabaseUnavailable as error:
        raise click.ClickException(str(error)) from error


def local_time(moment: datetime | None, zone: str) -> str:
    """A stored UTC time in the network's zone, with its offset, to the minute."""
    from dronelog.storage.portable import as_utc

    if moment is None:
        return "-"
    return as_utc(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M%z")


def check_text(option: str, value: str, rule) -> None:
    """The API's rule for free text (`FreeText`) or names (`Label`), for the same fields here."""
    try:
        TypeAdapter(rule).validate_python(value)
    except ValidationError as error:
        raise click.BadParameter(error.errors()[0]["msg"], param_hint=option) from error
