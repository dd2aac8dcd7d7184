"""The sweep: which conditions hold now, and the alerts that follow them.

Specimens: turnaround warning, predicted breach (in the air: now + ETA + the landed-to-
received budget passes the deadline), breach, custody gap, rejection, temperature excursion
(flagged on every specimen of the container that was on the flight). Flights in the air:
lost link, low battery, off route.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, false, or_, select, true

from dronelog.domain.alerts import AlertKind, Condition, reconcile
from dronelog.domain.eta import estimate_eta, predicted_breach
from dronelog.domain.telemetry_rules import lost_link, low_battery, off_route_m
from dronelog.storage.portable import as_utc
from dronelog.turnaround import alert_store
from dronelog.turnaround import repository as repo

T = repo.SPECIMEN_TRACKING
F = repo.FLIGHT_TRACKING


@dataclass(frozen=True)
class SweepRules:
    lost_link_s: float = 30.0
    off_route_corridor_m: float = 300.0
    battery_reserve_pct: float = 20.0
    eta_smoothing_s: float = 60.0
    lookback: timedelta = timedelta(days=2)  # closed specimens still looked at


@dataclass
class SweepRun:
    conditions: int = 0
    opened: int = 0
    resolved: int = 0
    changed_alert_ids: tuple[int, ...] = ()


def sweep(connection: Connection, now: datetime, rules: SweepRules = SweepRules()) -> SweepRun:
    conditions = evaluate(connection, now, rules)
    known = alert_store.known_alerts(connection, {c.subject_id for c in conditions})
    changes = reconcile(conditions, known)
    changed = alert_store.apply(connection, changes, now)
    return SweepRun(len(conditions), len(changes.to_open), len(changes.to_resolve),
                    tuple(changed))


def evaluate(connection: Connection, now: datetime, rules: SweepRules) -> list[Condition]:
    conditions = _specimen_conditions(connection, now, rules)
    conditions += _flight_conditions(connection, now, rules)
    return conditions


def _specimen_conditions(connection: Connection, now: datetime, rules: SweepRules
                         ) -> list[Condition]:
    """Two index-backed queries: open specimens past their warning time (or already known
    to be in trouble), and recently closed ones that can still raise an alert."""
    recent = now - rules.lookback
    in_trouble = or_(T.c.excursion == true(), T.c.custody_gaps != "[]")
    open_rows = connection.execute(select(T).where(and_(
        T.c.is_open == true(), or_(T.c.warning_at <= now, in_trouble)))).all()
    closed_rows = connection.execute(select(T).where(and_(
        T.c.updated_at >= recent, T.c.is_open == false(),
        or_(T.c.received_at > T.c.deadline, T.c.rejected_at.is_not(None), in_trouble)))).all()
    rows = open_rows + closed_rows
    conditions = []
    for row in rows:
        deadline, collected = as_utc(row.deadline), as_utc(row.collected_at)
        received = as_utc(row.received_at)
        where = dict(site_id=row.destination_site_id, drone_id=row.drone_id)
        facts = {"priority": row.priority, "kind": row.kind, "deadline": deadline.isoformat(),
                 "collected_at": collected.isoformat(), "flight_id": row.flight_id}
        if row.is_open and deadline <= now:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.BREACH,
                f"{row.barcode} ({row.priority}) not received by its deadline "
                f"{deadline:%H:%M} UTC", facts, **where))
        elif row.is_open and as_utc(row.warning_at) <= now:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.TURNAROUND_WARNING,
                f"{row.barcode} ({row.priority}) has used most of its turnaround budget; "
                f"deadline {deadline:%H:%M} UTC", facts, **where))
        elif received and received > deadline:
            late = (received - deadline).total_seconds() / 60
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.BREACH,
                f"{row.barcode} ({row.priority}) received {late:.0f} min after its deadline",
                facts | {"received_at": received.isoformat()}, **where))
        if row.rejected_at is not None:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.REJECTED_SPECIMEN,
                f"{row.barcode} rejected at {row.site_id}: {row.rejection_reason}",
                facts | {"reason": row.rejection_reason}, **where))
        gaps = json.loads(row.custody_gaps)
        if gaps:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.CUSTODY_GAP,
                f"{row.barcode}: " + "; ".join(gaps), facts | {"gaps": gaps}, **where))
        if row.excursion:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.TEMPERATURE_EXCURSION,
                f"{row.barcode} ({row.temperature_class}) out of its temperature range for "
                f"{row.temp_out_of_range_s:.0f} s (min {row.temp_min_c:.1f} °C, max "
                f"{row.temp_max_c:.1f} °C)",
                facts | {"container_id": row.container_id, "temp_min_c": row.temp_min_c,
                         "temp_max_c": row.temp_max_c,
                         "seconds_out_of_range": row.temp_out_of_range_s}, **where))
    return conditions


def _flight_conditions(connection: Connection, now: datetime, rules: SweepRules
                       ) -> list[Condition]:
    flights = connection.execute(select(F).where(F.c.state.in_(("airborne", "diverted")))).all()
    if not flights:
        return []
    drones = {flight.drone_id for flight in flights}
    site_points, planned = repo.sites(connection), repo.routes(connection)
    seen = repo.last_seen(connection, drones)
    tracks = repo.recent_tracks(connection, drones,
                                now - timedelta(seconds=max(rules.eta_smoothing_s, 120)))
    cargo = _cargo_in_transit(connection, [flight.flight_id for flight in flights])
    conditions = []
    for flight in flights:
        where = dict(site_id=flight.destination_site_id, drone_id=flight.drone_id)
        last = seen.get(flight.drone_id)
        if lost_link(last, now, airborne=True, threshold_s=rules.lost_link_s):
            conditions.append(Condition(
                "flight", flight.flight_id, AlertKind.LOST_LINK,
                f"{flight.drone_id} on {flight.flight_id}: no telemetry for "
                f"{(now - last).total_seconds():.0f} s" if last else
                f"{flight.drone_id} on {flight.flight_id}: no telemetry since take-off",
                {"last_seen": last.isoformat() if last else None}, **where))
        route = repo.route_points(site_points, planned, flight.origin_site_id,
                                  flight.destination_site_id)
        track = [t for t in tracks.get(flight.drone_id, [])
                 if t.flight_id == flight.flight_id and t.event_time <= now]
        if route is None or not track:
            continue
        here = (track[-1].lat, track[-1].lon)
        distance = off_route_m(here, route)
        if distance > rules.off_route_corridor_m:
            conditions.append(Condition(
                "flight", flight.flight_id, AlertKind.OFF_ROUTE,
                f"{flight.drone_id} is {distance:.0f} m off its route", {"off_route_m": distance},
                **where))
        eta = estimate_eta(route, track, now, smoothing_s=rules.eta_smoothing_s)
        if low_battery(track, eta.remaining_m, now, reserve_pct=rules.battery_reserve_pct):
            conditions.append(Condition(
                "flight", flight.flight_id, AlertKind.LOW_BATTERY,
                f"{flight.drone_id} battery {track[-1].battery_pct:.0f}% is below what "
                f"{eta.remaining_m / 1000:.1f} km to go needs plus the reserve",
                {"battery_pct": track[-1].battery_pct, "remaining_m": eta.remaining_m},
                **where))
        conditions += _predicted_breaches(cargo.get(flight.flight_id, []), flight, eta, now)
    return conditions


def _cargo_in_transit(connection: Connection, flight_ids: list[str]) -> dict[str, list]:
    """Specimens in transit, by flight, in one query per 500 flights."""
    cargo: dict[str, list] = {}
    for start in range(0, len(flight_ids), 500):
        rows = connection.execute(select(T).where(and_(
            T.c.flight_id.in_(flight_ids[start:start + 500]), T.c.state == "in_transit")))
        for row in rows:
            cargo.setdefault(row.flight_id, []).append(row)
    return cargo


def _predicted_breaches(cargo: list, flight, eta, now: datetime) -> list[Condition]:
    conditions = []
    for row in cargo:
        deadline = as_utc(row.deadline)
        if deadline <= now or row.destination_site_id != flight.destination_site_id:
            continue
        budget = row.landed_to_received_min or 0.0
        if predicted_breach(eta, deadline, budget):
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.PREDICTED_BREACH,
                f"{row.barcode} ({row.priority}) will miss its deadline {deadline:%H:%M} UTC: "
                f"arrival expected {eta.arrival_at:%H:%M} UTC",
                {"deadline": deadline.isoformat(), "eta": eta.arrival_at.isoformat()
                 if eta.arrival_at else None, "flight_id": flight.flight_id},
                site_id=row.destination_site_id, drone_id=flight.drone_id))
    return conditions
