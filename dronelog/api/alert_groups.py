"""Alerts grouped as a dispatcher works through them: one entry per thing to look at.

The engine records one alert per subject and kind (a specimen's excursion is the specimen's,
so it can be resolved, reported and shown at receipt on that tube); grouping is how the
alerts are *shown*, decided here in one query and never stored:

- a specimen alert that names a container or a flight joins the alerts of the same kind
  on the same flight and container: one temperature excursion of a box is one entry with
  its specimens, a diverted flight's cargo one entry;
- every other alert (a drone's, a flight's, a specimen's not yet on a flight or in a box)
  is an entry of its own.

Entries are sorted by severity (critical first), then age (the oldest first: it has waited
longest), then key. The filters apply to the alerts before they are grouped, so a group
holds only the alerts that match; reads are bounded by the page of groups, by MEMBERS_MAX
alerts listed per group (its `count` tells the whole) and, since grouping reads every alert
it selects, by time for resolved alerts: those resolved in the last RESOLVED_DAYS days (or as
asked, at most MAX_RESOLVED_DAYS). Open and acknowledged alerts are all read: the engine keeps
at most one per subject and kind, and none of them may drop out of sight."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, literal, or_, select
from sqlalchemy.sql import ColumnElement, Select

from dronelog.storage.portable import json_text
from dronelog.storage.tables import Alert

A = Alert.__table__
MEMBERS_MAX = 100
SEVERITY_RANK = case({"critical": 0, "high": 1, "medium": 2}, value=A.c.severity, else_=3)
STATE_RANK = case({"open": 0, "acknowledged": 1, "resolved": 2}, value=A.c.state, else_=3)
STATES = ("open", "acknowledged", "resolved")
RESOLVED_DAYS = 30
MAX_RESOLVED_DAYS = 366


def resolved_since(filtered: Select, state: str | None, since: datetime) -> Select:
    """`filtered` (with its `state` filter) narrowed to the alerts resolved at `since` or
    later among its resolved ones; written as a range on ix_alert_state_resolved (SQLite's
    plan is tested), not a condition on every resolved alert."""
    if state == "resolved":
        return filtered.where(A.c.resolved_at >= since)
    if state is None:
        return filtered.where(or_(A.c.state.in_(STATES[:2]),
                                  and_(A.c.state == "resolved", A.c.resolved_at >= since)))
    return filtered  # open, acknowledged or active: no resolved alert in it


@dataclass(frozen=True)
class GroupKey:
    """The grouping expressions for one database."""

    flight: ColumnElement
    container: ColumnElement
    cargo: ColumnElement
    key: ColumnElement

    @classmethod
    def of(cls, connection: Connection) -> "GroupKey":
        flight, container = (json_text(connection.dialect.name, A.c.details, name)
                             for name in ("flight_id", "container_id"))
        cargo = and_(A.c.subject_kind == "specimen",
                     or_(flight.is_not(None), container.is_not(None)))
        key = case((cargo, literal("cargo|") + A.c.kind + "|" + func.coalesce(flight, "")
                    + "|" + func.coalesce(container, "")),
                   else_=literal("one|") + A.c.kind + "|" + A.c.subject_kind + "|"
                   + A.c.subject_id)
        return cls(flight, container, cargo, key)


@dataclass(frozen=True)
class GroupRow:
    key: str
    kind: str
    severity: str
    state: str  # the most pressing of its alerts: open, else acknowledged, else resolved
    subject_kind: str  # "cargo" for a flight's or a box's specimens, else the alert's
    flight_id: str | None
    container_id: str | None
    site_id: str | None
    drone_id: str | None
    opened_at: object
    last_opened_at: object
    count: int
    counts: dict[str, int]  # by state


def groups(connection: Connection, filtered: Select, limit: int, offset: int
           ) -> tuple[list[GroupRow], int]:
    """A page of groups of the alerts `filtered` selects (a select of the alert table with
    its filters), and how many groups there are."""
    by = GroupKey.of(connection)
    inner = filtered.add_columns(by.key.label("group_key"), by.flight.label("g_flight"),
                                 by.container.label("g_container"),
                                 SEVERITY_RANK.label("severity_rank"),
                                 STATE_RANK.label("state_rank"),
                                 case((by.cargo, 1), else_=0).label("cargo")).subquery()
    g = inner.c
    grouped = (select(
        g.group_key, func.min(g.kind).label("kind"), func.min(g.severity_rank).label("rank"),
        func.min(g.severity).label("severity"), func.min(g.state_rank).label("state_rank"),
        func.max(g.cargo).label("cargo"),
        func.min(g.subject_kind).label("subject_kind"),
        func.min(g.subject_id).label("subject_id"),
        func.min(g.g_flight).label("flight_id"), func.min(g.g_container).label("container_id"),
        func.min(g.site_id).label("site_id"), func.min(g.drone_id).label("drone_id"),
        func.min(g.opened_at).label("opened_at"), func.max(g.opened_at).label("last_opened_at"),
        func.count().label("count"),
        *(func.sum(case((g.state == state, 1), else_=0)).label(f"n_{state}")
          for state in STATES))
        .group_by(g.group_key))
    total = connection.execute(select(func.count()).select_from(grouped.subquery())
                               ).scalar_one()
    rows = connection.execute(grouped.order_by("rank", "opened_at", g.group_key)
                              .limit(limit).offset(offset)).all()
    return [GroupRow(
        key=row.group_key, kind=row.kind, severity=row.severity,
        state=STATES[min(row.state_rank, 2)],
        subject_kind="cargo" if row.cargo else row.subject_kind,
        flight_id=row.flight_id, container_id=row.container_id, site_id=row.site_id,
        drone_id=row.drone_id, opened_at=row.opened_at, last_opened_at=row.last_opened_at,
        count=row.count, counts={state: int(getattr(row, f"n_{state}") or 0)
                                 for state in STATES}) for row in rows], total


def members(connection: Connection, filtered: Select, keys: list[str]) -> dict[str, list]:
    """The alerts of the groups `keys` (as `filtered` selects them), at most MEMBERS_MAX
    each, by severity, state and id."""
    if not keys:
        return {}
    by = GroupKey.of(connection)
    ranked = filtered.add_columns(
        by.key.label("group_key"),
        func.row_number().over(partition_by=by.key,
                               order_by=(STATE_RANK, A.c.id)).label("position")
    ).where(by.key.in_(keys)).subquery()
    rows = connection.execute(select(ranked).where(ranked.c.position <= MEMBERS_MAX)
                              .order_by(ranked.c.group_key, ranked.c.position)).all()
    found: dict[str, list] = {key: [] for key in keys}
    for row in rows:
        found[row.group_key].append(row)
    return found
