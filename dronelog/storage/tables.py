"""The domain's tables (SQLModel). Schema changes go through Alembic migrations.

Times are stored in UTC. Site, drone, flight and container ids are plain strings without
foreign keys on the event tables: an event from a drone the registry does not know yet is
still a fact worth keeping, never a reason to lose it.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel


def _utc(**kwargs) -> Column:
    return Column(DateTime(timezone=True), **kwargs)


class Site(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    lat: float
    lon: float
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class Drone(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    first_seen_at: datetime = Field(sa_column=_utc(nullable=False))
    online: bool | None = None
    status_event_time: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class DroneStatusEvent(SQLModel, table=True):
    __tablename__ = "drone_status_event"
    __table_args__ = (Index("ix_drone_status_event_drone_time", "drone_id", "event_time"),)

    event_id: UUID = Field(primary_key=True)
    drone_id: str = Field(max_length=64)
    online: bool
    reason: str = Field(max_length=16)
    event_time: datetime = Field(sa_column=_utc(nullable=False))
    received_at: datetime = Field(sa_column=_utc(nullable=False))


class Flight(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    drone_id: str = Field(max_length=64, index=True)
    origin_site_id: str | None = Field(default=None, max_length=64)
    destination_site_id: str | None = Field(default=None, max_length=64)
    planned_departure: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    first_seen_at: datetime = Field(sa_column=_utc(nullable=False))


class FlightEvent(SQLModel, table=True):
    __tablename__ = "flight_event"
    __table_args__ = (Index("ix_flight_event_flight_time", "flight_id", "event_time"),)

    event_id: UUID = Field(primary_key=True)
    flight_id: str = Field(max_length=64)
    drone_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    event_time: datetime = Field(sa_column=_utc(nullable=False))
    received_at: datetime = Field(sa_column=_utc(nullable=False))
    site_id: str | None = Field(default=None, max_length=64)
    origin_site_id: str | None = Field(default=None, max_length=64)
    destination_site_id: str | None = Field(default=None, max_length=64)
    new_destination_site_id: str | None = Field(default=None, max_length=64)
    planned_departure: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    reason: str | None = Field(default=None, max_length=500)


class TelemetryPoint(SQLModel, table=True):
    __tablename__ = "telemetry"
    __table_args__ = (
        Index("ix_telemetry_drone_time", "drone_id", "event_time"),
        Index("ix_telemetry_flight_time", "flight_id", "event_time"),
    )

    # SQLite auto-increments only a column declared exactly INTEGER PRIMARY KEY.
    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    event_id: UUID = Field(unique=True)
    drone_id: str = Field(max_length=64)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    flight_id: str | None = Field(default=None, max_length=64)
    event_time: datetime = Field(sa_column=_utc(nullable=False))
    received_at: datetime = Field(sa_column=_utc(nullable=False))
    lat: float
    lon: float
    alt_m: float
    height_m: float | None = None
    ground_speed_mps: float
    heading_deg: float
    battery_pct: float
    payload_temp_c: float | None = None
    link_quality_pct: float | None = None


class Specimen(SQLModel, table=True):
    """A specimen or blood unit, as first described by its collecting event."""

    barcode: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)
    blood_product: str | None = Field(default=None, max_length=32)
    priority: str = Field(max_length=16, index=True)
    temperature_class: str = Field(max_length=16)
    origin_site_id: str = Field(max_length=64, index=True)
    destination_site_id: str = Field(max_length=64, index=True)
    order_ref: str = Field(max_length=64)
    first_event_id: UUID
    first_seen_at: datetime = Field(sa_column=_utc(nullable=False))


class Container(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    first_seen_at: datetime = Field(sa_column=_utc(nullable=False))


class CustodyEvent(SQLModel, table=True):
    """One handover of one specimen. Append-only: a database trigger refuses updates and
    deletes; corrections are new events."""

    __tablename__ = "custody_event"
    __table_args__ = (
        Index("ix_custody_event_barcode_time", "barcode", "event_time"),
        Index("ix_custody_event_container_time", "container_id", "event_time"),
        Index("ix_custody_event_flight", "flight_id"),
    )

    event_id: UUID = Field(primary_key=True)
    barcode: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    site_id: str = Field(max_length=64)
    actor_kind: str = Field(max_length=16)
    actor_id: str = Field(max_length=64)
    event_time: datetime = Field(sa_column=_utc(nullable=False))
    received_at: datetime = Field(sa_column=_utc(nullable=False))
    container_id: str | None = Field(default=None, max_length=64)
    seal_id: str | None = Field(default=None, max_length=64)
    flight_id: str | None = Field(default=None, max_length=64)
    drone_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=500)


class DeadLetter(SQLModel, table=True):
    """Input that could not be stored as an event, kept with the reason.

    `digest` (SHA-256 of topic and payload) makes a redelivered bad message land once.
    """

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    received_at: datetime = Field(sa_column=_utc(nullable=False, index=True))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    reason_code: str = Field(max_length=32, index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    event_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
