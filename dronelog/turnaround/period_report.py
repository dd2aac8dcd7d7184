"""The turnaround report over a period (a chosen range of days, a week, a month), in the
network's time zone: P50/P90 end to end and per leg for each route, priority and kind;
rejections by reason and site; excursions per route; manifest discrepancies.

The population is the specimens collected in the period (as in the daily report,
turnaround/report.py, whose percentile rule it shares). `summarise` is pure: rows in,
report out; `load` reads the rows of a bounded period. A period is at most `MAX_DAYS` long,
so a request never reads more than a quarter of the record.
"""

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, and_, select

from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert
from dronelog.turnaround import repository as repo
from dronelog.turnaround.report import day_bounds, nearest_rank

MAX_DAYS = 92  # a quarter: the longest period one request may cover
# each leg: (name, from column, to column); "" is collection to receipt (end to end)
LEGS = (("", "collected_at", "received_at"),
        ("collected_to_loaded", "collected_at", "loaded_at"),
        ("loaded_to_took_off", "loaded_at", "took_off_at"),
        ("flight", "took_off_at", "landed_at"),
        ("landed_to_received", "landed_at", "received_at"))
T = repo.SPECIMEN_TRACKING
A = Alert.__table__
_COLUMNS = ("barcode", "state", "priority", "kind", "origin_site_id", "destination_site_id",
            "site_id", "collected_at", "loaded_at", "took_off_at", "landed_at", "received_at",
            "rejected_at", "rejection_reason", "deadline", "excursion")


class PeriodTooLong(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    def __post_init__(self):
        if self.last < self.first:
            raise PeriodTooLong(f"the period ends ({self.last}) before it starts "
                                f"({self.first})")
        if self.days > MAX_DAYS:
            raise PeriodTooLong(f"a report covers at most {MAX_DAYS} days; "
                                f"{self.first} to {self.last} is {self.days}")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, zone: str) -> tuple[datetime, datetime]:
        """Midnight before the first day to midnight after the last, in UTC."""
        return day_bounds(self.first, zone)[0], day_bounds(self.last, zone)[1]


def load(connection: Connection, period: Period, zone: str) -> tuple[list, list]:
    """The specimens collected in the period, and the manifest discrepancies opened in it."""
    start, end = period.bounds(zone)
    specimens = connection.execute(
        select(*(T.c[name] for name in _COLUMNS))
        .where(and_(T.c.collected_at >= start, T.c.collected_at < end))).all()
    discrepancies = connection.execute(
        select(A.c.subject_id, A.c.site_id, A.c.details, A.c.opened_at)
        .where(and_(A.c.kind == "manifest_discrepancy", A.c.opened_at >= start,
                    A.c.opened_at < end))).all()
    return specimens, discrepancies


def summarise(specimens, discrepancies) -> dict:
    """The report: `groups` (per route, priority and kind), `routes` (excursions per route),
    `rejections` (per reason and site) and `discrepancies` (per site and finding)."""
    by_group: dict[tuple, list] = defaultdict(list)
    for row in specimens:
        if row.destination_site_id is None:
            continue  # never described: no route to count it on (its alerts say so)
        by_group[(row.origin_site_id, row.destination_site_id, row.priority, row.kind)
                 ].append(row)
    groups = [_group(key, rows) for key, rows in sorted(by_group.items())]
    routes: dict[tuple, Counter] = defaultdict(Counter)
    for group in groups:
        route = routes[(group["origin_site_id"], group["destination_site_id"])]
        route.update(specimens=group["specimens"], excursions=group["excursions"])
    rejections = Counter((row.rejection_reason or "unspecified",
                          row.site_id or row.destination_site_id)
                         for row in specimens if row.rejected_at is not None)
    findings = Counter((row.site_id, json.loads(row.details or "{}").get("finding", "unknown"))
                       for row in discrepancies)
    return {
        "groups": groups,
        "routes": [{"origin_site_id": o, "destination_site_id": d,
                    "specimens": c["specimens"], "excursions": c["excursions"]}
                   for (o, d), c in sorted(routes.items())],
        "rejections": [{"reason": reason, "site_id": site, "count": count}
                       for (reason, site), count in sorted(rejections.items(),
                                                           key=lambda x: (-x[1], x[0]))],
        "discrepancies": [{"site_id": site, "finding": finding, "count": count}
                          for (site, finding), count in sorted(
                              findings.items(), key=lambda x: (-x[1], str(x[0])))],
    }


def _group(key: tuple, rows: list) -> dict:
    origin, destination, priority, kind = key
    # on time counts specimens received and kept (as the daily report does)
    received = [r for r in rows if r.state == "received" and r.received_at is not None]
    on_time = [r for r in received if as_utc(r.received_at) <= as_utc(r.deadline)]
    group = {"origin_site_id": origin, "destination_site_id": destination,
             "priority": priority, "kind": kind, "specimens": len(rows),
             "received": len(received), "on_time": len(on_time),
             "on_time_pct": round(100 * len(on_time) / len(received), 1) if received else None,
             "excursions": sum(1 for r in rows if r.excursion),
             "rejections": sum(1 for r in rows if r.rejected_at is not None)}
    for leg, start, end in LEGS:
        # end to end and the last leg count only what was received and kept
        population = received if end == "received_at" else rows
        values = [_minutes(getattr(r, start), getattr(r, end)) for r in population
                  if getattr(r, start) is not None and getattr(r, end) is not None]
        values = [v for v in values if v >= 0]  # backwards: a custody anomaly, not a time
        suffix = f"_{leg}" if leg else ""
        for percent in (50, 90):
            value = nearest_rank(values, percent)
            group[f"p{percent}{suffix}_min"] = round(value, 2) if value is not None else None
        group[f"n{suffix}"] = len(values)
    return group


def week_of(day: date) -> Period:
    """The ISO week (Monday to Sunday) holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=6))


def month_of(day: date) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following - timedelta(days=1))


def _minutes(start: datetime, end: datetime) -> float:
    return (as_utc(end) - as_utc(start)).total_seconds() / 60
