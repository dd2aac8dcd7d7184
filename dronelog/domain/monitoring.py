"""Monitoring a flight in the air: from what its drone reported, and when the server received
each report, to the alerts that hold now (raise), the ones fresh data says are gone (clear:
no condition), and the ones nobody can tell (unknown: left as they are).

Two clocks meet here. A report's `event_time` is the drone's clock, which may be minutes off
(the ingester accepts event times up to 5 minutes ahead); its `received_at` is the server's,
the same clock as `now`. So:

- *liveness* is decided by the received time only: a drone whose clock is slow but that
  reports every few seconds is alive; a drone that has sent nothing for longer than the
  lost-link threshold is silent, whatever its clock says;
- a report *exists* at `now` once it has been received (received_at <= now), not once the
  drone's clock says it was made;
- for the ETA, off-route distance and battery, event times are moved onto the server's
  clock by the drone's estimated offset, the median of received_at - event_time over its
  recent reports (the median shrugs off a few reports delayed in transit), and never later
  than the report was received;
- while the drone is silent (or the route is unknown), off route, low battery and predicted
  breach are *unknown*: their alerts stay open until fresh data says they are gone;
- a flight diverted to a site that is not a specimen's destination raises "cargo diverted"
  for that specimen, and a predicted breach if even the new plan's arrival there, plus the
  direct flight on to the specimen's destination at the same pace, misses its deadline;
  otherwise the prediction is unknown (the onward journey is not planned yet);
- a diverted flight is judged against its new plan (`diverted_route`): straight from where
  it was when it diverted to its new destination, not against the route it left, nor the
  route from its origin to the new destination, which it never flew.

Pure functions over plain snapshots and a time; the sweep (dronelog/turnaround/sweep.py)
loads the snapshots, calls `evaluate_flight`, and reconciles.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import median

from geopy.distance import geodesic

from dronelog.domain.alerts import AlertKind, Condition, Unknown
from dronelog.domain.eta import Eta, estimate_eta, predicted_breach
from dronelog.domain.facts import TelemetryFact
from dronelog.domain.telemetry_rules import LatLon, lost_link, low_battery, off_route_m


@dataclass(frozen=True)
class Report:
    """One telemetry report and when the server received it (the server's clock)."""

    telemetry: TelemetryFact
    received_at: datetime


@dataclass(frozen=True)
class Cargo:
    """A specimen in transit on the flight: what its turnaround asks."""

    barcode: str
    priority: str
    deadline: datetime
    destination_site_id: str | None
    landed_to_received_min: float = 0.0
    destination: LatLon | None = None  # where its destination is, if known


@dataclass(frozen=True)
class FlightSnapshot:
    """A flight in the air as the engine knows it now. `route` is the current plan (origin,
    waypoints, destination; after a diversion, `diverted_route`), None when a site of it is
    unknown. `reports` are the drone's recent reports, in any order: all of
    them tell that the drone is alive and what its clock is; those of this flight are its
    track."""

    flight_id: str
    drone_id: str
    destination_site_id: str | None
    route: tuple[LatLon, ...] | None
    reports: tuple[Report, ...] = ()
    cargo: tuple[Cargo, ...] = ()
    diverted: bool = False  # to `destination_site_id`, a new destination


@dataclass(frozen=True)
class MonitoringRules:
    lost_link_s: float = 30.0
    off_route_corridor_m: float = 300.0
    battery_reserve_pct: float = 20.0
    eta_smoothing_s: float = 60.0
    offset_window_s: float = 300.0  # the reports (by received time) whose offset counts


@dataclass
class Evaluation:
    """What a sweep decided: the conditions that hold and those that cannot be told."""

    conditions: list[Condition] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)

    def extend(self, other: "Evaluation") -> "Evaluation":
        self.conditions += other.conditions
        self.unknown += other.unknown
        return self


def received_by(reports: Iterable[Report], now: datetime) -> list[Report]:
    """The reports the server had received at `now`."""
    return [r for r in reports if r.received_at <= now]


def last_received(reports: Iterable[Report], now: datetime) -> datetime | None:
    """When the newest report received by `now` arrived."""
    return max((r.received_at for r in received_by(reports, now)), default=None)


def clock_offset_s(reports: Iterable[Report], now: datetime,
                   window_s: float = 300.0) -> float | None:
    """The drone's clock offset, server minus drone, in seconds: the median of received_at -
    event_time over the reports received in the last window_s (all received reports when
    none is that recent). Positive for a slow drone clock. None without reports."""
    received = received_by(reports, now)
    recent = [r for r in received
              if (now - r.received_at).total_seconds() <= window_s] or received
    if not recent:
        return None
    return median((r.received_at - r.telemetry.event_time).total_seconds() for r in recent)


def corrected_track(reports: Iterable[Report], now: datetime,
                    window_s: float = 300.0) -> list[TelemetryFact]:
    """The received reports as telemetry on the server's clock, in time order: each event
    time moved by the drone's clock offset, and never later than the report arrived."""
    received = received_by(reports, now)
    offset = clock_offset_s(received, now, window_s)
    if offset is None:
        return []
    shift = timedelta(seconds=offset)
    track = [replace(r.telemetry, event_time=min(r.telemetry.event_time + shift, r.received_at))
             for r in received]
    return sorted(track, key=lambda s: (s.event_time, s.seq))


def diverted_route(track: Iterable[TelemetryFact], diverted_at: datetime, origin: LatLon,
                   destination: LatLon) -> tuple[LatLon, LatLon]:
    """The plan of a flight after its diversion: from where it was when it diverted to its
    new destination. Where it was is its last report at or before the diversion, both on
    the drone's clock (the drone reports both); without one, it had not left its origin."""
    before = [s for s in track if s.event_time <= diverted_at]
    if not before:
        return origin, destination
    last = max(before, key=lambda s: (s.event_time, s.seq))
    return (last.lat, last.lon), destination


def flight_eta(route: Sequence[LatLon], reports: Iterable[Report], now: datetime,
               rules: MonitoringRules = MonitoringRules()) -> Eta:
    """The ETA of a flight along `route` from its reports, on the server's clock: the one
    ETA of the engine and the API."""
    track = corrected_track(reports, now, rules.offset_window_s)
    return estimate_eta(route, track, now, smoothing_s=rules.eta_smoothing_s)


def evaluate_flight(flight: FlightSnapshot, now: datetime,
                    rules: MonitoringRules = MonitoringRules()) -> Evaluation:
    """Lost link, off route, low battery and the cargo's predicted breaches of a flight in
    the air, each raised, cleared or unknown (see the module doc)."""
    result = Evaluation(_diverted_cargo(flight))
    where = dict(site_id=flight.destination_site_id, drone_id=flight.drone_id)
    last = last_received(flight.reports, now)
    silent = lost_link(last, now, airborne=True, threshold_s=rules.lost_link_s)
    if silent:
        result.conditions.append(Condition(
            "flight", flight.flight_id, AlertKind.LOST_LINK,
            f"{flight.drone_id} on {flight.flight_id}: no telemetry received for "
            f"{(now - last).total_seconds():.0f} s" if last else
            f"{flight.drone_id} on {flight.flight_id}: no telemetry received recently",
            {"last_received_at": last.isoformat() if last else None}, **where))
    track = [t for t in corrected_track(flight.reports, now, rules.offset_window_s)
             if t.flight_id == flight.flight_id]
    if silent or flight.route is None or not track:
        why = ("no fresh telemetry" if silent else "no planned route" if flight.route is None
               else "no telemetry")
        result.unknown += [Unknown("flight", flight.flight_id, AlertKind.OFF_ROUTE, why),
                           Unknown("flight", flight.flight_id, AlertKind.LOW_BATTERY, why)]
        result.unknown += [Unknown("specimen", item.barcode, AlertKind.PREDICTED_BREACH, why)
                           for item in flight.cargo]
        return result
    here = (track[-1].lat, track[-1].lon)
    distance = off_route_m(here, flight.route)
    if distance > rules.off_route_corridor_m:
        result.conditions.append(Condition(
            "flight", flight.flight_id, AlertKind.OFF_ROUTE,
            f"{flight.drone_id} is {distance:.0f} m off its route", {"off_route_m": distance},
            **where))
    eta = estimate_eta(flight.route, track, now, smoothing_s=rules.eta_smoothing_s)
    if low_battery(track, eta.remaining_m, now, reserve_pct=rules.battery_reserve_pct):
        result.conditions.append(Condition(
            "flight", flight.flight_id, AlertKind.LOW_BATTERY,
            f"{flight.drone_id} battery {track[-1].battery_pct:.0f}% is below what "
            f"{eta.remaining_m / 1000:.1f} km to go needs plus the reserve",
            {"battery_pct": track[-1].battery_pct, "remaining_m": eta.remaining_m}, **where))
    predicted, undecided = _predicted_breaches(flight, eta, now)
    result.conditions += predicted
    result.unknown += undecided
    return result


def _diverted_away(flight: FlightSnapshot, item: Cargo) -> bool:
    return flight.diverted and item.destination_site_id != flight.destination_site_id


def _diverted_cargo(flight: FlightSnapshot) -> list[Condition]:
    """"Cargo diverted" for each specimen the flight now takes away from its destination: a
    fact of the flight's plan, known with or without telemetry."""
    return [Condition(
        "specimen", item.barcode, AlertKind.CARGO_DIVERTED,
        f"{item.barcode} ({item.priority}) diverted away from its destination "
        f"{item.destination_site_id}: {flight.flight_id} now flies to "
        f"{flight.destination_site_id}",
        {"flight_id": flight.flight_id, "new_destination_site_id": flight.destination_site_id,
         "destination_site_id": item.destination_site_id,
         "deadline": item.deadline.isoformat()},
        site_id=item.destination_site_id, drone_id=flight.drone_id)
        for item in flight.cargo if _diverted_away(flight, item)]


def _predicted_breaches(flight: FlightSnapshot, eta: Eta, now: datetime
                        ) -> tuple[list[Condition], list[Unknown]]:
    conditions, unknown = [], []
    for item in flight.cargo:
        if item.deadline <= now:
            continue  # a breach, not a prediction: the specimen's own rules raise it
        if item.destination_site_id == flight.destination_site_id:
            arrival = eta.arrival_at
        elif _diverted_away(flight, item):
            arrival = _earliest_onward_arrival(flight, item, eta)
            if arrival is None or not _misses(arrival, item, eta):
                unknown.append(Unknown("specimen", item.barcode, AlertKind.PREDICTED_BREACH,
                                       "diverted: the onward journey is not planned yet"))
                continue
        else:
            continue  # carried part of the way (a relay): no prediction to make
        if arrival is not None and _misses(arrival, item, eta):
            conditions.append(Condition(
                "specimen", item.barcode, AlertKind.PREDICTED_BREACH,
                f"{item.barcode} ({item.priority}) will miss its deadline "
                f"{item.deadline:%H:%M} UTC: arrival expected {arrival:%H:%M} UTC",
                {"deadline": item.deadline.isoformat(), "eta": arrival.isoformat(),
                 "flight_id": flight.flight_id}, site_id=item.destination_site_id,
                drone_id=flight.drone_id))
    return conditions, unknown


def _misses(arrival: datetime, item: Cargo, eta: Eta) -> bool:
    return predicted_breach(replace(eta, arrival_at=arrival), item.deadline,
                            item.landed_to_received_min)


def _earliest_onward_arrival(flight: FlightSnapshot, item: Cargo, eta: Eta
                             ) -> datetime | None:
    """The earliest the specimen can reach its destination after a diversion: the new
    plan's arrival, then straight on at the flight's pace (no waiting, no second flight's
    preparation: a lower bound). None when the arrival, the pace or a place is unknown."""
    if eta.arrival_at is None or item.destination is None or flight.route is None:
        return None
    if eta.speed_mps <= 0:
        return None
    onward_m = geodesic(flight.route[-1], item.destination).meters
    return eta.arrival_at + timedelta(seconds=onward_m / eta.speed_mps)
