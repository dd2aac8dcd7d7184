"""The public event contract: every message a drone, a payload box or a scanner may send.

These models are the single source of truth. The JSON Schema files in `docs/schemas/` are
generated from them (`dronelog contract export`), and the ingester, the HTTP entrance, the
simulator and the tests all validate against them.

Rules shared by every message:
- `schema_version` names the contract version; an unknown version is refused, never guessed.
- `event_id` is a UUID chosen by the sender once per event; it is the idempotency key, so a
  re-sent or redelivered event is stored once.
- `event_time` is the device's clock at the moment the event happened (RFC 3339 with offset).
- Unknown fields are refused: a field the contract does not know is a sender bug, not data.
- No patient identity: specimens carry a barcode and an opaque order reference only.
"""

import re
from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dronelog.domain.barcodes import canonical_barcode

SCHEMA_VERSION = 1

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="site, drone, flight, container, seal or staff id: letters, digits, _ . -",
    ),
]


def _canonical(value):
    return canonical_barcode(value) if isinstance(value, str) else value


Barcode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9=+&%._-]{4,64}$",
        description="specimen barcode or blood unit donation number (ISBT 128 characters "
                    "allowed); stored in its canonical form: a scanner's framing (AIM "
                    "symbology identifier, STX/ETX, CR/LF, tab) and surrounding spaces "
                    "removed, in upper case",
    ),
    # runs before the pattern: every entrance stores the canonical form
    # (dronelog/domain/barcodes.py), so a lower-case or framed scan is the same specimen
    BeforeValidator(_canonical),
]

# Free text may hold tabs and line breaks, but no other control character (C0, DEL and C1,
# such as NEL or the CSI of terminal escape sequences) and none of Unicode's bidirectional
# embedding, override and isolate controls, which can make a note display as something else.
# The API holds every free-text field it stores to the same rule (dronelog/api/schemas.py).
TEXT_FORBIDDEN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
FreeText = Annotated[
    str,
    Field(min_length=1, max_length=500, pattern=rf"^[^{TEXT_FORBIDDEN}]*$",
          description="free text; no control characters (tab and line breaks allowed) and no "
                      "bidirectional overrides"),
]

# A PRC resident identity number has 17 digits and a check character. An order reference
# that looks like one is refused: it would put patient identity into the custody record.
_RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$")


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Envelope(ContractModel):
    schema_version: Literal[1] = Field(description="contract version of this message")
    event_id: UUID = Field(description="globally unique id of this event; the idempotency key")
    event_time: AwareDatetime = Field(description="when it happened, by the device's clock")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_is_a_number(cls, value: object) -> object:
        # pydantic takes true for 1 (True == 1 in Python), even in strict mode; JSON does not
        if isinstance(value, bool):
            raise ValueError("schema_version is a number, not a boolean")
        return value


# --- drone telemetry --------------------------------------------------------------------------


class Telemetry(Envelope):
    """One position report of a drone, about once a second."""

    drone_id: Identifier
    seq: int = Field(ge=0, le=2**63 - 1, description="per-drone sequence number, +1 each report")
    flight_id: Identifier | None = Field(None, description="the flight the drone is flying")
    lat: float = Field(ge=-90, le=90, description="WGS 84 latitude, degrees")
    lon: float = Field(ge=-180, le=180, description="WGS 84 longitude, degrees")
    alt_m: float = Field(ge=-500, le=10_000, description="altitude above mean sea level, metres")
    height_m: float | None = Field(
        None, ge=-500, le=10_000, description="height above the take-off point, metres"
    )
    ground_speed_mps: float = Field(ge=0, le=120, description="ground speed, metres per second")
    heading_deg: float = Field(ge=0, lt=360, description="course over ground, degrees from north")
    battery_pct: float = Field(ge=0, le=100, description="battery remaining, percent")
    payload_temp_c: float | None = Field(
        None, ge=-90, le=90, description="payload box temperature, degrees Celsius"
    )
    link_quality_pct: float | None = Field(
        None, ge=0, le=100, description="radio or cellular link quality, percent"
    )


# --- flight lifecycle -------------------------------------------------------------------------


class FlightEventBase(Envelope):
    drone_id: Identifier
    flight_id: Identifier


# How far from its event_time a plan may put the departure. Any time would parse, but one at
# the edge of the calendar (9999-12-31T23:59:59-23:59) cannot even be converted to UTC for
# storage, and a plan years away is a sender's bug, not a plan.
PLAN_HORIZON = timedelta(days=30)


class FlightPlanned(FlightEventBase):
    kind: Literal["planned"]
    origin_site_id: Identifier
    destination_site_id: Identifier
    planned_departure: AwareDatetime | None = Field(
        None, description="planned take-off time, at most 30 days before or after event_time")

    @model_validator(mode="after")
    def _origin_is_not_destination(self) -> "FlightPlanned":
        if self.origin_site_id == self.destination_site_id:
            raise ValueError("origin_site_id and destination_site_id must differ")
        return self

    @model_validator(mode="after")
    def _departure_is_near_the_plan(self) -> "FlightPlanned":
        departure = self.planned_departure
        if departure is not None and abs(departure - self.event_time) > PLAN_HORIZON:
            raise ValueError(f"planned_departure {departure.isoformat()} is more than "
                             f"{PLAN_HORIZON.days} days from event_time")
        return self


class FlightTakeoff(FlightEventBase):
    kind: Literal["takeoff"]
    site_id: Identifier = Field(description="the site it took off from")


class FlightLanded(FlightEventBase):
    kind: Literal["landed"]
    site_id: Identifier = Field(description="the site it landed at")


class FlightAborted(FlightEventBase):
    kind: Literal["aborted"]
    reason: FreeText
    site_id: Identifier | None = Field(None, description="where it was when aborted, if at a site")


class FlightDiverted(FlightEventBase):
    kind: Literal["diverted"]
    new_destination_site_id: Identifier
    reason: FreeText


class FlightReturnedHome(FlightEventBase):
    kind: Literal["returned_home"]
    site_id: Identifier = Field(description="the home site it landed at")
    reason: FreeText | None = None


FlightEvent = Annotated[
    FlightPlanned
    | FlightTakeoff
    | FlightLanded
    | FlightAborted
    | FlightDiverted
    | FlightReturnedHome,
    Field(discriminator="kind"),
]


# --- chain of custody -------------------------------------------------------------------------

SpecimenKind = Literal[
    "blood_sample", "blood_gas", "blood_unit", "pathology", "microbiology", "urine", "other"
]
BloodProduct = Literal[
    "red_cells", "whole_blood", "plasma_thawed", "plasma_frozen", "platelets", "cryo"
]
Priority = Literal["stat", "urgent", "routine"]
TemperatureClass = Literal["refrigerated", "ambient", "red_cells", "platelets", "frozen"]
RejectionReason = Literal[
    "hemolysed",
    "clotted",
    "insufficient_volume",
    "temperature_excursion",
    "seal_broken",
    "label_mismatch",
    "leaking",
    "delayed",
    "other",
]


class Actor(ContractModel):
    """Who performed a handover."""

    kind: Literal["staff", "drone", "device"]
    id: Identifier


class SpecimenDetails(ContractModel):
    """What a specimen is, sent with its first custody event."""

    kind: SpecimenKind
    blood_product: BloodProduct | None = Field(None, description="required for blood_unit")
    priority: Priority
    temperature_class: TemperatureClass
    origin_site_id: Identifier
    destination_site_id: Identifier
    order_ref: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="opaque order reference from the ordering system; never patient identity",
    )

    @field_validator("order_ref")
    @classmethod
    def _not_a_resident_id(cls, value: str) -> str:
        if _RESIDENT_ID.match(value):
            raise ValueError("order_ref looks like a resident identity number; send an opaque "
                             "order reference, never patient identity")
        return value

    @model_validator(mode="after")
    def _blood_product_matches_kind(self) -> "SpecimenDetails":
        if (self.kind == "blood_unit") != (self.blood_product is not None):
            raise ValueError("blood_product is required for a blood_unit and only for it")
        return self


class CustodyEventBase(Envelope):
    """One handover of one specimen: who, where, when, and what it was in."""

    barcode: Barcode
    site_id: Identifier = Field(description="where the handover happened")
    actor: Actor
    specimen: SpecimenDetails | None = Field(
        None, description="the specimen's details; required on collected, optional later"
    )


class Collected(CustodyEventBase):
    kind: Literal["collected"]
    specimen: SpecimenDetails


class Packed(CustodyEventBase):
    kind: Literal["packed"]
    container_id: Identifier
    seal_id: Identifier


class Loaded(CustodyEventBase):
    kind: Literal["loaded"]
    container_id: Identifier
    flight_id: Identifier
    drone_id: Identifier


class Unloaded(CustodyEventBase):
    kind: Literal["unloaded"]
    container_id: Identifier
    flight_id: Identifier
    drone_id: Identifier
    seal_id: Identifier | None = Field(None, description="the seal found on the container")


class Received(CustodyEventBase):
    kind: Literal["received"]
    container_id: Identifier | None = None
    seal_id: Identifier | None = Field(None, description="the seal found on the container")


class Rejected(CustodyEventBase):
    kind: Literal["rejected"]
    reason: RejectionReason
    note: FreeText | None = None


CustodyEvent = Annotated[
    Collected | Packed | Loaded | Unloaded | Received | Rejected,
    Field(discriminator="kind"),
]


# --- drone presence ---------------------------------------------------------------------------


class DroneStatus(Envelope):
    """Online or offline; published retained, and registered as the drone's last will.

    A last-will message is composed when the drone connects, so its `event_time` is the
    connect time; the ingester's `received_at` tells when the broker announced the loss.
    """

    drone_id: Identifier
    online: bool
    reason: Literal["connected", "disconnected", "will"]


Message = Telemetry | FlightEventBase | CustodyEventBase | DroneStatus


# --- receipts: what dronelog tells a sender about its events -----------------------------------
# Receipts flow the other way: dronelog publishes them, devices read them (docs/contract.md,
# "Receipts"). They are not events: a device never sends one, and the ingester never reads one.
# The reason codes are the dead letters' (dronelog.ingest.delivery.RejectReason; a test keeps
# the two lists equal).

ReceiptReasonCode = Literal[
    "oversized", "unknown_topic", "not_json", "unknown_schema_version", "schema_invalid",
    "impossible_value", "identity_mismatch", "step_not_allowed", "actor_mismatch",
    "event_time_out_of_range", "storage_rejected",
]
RECEIPT_MAX_EVENTS = 1000
RECEIPT_MAX_REASON_CHARS = 500


class ReceiptSender(ContractModel):
    """Whose receipt it is: the drone or site the events' topic belongs to."""

    kind: Literal["drone", "site"]
    id: Identifier


class EventOutcome(ContractModel):
    """What became of one event: `stored` (committed to the database by this delivery),
    `duplicate` (already stored before: also safe), or `refused` (never stored; sending it
    again will not help), with the dead letter's reason code and reason."""

    event_id: UUID
    outcome: Literal["stored", "duplicate", "refused"]
    reason_code: ReceiptReasonCode | None = Field(None, description="only when refused")
    reason: str | None = Field(None, max_length=RECEIPT_MAX_REASON_CHARS,
                               description="only when refused: why, readably")

    @model_validator(mode="after")
    def _reason_only_when_refused(self) -> "EventOutcome":
        refused = self.outcome == "refused"
        if refused != (self.reason_code is not None) or refused != (self.reason is not None):
            raise ValueError("reason_code and reason are given when refused, and only then")
        return self


class Receipt(ContractModel):
    """Published by the ingester on `<prefix>/receipts/drones/<drone_id>` or
    `<prefix>/receipts/sites/<site_id>` (QoS 1) after the transaction that stored a batch has
    committed: one message per sender per batch, naming each of the sender's events in it."""

    schema_version: Literal[1] = Field(description="contract version of this message")
    receipt_id: UUID = Field(description="unique id of this receipt")
    issued_at: AwareDatetime = Field(description="when the ingester issued it (its clock)")
    sender: ReceiptSender
    events: list[EventOutcome] = Field(min_length=1, max_length=RECEIPT_MAX_EVENTS)
