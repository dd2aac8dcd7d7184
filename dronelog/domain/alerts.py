"""Alerts: what needs a human, how severe, and how the set of open alerts follows the
conditions that hold now.

Two families:
- *state* alerts hold while their condition holds and resolve themselves when it clears
  (lost link, low battery, off route, turnaround warning, predicted breach);
- *latched* alerts record something that happened and stay until a person resolves them
  (breach, temperature excursion, custody gap, rejected specimen, cargo diverted). They are
  raised once per subject: resolving one by hand does not make it come back at the next sweep.

Each condition the engine looks at has one of three outcomes at a sweep:
- *raise*: it holds (a `Condition`): an alert is opened unless one is already active;
- *clear*: fresh data says it does not hold (no `Condition` for it): a state alert resolves;
- *unknown*: the data to decide is missing, e.g. the drone has gone silent (an `Unknown`):
  whatever alert there is stays as it is. Silence is not an all-clear.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class AlertKind(StrEnum):
    TURNAROUND_WARNING = "turnaround_warning"
    PREDICTED_BREACH = "predicted_breach"
    BREACH = "breach"
    CUSTODY_GAP = "custody_gap"
    REJECTED_SPECIMEN = "rejected_specimen"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    LOST_LINK = "lost_link"
    LOW_BATTERY = "low_battery"
    OFF_ROUTE = "off_route"
    MISROUTED = "misrouted"
    LOCATION_UNKNOWN = "location_unknown"
    CUSTODY_ANOMALY = "custody_anomaly"
    DESCRIPTION_CONFLICT = "description_conflict"
    # 改航偏离目的地 / Diverted away from its destination: the specimen's flight was diverted
    # to a site that is not the specimen's destination
    CARGO_DIVERTED = "cargo_diverted"
    # 装箱清单不符 / Manifest discrepancy: at the receiving lab a tube of the container's
    # manifest is missing, or one is there that is not on it (domain/manifests.py)
    MANIFEST_DISCREPANCY = "manifest_discrepancy"
    # 混装不同温度要求 / Mixed temperature classes: specimens of different temperature
    # classes packed into one container (domain/packing.py)
    MIXED_TEMPERATURE_CLASSES = "mixed_temperature_classes"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.BREACH: Severity.CRITICAL,
    AlertKind.TEMPERATURE_EXCURSION: Severity.CRITICAL,
    AlertKind.PREDICTED_BREACH: Severity.HIGH,
    AlertKind.LOST_LINK: Severity.HIGH,
    AlertKind.LOW_BATTERY: Severity.HIGH,
    AlertKind.OFF_ROUTE: Severity.MEDIUM,
    AlertKind.TURNAROUND_WARNING: Severity.MEDIUM,
    AlertKind.CUSTODY_GAP: Severity.MEDIUM,
    AlertKind.REJECTED_SPECIMEN: Severity.MEDIUM,
    AlertKind.MISROUTED: Severity.CRITICAL,
    AlertKind.LOCATION_UNKNOWN: Severity.HIGH,
    AlertKind.CUSTODY_ANOMALY: Severity.HIGH,
    AlertKind.DESCRIPTION_CONFLICT: Severity.HIGH,
    AlertKind.CARGO_DIVERTED: Severity.HIGH,
    AlertKind.MANIFEST_DISCREPANCY: Severity.HIGH,
    AlertKind.MIXED_TEMPERATURE_CLASSES: Severity.HIGH,
}

LATCHED: frozenset[AlertKind] = frozenset({
    AlertKind.BREACH, AlertKind.TEMPERATURE_EXCURSION, AlertKind.CUSTODY_GAP,
    AlertKind.REJECTED_SPECIMEN, AlertKind.CUSTODY_ANOMALY, AlertKind.DESCRIPTION_CONFLICT,
    AlertKind.CARGO_DIVERTED, AlertKind.MANIFEST_DISCREPANCY,
    AlertKind.MIXED_TEMPERATURE_CLASSES,
})

# A more pressing turnaround alert replaces a milder one on the same specimen.
SUPERSEDES: dict[AlertKind, frozenset[AlertKind]] = {
    AlertKind.BREACH: frozenset({AlertKind.PREDICTED_BREACH, AlertKind.TURNAROUND_WARNING}),
    AlertKind.PREDICTED_BREACH: frozenset({AlertKind.TURNAROUND_WARNING}),
}


@dataclass(frozen=True)
class Condition:
    """Something that holds now and needs a human: the subject, the kind, and why.

    An alert is a code (`kind`) with parameters (`params`: `details` with the subject and
    the sites; times in ISO 8601 UTC); `message` is an English text for logs, and the
    texts people read are rendered from the code and the parameters
    (dronelog.domain.alert_text). `site_id` is the site the alert is about (a specimen's
    destination, a flight's destination); a specimen alert also reaches the lab of its
    `origin_site_id`, and of `at_site_id`, where a misrouted specimen is."""

    subject_kind: str  # specimen, flight, drone
    subject_id: str
    kind: AlertKind
    message: str
    details: dict = field(default_factory=dict, compare=False, hash=False)
    site_id: str | None = None
    drone_id: str | None = None
    origin_site_id: str | None = field(default=None, compare=False)
    at_site_id: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, AlertKind]:
        return (self.subject_kind, self.subject_id, self.kind)

    @property
    def params(self) -> dict:
        """The parameters of the alert's code: `details`, the subject and the sites."""
        subject = {"specimen": "barcode", "flight": "flight_id", "drone": "drone_id"}
        params = {"site_id": self.site_id, "drone_id": self.drone_id,
                  subject.get(self.subject_kind, "subject_id"): self.subject_id}
        if self.origin_site_id:
            params["origin_site_id"] = self.origin_site_id
        if self.at_site_id:
            params["at_site_id"] = self.at_site_id
        return {key: value for key, value in params.items() if value is not None} | dict(
            self.details)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]


@dataclass(frozen=True)
class Unknown:
    """A condition that cannot be decided now: its alert, if any, is left as it is."""

    subject_kind: str
    subject_id: str
    kind: AlertKind
    why: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, AlertKind]:
        return (self.subject_kind, self.subject_id, self.kind)


@dataclass(frozen=True)
class KnownAlert:
    """An alert already stored: its id, subject, kind and state."""

    id: int
    subject_kind: str
    subject_id: str
    kind: AlertKind
    state: AlertState

    @property
    def key(self) -> tuple[str, str, AlertKind]:
        return (self.subject_kind, self.subject_id, self.kind)


@dataclass
class Reconciliation:
    to_open: list[Condition] = field(default_factory=list)
    to_resolve: list[tuple[int, str]] = field(default_factory=list)  # alert id, why


def reconcile(conditions: list[Condition], known: list[KnownAlert],
              unknown: Iterable[Unknown] = ()) -> Reconciliation:
    """The changes that make the stored alerts follow `conditions`.

    `known` holds every active (open or acknowledged) alert, and for latched kinds also the
    resolved ones, which keep a latched condition from being raised twice. An active state
    alert is resolved when its condition is absent, unless it is `unknown` (then it stays,
    and still stands in for its kind: an unknown predicted breach that is still open keeps
    a turnaround warning away) or a more pressing condition on the same subject replaces it
    (a breach replaces a prediction, known or not). A condition that is both raised and
    unknown is raised.
    """
    result = Reconciliation()
    active = {a.key: a for a in known if a.state is not AlertState.RESOLVED}
    undecided = {u.key for u in unknown}
    kept = [a for key, a in active.items() if key in undecided and a.kind not in LATCHED]
    current = {c.key: c for c in _without_superseded(conditions, kept)}
    ever_latched = {a.key for a in known if a.kind in LATCHED}
    for key, condition in current.items():
        if key in active or (condition.kind in LATCHED and key in ever_latched):
            continue
        result.to_open.append(condition)
    replaced = _superseded_keys(conditions)
    for key, alert in active.items():
        if alert.kind in LATCHED or key in current:
            continue
        if key in undecided and key not in replaced:
            continue
        result.to_resolve.append((alert.id, "condition cleared"))
    return result


def _superseded_keys(conditions: list[Condition]) -> set[tuple[str, str, AlertKind]]:
    """Keys that a condition of a more pressing kind on the same subject replaces."""
    return {(c.subject_kind, c.subject_id, milder)
            for c in conditions for milder in SUPERSEDES.get(c.kind, ())}


def _without_superseded(conditions: list[Condition],
                        kept: Iterable[KnownAlert] = ()) -> list[Condition]:
    """`conditions` less those a more pressing condition, or a kept active alert, on the
    same subject replaces."""
    kinds_by_subject: dict[tuple[str, str], set[AlertKind]] = {}
    for item in (*conditions, *kept):
        kinds_by_subject.setdefault((item.subject_kind, item.subject_id), set()).add(item.kind)
    kept_conditions = []
    for condition in conditions:
        present = kinds_by_subject[(condition.subject_kind, condition.subject_id)]
        if any(condition.kind in SUPERSEDES.get(other, ()) for other in present):
            continue
        kept_conditions.append(condition)
    return kept_conditions
