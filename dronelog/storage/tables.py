"""The domain's tables (SQLModel). Schema changes go through Alembic migrations.

Times are stored in UTC. Site, drone, flight and container ids are plain strings without
foreign keys on the event tables: an event from a drone the registry does not know yet is
still a fact worth keeping, never a reason to lose it.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlmodel import Field, SQLModel


def _utc(**kwargs) -> Column:
    return Column(DateTime(timezone=True), **kwargs)


class Site(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    # what a narrow label shows (a route in the report, a map label); the full name is its
    # tooltip. None: the dashboards shorten the full name themselves
    short_zh: str | None = Field(default=None, max_length=40)
    short_en: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=32)
    lat: float
    lon: float
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    pad_radius_m: float = 25.0


class Drone(SQLModel, table=True):
    """A drone: registered by an administrator, or on its first report."""

    id: str = Field(primary_key=True, max_length=64)
    first_seen_at: datetime = Field(sa_column=_utc(nullable=False))
    online: bool | None = None
    status_event_time: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    status_received_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    display_name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=100)
    home_site_id: str | None = Field(default=None, max_length=64)
    retired: bool = Field(default=False, sa_column=Column(Boolean, nullable=False,
                                                           server_default=false()))
    registration_number: str | None = Field(
        default=None, max_length=64, description="real-name registration number (实名登记号)")


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
    stored_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True, index=True))


class TelemetryPoint(SQLModel, table=True):
    __tablename__ = "telemetry"
    __table_args__ = (
        Index("ix_telemetry_drone_time", "drone_id", "event_time"),
        Index("ix_telemetry_flight_time", "flight_id", "event_time"),
        # the tracker's late reports: flights with telemetry received since its watermark
        Index("ix_telemetry_received_flight", "received_at", "flight_id"),
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
    """A specimen or blood unit, as described by its most believable event: the origin's
    collection outranks any other (domain/custody_rules.py); every description sent is kept
    on its custody event."""

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
    description_source: str = Field(
        default="origin_collection", max_length=20,
        sa_column_kwargs={"server_default": "collection"},
        description="where the description believed came from (domain/custody_rules.py)")
    description_event_id: UUID | None = None


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
    stored_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True, index=True))
    recorded_by: str | None = Field(default=None, max_length=80,
                                    description="the authenticated sender: drone:, site:, user:")
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True),
                                    description="the specimen description sent with it (JSON)")


class CustodyLink(SQLModel, table=True):
    """One link of a specimen's hash chain of custody events (dronelog.storage.custody_chain).
    Append-only, like the events."""

    __tablename__ = "custody_link"
    __table_args__ = (Index("ix_custody_link_barcode_seq", "barcode", "seq", unique=True),)

    event_id: UUID = Field(primary_key=True)
    barcode: str = Field(max_length=64)
    seq: int
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


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


class Route(SQLModel, table=True):
    """A planned route between two sites; waypoints as a JSON list of [lat, lon]."""

    origin_site_id: str = Field(primary_key=True, max_length=64)
    destination_site_id: str = Field(primary_key=True, max_length=64)
    cruise_alt_m: float = 120.0
    waypoints: str = Field(default="[]", sa_column=Column(Text, nullable=False))


class SpecimenTracking(SQLModel, table=True):
    """Where each specimen stands, derived from its events by the turnaround engine (a
    projection: it can always be rebuilt from the event tables)."""

    __tablename__ = "specimen_tracking"
    __table_args__ = (
        Index("ix_specimen_tracking_open_warning", "warning_at",
              sqlite_where=text("is_open"), postgresql_where=text("is_open")),
        Index("ix_specimen_tracking_flight_state", "flight_id", "state"),
        Index("ix_specimen_tracking_updated", "updated_at"),
    )

    barcode: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)
    is_open: bool = Field(description="not yet received or rejected")
    priority: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    origin_site_id: str = Field(max_length=64)
    destination_site_id: str | None = Field(default=None, max_length=64,
                                            description="unknown while undescribed")
    temperature_class: str = Field(max_length=16)
    collected_at: datetime = Field(sa_column=_utc(nullable=False),
                                   description="collection, or the first step seen without it")
    deadline: datetime = Field(sa_column=_utc(nullable=False))
    warning_at: datetime = Field(sa_column=_utc(nullable=False))
    stability_until: datetime | None = Field(
        default=None, sa_column=_utc(nullable=True),
        description="the last moment it may reach the lab (its stability); none without a type")
    landed_to_received_min: float | None = None
    loaded_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    took_off_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    landed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    received_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    rejected_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    rejection_reason: str | None = Field(default=None, max_length=32)
    flight_id: str | None = Field(default=None, max_length=64)
    drone_id: str | None = Field(default=None, max_length=64)
    container_id: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(default=None, max_length=64)
    custody_gaps: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    anomalies: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    description_source: str = Field(default="origin_collection", max_length=20)
    description_conflicts: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    seal_packed: str | None = Field(default=None, max_length=64)
    seal_found: str | None = Field(default=None, max_length=64)
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    temp_out_of_range_s: float = 0.0
    temp_unknown_s: float = Field(
        default=0.0, sa_column_kwargs={"server_default": "0"},
        description="seconds of its flights with no payload reading to tell (domain/"
                    "telemetry_rules.py, temperature_exposure)")
    excursion: bool = False
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class FlightTracking(SQLModel, table=True):
    """Where each flight stands, derived from its events (a projection, like
    specimen_tracking)."""

    __tablename__ = "flight_tracking"

    flight_id: str = Field(primary_key=True, max_length=64)
    drone_id: str = Field(max_length=64)
    state: str = Field(max_length=16, index=True)
    origin_site_id: str | None = Field(default=None, max_length=64)
    destination_site_id: str | None = Field(default=None, max_length=64)
    took_off_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    landed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    landed_site_id: str | None = Field(default=None, max_length=64)
    diverted: bool = False
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class Alert(SQLModel, table=True):
    """At most one alert per subject and kind is open or acknowledged at a time (a partial
    unique index enforces it)."""

    __table_args__ = (
        Index("ix_alert_active", "subject_kind", "subject_id", "kind", unique=True,
              sqlite_where=text("state != 'resolved'"),
              postgresql_where=text("state != 'resolved'")),
        Index("ix_alert_state_opened", "state", "opened_at"),
        Index("ix_alert_state_resolved", "state", "resolved_at"),  # a window of resolved
    )

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=16)
    subject_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    state: str = Field(max_length=16)
    message: str = Field(sa_column=Column(Text, nullable=False))
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    site_id: str | None = Field(default=None, max_length=64)
    drone_id: str | None = Field(default=None, max_length=64)
    # A specimen alert also reaches the lab where the specimen was collected, and the lab of
    # the site where a misrouted specimen is (migration 0010).
    origin_site_id: str | None = Field(default=None, max_length=64)
    at_site_id: str | None = Field(default=None, max_length=64)
    opened_at: datetime = Field(sa_column=_utc(nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = Field(default=None, max_length=500)


class AlertChange(SQLModel, table=True):
    """Every change of every alert, in order: opened, acknowledged, resolved."""

    __tablename__ = "alert_change"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(index=True)
    change: str = Field(max_length=16)
    at: datetime = Field(sa_column=_utc(nullable=False))
    by: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=500)
    published: bool = Field(default=False, index=True)
    webhook_delivered: bool = False
    webhook_attempts: int = 0
    # the notifications have planned their messages of this change (dronelog/notify/)
    notices_planned: bool = Field(default=False, index=True)


class JobLease(SQLModel, table=True):
    """Which scheduler may run a job until when: two schedulers, one does the work."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=_utc(nullable=False))


class JobState(SQLModel, table=True):
    """A job's progress (watermarks), so restarts resume where the last run stopped."""

    __tablename__ = "job_state"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class TurnaroundReportBase(SQLModel):
    """One row of the daily roll-up per route, priority and kind (the API returns this)."""

    day: str = Field(primary_key=True, max_length=10)
    origin_site_id: str = Field(primary_key=True, max_length=64)
    destination_site_id: str = Field(primary_key=True, max_length=64)
    priority: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=32)
    specimens: int
    received: int
    on_time: int
    on_time_pct: float | None = None
    p50_min: float | None = None
    p90_min: float | None = None
    p50_collected_to_loaded_min: float | None = None
    p90_collected_to_loaded_min: float | None = None
    p50_flight_min: float | None = None
    p90_flight_min: float | None = None
    p50_landed_to_received_min: float | None = None
    p90_landed_to_received_min: float | None = None
    excursions: int
    rejections: int
    flights: int


class TurnaroundReportRow(TurnaroundReportBase, table=True):
    __tablename__ = "turnaround_report"

    computed_at: datetime = Field(sa_column=_utc(nullable=False))


class PadEvent(SQLModel, table=True):
    """A drone arriving on or departing from a site's landing pad, derived from telemetry."""

    __tablename__ = "pad_event"
    __table_args__ = (
        Index("ix_pad_event_once", "flight_id", "site_id", "kind", "at", unique=True),
        Index("ix_pad_event_site_at", "site_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    flight_id: str = Field(max_length=64)
    drone_id: str = Field(max_length=64)
    site_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    at: datetime = Field(sa_column=_utc(nullable=False))


class AppUser(SQLModel, table=True):
    """A person or device allowed to use the API; the password is kept as an Argon2 hash."""

    __tablename__ = "app_user"

    id: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    site_id: str | None = Field(default=None, max_length=64)
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    active: bool = True
    created_at: datetime = Field(sa_column=_utc(nullable=False))


class ApiToken(SQLModel, table=True):
    """A bearer token, kept only as its SHA-256; it expires and can be revoked."""

    __tablename__ = "api_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=_utc(nullable=False))
    expires_at: datetime = Field(sa_column=_utc(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class LoginFailure(SQLModel, table=True):
    """A refused login, kept for the attempt limit (by user id and by client address)."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_user_at", "user_id", "at"),
        Index("ix_login_failure_client_at", "client", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=64)
    client: str = Field(max_length=64)
    at: datetime = Field(sa_column=_utc(nullable=False))


class AuditEntry(SQLModel, table=True):
    """Every write through the API: who, what, when. Append-only by trigger and hash-chained
    in id order (storage/record_chain.py, migration 0013)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc(nullable=False, index=True))
    user_id: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=128)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class RecordSeal(SQLModel, table=True):
    """A digest sealed into a hash chain (storage/record_chain.py) over records that are not
    chained row by row: a flight's telemetry when the flight has ended, again after
    retention thinned it, and the specimen descriptions older than their events'
    (storage/telemetry_seal.py, storage/specimen_check.py). Append-only by trigger."""

    __tablename__ = "record_seal"
    __table_args__ = (Index("ix_record_seal_kind_subject", "kind", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=64)
    rows: int
    digest: str = Field(max_length=64)
    covered_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    sealed_at: datetime = Field(sa_column=_utc(nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class RetentionPermit(SQLModel, table=True):
    """Present only inside the retention job's own transaction: the telemetry table's
    trigger refuses deletes unless this row is there (storage/retention.py)."""

    __tablename__ = "retention_permit"

    holder: str = Field(primary_key=True, max_length=64)


class LoginClient(SQLModel, table=True):
    """A client address a user has logged in from: the login limit trusts it for that user
    (docs/security.md, "Login attempt limit")."""

    __tablename__ = "login_client"

    user_id: str = Field(primary_key=True, max_length=64)
    client: str = Field(primary_key=True, max_length=64)
    last_success_at: datetime = Field(sa_column=_utc(nullable=False))


# --- transport requests (domain/requests.py) --------------------------------------------------


class TransportRequestRow(SQLModel, table=True):
    """A site's request to carry its sealed boxes, where it stands now. Every change is also
    a `request_change` row."""

    __tablename__ = "transport_request"
    __table_args__ = (Index("ix_transport_request_state_ready", "state", "ready_at"),)

    id: str = Field(primary_key=True, max_length=64)
    origin_site_id: str = Field(max_length=64)
    destination_site_id: str = Field(max_length=64)
    priority: str = Field(max_length=16)
    state: str = Field(max_length=16)
    source: str = Field(max_length=16, description="site, schedule")
    schedule_key: str | None = Field(default=None, max_length=64, unique=True,
                                     description="one day's fixed departure, created once")
    containers: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    requested_at: datetime = Field(sa_column=_utc(nullable=False))
    ready_at: datetime = Field(sa_column=_utc(nullable=False))
    requested_by: str = Field(max_length=80)
    carrier: str | None = Field(default=None, max_length=16)
    drone_id: str | None = Field(default=None, max_length=64)
    drone_registration: str | None = Field(default=None, max_length=64)
    flight_id: str | None = Field(default=None, max_length=64, index=True)
    planned_departure: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    approval_ref: str | None = Field(default=None, max_length=64)
    flight_held: bool = False
    courier_id: str | None = Field(default=None, max_length=64)
    picked_up_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class RequestChange(SQLModel, table=True):
    """One state change of a transport request, attributed: the request's history, and what
    the notifications route (`notified_at` is theirs to set)."""

    __tablename__ = "request_change"
    __table_args__ = (Index("ix_request_change_request", "request_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64)
    action: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    at: datetime = Field(sa_column=_utc(nullable=False, index=True))
    by: str = Field(max_length=80)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    notified_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


# --- notifications (domain/notifications.py, dronelog/notify/) -------------------------------


class NotificationRoute(SQLModel, table=True):
    """What goes where: a source and what it takes of it, a channel (its name in
    DRONELOG_NOTIFY_CHANNELS) and recipients, quiet hours, an escalation tier, a report's
    schedule. Lists are JSON arrays; an empty one takes all."""

    __tablename__ = "notification_route"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    source: str = Field(max_length=16)
    channel: str = Field(max_length=64)
    recipients: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    alert_kinds: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    site_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    priorities: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    min_severity: str | None = Field(default=None, max_length=16)
    after_min: int = 0
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    language: str = Field(default="zh", max_length=2)
    period: str | None = Field(default=None, max_length=8)
    send_at: str | None = Field(default=None, max_length=5)
    active: bool = True
    updated_at: datetime = Field(sa_column=_utc(nullable=False))
    updated_by: str = Field(max_length=80)


class Notification(SQLModel, table=True):
    """One message to send, once per `dedupe_key` (the route and what it is about): planned,
    then sent, or retried until it is failed. Rows sent together as a digest share their
    `delivery`."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_state_not_before", "state", "not_before"),
                      Index("ix_notification_channel_sent", "channel", "sent_at"))

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    route_id: int = Field(index=True)
    source: str = Field(max_length=16)
    subject: str = Field(max_length=128)
    channel: str = Field(max_length=64)
    recipients: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    language: str = Field(default="zh", max_length=2)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    attachment: str | None = Field(default=None, sa_column=Column(Text, nullable=True),
                                   description="what to attach, built when sent (JSON)")
    state: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=_utc(nullable=False))
    not_before: datetime = Field(sa_column=_utc(nullable=False))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    delivery: str | None = Field(default=None, max_length=32)
