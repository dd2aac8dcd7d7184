"""The transport requests' own service level in the report: request to pickup
(domain/requests.py, `service_level`), per route and priority, for the requests made on a day
(the network's time zone). Percentiles by nearest rank, as in the turnaround report."""

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import Connection, and_, select

from dronelog.dispatch import records
from dronelog.domain.requests import RequestState, service_level
from dronelog.turnaround.report import day_bounds, nearest_rank

R = records.REQUEST


def compute(connection: Connection, day: date, zone: str) -> list[dict]:
    return [{"day": day, **row} for row in compute_between(connection, *day_bounds(day, zone))]


def compute_between(connection: Connection, start: datetime, end: datetime) -> list[dict]:
    """The rows of the requests made from `start` to `end` (UTC; a period's report uses it)."""
    rows = connection.execute(select(R).where(and_(R.c.requested_at >= start,
                                                   R.c.requested_at < end))).all()
    groups: dict[tuple[str, str, str], list] = defaultdict(list)
    for row in rows:
        groups[(row.origin_site_id, row.destination_site_id, row.priority)].append(
            records.to_domain(row))
    report = []
    for (origin, destination, priority), requests in sorted(groups.items()):
        minutes = [level.total_seconds() / 60 for level in map(service_level, requests)
                   if level is not None]
        report.append({
            "origin_site_id": origin, "destination_site_id": destination,
            "priority": priority, "requests": len(requests), "picked_up": len(minutes),
            "by_courier": sum(1 for r in requests if r.carrier == "courier"),
            "cancelled": sum(1 for r in requests if r.state is RequestState.CANCELLED),
            "request_to_pickup_p50_min": _round(nearest_rank(minutes, 50)),
            "request_to_pickup_p90_min": _round(nearest_rank(minutes, 90))})
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
