"""Storage against real SQLite and PostgreSQL: migrations, idempotent writes, append-only
custody, isolation of an event the database refuses."""

import json
import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc, text
from sqlmodel import SQLModel

from dronelog.clock import ManualClock
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Delivery
from dronelog.ingest.persist import Persister
from dronelog.ingest.triage import TriageRules, triage
from dronelog.storage.writer import BatchWriter
from tests.support import count, telemetry

LAYOUT = TopicLayout()
CLOCK = ManualClock(datetime(2026, 11, 22, 0, 30, tzinfo=UTC))
RULES = TriageRules(layout=LAYOUT)


def sorted_out(*pairs):
    deliveries = [Delivery(topic, p if isinstance(p, bytes) else json.dumps(p).encode(),
                           CLOCK.now()) for topic, p in pairs]
    return triage(deliveries, RULES, CLOCK)


def custody(name, **changes):
    payload = EXAMPLES[name] | changes
    if payload["actor"]["kind"] == "drone":
        return LAYOUT.drone_custody(payload["actor"]["id"]), payload
    return LAYOUT.site_custody(payload["site_id"]), payload


def _not_partitioning(obj, name, type_, reflected, compare_to) -> bool:
    """Leave out what partitioning telemetry on PostgreSQL adds on purpose (migration 0007):
    the month partitions, and the event id's uniqueness over (event_id, event_time)."""
    if type_ == "table" and name and (name.startswith("telemetry_y")
                                      or name == "telemetry_default"):
        return False
    if type_ == "unique_constraint" and obj.table.name == "telemetry":
        return False
    return not (type_ == "index" and obj.table.name.startswith("telemetry_"))


def test_migrations_create_exactly_the_models_schema(engine):
    options = ({"include_object": _not_partitioning}
               if engine.dialect.name == "postgresql" else {})
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts=options),
                                SQLModel.metadata)
    assert diff == []


def test_a_batch_is_stored_once_however_often_it_is_written(engine):
    batch = sorted_out(
        (LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"]),
        (LAYOUT.flight("uav-03"), EXAMPLES["flight.planned"]),
        custody("custody.collected"),
        (LAYOUT.status("uav-03"), EXAMPLES["status"]),
        (LAYOUT.telemetry("uav-03"), b"nonsense"),
    )
    writer = BatchWriter(engine)
    first = writer.write(batch.accepted, batch.rejected)
    assert first.stored == {"telemetry": 1, "flight_event": 1, "custody_event": 1,
                            "drone_status_event": 1}
    assert (first.duplicates, first.dead_lettered) == (0, 1)
    again = BatchWriter(engine).write(batch.accepted, batch.rejected)
    assert again.stored == {"telemetry": 0, "flight_event": 0, "custody_event": 0,
                            "drone_status_event": 0}
    assert (again.duplicates, again.dead_lettered) == (4, 0)
    for table in ("telemetry", "flight_event", "custody_event", "drone_status_event",
                  "dead_letter", "drone", "flight", "specimen"):
        assert count(engine, f"SELECT count(*) FROM {table}") == 1, table


def test_specimen_details_come_from_first_sight_without_patient_identity(engine):
    batch = sorted_out(custody("custody.collected"), custody("custody.packed"))
    BatchWriter(engine).write(batch.accepted, batch.rejected)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM specimen")).mappings().one()
        container = connection.execute(text("SELECT id FROM container")).scalar_one()
    assert row["barcode"] == "CJ2611220042"
    assert (row["priority"], row["kind"], row["order_ref"]) == ("stat", "blood_sample",
                                                               "ORD-7F3K-22")
    assert container == "BOX-0193"
    columns = {c.lower() for c in row.keys()}
    assert not columns & {"patient", "patient_name", "name", "id_number"}


def test_a_plan_arriving_after_the_takeoff_fills_in_the_route(engine):
    writer = BatchWriter(engine)
    takeoff = sorted_out((LAYOUT.flight("uav-03"), EXAMPLES["flight.takeoff"]))
    writer.write(takeoff.accepted, [])
    plan = sorted_out((LAYOUT.flight("uav-03"), EXAMPLES["flight.planned"]))
    writer.write(plan.accepted, [])
    with engine.connect() as connection:
        flight = connection.execute(text("SELECT * FROM flight")).mappings().one()
        kinds = connection.execute(text(
            "SELECT kind FROM flight_event ORDER BY event_time")).scalars().all()
    assert (flight["origin_site_id"], flight["destination_site_id"]) == ("cjzxwsy", "pdrmyy")
    assert kinds == ["planned", "takeoff"]


def test_drone_presence_follows_the_status_delivered_last_so_a_last_will_works(engine):
    """A last will is composed at connect time: its event_time is older than the 'online'
    the drone published after connecting, but the broker delivers it when the link dies."""
    online = EXAMPLES["status"] | {"event_time": "2026-11-22T07:00:01+08:00"}
    will = online | {"event_id": "5e6f7081-92a3-44b5-86c7-d8e9fa0b1c77", "online": False,
                     "reason": "will", "event_time": "2026-11-22T07:00:00+08:00"}
    writer = BatchWriter(engine)

    def presence():
        with engine.connect() as connection:
            return bool(connection.execute(text("SELECT online FROM drone")).scalar_one())

    writer.write(sorted_out((LAYOUT.status("uav-03"), online)).accepted, [])
    assert presence() is True
    CLOCK.advance(seconds=600)  # the link dies ten minutes later
    writer.write(sorted_out((LAYOUT.status("uav-03"), will)).accepted, [])
    assert presence() is False
    # a redelivered copy of the old 'online' (already stored) does not bring it back
    CLOCK.advance(seconds=5)
    writer.write(sorted_out((LAYOUT.status("uav-03"), online)).accepted, [])
    assert presence() is False
    assert count(engine, "SELECT count(*) FROM drone_status_event") == 2


def test_custody_events_are_append_only(engine):
    batch = sorted_out(custody("custody.collected"))
    BatchWriter(engine).write(batch.accepted, [])
    for statement in ("UPDATE custody_event SET site_id = 'elsewhere'",
                      "DELETE FROM custody_event"):
        with pytest.raises(exc.DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    assert count(engine, "SELECT count(*) FROM custody_event WHERE site_id = 'cjzxwsy'") == 1


def test_custody_timeline_is_in_event_time_order_whatever_the_arrival_order(engine):
    names = ["custody.received", "custody.loaded", "custody.collected", "custody.unloaded",
             "custody.packed"]
    writer = BatchWriter(engine)
    for name in names:
        writer.write(sorted_out(custody(name)).accepted, [])
    with engine.connect() as connection:
        kinds = connection.execute(text(
            "SELECT kind FROM custody_event WHERE barcode = 'CJ2611220042' "
            "ORDER BY event_time")).scalars().all()
    assert kinds == ["collected", "packed", "loaded", "unloaded", "received"]


def _refuse_drone(engine, drone_id):
    """Make the real database refuse one drone's rows, as a constraint would."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text(
                "CREATE TRIGGER refuse BEFORE INSERT ON telemetry WHEN NEW.drone_id = "
                f"'{drone_id}' BEGIN SELECT RAISE(ABORT, 'drone is grounded'); END"))
        else:
            connection.execute(text(
                f"ALTER TABLE telemetry ADD CONSTRAINT grounded CHECK (drone_id <> '{drone_id}')"))


def test_an_event_the_database_refuses_is_dead_lettered_alone(engine):
    _refuse_drone(engine, "uav-bad")
    events = [telemetry("uav-ok", seq=1, at=CLOCK.now()),
              telemetry("uav-bad", seq=1, at=CLOCK.now()),
              telemetry("uav-ok", seq=2, at=CLOCK.now())]
    batch = sorted_out(*[(LAYOUT.telemetry(e.drone_id), e.model_dump_json().encode())
                         for e in events])
    result = Persister(BatchWriter(engine)).store(batch.accepted, batch.rejected)
    assert result.stored["telemetry"] == 2
    assert result.dead_lettered == 1
    with engine.connect() as connection:
        letter = connection.execute(text("SELECT * FROM dead_letter")).mappings().one()
    assert letter["reason_code"] == "storage_rejected"
    assert letter["event_id"] == str(events[1].event_id)
    assert json.loads(letter["payload"])["drone_id"] == "uav-bad"
    assert count(engine, "SELECT count(*) FROM telemetry WHERE drone_id = 'uav-ok'") == 2


def test_storage_outage_is_retried_until_the_database_returns(tmp_path):
    """A database that is not there yet: the batch is held and retried, never dropped."""
    from dronelog.storage.database import create_db_engine, migrate

    path = tmp_path / "later" / "dronelog.db"
    engine = create_db_engine(f"sqlite:///{path}")
    path.parent.rmdir()  # the folder vanishes: every connection now fails
    retries = []

    def on_retry(error):
        retries.append(error)
        if len(retries) == 3:  # the database comes back
            migrate(create_db_engine(f"sqlite:///{path}"))

    batch = sorted_out((LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"]))
    persister = Persister(BatchWriter(engine), first_delay_s=0.01, max_delay_s=0.02,
                          on_retry=on_retry)
    result = persister.store(batch.accepted, [])
    assert len(retries) == 3
    assert result.stored == {"telemetry": 1}


def test_giving_up_during_an_outage_stores_nothing_and_says_so(tmp_path):
    from dronelog.storage.database import create_db_engine

    path = tmp_path / "gone" / "dronelog.db"
    engine = create_db_engine(f"sqlite:///{path}")
    path.parent.rmdir()
    give_up = threading.Event()
    persister = Persister(BatchWriter(engine), first_delay_s=0.01,
                          on_retry=lambda _e: give_up.set())
    batch = sorted_out((LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"]))
    assert persister.store(batch.accepted, [], give_up) is None


@pytest.mark.parametrize("rows, size", [(0, 3), (5, 3), (6, 3), (3, 3), (1, 1)])
def test_pages_give_every_row_once_in_key_order_at_the_page_boundaries(engine, rows, size):
    """Keyset pagination (record verification reads large tables with it): a table whose
    size is a multiple of the page, one row short or over, and empty."""
    from sqlalchemy import insert

    from dronelog.storage.portable import pages
    from dronelog.storage.tables import JobState

    table = JobState.__table__
    now = datetime.now(UTC)
    with engine.begin() as connection:
        if rows:
            connection.execute(insert(table), [{"name": f"k{i:02d}", "value": str(i),
                                                "updated_at": now} for i in range(rows)])
        read = list(pages(connection, table, table.c.name, size))
    assert [row.name for page in read for row in page] == [f"k{i:02d}" for i in range(rows)]
    assert all(0 < len(page) <= size for page in read)
