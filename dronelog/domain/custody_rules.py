"""Custody rules: who may record which step, and which description of a specimen to believe.

Two kinds of rule, decided by one principle (docs/contract.md, "Custody rules"):

- **Authority** is decided at the entrance, from the event and the authenticated sender
  alone. A sender who may not record a step, or who speaks for someone else, is refused
  with a reason code: over HTTP the person is told at once (403 `step_not_allowed`, 422
  `actor_mismatch` or `identity_mismatch`); over MQTT the message becomes a dead letter with
  the same code. Nothing physical is lost by refusing these: the scan is not a fact about the
  specimen but a claim by someone who cannot make it.
- **The story** (where and in which order the steps happened, a second receipt, a receipt
  at the wrong hospital, a description that differs) is never refused: every fact is kept,
  and the specimen's derived status marks it (`domain/specimens.py`), which raises alerts.
  Such facts may arrive late or out of order, so only the whole set can judge them.

Who may record what:

- a drone (MQTT `drones/<id>/custody`, recorded by `drone:<id>`): `loaded` and `unloaded`
  only, naming itself as the actor and as `drone_id`;
- a site's scanner (MQTT `sites/<id>/custody` as `site:<id>`, or an HTTP device token of the
  site as `user:<token's user>`): every step, at its own site; the actor it names is the
  staff member or device that scanned, never a drone;
- site staff (HTTP, lab role, as `user:<id>`): at their own site, with themselves as the
  actor, the sender's steps (`collected`, `packed`, `loaded`: the packing station) and the
  receiver's (`received`, `rejected`); never `unloaded`, which is the drone's or a scanner's.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dronelog.domain.facts import SpecimenFacts

ALL_STEPS = frozenset({"collected", "packed", "loaded", "unloaded", "received", "rejected"})
DRONE_STEPS = frozenset({"loaded", "unloaded"})
LAB_STEPS = frozenset({"received", "rejected"})
SENDER_STEPS = frozenset({"collected", "packed", "loaded"})
STAFF_STEPS = SENDER_STEPS | LAB_STEPS

# Two steps timed the wrong way round by more than this are an impossible order (a custody
# anomaly), not clock skew. Scanners and drones drift by seconds to a minute or two (the
# simulator's clock-skew fault is 10-90 s).
ORDER_TOLERANCE = timedelta(minutes=2)


class SenderKind(StrEnum):
    DRONE = "drone"  # a drone on its own custody topic
    SITE = "site"  # a site's scanner or device: MQTT site topic or an HTTP device token
    STAFF = "staff"  # a person logged in over HTTP


@dataclass(frozen=True)
class Sender:
    """Who the broker or the API authenticated: the identity every stored fact is
    attributed to (`recorded_by`)."""

    kind: SenderKind
    id: str  # drone id, site id, or user id
    site_id: str | None = None  # the site a site device or a person works at
    steps: frozenset[str] = ALL_STEPS
    account: str | None = None  # the API account it signed in with (people, HTTP devices)

    @property
    def identity(self) -> str:
        return f"user:{self.account}" if self.account else f"{self.kind.value}:{self.id}"

    @classmethod
    def drone(cls, drone_id: str) -> "Sender":
        return cls(SenderKind.DRONE, drone_id, None, DRONE_STEPS)

    @classmethod
    def site(cls, site_id: str, account: str | None = None) -> "Sender":
        """A site's device: on the site's MQTT topic, or signed in to the API as `account`."""
        return cls(SenderKind.SITE, site_id, site_id, ALL_STEPS, account)

    @classmethod
    def staff(cls, user_id: str, site_id: str, steps: frozenset[str] = STAFF_STEPS) -> "Sender":
        return cls(SenderKind.STAFF, user_id, site_id, steps, user_id)


class RefusalCode(StrEnum):
    STEP_NOT_ALLOWED = "step_not_allowed"
    ACTOR_MISMATCH = "actor_mismatch"
    IDENTITY_MISMATCH = "identity_mismatch"


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    reason: str


@dataclass(frozen=True)
class Scan:
    """The parts of a custody event the authority rules look at."""

    kind: str
    site_id: str
    actor_kind: str
    actor_id: str
    drone_id: str | None = None


def authorize(scan: Scan, sender: Sender) -> Refusal | None:
    """None if `sender` may record `scan`, else why not."""
    if scan.kind not in sender.steps:
        allowed = ", ".join(sorted(sender.steps))
        return Refusal(RefusalCode.STEP_NOT_ALLOWED,
                       f"{sender.identity!r} may record {allowed}, not {scan.kind!r}")
    if sender.kind is SenderKind.DRONE:
        if scan.actor_kind != "drone" or scan.actor_id != sender.id:
            return Refusal(RefusalCode.IDENTITY_MISMATCH,
                           f"topic is for drone {sender.id!r} but the event's actor is "
                           f"{scan.actor_kind} {scan.actor_id!r}")
        if scan.drone_id != sender.id:
            return Refusal(RefusalCode.IDENTITY_MISMATCH,
                           f"topic is for drone {sender.id!r} but the event says drone_id "
                           f"{scan.drone_id!r}")
        return None
    if scan.site_id != sender.site_id:
        return Refusal(RefusalCode.IDENTITY_MISMATCH,
                       f"{sender.identity!r} records scans at site {sender.site_id!r}, but the "
                       f"event says site_id {scan.site_id!r}")
    if scan.actor_kind == "drone":
        return Refusal(RefusalCode.ACTOR_MISMATCH,
                       f"{sender.identity!r} is not a drone and cannot record a scan as drone "
                       f"{scan.actor_id!r}")
    if sender.kind is SenderKind.STAFF and (scan.actor_kind, scan.actor_id) != ("staff",
                                                                                sender.id):
        return Refusal(RefusalCode.ACTOR_MISMATCH,
                       f"signed in as {sender.id!r}, the scan names {scan.actor_kind} "
                       f"{scan.actor_id!r}: record your own scans only")
    return None


# --- descriptions -----------------------------------------------------------------------------


class DescriptionSource(StrEnum):
    """Where a description came from, most believable first."""

    ORIGIN_COLLECTION = "origin_collection"  # `collected` at the origin it names
    COLLECTION = "collection"  # `collected` elsewhere than the origin it names
    HANDOVER = "handover"  # packed, loaded or unloaded
    RECEIPT = "receipt"  # received or rejected: "described at receipt"
    NONE = "none"  # no description at all


RANK = {DescriptionSource.ORIGIN_COLLECTION: 3, DescriptionSource.COLLECTION: 2,
        DescriptionSource.HANDOVER: 1, DescriptionSource.RECEIPT: 0}


def description_source(kind: str, site_id: str, origin_site_id: str) -> DescriptionSource:
    if kind == "collected":
        return (DescriptionSource.ORIGIN_COLLECTION if site_id == origin_site_id
                else DescriptionSource.COLLECTION)
    if kind in LAB_STEPS:
        return DescriptionSource.RECEIPT
    return DescriptionSource.HANDOVER


@dataclass(frozen=True)
class Description:
    """A description as one custody event sent it."""

    event_id: str
    kind: str
    site_id: str
    stored_order: tuple  # (received_at, event_id): which was stored first
    facts: SpecimenFacts
    order_ref: str

    @property
    def source(self) -> DescriptionSource:
        return description_source(self.kind, self.site_id, self.facts.origin_site_id)


@dataclass(frozen=True)
class DescriptionChoice:
    chosen: Description | None
    source: DescriptionSource
    conflicts: tuple[str, ...]


_COMPARED = ("kind", "blood_product", "priority", "temperature_class", "origin_site_id",
             "destination_site_id")


def choose_description(descriptions: Iterable[Description]) -> DescriptionChoice:
    """The most believable description (by source, then first stored), and every other
    description that differs from it, named: never silently replaced, never silently lost."""
    ordered = sorted(descriptions, key=lambda d: (-RANK[d.source], d.stored_order))
    if not ordered:
        return DescriptionChoice(None, DescriptionSource.NONE, ())
    chosen, conflicts = ordered[0], []
    for other in ordered[1:]:
        differences = [f"{name} {getattr(other.facts, name)} ≠ {getattr(chosen.facts, name)}"
                       for name in _COMPARED
                       if getattr(other.facts, name) != getattr(chosen.facts, name)]
        if other.order_ref != chosen.order_ref:
            differences.append(f"order_ref {other.order_ref} ≠ {chosen.order_ref}")
        if differences:
            conflicts.append(f"{other.kind} at {other.site_id} described it otherwise: "
                             + ", ".join(differences))
    return DescriptionChoice(chosen, chosen.source, tuple(conflicts))


def stored_first(received_at: datetime | None, event_time: datetime, event_id: str) -> tuple:
    """The order in which facts reached dronelog (the server's clock), for "the first of
    its kind wins" rules; the device's time only stands in when the receipt time is unknown."""
    return (received_at or event_time, event_id)
