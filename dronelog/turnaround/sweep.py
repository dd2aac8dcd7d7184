"""The sweep: which conditions hold now, and the alerts that follow them.

Specimens: mixed temperature classes in one container (from `packed`), turnaround
warning, predicted breach (in the air: now + ETA + the landed-to-
received budget passes the deadline), breach, custody gap, rejection, temperature excursion
(flagged on every specimen of the container that was on the flight). Flights in the air:
lost link, low battery, off route, decided by dronelog.domain.monitoring; while a drone is
silent those it cannot tell are unknown, and their alerts stay as they are.
"""

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, false, or_, select, true

from dronelog.domain.alerts import AlertKind, Condition, reconcile
from dronelog.domain.monitoring import (
    Cargo,
    Evaluation,
    FlightSnapshot,
    MonitoringRules,
    evaluate_flight,
)
from dronelog.domain.packing import PackedSpecimen, mixed_containers
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
    language: str = "zh"  # of the stored alert texts: the network's (DRONELOG_LANGUAGE)
    eta_smoothing_s: float = 60.0
    lookback: timedelta = timedelta(days=2)  # closed specimens still looked at
    # The largest drone clock offset believed (the ingester accepts 300 s ahead); a drone
    # whose clock is slower than this looks silent (its reports fall outside the indexed
    # scan of recent telemetry).
    max_clock_offset_s: float = 900.0
    offset_window_s: float = 300.0

    def monitoring(self) -> MonitoringRules:
        return MonitoringRules(lost_link_s=self.lost_link_s,
                               off_route_corridor_m=self.off_route_corridor_m,
                               battery_reserve_pct=self.battery_reserve_pct,
                               eta_smoothing_s=self.eta_smoothing_s,
                               offset_window_s=self.offset_window_s)


@dataclass
class SweepRun:
    conditions: int = 0
    opened: int = 0
    resolved: int = 0
    changed_alert_ids: tuple[int, ...] = ()


def sweep(connection: Connection, now: datetime, rules: SweepRules = SweepRules()) -> SweepRun:
    """Load → evaluate → reconcile → apply."""
    evaluation = evaluate(connection, now, rules)
    known = alert_store.known_alerts(connection,
                                     {c.subject_id for c in evaluation.conditions})
    changes = reconcile(evaluation.conditions, known, evaluation.unknown)
    changed = alert_store.apply(connection, changes, now, rules.language)
    return SweepRun(len(evaluation.conditions), len(changes.to_open), len(changed) -
                    len(changes.to_open), tuple(changed))


def evaluate(connection: Connection, now: datetime, rules: SweepRules) -> Evaluation:
    """The conditions that hold now, and those that cannot be told (left as they are)."""
    result = Evaluation(_specimen_conditions(connection, now, rules)
                        + _packing_conditions(connection))
    return result.extend(_flight_evaluation(connection, now, rules))


def _specimen_conditions(connection: Connection, now: datetime, rules: SweepRules
                         ) -> list[Condition]:
    """Two index-backed queries: open specimens past their warning time (or already known
    to be in trouble), and recently closed ones that can still raise an alert."""
    recent = now - rules.lookback
    in_trouble = or_(T.c.excursion == true(), T.c.custody_gaps != "[]", T.c.anomalies != "[]",
                     T.c.description_conflicts != "[]",
                     T.c.state.in_(("misrouted", "location_unknown")))
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
        where = dict(site_id=row.destination_site_id or row.origin_site_id, drone_id=row.drone_id,
                     origin_site_id=row.origin_site_id)
        facts = {"priority": row.priority, "kind": row.kind, "deadline": deadline.isoformat(),
                 "collected_at": collected.isoformat(), "flight_id": row.flight_id,
                 "destination_site_id": row.destination_site_id}
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
                facts | {"received_at": received.isoformat(), "minutes_late": round(late)},
                **where))
        if row.rejected_at is not None:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.REJECTED_SPECIMEN,
                f"{row.barcode} rejected at {row.site_id}: {row.rejection_reason}",
                facts | {"reason": row.rejection_reason, "at_site_id": row.site_id}, **where))
        gaps = json.loads(row.custody_gaps)
        if gaps:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.CUSTODY_GAP,
                f"{row.barcode}: " + "; ".join(gaps), facts | {"gaps": gaps}, **where))
        conditions += _custody_rule_conditions(row, facts, where)
        if row.excursion:
            conditions.append(Condition(
                "specimen", row.barcode, AlertKind.TEMPERATURE_EXCURSION,
                f"{row.barcode} ({row.temperature_class}) out of its temperature range for "
                f"{row.temp_out_of_range_s:.0f} s (min {row.temp_min_c:.1f} °C, max "
                f"{row.temp_max_c:.1f} °C)",
                facts | {"container_id": row.container_id,
                         "temperature_class": row.temperature_class,
                         "temp_min_c": row.temp_min_c,
                         "temp_max_c": row.temp_max_c,
                         "seconds_out_of_range": row.temp_out_of_range_s}, **where))
    return conditions


def _custody_rule_conditions(row, facts: dict, where: dict) -> list[Condition]:
    """What the custody rules found in the record (domain/specimens.py, custody_rules.py):
    a specimen at the wrong site or nowhere known (state alerts: they hold while it is so),
    anomalies and description conflicts (latched: a person looks and resolves)."""
    conditions = []
    if row.state == "misrouted":
        conditions.append(Condition(
            "specimen", row.barcode, AlertKind.MISROUTED,
            f"{row.barcode} ({row.priority}) is at {row.site_id}, not at its destination "
            f"{row.destination_site_id}: it was received or rejected there and stays open",
            facts | {"at_site_id": row.site_id}, at_site_id=row.site_id, **where))
    elif row.state == "location_unknown":
        conditions.append(Condition(
            "specimen", row.barcode, AlertKind.LOCATION_UNKNOWN,
            f"{row.barcode} ({row.priority}): flight {row.flight_id} ended away from every "
            "site; the specimen's location is unknown", facts, **where))
    anomalies = json.loads(row.anomalies)
    if anomalies:
        conditions.append(Condition(
            "specimen", row.barcode, AlertKind.CUSTODY_ANOMALY,
            f"{row.barcode}: " + "; ".join(anomalies), facts | {"anomalies": anomalies},
            **where))
    conflicts = json.loads(row.description_conflicts)
    if conflicts:
        conditions.append(Condition(
            "specimen", row.barcode, AlertKind.DESCRIPTION_CONFLICT,
            f"{row.barcode}: " + "; ".join(conflicts), facts | {"conflicts": conflicts},
            **where))
    return conditions


def _packing_conditions(connection: Connection) -> list[Condition]:
    """Every specimen in a container that mixes temperature classes, while the specimens
    are in it (packed or in transit): the domain decides (dronelog.domain.packing)."""
    rows = connection.execute(select(T).where(and_(
        T.c.is_open == true(), T.c.state.in_(("packed", "in_transit")),
        T.c.container_id.is_not(None)))).all()
    by_barcode = {row.barcode: row for row in rows}
    conditions = []
    for mixed in mixed_containers(PackedSpecimen(row.barcode, row.container_id,
                                                 row.temperature_class) for row in rows):
        for barcode in mixed.barcodes:
            row = by_barcode[barcode]
            conditions.append(Condition(
                "specimen", barcode, AlertKind.MIXED_TEMPERATURE_CLASSES,
                f"container {mixed.container_id} mixes temperature classes "
                f"({', '.join(mixed.temperature_classes)}): {barcode} "
                f"({row.temperature_class}) must be packed apart",
                {"priority": row.priority, "kind": row.kind,
                 "destination_site_id": row.destination_site_id,
                 "container_id": mixed.container_id,
                 "temperature_class": row.temperature_class,
                 "temperature_classes": list(mixed.temperature_classes),
                 "container_barcodes": list(mixed.barcodes)},
                site_id=row.destination_site_id or row.origin_site_id, drone_id=row.drone_id,
                origin_site_id=row.origin_site_id))
    return conditions


def _flight_evaluation(connection: Connection, now: datetime, rules: SweepRules) -> Evaluation:
    """Load each flight in the air as a snapshot and let the domain decide
    (dronelog.domain.monitoring): raised, cleared or unknown."""
    flights = repo.flights_in_air(connection)
    if not flights:
        return Evaluation()
    drones = {flight.drone_id for flight in flights}
    site_points, plans = repo.sites(connection), repo.flight_routes(connection, flights)
    window = timedelta(seconds=max(rules.eta_smoothing_s, 120, rules.lost_link_s))
    reports = repo.recent_reports(
        connection, drones, received_since=now - window,
        event_since=now - window - timedelta(seconds=rules.max_clock_offset_s))
    cargo = repo.cargo_in_transit(connection, [flight.flight_id for flight in flights])
    monitoring_rules = rules.monitoring()
    result = Evaluation()
    for flight in flights:
        snapshot = FlightSnapshot(
            flight.flight_id, flight.drone_id, flight.destination_site_id,
            plans[flight.flight_id],
            tuple(reports.get(flight.drone_id, ())),
            tuple(Cargo(row.barcode, row.priority, as_utc(row.deadline),
                        row.destination_site_id, row.landed_to_received_min or 0.0,
                        _point(site_points, row.destination_site_id))
                  for row in cargo.get(flight.flight_id, [])),
            diverted=bool(flight.diverted) or flight.state == "diverted")
        result.extend(_with_cargo_params(evaluate_flight(snapshot, now, monitoring_rules),
                                         cargo.get(flight.flight_id, [])))
    return result


def _with_cargo_params(evaluation: Evaluation, cargo_rows: list) -> Evaluation:
    """The flight's specimen alerts with what their texts and their sites need: the
    specimen's priority, destination and origin (whose lab the alert also reaches)."""
    by_barcode = {row.barcode: row for row in cargo_rows}
    conditions = []
    for condition in evaluation.conditions:
        row = by_barcode.get(condition.subject_id) if condition.subject_kind == "specimen" \
            else None
        if row is not None:
            condition = replace(
                condition, origin_site_id=row.origin_site_id,
                details={"priority": row.priority,
                         "destination_site_id": row.destination_site_id} | condition.details)
        conditions.append(condition)
    return Evaluation(conditions, evaluation.unknown)


def _point(site_points, site_id: str | None) -> tuple[float, float] | None:
    site = site_points.get(site_id)
    return (site.lat, site.lon) if site else None
