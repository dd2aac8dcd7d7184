"""Tamper evidence for the whole record (issue 15, finding 6): the specimen registry, the
audit log and the cold-chain telemetry of ended flights, besides the custody chains.

The outside test ran `UPDATE specimen SET priority='routine', ...` on a STAT unit,
`UPDATE telemetry SET payload_temp_c=5.0` and `UPDATE audit_log SET user_id=...`: no trigger
stopped them and `dronelog audit verify` said intact. Here each such edit is first refused
by a trigger, then made past the triggers (as someone with the database owner's rights
would), and the API's verification (`GET /api/v1/audit/record`, over real HTTP) names the
row, flight and minute where it happened. Retention thinning a sealed flight is not
tampering; tampering before a thinning is still caught after it. SQLite and PostgreSQL.
"""

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract.messages import CustodyEvent, FlightEvent
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage import retention
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import RecordSeal
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import LAYOUT, Api, scan, telemetry

BARCODE = "CJ2611220042"
FLIGHT, DRONE = "F-SEAL-1", "uav-07"
SQLITE_TRIGGERS = ("specimen_no_update", "specimen_no_delete", "audit_log_no_update",
                   "audit_log_no_delete", "telemetry_no_update", "telemetry_no_delete",
                   "record_seal_no_update", "record_seal_no_delete")


@pytest.fixture
def clock():
    """Today at 00:05:35 UTC. 35 s past a minute: the 5-minute test flight's 30 reports
    fall into six minutes (3 + 6 + 6 + 6 + 6 + 3), so thinning keeps six. 00:05: the flight
    begins 35 s after UTC midnight, inside the one whole UTC day retention thins it with, so
    the thinning is one seal of 24 removed; on the wall clock, in the five minutes after UTC
    midnight, the flight crossed it and was thinned as two days, sealed twice. Today,
    not a fixed date: the migration made the telemetry partitions around the wall clock."""
    return ManualClock(datetime.now(UTC).replace(hour=0, minute=5, second=35, microsecond=0))


@pytest.fixture
def api(engine, clock):
    running = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9"),
                  clock)
    yield running
    running.close()


def _accepted(event, topic: str, at: datetime) -> Accepted:
    return Accepted(Delivery(topic, b"", at), LAYOUT.parse(topic), event)


def store_specimen(engine, clock) -> None:
    """A STAT specimen collected at its origin, with its description."""
    event = TypeAdapter(CustodyEvent).validate_python(scan("custody.collected", barcode=BARCODE))
    BatchWriter(engine, clock).write(
        [_accepted(event, LAYOUT.site_custody(event.site_id), clock.now())], [])


def fly(engine, clock, flight: str = FLIGHT, minutes: int = 5) -> None:
    """A flight that took off `minutes` ago and has just landed, reporting every 10 s."""
    start = clock.now() - timedelta(minutes=minutes)
    flights = TypeAdapter(FlightEvent)
    takeoff = flights.validate_python(scan("flight.takeoff", flight_id=flight, drone_id=DRONE,
                                           event_time=start.isoformat()))
    landed = flights.validate_python(scan("flight.landed", flight_id=flight, drone_id=DRONE,
                                          event_time=clock.now().isoformat()))
    reports = [telemetry(DRONE, seq=i, at=start + timedelta(seconds=10 * i), flight_id=flight)
               for i in range(6 * minutes)]
    BatchWriter(engine, clock).write(
        [_accepted(takeoff, LAYOUT.flight(DRONE), clock.now())]
        + [_accepted(r, LAYOUT.telemetry(DRONE), clock.now()) for r in reports]
        + [_accepted(landed, LAYOUT.flight(DRONE), clock.now())], [])


def seal_flights(engine, clock) -> int:
    """The scheduler's job, once the seal delay has passed."""
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9")
    clock.advance(settings.telemetry_seal_delay_s + 1)
    return TurnaroundJobs(engine, settings, clock).telemetry_seals()


def write_audit_entries(api: Api) -> None:
    """Three audited writes through the API."""
    admin = api.as_role(Role.ADMIN)
    for name in ("ljz", "ljz", "xcz"):
        response = api.http.put(f"/api/v1/admin/sites/{name}", headers=admin, json={
            "name_zh": "村卫生室", "name_en": "clinic", "kind": "health_centre",
            "lat": 36.8, "lon": 119.9})
        assert response.status_code == 200


@pytest.fixture
def record(engine, clock, api):
    """A specimen, three audit entries and a sealed flight: the whole record, intact."""
    store_specimen(engine, clock)
    write_audit_entries(api)
    fly(engine, clock)
    assert seal_flights(engine, clock) == 1
    report = verified(api)
    assert report["intact"] is True, report
    assert (report["specimens"], report["audit_entries"], report["flights_sealed"],
            report["telemetry_rows_sealed"]) == (1, 3, 1, 30)
    return api


def verified(api: Api) -> dict:
    response = api.http.get("/api/v1/audit/record", headers=api.as_role(Role.DISPATCHER))
    assert response.status_code == 200, response.text
    return response.json()


def tamper(engine, *statements: str) -> None:
    """Edit the database past its triggers, as its owner could."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for name in SQLITE_TRIGGERS:
                connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for statement in statements:
            connection.execute(text(statement))


def audit_ids(engine) -> list[int]:
    with engine.connect() as connection:
        return connection.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars().all()


def telemetry_time(engine, index: int) -> datetime:
    with engine.connect() as connection:
        moment = connection.execute(text(
            "SELECT event_time FROM telemetry WHERE flight_id = :f ORDER BY event_time"),
            {"f": FLIGHT}).scalars().all()[index]
    return as_utc(moment if isinstance(moment, datetime) else datetime.fromisoformat(moment))


def minute_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


@pytest.mark.parametrize("statement", [
    f"UPDATE specimen SET priority = 'routine' WHERE barcode = '{BARCODE}'",
    f"DELETE FROM specimen WHERE barcode = '{BARCODE}'",
    "UPDATE audit_log SET user_id = 'someone-else'",
    "DELETE FROM audit_log",
    "UPDATE telemetry SET payload_temp_c = 5.0",
    "DELETE FROM telemetry",
    "UPDATE record_seal SET rows = 0",
    "DELETE FROM record_seal",
], ids=["specimen-update", "specimen-delete", "audit-update", "audit-delete",
        "telemetry-update", "telemetry-delete", "seal-update", "seal-delete"])
def test_triggers_refuse_direct_changes(engine, record, statement):
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text(statement))
    assert verified(record)["intact"] is True


def test_a_changed_specimen_description_is_caught_at_that_specimen(engine, record):
    tamper(engine, "UPDATE specimen SET priority = 'routine', temperature_class = 'ambient', "
                   f"destination_site_id = 'wjwsy' WHERE barcode = '{BARCODE}'")
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("specimen", BARCODE)
    assert broken["problem"].startswith("priority is 'routine'")


def test_a_deleted_specimen_row_is_caught(engine, record):
    tamper(engine, f"DELETE FROM specimen WHERE barcode = '{BARCODE}'")
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("specimen", BARCODE)
    assert "missing" in broken["problem"]


def test_a_changed_audit_entry_is_caught_at_that_entry(engine, record):
    second = audit_ids(engine)[1]
    tamper(engine, f"UPDATE audit_log SET user_id = 'someone-else' WHERE id = {second}")
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("audit_log", str(second))
    assert "changed" in broken["problem"]


def test_a_deleted_audit_entry_is_caught_at_the_entry_after_it(engine, record):
    ids = audit_ids(engine)
    tamper(engine, f"DELETE FROM audit_log WHERE id = {ids[1]}")
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("audit_log", str(ids[2]))
    assert "removed" in broken["problem"]


def test_changed_cold_chain_telemetry_is_caught_at_its_flight_and_minute(engine, record):
    moment = telemetry_time(engine, 13)
    tamper(engine, "UPDATE telemetry SET payload_temp_c = 5.5 "
                   f"WHERE flight_id = '{FLIGHT}' AND seq = 13")
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("telemetry", FLIGHT)
    assert broken["problem"].startswith(f"minute {minute_of(moment)}: ")
    assert "differ" in broken["problem"]


def test_deleted_and_slipped_in_telemetry_is_caught(engine, record, clock):
    moment = telemetry_time(engine, 20)
    tamper(engine, f"DELETE FROM telemetry WHERE flight_id = '{FLIGHT}' AND seq = 20")
    broken = verified(record)["first_break"]
    assert broken["record"] == "telemetry"
    assert broken["problem"].startswith(f"minute {minute_of(moment)}: 5 row(s) where the seal "
                                        "holds 6")
    received = clock.now() - timedelta(hours=1)  # back-dated: within what the seal covers
    with engine.begin() as connection:
        connection.execute(retention.TEL.insert().values(
            event_id=uuid.uuid4(), drone_id=DRONE, seq=20, flight_id=FLIGHT,
            event_time=moment, received_at=received, lat=36.8, lon=119.9, alt_m=120.0,
            ground_speed_mps=14.0, heading_deg=90.0, battery_pct=70.0, payload_temp_c=4.0))
    broken = verified(record)["first_break"]
    assert broken["problem"].startswith(f"minute {minute_of(moment)}: 6 row(s) where the seal "
                                        "holds 6, and they differ")


def test_a_changed_seal_is_caught_in_the_seals_chain(engine, record):
    tamper(engine, "UPDATE record_seal SET rows = 29")
    broken = verified(record)["first_break"]
    assert broken["record"] == "record_seal" and "changed" in broken["problem"]


def test_late_telemetry_is_counted_as_unsealed_not_as_tampering(engine, record, clock):
    late = telemetry(DRONE, seq=99, at=clock.now() - timedelta(minutes=12), flight_id=FLIGHT)
    BatchWriter(engine, clock).write([_accepted(late, LAYOUT.telemetry(DRONE), clock.now())],
                                     [])
    report = verified(record)
    assert report["intact"] is True and report["telemetry_rows_unsealed"] == 1


def _retention(engine, clock, days_later: float) -> retention.RetentionRun:
    """The retention job, run `days_later` (the API's clock stays: its tokens live on)."""
    with engine.begin() as connection:
        return retention.run(connection, clock.now() + timedelta(days=days_later),
                             full_days=30, retention_days=365)


def test_retention_thinning_a_sealed_flight_is_recorded_not_tampering(engine, record, clock):
    assert _retention(engine, clock, 40).rows_thinned == 24  # 30 reports, one kept per minute
    report = verified(record)
    assert report["intact"] is True, report
    assert report["telemetry_rows_sealed"] == 6
    with engine.connect() as connection:
        thinned = connection.execute(select(RecordSeal.__table__).where(
            RecordSeal.__table__.c.kind == "telemetry_thinned")).one()
    assert thinned.subject == FLIGHT and '"removed": 24' in thinned.detail
    assert '"intact_before": true' in thinned.detail


def test_tampering_before_a_thinning_is_still_caught_after_it(engine, record, clock):
    tamper(engine, f"UPDATE telemetry SET payload_temp_c = 5.5 WHERE flight_id = '{FLIGHT}'")
    _retention(engine, clock, 40)
    broken = verified(record)["first_break"]
    assert (broken["record"], broken["subject"]) == ("telemetry", FLIGHT)
    assert "when retention thinned it" in broken["problem"]


def test_expired_telemetry_leaves_an_empty_seal_and_an_intact_record(engine, record, clock):
    run = _retention(engine, clock, 400)
    assert run.rows_deleted or run.partitions_dropped
    report = verified(record)
    assert report["intact"] is True, report
    assert report["telemetry_rows_sealed"] == 0


def test_the_command_line_names_the_first_broken_link(engine, database_url, record, tmp_path):
    env = {"DRONELOG_DATABASE_URL": database_url, "PATH": "",
           "DRONELOG_CONFIG": str(tmp_path / "none.toml")}
    command = [sys.executable, "-m", "dronelog", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0 and "the record is intact" in intact.stdout, intact.stderr
    assert "3 audit entries" in intact.stdout and "1 flights" in intact.stdout
    tamper(engine, f"UPDATE telemetry SET payload_temp_c = 5.5 "
                   f"WHERE flight_id = '{FLIGHT}' AND seq = 0")
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert f"BROKEN: telemetry {FLIGHT}, seal " in broken.stderr


def test_only_dispatchers_and_administrators_verify(record):
    for role in Role:
        status = record.http.get("/api/v1/audit/record", headers=record.as_role(role)
                                 ).status_code
        assert (status == 200) == (role in (Role.DISPATCHER, Role.ADMIN)), role


def test_upgrading_chains_the_audit_log_and_seals_older_descriptions(tmp_path):
    from alembic import command

    from dronelog.storage import tamper_evidence
    from dronelog.storage.database import alembic_config, create_db_engine, migrate

    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0012")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(text(
                "INSERT INTO audit_log (at, user_id, action, subject, detail) "
                "VALUES (:at, 'admin-1', 'site.put', :s, '{}')"), {"at": now, "s": f"s{n}"})
        connection.execute(text(
            "INSERT INTO specimen (barcode, kind, priority, temperature_class, origin_site_id, "
            "destination_site_id, order_ref, first_event_id, first_seen_at, "
            "description_source) VALUES ('OLD1', 'blood_sample', 'stat', 'ambient', 'a', "
            "'b', 'ORD-1', :e, :at, 'collection')"), {"e": uuid.uuid4().hex, "at": now})
    migrate(engine)
    with engine.connect() as connection:
        result = tamper_evidence.verify_record(connection)
    assert result.first_break is None and result.audit_entries == 3
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER specimen_no_update"))
        connection.execute(text("UPDATE specimen SET priority = 'routine'"))
    with engine.connect() as connection:
        broken = tamper_evidence.verify_record(connection).first_break
    assert broken.record == "specimen" and "migration 0013 sealed" in broken.problem
