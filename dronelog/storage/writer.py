"""Batch writer: stores a batch of accepted events and dead letters in one transaction.

Rows are plain dicts inserted through SQLAlchemy Core (no per-message ORM objects) with
INSERT ... ON CONFLICT DO NOTHING on the event id, so a redelivered event is stored once.
`RETURNING` tells which rows were new, which makes the duplicate count exact. An event whose
id is already stored for a different event (another sender's, or other content) is no
repeat: nothing of it is stored, it is dead-lettered (`storage_rejected`) and named in
`conflicting_ids`, so the HTTP entrance answers 409 and a receipt says refused.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Table, case, select

from dronelog.clock import Clock, SystemClock
from dronelog.contract.messages import (
    CustodyEventBase,
    DroneStatus,
    FlightEventBase,
    FlightPlanned,
    Telemetry,
)
from dronelog.domain.custody_rules import RANK, DescriptionSource, description_source
from dronelog.ingest.delivery import Accepted, Rejected, RejectReason
from dronelog.storage import custody_chain, tables
from dronelog.storage.change_notice import announce
from dronelog.storage.portable import as_utc, dialect_insert
from dronelog.storage.telemetry_copy import copy_telemetry

TELEMETRY = tables.TelemetryPoint.__table__
FLIGHT_EVENT = tables.FlightEvent.__table__
CUSTODY_EVENT = tables.CustodyEvent.__table__
STATUS_EVENT = tables.DroneStatusEvent.__table__
DRONE = tables.Drone.__table__
FLIGHT = tables.Flight.__table__
SPECIMEN = tables.Specimen.__table__
CONTAINER = tables.Container.__table__
DEAD_LETTER = tables.DeadLetter.__table__


@dataclass
class WriteResult:
    stored: dict[str, int] = field(default_factory=dict)  # table -> new rows
    duplicates: int = 0  # events already stored before this batch
    dead_lettered: int = 0  # new dead letters (a redelivered bad message lands once)
    # which events were new and which already stored, by event id (for the receipts)
    new_ids: set[UUID] = field(default_factory=set)
    duplicate_ids: set[UUID] = field(default_factory=set)
    # ids already stored for a different event: refused and dead-lettered, not repeats
    conflicting_ids: set[UUID] = field(default_factory=set)


class BatchWriter:
    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._postgresql = engine.dialect.name == "postgresql"
        self._insert = dialect_insert(engine.dialect.name)
        self._known_drones: set[str] = set()

    def write(self, accepted: list[Accepted], rejected: list[Rejected]) -> WriteResult:
        """Store everything in one transaction, or nothing (the exception propagates)."""
        result = WriteResult()
        new_drones: set[str] = set()
        new_statuses: set = set()
        with self.engine.begin() as connection:
            events = self._event_rows(accepted, self.clock.now())
            conflicts: set[UUID] = set()
            for table, rows in events.items():
                if not rows:
                    continue
                if table is TELEMETRY and self._postgresql:
                    new_ids = copy_telemetry(connection, rows)
                    inserted = len(new_ids)
                else:
                    new_ids = self._insert_new(connection, table, rows, "event_id")
                    inserted = len(new_ids)
                    if table is CUSTODY_EVENT:
                        custody_chain.append(connection, [r for r in rows
                                                          if r["event_id"] in new_ids])
                    elif table is STATUS_EVENT:
                        new_statuses = new_ids
                repeats = [r for r in rows if r["event_id"] not in new_ids]
                taken = _conflicting(connection, table, repeats)
                conflicts |= taken
                result.stored[table.name] = inserted
                result.duplicates += len(repeats) - len(taken)
                result.new_ids |= new_ids
                result.duplicate_ids |= {r["event_id"] for r in repeats} - taken
            result.conflicting_ids = conflicts
            refused = [_id_taken(item) for item in accepted if item.event.event_id in conflicts]
            self._write_registries(connection, [item for item in accepted
                                                if item.event.event_id not in conflicts],
                                   new_drones, new_statuses)
            if rejected or refused:
                result.dead_lettered = len(self._insert_new(
                    connection, DEAD_LETTER, [_dead_letter_row(r) for r in [*rejected, *refused]],
                    "digest"))
            if result.new_ids:
                announce(connection)  # the live feeds read once this commits
        self._known_drones |= new_drones
        return result

    def _insert_new(self, connection: Connection, table: Table, rows: list[dict[str, Any]],
                    key: str) -> set:
        """The keys of the rows that were new."""
        statement = (self._insert(table).on_conflict_do_nothing(index_elements=[key])
                     .returning(table.c[key]))
        return set(connection.execute(statement, rows).scalars())

    @staticmethod
    def _event_rows(accepted: list[Accepted], stored_at: datetime
                    ) -> dict[Table, list[dict[str, Any]]]:
        """Rows per table; `stored_at` lets the turnaround engine find what is new."""
        rows: dict[Table, list[dict[str, Any]]] = {
            TELEMETRY: [], FLIGHT_EVENT: [], CUSTODY_EVENT: [], STATUS_EVENT: []}
        for item in accepted:
            event, received_at = item.event, item.delivery.received_at
            if isinstance(event, Telemetry):
                rows[TELEMETRY].append(_telemetry_row(event, received_at))
            elif isinstance(event, FlightEventBase):
                rows[FLIGHT_EVENT].append(_flight_event_row(event, received_at) |
                                          {"stored_at": stored_at})
            elif isinstance(event, CustodyEventBase):
                rows[CUSTODY_EVENT].append(_custody_row(event, received_at) |
                                           {"stored_at": stored_at,
                                            "recorded_by": item.sender.identity})
            elif isinstance(event, DroneStatus):
                rows[STATUS_EVENT].append(_status_row(event, received_at))
            else:
                raise TypeError(f"no table for {type(event).__name__}")
        return rows

    def _write_registries(self, connection: Connection, accepted: list[Accepted],
                          new_drones: set[str], new_statuses: set) -> None:
        """First sight of drones, flights and containers; the most believable description of
        each specimen; the latest drone status."""
        drones: dict[str, dict[str, Any]] = {}
        flights: dict[str, dict[str, Any]] = {}
        plans: dict[str, dict[str, Any]] = {}
        specimens: dict[str, dict[str, Any]] = {}
        containers: dict[str, dict[str, Any]] = {}
        statuses: dict[str, dict[str, Any]] = {}
        for item in accepted:
            event, seen = item.event, item.delivery.received_at
            drone_id = getattr(event, "drone_id", None)
            if drone_id and drone_id not in self._known_drones:
                drones.setdefault(drone_id, {"id": drone_id, "first_seen_at": seen})
            if isinstance(event, FlightPlanned):
                plans[event.flight_id] = _flight_row(event, seen)
            elif isinstance(event, FlightEventBase):
                flights.setdefault(event.flight_id, _flight_row(event, seen))
            elif isinstance(event, CustodyEventBase):
                if event.specimen is not None:
                    row = _specimen_row(event, seen)
                    held = specimens.get(event.barcode)
                    if held is None or (RANK[DescriptionSource(row["description_source"])] >
                                        RANK[DescriptionSource(held["description_source"])]):
                        specimens[event.barcode] = row
                container_id = getattr(event, "container_id", None)
                if container_id:
                    containers.setdefault(container_id, {"id": container_id,
                                                         "first_seen_at": seen})
            elif isinstance(event, DroneStatus) and event.event_id in new_statuses:
                latest = statuses.get(event.drone_id)
                if latest is None or seen >= latest["status_received_at"]:
                    statuses[event.drone_id] = {
                        "id": event.drone_id, "first_seen_at": seen, "online": event.online,
                        "status_event_time": as_utc(event.event_time),
                        "status_received_at": seen}
        self._insert_missing(connection, DRONE, "id", list(drones.values()))
        new_drones.update(drones)
        self._insert_missing(connection, FLIGHT, "id",
                             [row for key, row in flights.items() if key not in plans])
        if plans:
            self._upsert_plans(connection, list(plans.values()))
        if specimens:
            self._upsert_descriptions(connection, list(specimens.values()))
        self._insert_missing(connection, CONTAINER, "id", list(containers.values()))
        if statuses:
            self._upsert_statuses(connection, list(statuses.values()))

    def _insert_missing(self, connection: Connection, table: Table, key: str,
                        rows: list[dict[str, Any]]) -> None:
        if rows:
            connection.execute(self._insert(table).on_conflict_do_nothing(index_elements=[key]),
                               rows)

    def _upsert_plans(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """A plan fills in the route of a flight first seen through a later event."""
        statement = self._insert(FLIGHT)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={column: statement.excluded[column] for column in
                  ("drone_id", "origin_site_id", "destination_site_id", "planned_departure")},
        )
        connection.execute(statement, rows)

    def _upsert_descriptions(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """A description replaces the one held only when it comes from a more believable
        source (domain/custody_rules.py: the origin's collection first); the others stay on
        their custody events as evidence, and the tracker names them as conflicts."""
        statement = self._insert(SPECIMEN)
        statement = statement.on_conflict_do_update(
            index_elements=["barcode"],
            set_={column: statement.excluded[column] for column in _DESCRIBED},
            where=_rank(SPECIMEN.c.description_source) <
            _rank(statement.excluded.description_source),
        )
        connection.execute(statement, rows)

    def _upsert_statuses(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """The drone's presence follows the status the broker delivered last (by received
        time): a last will is composed at connect time, so its event_time is old, but the
        broker delivers it when the link is lost."""
        statement = self._insert(DRONE)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={"online": statement.excluded.online,
                  "status_event_time": statement.excluded.status_event_time,
                  "status_received_at": statement.excluded.status_received_at},
            where=(DRONE.c.status_received_at.is_(None)
                   | (DRONE.c.status_received_at <= statement.excluded.status_received_at)),
        )
        connection.execute(statement, rows)


_NOT_COMPARED = ("received_at", "stored_at")  # when it arrived is no part of the event


def _conflicting(connection: Connection, table: Table, repeats: list[dict[str, Any]]
                 ) -> set[UUID]:
    """The event ids among `repeats` stored for a different event: another sender's (a
    custody event's `recorded_by`, the drone of the others), or other content."""
    if not repeats:
        return set()
    stored = {row.event_id: row._mapping for row in connection.execute(
        select(table).where(table.c.event_id.in_([r["event_id"] for r in repeats])))}
    return {row["event_id"] for row in repeats
            if row["event_id"] in stored and not _same_event(row, stored[row["event_id"]])}


def _same_event(row: dict[str, Any], stored: Any) -> bool:
    for name, value in row.items():
        if name in _NOT_COMPARED:
            continue
        held = stored[name]
        if isinstance(value, datetime) or isinstance(held, datetime):
            value, held = as_utc(value), as_utc(held)
        if value != held:
            return False
    return True


def _id_taken(item: Accepted) -> Rejected:
    return Rejected(item.delivery, RejectReason.STORAGE_REJECTED,
                    f"event id {item.event.event_id} is already stored for a different event: "
                    "nothing was stored; send this event with an id of its own",
                    str(item.event.event_id))


def _telemetry_row(event: Telemetry, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "drone_id": event.drone_id, "seq": event.seq,
        "flight_id": event.flight_id, "event_time": as_utc(event.event_time),
        "received_at": received_at, "lat": event.lat, "lon": event.lon, "alt_m": event.alt_m,
        "height_m": event.height_m, "ground_speed_mps": event.ground_speed_mps,
        "heading_deg": event.heading_deg, "battery_pct": event.battery_pct,
        "payload_temp_c": event.payload_temp_c, "link_quality_pct": event.link_quality_pct,
    }


def _flight_event_row(event: FlightEventBase, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "flight_id": event.flight_id, "drone_id": event.drone_id,
        "kind": event.kind, "event_time": as_utc(event.event_time), "received_at": received_at,
        "site_id": getattr(event, "site_id", None),
        "origin_site_id": getattr(event, "origin_site_id", None),
        "destination_site_id": getattr(event, "destination_site_id", None),
        "new_destination_site_id": getattr(event, "new_destination_site_id", None),
        "planned_departure": as_utc(getattr(event, "planned_departure", None)),
        "reason": getattr(event, "reason", None),
    }


def _flight_row(event: FlightEventBase, seen: datetime) -> dict[str, Any]:
    return {
        "id": event.flight_id, "drone_id": event.drone_id, "first_seen_at": seen,
        "origin_site_id": getattr(event, "origin_site_id", None),
        "destination_site_id": getattr(event, "destination_site_id", None),
        "planned_departure": as_utc(getattr(event, "planned_departure", None)),
    }


_DESCRIBED = ("kind", "blood_product", "priority", "temperature_class", "origin_site_id",
              "destination_site_id", "order_ref", "description_source", "description_event_id")


def _rank(column):
    return case({source.value: rank for source, rank in RANK.items()}, value=column, else_=1)


def _custody_row(event: CustodyEventBase, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "barcode": event.barcode, "kind": event.kind,
        "site_id": event.site_id, "actor_kind": event.actor.kind, "actor_id": event.actor.id,
        "event_time": as_utc(event.event_time), "received_at": received_at,
        "container_id": getattr(event, "container_id", None),
        "seal_id": getattr(event, "seal_id", None),
        "flight_id": getattr(event, "flight_id", None),
        "drone_id": getattr(event, "drone_id", None),
        "reason": getattr(event, "reason", None), "note": getattr(event, "note", None),
        "description": event.specimen.model_dump_json() if event.specimen else None,
    }


def _specimen_row(event: CustodyEventBase, seen: datetime) -> dict[str, Any]:
    details = event.specimen
    assert details is not None
    return {
        "barcode": event.barcode, "kind": details.kind, "blood_product": details.blood_product,
        "priority": details.priority, "temperature_class": details.temperature_class,
        "origin_site_id": details.origin_site_id,
        "destination_site_id": details.destination_site_id, "order_ref": details.order_ref,
        "first_event_id": event.event_id, "first_seen_at": seen,
        "description_source": description_source(event.kind, event.site_id,
                                                 details.origin_site_id).value,
        "description_event_id": event.event_id,
    }


def _status_row(event: DroneStatus, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id, "drone_id": event.drone_id, "online": event.online,
        "reason": event.reason, "event_time": as_utc(event.event_time),
        "received_at": received_at,
    }


def _dead_letter_row(rejected: Rejected) -> dict[str, Any]:
    delivery = rejected.delivery
    digest = hashlib.sha256(delivery.topic.encode("utf-8", "replace") + b"\0" + delivery.payload)
    return {
        "digest": digest.hexdigest(), "received_at": delivery.received_at,
        "topic": _printable(delivery.topic), "payload": delivery.payload,
        "reason_code": rejected.reason_code.value, "reason": _printable(rejected.reason),
        "event_id": rejected.event_id,
    }



def _printable(text: str) -> str:
    """Text columns cannot hold NUL (PostgreSQL) and should not hold other control bytes."""
    return "".join(c if c.isprintable() or c in "\t\n" else repr(c)[1:-1] for c in text)
