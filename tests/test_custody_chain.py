"""Tamper evidence: custody events are hash-chained per specimen when stored; editing,
deleting or inserting a row by hand in the database is caught at that row."""

import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from dronelog.api.accounts import Role
from dronelog.contract.messages import CustodyEventBase
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage import custody_chain
from dronelog.storage.tables import CustodyLink
from dronelog.storage.writer import BatchWriter
from tests.support import LAYOUT, TOWN, scan

BARCODE = "CJ2611220042"


def store_journey(engine, barcode: str = BARCODE, start_minutes: int = 60) -> list[str]:
    """Five custody events of one specimen, stored by the ingester's writer in three batches
    (the last repeats one event: a redelivery must not grow the chain)."""
    from pydantic import TypeAdapter

    from dronelog.contract.messages import CustodyEvent

    adapter = TypeAdapter(CustodyEvent)
    steps = [("custody.collected", {}), ("custody.packed", {}),
             ("custody.loaded", {"flight_id": "F1", "drone_id": "uav-03"}),
             ("custody.unloaded", {"flight_id": "F1", "drone_id": "uav-03"}),
             ("custody.received", {})]
    events = [adapter.validate_python(scan(name, minutes_ago=start_minutes - 10 * i,
                                           barcode=barcode, **changes))
              for i, (name, changes) in enumerate(steps)]

    def accepted(event: CustodyEventBase) -> Accepted:
        topic = LAYOUT.site_custody(event.site_id)
        return Accepted(Delivery(topic, b"", datetime.now(UTC)), LAYOUT.parse(topic), event)

    writer = BatchWriter(engine)
    for batch in (events[:2], events[2:4], events[3:]):
        writer.write([accepted(e) for e in batch], [])
    return [str(e.event_id) for e in events]


def verify(engine, barcodes=None) -> custody_chain.Verification:
    with engine.connect() as connection:
        return custody_chain.verify(connection, barcodes)


def tamper(engine, *statements: str) -> None:
    """Edit stored rows the way someone with database access would: past the triggers."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
            connection.execute(text("ALTER TABLE custody_link DISABLE TRIGGER USER"))
        else:
            for name in ("custody_event_no_update", "custody_event_no_delete",
                         "custody_link_no_update", "custody_link_no_delete"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for statement in statements:
            connection.execute(text(statement))


def test_stored_events_form_one_chain_per_specimen(engine):
    ids = store_journey(engine)
    other = store_journey(engine, barcode="CJ2611220043")
    result = verify(engine)
    assert (result.specimens, result.events, result.first_break) == (2, 10, None)
    with engine.connect() as connection:
        links = connection.execute(select(CustodyLink.__table__).where(
            CustodyLink.__table__.c.barcode == BARCODE).order_by("seq")).all()
    assert [str(link.event_id) for link in links] == ids  # event-time order within batches
    assert [link.seq for link in links] == [1, 2, 3, 4, 5]
    assert links[0].prev_hash == custody_chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(links, links[1:], strict=False))
    assert len({link.hash for link in links}) == 5
    assert verify(engine, ["CJ2611220043"]).events == len(other)


def test_a_changed_row_is_caught_at_that_row(engine):
    ids = store_journey(engine)
    tamper(engine, f"UPDATE custody_event SET actor_id = 'someone-else' "
                   f"WHERE event_id = '{_stored_id(engine, ids[2])}'")
    broken = verify(engine).first_break
    assert (broken.barcode, broken.seq, broken.event_id) == (BARCODE, 3, ids[2])
    assert "changed" in broken.problem


def test_a_deleted_row_a_deleted_link_and_a_slipped_in_row_are_caught(engine):
    ids = store_journey(engine)
    tamper(engine, f"DELETE FROM custody_event WHERE event_id = '{_stored_id(engine, ids[1])}'")
    broken = verify(engine).first_break
    assert (broken.seq, broken.event_id) == (2, ids[1]) and "missing" in broken.problem

    second = store_journey(engine, barcode="CJ2611220043")
    tamper(engine, f"DELETE FROM custody_link WHERE event_id = "
                   f"'{_stored_id(engine, second[3])}'")
    broken = verify(engine, ["CJ2611220043"]).first_break
    assert broken.seq == 4 and "missing" in broken.problem

    third = store_journey(engine, barcode="CJ2611220044")
    with engine.connect() as connection:
        row = dict(connection.execute(select(custody_chain.EVENT).where(
            custody_chain.EVENT.c.event_id == uuid.UUID(third[0]))).one()._mapping)
    row.update(event_id=uuid.uuid4(), kind="rejected", reason="hemolysed")
    with engine.begin() as connection:
        connection.execute(custody_chain.EVENT.insert(), row)
    broken = verify(engine, ["CJ2611220044"]).first_break
    assert (broken.seq, broken.event_id) == (None, str(row["event_id"]))
    assert "no link" in broken.problem


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_concurrent_writers_never_fork_a_chain(engine):
    errors = []

    def write(offset: int) -> None:
        try:
            for batch in range(5):
                store_journey(engine, start_minutes=300 - 60 * batch - offset)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = verify(engine)
    assert (result.events, result.first_break) == (75, None)


def test_the_cli_and_the_api_report_the_first_broken_link(engine, database_url, api):
    ids = store_journey(engine)
    env = {"DRONELOG_DATABASE_URL": database_url, "PATH": ""}
    command = [sys.executable, "-m", "dronelog", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0 and "the record is intact" in intact.stdout
    report = api.http.get("/api/v1/audit/custody-chain", headers=api.as_role(Role.ADMIN))
    assert report.json() == {"specimens": 1, "events": 5, "intact": True, "first_break": None}
    tamper(engine, f"UPDATE custody_event SET site_id = '{TOWN}x' "
                   f"WHERE event_id = '{_stored_id(engine, ids[4])}'")
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and f"link 5, event {ids[4]}" in broken.stderr
    report = api.http.get("/api/v1/audit/custody-chain", params={"barcode": BARCODE},
                          headers=api.as_role(Role.DISPATCHER)).json()
    assert report["intact"] is False and report["first_break"]["event_id"] == ids[4]
    assert api.http.get("/api/v1/audit/custody-chain",
                        headers=api.as_role(Role.LAB)).status_code == 403


def _stored_id(engine, event_id: str) -> str:
    """The event id as the database spells it in SQL (SQLite keeps UUIDs as 32 hex digits)."""
    return uuid.UUID(event_id).hex if engine.dialect.name == "sqlite" else event_id


def test_upgrading_chains_the_events_stored_before(tmp_path):
    from alembic import command

    from dronelog.storage.database import alembic_config, create_db_engine, migrate

    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0005")
    store_journey_before_chains(engine)
    migrate(engine)
    result = verify(engine)
    assert (result.events, result.first_break) == (3, None)


def store_journey_before_chains(engine) -> None:
    """Custody rows as a 0005 database held them (no chain table yet)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for minutes, kind in ((30, "collected"), (20, "packed"), (10, "loaded")):
            connection.execute(text(
                "INSERT INTO custody_event (event_id, barcode, kind, site_id, actor_kind, "
                "actor_id, event_time, received_at, stored_at) VALUES (:id, :barcode, :kind, "
                ":site, 'staff', 'nurse-1', :at, :at, :at)"),
                {"id": uuid.uuid4().hex, "barcode": BARCODE, "kind": kind, "site": TOWN,
                 "at": (now - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S.%f")})
