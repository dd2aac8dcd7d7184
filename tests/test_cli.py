"""The `dronelog` command as a dispatcher or an administrator uses it, in-process (click's
runner) on a SQLite database in a private DRONELOG_HOME: the read-only commands never make a
database, lists say what they show, and an alert is acknowledged only by a known dispatcher
or administrator."""

import socket
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from sqlalchemy import insert, select

from dronelog.api.accounts import Role, add_user
from dronelog.broker import free_port
from dronelog.cli import main
from dronelog.config import Settings
from dronelog.storage.database import create_db_engine, migrate
from dronelog.storage.tables import Alert
from dronelog.turnaround import repository as repo

OPENED = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # 09:30 in Asia/Shanghai
READ_ONLY = (["alerts", "list"], ["report"], ["users", "list"], ["dead-letters"],
             ["audit", "verify"])


def run(home, *args: str):
    return CliRunner().invoke(main, list(args), env={
        "DRONELOG_HOME": str(home), "DRONELOG_DATABASE_URL": None,
        "DRONELOG_CONFIG": str(home / "none.toml"), "DRONELOG_LOG_LEVEL": "WARNING"})


@pytest.fixture
def home(tmp_path):
    """A home with a migrated database: users of each kind and one open alert at pdrmyy."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dronelog.db'}")
    migrate(engine)
    with engine.begin() as connection:
        add_user(connection, "disp-01", Role.DISPATCHER, OPENED, display_name="调度员 甲")
        add_user(connection, "lab-01", Role.LAB, OPENED, site_id="pdrmyy",
                 display_name="检验科")
        connection.execute(insert(Alert.__table__).values(
            subject_kind="specimen", subject_id="SP-1", kind="deadline_missed",
            severity="critical", state="open", message="SP-1 late", details="{}",
            site_id="pdrmyy", opened_at=OPENED))
    engine.dispose()
    return tmp_path


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_in_an_empty_home_says_so_and_creates_nothing(tmp_path, command):
    result = run(tmp_path, *command)
    assert result.exit_code == 1
    assert f"no database at {tmp_path / 'dronelog.db'}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_command_on_an_unmigrated_database_does_not_migrate_it(tmp_path):
    (tmp_path / "dronelog.db").write_bytes(b"")
    result = run(tmp_path, "alerts", "list")
    assert result.exit_code == 1
    assert "is empty (no dronelog tables)" in result.output
    assert "dronelog db upgrade" in result.output
    with sqlite3.connect(tmp_path / "dronelog.db") as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []


def test_users_list_shows_id_role_site_state_and_name(home):
    result = run(home, "users", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "role", "site", "state", "name"]
    assert lines[1].split() == ["disp-01", "dispatcher", "-", "active", "调度员", "甲"]
    assert lines[2].split() == ["lab-01", "lab", "pdrmyy", "active", "检验科"]
    assert "argon2" not in result.output


def test_alerts_list_labels_times_in_the_networks_zone_and_names_the_site(home):
    result = run(home, "alerts", "list")
    assert result.exit_code == 0, result.output
    assert "times in Asia/Shanghai" in result.output
    assert "2026-12-05 09:30+0800" in result.output
    assert "site pdrmyy" in result.output


@pytest.mark.parametrize("by", ["nobody", "lab-01"])
def test_an_acknowledgement_by_anyone_but_a_dispatcher_or_admin_is_refused(home, by):
    result = run(home, "alerts", "ack", "1", "--by", by)
    assert result.exit_code == 2
    assert "not an active dispatcher or admin" in result.output
    engine = create_db_engine(f"sqlite:///{home / 'dronelog.db'}")
    with engine.connect() as connection:
        state = connection.execute(select(Alert.__table__.c.state)).scalar_one()
    assert state == "open"


def test_a_dispatcher_acknowledges_and_the_list_says_who_and_when(home):
    result = run(home, "alerts", "ack", "1", "--by", "disp-01")
    assert result.exit_code == 0, result.output
    listed = run(home, "alerts", "list").output
    assert "acknowledged" in listed and "by disp-01" in listed


def test_a_report_without_received_specimens_shows_no_none(home):
    # The report of a named day, with the specimen collected at its first instant (00:00 in
    # Shanghai, 16:00 UTC the day before: the day's inclusive start). The default day is
    # today by the CLI's own wall clock: a specimen stored at "now" just before midnight in
    # Shanghai fell on the day before the one the CLI reported a moment later.
    now = datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
    engine = create_db_engine(f"sqlite:///{home / 'dronelog.db'}")
    with engine.begin() as connection:
        connection.execute(insert(repo.SPECIMEN_TRACKING).values(
            barcode="SP-2", state="in_flight", is_open=True, priority="stat", kind="blood",
            origin_site_id="cjzxwsy", destination_site_id="pdrmyy",
            temperature_class="ambient", collected_at=now, deadline=now + timedelta(hours=1),
            warning_at=now + timedelta(minutes=45), custody_gaps="[]", anomalies="[]",
            description_conflicts="[]", updated_at=now))
    engine.dispose()
    result = run(home, "report", "--day", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert "turnaround report 2026-11-20" in result.output
    assert "cjzxwsy→pdrmyy" in result.output
    assert "None" not in result.output
    assert "on time=- (none received)" in result.output


def test_dead_letters_in_a_database_without_any_say_so(home):
    result = run(home, "dead-letters")
    assert result.exit_code == 0
    assert "no dead letters" in result.output


def test_a_demo_on_a_busy_port_names_it_and_starts_nothing(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = run(tmp_path, "demo", "--port", str(busy), "--api-port", str(free_port()))
    assert result.exit_code == 2
    assert f"broker port {busy} on 127.0.0.1" in result.output
    assert "API port" not in result.output  # the free one is not named
    assert list(tmp_path.iterdir()) == []  # no database, no broker folder, no logs


@pytest.mark.parametrize("command", [["scheduler"], ["ingest"], ["api"], ["alerts", "list"]])
def test_a_notification_channel_apprise_cannot_take_stops_every_command_plainly(tmp_path,
                                                                                 command):
    """Before, the scheduler (which raises the turnaround alerts) died at start with a
    traceback, and the API failed only when its notification page was opened."""
    channels = '{"lab-mail": "mailtos://lab:S3cret-pw@smtp.example.org", "bot": "nope://K3Y"}'
    result = CliRunner().invoke(main, command, env={
        "DRONELOG_HOME": str(tmp_path), "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
        "DRONELOG_NOTIFY_CHANNELS": channels,
        "DRONELOG_DATABASE_URL": "postgresql+psycopg://dl:Db-pa55@127.0.0.1:9/x"})
    assert result.exit_code == 1, result.output
    assert "DRONELOG_NOTIFY_CHANNELS: Value error, channel 'bot': apprise does not take its " \
        "URL (scheme 'nope')" in result.output
    for secret in ("S3cret-pw", "K3Y", "Db-pa55"):  # what was given is never echoed
        assert secret not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_network_time_zone_stops_a_command_at_start(tmp_path):
    """Before, it was taken and failed later: the scheduler's daily roll-up and every request
    id are dated in it."""
    result = CliRunner().invoke(main, ["scheduler"], env={
        "DRONELOG_HOME": str(tmp_path), "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
        "DRONELOG_NETWORK_TIMEZONE": "Asia/Shangai"})
    assert result.exit_code == 1, result.output
    assert "DRONELOG_NETWORK_TIMEZONE: Value error, unknown time zone" in result.output
    assert list(tmp_path.iterdir()) == []


def test_every_invalid_setting_is_named_with_its_variable_and_never_its_value(tmp_path):
    result = CliRunner().invoke(main, ["scheduler"], env={
        "DRONELOG_HOME": str(tmp_path), "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
        "DRONELOG_BATCH_SIZE": "lots", "DRONELOG_NOTIFY_CHANNELS": "[1"})
    assert result.exit_code == 1
    assert "DRONELOG_BATCH_SIZE: Input should be a valid integer" in result.output
    assert "DRONELOG_NOTIFY_CHANNELS: Value error, DRONELOG_NOTIFY_CHANNELS is not JSON" \
        in result.output
    assert "lots" not in result.output


def test_receipts_under_the_ingesters_own_login_stop_the_ingester_at_start(tmp_path):
    """With the shipped Mosquitto's use_username_as_clientid, a second connection under the
    ingester's login would take over its persistent session and wipe the messages queued for
    it; another login, or none (a broker without logins), is taken."""
    env = {"DRONELOG_HOME": str(tmp_path), "DRONELOG_CONFIG": str(tmp_path / "none.toml"),
           "DRONELOG_MQTT_URL": "mqtts://dronelog-ingester-1:In-pa55@broker.example:8883",
           "DRONELOG_RECEIPTS_MQTT_URL":
               "mqtts://dronelog-ingester-1:In-pa55@broker.example:8883"}
    with pytest.raises(ValidationError, match="logs in as the ingester itself"):
        Settings(mqtt_url=env["DRONELOG_MQTT_URL"],
                 receipts_mqtt_url=env["DRONELOG_RECEIPTS_MQTT_URL"])
    result = CliRunner().invoke(main, ["ingest"], env=env)
    assert result.exit_code == 1, result.output
    assert "DRONELOG_RECEIPTS_MQTT_URL: Value error, logs in as the ingester itself" \
        in result.output
    assert "In-pa55" not in result.output
    assert list(tmp_path.iterdir()) == []
    for other in ("mqtts://dronelog-receipts-1:R-pa55@broker.example:8883",
                  "mqtt://127.0.0.1:1883"):
        assert Settings(mqtt_url=env["DRONELOG_MQTT_URL"],
                        receipts_mqtt_url=other).receipts_mqtt_url == other
