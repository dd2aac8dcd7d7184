"""The turnaround report: per day (in the network's time zone), route, priority and kind.

Percentiles use the nearest-rank method (the smallest value with at least p % of the values
at or below it), which a reader can check by hand on a short list.
"""

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select

from dronelog.storage.portable import as_utc
from dronelog.storage.tables import TurnaroundReportRow
from dronelog.turnaround import repository as repo

T = repo.SPECIMEN_TRACKING
F = repo.FLIGHT_TRACKING
REPORT = TurnaroundReportRow.__table__


def nearest_rank(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The day's start and end in UTC (SQLite compares stored UTC times as text)."""
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def compute(connection: Connection, day: date, zone: str, now: datetime) -> list[dict]:
    """The report rows of `day`: specimens collected that day, flights that took off."""
    start, end = day_bounds(day, zone)
    specimens = connection.execute(select(T).where(and_(T.c.collected_at >= start,
                                                        T.c.collected_at < end))).all()
    flights = connection.execute(select(F).where(and_(F.c.took_off_at >= start,
                                                      F.c.took_off_at < end))).all()
    flown: dict[tuple[str, str], int] = defaultdict(int)
    for flight in flights:
        flown[(flight.origin_site_id, flight.destination_site_id)] += 1
    groups: dict[tuple, list] = defaultdict(list)
    for row in specimens:
        if row.destination_site_id is None:
            continue  # never described: no route to count it on (its alerts say so)
        groups[(row.origin_site_id, row.destination_site_id, row.priority, row.kind)].append(row)
    report = []
    for (origin, destination, priority, kind), rows in sorted(groups.items()):
        # on time counts specimens received and kept: a rejected one (even after its
        # receipt) is collected again, and a misrouted one was never received where it
        # should have been
        received = [r for r in rows if r.state == "received" and r.received_at is not None]
        on_time = [r for r in received if as_utc(r.received_at) <= as_utc(r.deadline)]
        legs = {
            "": [_minutes(r.collected_at, r.received_at) for r in received],
            "_collected_to_loaded": [_minutes(r.collected_at, r.loaded_at) for r in rows
                                     if r.loaded_at],
            "_flight": [_minutes(r.took_off_at, r.landed_at) for r in rows
                        if r.took_off_at and r.landed_at],
            "_landed_to_received": [_minutes(r.landed_at, r.received_at) for r in received
                                    if r.landed_at],
        }
        row = {"day": day.isoformat(), "origin_site_id": origin,
               "destination_site_id": destination, "priority": priority, "kind": kind,
               "specimens": len(rows), "received": len(received), "on_time": len(on_time),
               "on_time_pct": round(100 * len(on_time) / len(received), 1) if received
               else None,
               "excursions": sum(1 for r in rows if r.excursion),
               "rejections": sum(1 for r in rows if r.rejected_at is not None),
               "flights": flown.get((origin, destination), 0), "computed_at": now}
        for leg, values in legs.items():
            # a leg timed backwards is a custody anomaly (alerted), not a duration
            values = [value for value in values if value >= 0]
            for percent in (50, 90):
                value = nearest_rank(values, percent)
                row[f"p{percent}{leg}_min"] = round(value, 2) if value is not None else None
        report.append(row)
    return report


def roll_up(connection: Connection, day: date, zone: str, now: datetime) -> int:
    """Recompute and store `day`'s report (idempotent: the day's rows are replaced)."""
    rows = compute(connection, day, zone, now)
    connection.execute(REPORT.delete().where(REPORT.c.day == day.isoformat()))
    if rows:
        connection.execute(REPORT.insert(), rows)
    return len(rows)


def _minutes(start: datetime, end: datetime) -> float:
    return (as_utc(end) - as_utc(start)).total_seconds() / 60
