"""Defaults a new installation gets: one home for its data, and flight data kept in full for
24 calendar months (CAAC AC-92-FS-002) unless an operator opts in to thinning or expiry,
never below 731 days."""

import pytest
from pydantic import ValidationError

from dronelog.config import MIN_FLIGHT_DATA_DAYS, Settings, default_home


def _settings(tmp_path, **values) -> Settings:
    return Settings(home=tmp_path, **values)


def test_the_database_lives_in_the_home_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRONELOG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DRONELOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("DRONELOG_CONFIG", str(tmp_path / "none.toml"))
    settings = Settings()
    assert settings.home == tmp_path / "home"
    assert settings.database_url == f"sqlite:///{tmp_path / 'home' / 'dronelog.db'}"


def test_without_dronelog_home_the_home_is_the_users_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DRONELOG_HOME", raising=False)
    monkeypatch.delenv("DRONELOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("DRONELOG_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "dronelog"
    assert Settings().database_url == f"sqlite:///{tmp_path / 'xdg' / 'dronelog' / 'dronelog.db'}"


def test_a_given_database_url_wins_over_the_home(tmp_path):
    url = "postgresql+psycopg://dronelog@db/dronelog"
    assert _settings(tmp_path, database_url=url).database_url == url


def test_telemetry_is_kept_in_full_and_for_good_by_default(tmp_path):
    settings = _settings(tmp_path)
    assert settings.telemetry_full_days is None
    assert settings.telemetry_retention_days is None


@pytest.mark.parametrize("field", ["telemetry_full_days", "telemetry_retention_days"])
def test_thinning_or_expiry_younger_than_24_months_is_refused(tmp_path, field):
    with pytest.raises(ValidationError, match="CAAC AC-92-FS-002"):
        _settings(tmp_path, **{field: MIN_FLIGHT_DATA_DAYS - 1})
    assert getattr(_settings(tmp_path, **{field: MIN_FLIGHT_DATA_DAYS}), field) == 731


def test_retention_left_off_neither_thins_nor_deletes(engine):
    """The job with both knobs unset, 3,000 days on: every report stays."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from dronelog.clock import ManualClock
    from dronelog.storage import retention
    from tests.support import write_telemetry

    old = datetime(2020, 1, 1, tzinfo=UTC)
    write_telemetry(engine, ManualClock(old), "uav-01", 120)  # two minutes at 1 Hz
    with engine.begin() as connection:
        result = retention.run(connection, old + timedelta(days=3000), None, None)
    with engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM telemetry")).scalar_one()
    assert (result.rows_deleted, result.rows_thinned, left) == (0, 0, 120)
