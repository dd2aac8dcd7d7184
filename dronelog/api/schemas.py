"""What the API returns: explicit response models, never table rows; and the text it takes.

Every free-text field the API stores follows one rule, the contract's (`FreeText`: at most
500 characters, no control characters but tab and line breaks, no bidirectional
overrides), so a note is refused the same way on SQLite and PostgreSQL, before either sees
it. Names (`Label`) follow it on one line, up to 200 characters.
"""

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

from dronelog.contract.messages import TEXT_FORBIDDEN, FreeText

Label = Annotated[str, Field(min_length=1, max_length=200,
                             pattern=rf"^[^{TEXT_FORBIDDEN}\t\n\r]*$",
                             description="a name on one line; no control characters and no "
                                         "bidirectional overrides")]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: str
    user_id: str
    site_id: str | None = None


class Me(BaseModel):
    user_id: str
    role: str
    site_id: str | None = None


class CustodyStep(BaseModel):
    event_id: str
    kind: str
    at: datetime
    site_id: str
    actor_kind: str
    actor_id: str
    container_id: str | None = None
    seal_id: str | None = None
    flight_id: str | None = None
    drone_id: str | None = None
    reason: str | None = None
    recorded_by: str | None = None  # the authenticated sender (drone:, site:, user:)


class Position(BaseModel):
    at: datetime
    lat: float
    lon: float
    alt_m: float
    ground_speed_mps: float
    battery_pct: float
    payload_temp_c: float | None = None


class SpecimenSummary(BaseModel):
    barcode: str
    kind: str
    priority: str
    state: str
    origin_site_id: str
    destination_site_id: str | None = None  # unknown while the specimen is undescribed
    site_id: str | None = None  # where it is now (None: in the air, or location unknown)
    collected_at: datetime  # collection, or its first step when collection was not scanned
    deadline: datetime
    received_at: datetime | None = None
    turnaround: str  # on_track, warning, breached, met, missed, rejected
    problems: list[str] = []  # misrouted, location_unknown, stability_exceeded, excursion, ...


class TemperatureReading(BaseModel):
    at: datetime
    payload_temp_c: float
    flight_id: str


class SpecimenDetail(SpecimenSummary):
    blood_product: str | None = None
    temperature_class: str
    order_ref: str | None = None
    container_id: str | None = None
    flight_id: str | None = None
    drone_id: str | None = None
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    temp_out_of_range_s: float = 0.0
    temp_unknown_s: float = 0.0  # no payload reading to tell: neither in range nor out
    excursion: bool = False
    custody_gaps: list[str] = []
    anomalies: list[str] = []  # custody rules broken by the record (kept, never dropped)
    description_source: str  # origin_collection, collection, handover, receipt, none
    description_conflicts: list[str] = []
    seal_packed: str | None = None  # the seal its container was packed with
    seal_found: str | None = None  # the seal found on unloading or receipt
    stability_until: datetime | None = None  # the last moment to reach the lab (its type)
    allowed_min_c: float | None = None  # the band in transport: its class's, narrowed by
    allowed_max_c: float | None = None  # the stability of its type
    temperature: list["TemperatureReading"] = []  # payload box, on the flights it rode
    position: Position | None = None
    eta: datetime | None = None
    timeline: list[CustodyStep]


class CustodyAccepted(BaseModel):
    event_id: str
    stored: bool  # False: the event had been stored before (idempotent repeat)


class AlertPublic(BaseModel):
    """An alert as a code (`kind`) with parameters (`details`: the subject, the sites, times
    in ISO 8601 UTC): screens render their own text from them, in the reader's language and
    the site's time zone; `message` is the text in the network's language."""

    id: int
    kind: str
    severity: str
    state: str
    subject_kind: str
    subject_id: str
    message: str
    details: dict = {}
    site_id: str | None = None
    origin_site_id: str | None = None
    at_site_id: str | None = None
    drone_id: str | None = None
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None


class AlertGroupPublic(BaseModel):
    """Alerts shown as one entry (dronelog/api/alert_groups.py): the specimens of one kind of
    alert on one flight and container, or a single alert. `alerts` lists at most 100 of them;
    `count` is how many match the filters, `counts` by state."""

    key: str
    kind: str
    severity: str
    state: str
    subject_kind: str  # cargo: a flight's or a box's specimens; else the single alert's
    flight_id: str | None = None
    container_id: str | None = None
    site_id: str | None = None
    drone_id: str | None = None
    opened_at: datetime
    last_opened_at: datetime
    count: int
    counts: dict[str, int]
    alerts: list[AlertPublic]


class AcknowledgeMany(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1, max_length=200, description="at most 200 alerts in one request")


class AlertSkipped(BaseModel):
    id: int
    state: str | None  # None: no such alert


class AcknowledgedMany(BaseModel):
    acknowledged: list[int]
    skipped: list[AlertSkipped]  # not open (someone else was first) or unknown


class ResolveRequest(BaseModel):
    note: FreeText


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class FlightSummary(BaseModel):
    flight_id: str
    drone_id: str
    state: str
    origin_site_id: str | None = None
    destination_site_id: str | None = None
    took_off_at: datetime | None = None
    landed_at: datetime | None = None
    landed_site_id: str | None = None
    diverted: bool = False


class FlightEventPublic(BaseModel):
    event_id: str
    kind: str
    at: datetime
    site_id: str | None = None
    reason: str | None = None


class FlightDetail(FlightSummary):
    events: list[FlightEventPublic]
    cargo: list[str]
    track: dict  # GeoJSON FeatureCollection: the flown line and its points' times


class PayloadBand(BaseModel):
    temperature_class: str
    low_c: float
    high_c: float


class DronePublic(BaseModel):
    drone_id: str
    display_name: str | None = None  # the registry's, set by an administrator
    model: str | None = None
    home_site_id: str | None = None
    retired: bool = False
    online: bool | None = None
    last_seen: datetime | None = None
    link_age_s: float | None = None
    position: Position | None = None
    link_quality_pct: float | None = None
    heading_deg: float | None = None
    flight_id: str | None = None
    flight_state: str | None = None
    # link freshness from when the newest report was received (its device time can lie)
    last_received: datetime | None = None
    received_age_s: float | None = None
    payload_bands: list[PayloadBand] = Field(
        default_factory=list, description="the allowed ranges of the temperature classes on "
        "board its current flight: a box reading outside any of them is out of band")


class SitePublic(BaseModel):
    id: str
    name_zh: str
    name_en: str
    short_zh: str | None = Field(None, description="for narrow labels; the full name is the "
                                 "tooltip")
    short_en: str | None = None
    kind: str
    lat: float
    lon: float
    timezone: str
    pad_radius_m: float



class RoutePublic(BaseModel):
    origin_site_id: str
    destination_site_id: str
    cruise_alt_m: float
    waypoints: list[tuple[float, float]]  # [lat, lon] between the two sites, in order


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason_code: str
    reason: str
    event_id: str | None = None
    payload: str  # as text (invalid UTF-8 replaced), at most 2,000 characters


# --- the turnaround report over a period (turnaround/period_report.py) --------------------

class PeriodGroup(BaseModel):
    origin_site_id: str
    destination_site_id: str
    priority: str
    kind: str
    specimens: int
    received: int
    on_time: int
    on_time_pct: float | None
    excursions: int
    rejections: int
    p50_min: float | None = Field(description="collected to received, minutes")
    p90_min: float | None
    n: int = Field(description="how many values the end-to-end percentiles are of")
    p50_collected_to_loaded_min: float | None
    p90_collected_to_loaded_min: float | None
    n_collected_to_loaded: int
    p50_loaded_to_took_off_min: float | None
    p90_loaded_to_took_off_min: float | None
    n_loaded_to_took_off: int
    p50_flight_min: float | None
    p90_flight_min: float | None
    n_flight: int
    p50_landed_to_received_min: float | None
    p90_landed_to_received_min: float | None
    n_landed_to_received: int


class PeriodRoute(BaseModel):
    origin_site_id: str
    destination_site_id: str
    specimens: int
    excursions: int


class PeriodRejections(BaseModel):
    reason: str
    site_id: str | None
    count: int


class PeriodDiscrepancies(BaseModel):
    site_id: str | None
    finding: str
    count: int


class PeriodRequests(BaseModel):
    origin_site_id: str
    destination_site_id: str
    priority: str
    requests: int
    picked_up: int
    by_courier: int
    cancelled: int
    request_to_pickup_p50_min: float | None
    request_to_pickup_p90_min: float | None


class PeriodReport(BaseModel):
    first_day: str
    last_day: str
    timezone: str
    groups: list[PeriodGroup]
    routes: list[PeriodRoute] = Field(description="excursions per route")
    rejections: list[PeriodRejections] = Field(description="per reason and site")
    discrepancies: list[PeriodDiscrepancies] = Field(description="manifest discrepancies "
                                                     "opened in the period, per site and "
                                                     "finding")
    requests: list[PeriodRequests] = Field(
        default_factory=list, description="transport requests made in the period: request "
        "to pickup per route and priority (dronelog/dispatch/service_level.py)")
