"""The stored events as the domain sees them: plain, immutable values with UTC-aware times.

The storage layer turns rows into these; the domain's state machines and rules take them,
together with a clock, and never touch a database or a broker.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CustodyFact:
    event_id: str
    barcode: str
    kind: str  # collected, packed, loaded, unloaded, received, rejected
    site_id: str
    actor_kind: str
    actor_id: str
    event_time: datetime
    container_id: str | None = None
    seal_id: str | None = None
    flight_id: str | None = None
    drone_id: str | None = None
    reason: str | None = None
    received_at: datetime | None = None  # when dronelog received it (the server's clock)
    recorded_by: str | None = None  # the authenticated sender: drone:<id>, site:<id>, user:<id>


@dataclass(frozen=True, slots=True)
class FlightFact:
    event_id: str
    flight_id: str
    drone_id: str
    kind: str  # planned, takeoff, landed, aborted, diverted, returned_home
    event_time: datetime
    site_id: str | None = None
    origin_site_id: str | None = None
    destination_site_id: str | None = None
    new_destination_site_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TelemetryFact:
    drone_id: str
    seq: int
    event_time: datetime
    lat: float
    lon: float
    alt_m: float
    ground_speed_mps: float
    heading_deg: float
    battery_pct: float
    flight_id: str | None = None
    payload_temp_c: float | None = None


@dataclass(frozen=True, slots=True)
class SpecimenFacts:
    """What a specimen is (from its first description)."""

    barcode: str
    kind: str
    priority: str  # stat, urgent, routine
    temperature_class: str
    origin_site_id: str
    destination_site_id: str
    blood_product: str | None = None


@dataclass(frozen=True, slots=True)
class SitePoint:
    id: str
    lat: float
    lon: float
    pad_radius_m: float = 25.0
