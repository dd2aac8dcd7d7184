"""What each source has to say, planned per route: the shell around the routing rules.

Each planner reads its source, asks domain/notifications.py which routes take each
occurrence and when it may go (quiet hours in the site's zone), and returns `Planned`
messages whose key names the route and the subject: a message is planned once however
often the planner runs, on whichever scheduler (outbox.py stores each key once).

- alerts: the `alert_change` outbox (`notices_planned`): an opening to the routes that take
  it, an acknowledgement or a resolution to the routes that were told of the alert; and the
  escalation tiers of the alerts still open;
- landing: the flights in the air (the sweep's query) whose ETA is within the lead time,
  to the destination's lab;
- assigned: the `request_change` rows not yet notified (`notified_at`), to the requesting
  clinic;
- received: boxes received at a lab since the last pass (custody events' `stored_at`), to
  the clinic that sent them;
- report: the daily or weekly report whose sending time has come.
"""

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, update

from dronelog.domain import notice_text
from dronelog.domain.alert_text import DEFAULT_ZONE, SiteLabel
from dronelog.domain.monitoring import flight_eta
from dronelog.domain.notice_text import Notice
from dronelog.domain.notifications import (
    Occurrence,
    RouteRule,
    Source,
    escalation_due,
    release_at,
    report_due,
    routes_for,
)
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import (
    Alert,
    AlertChange,
    CustodyEvent,
    Notification,
    RequestChange,
    TransportRequestRow,
)
from dronelog.turnaround import period_report
from dronelog.turnaround import repository as repo
from dronelog.turnaround.sweep import SweepRules

ALERT, CHANGE = Alert.__table__, AlertChange.__table__
REQUEST, REQUEST_CHANGE = TransportRequestRow.__table__, RequestChange.__table__
CUSTODY = CustodyEvent.__table__
NOTIFICATION = Notification.__table__
BATCH = 500
RECENT_REPORTS = timedelta(minutes=5)  # the reports an ETA is made from (as the API's)
RECEIVED_LOOKBACK = timedelta(seconds=60)  # commits that stored an older `stored_at` late
RECEIVED_WATERMARK = "notify.received"
ALERT_CHANGES_TOLD = ("acknowledged", "resolved")  # to the routes told of the alert
_RANK = {"stat": 2, "urgent": 1, "routine": 0}


@dataclass(frozen=True)
class Planned:
    key: str
    route: RouteRule
    subject: str
    notice: Notice
    not_before: datetime
    attachment: dict | None = None


def _zone(site_id: str | None, sites: Mapping[str, SiteLabel]) -> ZoneInfo:
    site = sites.get(site_id or "")
    return ZoneInfo(site.timezone if site else DEFAULT_ZONE)


def _plan(route: RouteRule, key: str, subject: str, notice: Notice, now: datetime,
          site_id: str | None, sites: Mapping[str, SiteLabel], critical: bool = False,
          attachment: dict | None = None) -> Planned:
    return Planned(f"r{route.id}:{key}", route, subject, notice,
                   release_at(route.quiet, now, _zone(site_id, sites), critical), attachment)


def _alert_occurrence(alert) -> Occurrence:
    details = json.loads(alert.details or "{}")
    sites = tuple(s for s in (alert.site_id, alert.origin_site_id, alert.at_site_id) if s)
    return Occurrence(Source.ALERT, sites, alert.kind, alert.severity, details.get("priority"))


def _alert_planned(route: RouteRule, alert, now: datetime, sites, tier: int) -> Planned:
    stored = SimpleNamespace(**(dict(alert._mapping) | {"opened_at": as_utc(alert.opened_at)}))
    notice = notice_text.alert_notice(stored, json.loads(alert.details or "{}"),
                                      route.language, sites, unacknowledged_min=tier)
    key = f"alert:{alert.id}:" + (f"after{tier}" if tier else "opened")
    return _plan(route, key, str(alert.id), notice, now, alert.site_id, sites,
                 critical=alert.severity == "critical")


def alerts(connection: Connection, routes: list[RouteRule], now: datetime,
           sites: Mapping[str, SiteLabel]) -> list[Planned]:
    """The notices of newly opened alerts (and the changes marked planned), and of the
    escalation tiers due."""
    changes = connection.execute(
        select(CHANGE.c.id.label("change_id"), CHANGE.c.change, CHANGE.c.at.label("change_at"),
               CHANGE.c.by.label("change_by"), ALERT)
        .join(ALERT, ALERT.c.id == CHANGE.c.alert_id)
        .where(CHANGE.c.notices_planned.is_(False)).order_by(CHANGE.c.id).limit(BATCH)).all()
    planned = [_alert_planned(route, row, now, sites, 0) for row in changes
               if row.change == "opened"
               for route in routes_for(routes, _alert_occurrence(row), after_min=0)]
    planned += _alert_changes_planned(connection, routes, [
        row for row in changes if row.change in ALERT_CHANGES_TOLD], now, sites,
        {item.key for item in planned})
    if changes:
        connection.execute(update(CHANGE).where(CHANGE.c.id.in_(
            [row.change_id for row in changes])).values(notices_planned=True))
    tiers = [route.after_min for route in routes
             if route.source == Source.ALERT and route.after_min > 0]
    if tiers:
        open_alerts = connection.execute(select(ALERT).where(and_(
            ALERT.c.state == "open",
            ALERT.c.opened_at <= now - timedelta(minutes=min(tiers)),
            ALERT.c.opened_at > now - timedelta(minutes=max(tiers)) - timedelta(days=1))))
        for alert in open_alerts:
            for route in routes_for(routes, _alert_occurrence(alert), after_min=None):
                if escalation_due(route.after_min, as_utc(alert.opened_at), alert.state, now):
                    planned.append(_alert_planned(route, alert, now, sites, route.after_min))
    return planned


def _alert_changes_planned(connection: Connection, routes: list[RouteRule], changes: list,
                           now: datetime, sites: Mapping[str, SiteLabel],
                           told_now: set[str]) -> list[Planned]:
    """An acknowledgement or a resolution, to each route that was told of the alert (at its
    opening or at an escalation tier, before or in this pass: `told_now`): one message per
    route and change."""
    def keys(row, route: RouteRule) -> tuple[str, str]:  # as `_alert_planned` made them
        return (f"r{route.id}:alert:{row.id}:opened",
                f"r{route.id}:alert:{row.id}:after{route.after_min}")

    wanted = [key for row in changes for route in routes for key in keys(row, route)]
    told = set(told_now)
    for start in range(0, len(wanted), 500):  # by the unique key's index
        told.update(connection.execute(select(NOTIFICATION.c.dedupe_key).where(
            NOTIFICATION.c.dedupe_key.in_(wanted[start:start + 500]))).scalars())
    planned = []
    for row in changes:
        matching = [route for route in routes if not told.isdisjoint(keys(row, route))]
        if not matching:
            continue
        stored = SimpleNamespace(**(dict(row._mapping) | {"opened_at": as_utc(row.opened_at)}))
        for route in matching:
            notice = notice_text.alert_change_notice(
                stored, json.loads(row.details or "{}"), row.change, as_utc(row.change_at),
                row.change_by, route.language, sites)
            planned.append(_plan(route, f"alert:{row.id}:{row.change}", str(row.id), notice,
                                 now, row.site_id, sites, critical=row.severity == "critical"))
    return planned


def landing(connection: Connection, routes: list[RouteRule], now: datetime,
            sites: Mapping[str, SiteLabel], lead: timedelta) -> list[Planned]:
    """The receiving lab, once per flight, when its ETA comes within `lead`."""
    if not any(route.source == Source.LANDING and route.active for route in routes):
        return []
    flights = [f for f in repo.flights_in_air(connection) if f.destination_site_id]
    if not flights:
        return []
    rules = SweepRules()
    plans = repo.flight_routes(connection, flights)
    reports = repo.recent_reports(
        connection, {f.drone_id for f in flights}, received_since=now - RECENT_REPORTS,
        event_since=now - RECENT_REPORTS - timedelta(seconds=rules.max_clock_offset_s))
    cargo = repo.cargo_in_transit(connection, [f.flight_id for f in flights])
    planned = []
    for flight in flights:
        track = [r for r in reports.get(flight.drone_id, [])
                 if r.telemetry.flight_id == flight.flight_id]
        if plans.get(flight.flight_id) is None or not track:
            continue  # no plan or no recent report: no ETA worth telling
        eta = flight_eta(plans[flight.flight_id], track, now, rules.monitoring()).arrival_at
        if eta is None or eta - now > lead:
            continue
        aboard = cargo.get(flight.flight_id, [])
        stat = sum(1 for row in aboard if row.priority == "stat")
        top = max((row.priority for row in aboard), key=lambda p: _RANK.get(p, -1),
                  default=None)
        occurrence = Occurrence(Source.LANDING, (flight.destination_site_id,), priority=top)
        for route in routes_for(routes, occurrence):
            notice = notice_text.landing_notice(flight.flight_id, flight.destination_site_id,
                                                eta, now, len(aboard), stat, route.language,
                                                sites)
            planned.append(_plan(route, f"landing:{flight.flight_id}", flight.flight_id,
                                 notice, now, flight.destination_site_id, sites))
    return planned


def assigned(connection: Connection, routes: list[RouteRule], now: datetime,
             sites: Mapping[str, SiteLabel]) -> list[Planned]:
    """The requesting clinic, when its request is assigned (or reassigned) a drone; every
    request change read is marked notified (`notified_at`), taken by a route or not."""
    rows = connection.execute(
        select(REQUEST_CHANGE.c.id.label("change_id"), REQUEST_CHANGE.c.action, REQUEST)
        .join(REQUEST, REQUEST.c.id == REQUEST_CHANGE.c.request_id)
        .where(REQUEST_CHANGE.c.notified_at.is_(None))
        .order_by(REQUEST_CHANGE.c.id).limit(BATCH)).all()
    planned = []
    for row in rows:
        if row.action not in ("assign", "reassign"):
            continue
        occurrence = Occurrence(Source.ASSIGNED, (row.origin_site_id,), priority=row.priority)
        for route in routes_for(routes, occurrence):
            notice = notice_text.assigned_notice(
                row.id, row.priority, row.origin_site_id, row.destination_site_id,
                row.drone_id, row.flight_id, as_utc(row.planned_departure), route.language,
                sites)
            planned.append(_plan(route, f"assigned:{row.change_id}", row.id, notice, now,
                                 row.origin_site_id, sites))
    if rows:
        connection.execute(update(REQUEST_CHANGE).where(REQUEST_CHANGE.c.id.in_(
            [row.change_id for row in rows])).values(notified_at=now))
    return planned


def received(connection: Connection, routes: list[RouteRule], now: datetime,
             sites: Mapping[str, SiteLabel]) -> list[Planned]:
    """The clinic that sent a box, once per box and receiving site, when the lab received
    it. The first pass only sets the watermark: no notices about the past."""
    mark = repo.read_state(connection, RECEIVED_WATERMARK, "")
    if not mark:
        repo.write_state(connection, RECEIVED_WATERMARK, now.isoformat(), now)
        return []
    since = datetime.fromisoformat(mark) - RECEIVED_LOOKBACK
    events = connection.execute(select(
        CUSTODY.c.barcode, CUSTODY.c.container_id, CUSTODY.c.site_id, CUSTODY.c.event_time,
        CUSTODY.c.stored_at).where(and_(
            CUSTODY.c.kind == "received", CUSTODY.c.stored_at > since,
            CUSTODY.c.container_id.is_not(None))).order_by(CUSTODY.c.stored_at)
        .limit(5000)).all()
    if not events:
        return []
    boxes: dict[tuple[str, str], list] = defaultdict(list)
    for event in events:
        boxes[(event.container_id, event.site_id)].append(event)
    tracking = {row.barcode: row for row in connection.execute(
        select(repo.SPECIMEN_TRACKING.c.barcode, repo.SPECIMEN_TRACKING.c.origin_site_id,
               repo.SPECIMEN_TRACKING.c.priority).where(
            repo.SPECIMEN_TRACKING.c.barcode.in_({e.barcode for e in events})))}
    planned = []
    for (container, site), box in boxes.items():
        known = [tracking[e.barcode] for e in box if e.barcode in tracking]
        origins = tuple({row.origin_site_id for row in known if row.origin_site_id})
        top = max((row.priority for row in known), key=lambda p: _RANK.get(p, -1),
                  default=None)
        at = max(as_utc(e.event_time) for e in box)
        for route in routes_for(routes, Occurrence(Source.RECEIVED, origins, priority=top)):
            notice = notice_text.received_notice(container, site, at, len(box),
                                                 route.language, sites)
            planned.append(_plan(route, f"received:{container}:{site}", container, notice,
                                 now, origins[0] if origins else site, sites))
    newest = max(as_utc(e.stored_at) for e in events)
    repo.write_state(connection, RECEIVED_WATERMARK, max(newest, datetime.fromisoformat(
        mark)).isoformat(), now)
    return planned


def reports(connection: Connection, routes: list[RouteRule], now: datetime,
            sites: Mapping[str, SiteLabel], zone: str, known_keys) -> list[Planned]:
    """The latest daily or weekly report due on each report route, once per period
    (`known_keys(keys)` tells which are planned already, so a report is built once)."""
    due = {}
    for route in routes:
        if route.source != Source.REPORT or route.period is None or route.send_at is None:
            continue
        first, last = report_due(route.period, route.send_at, now, ZoneInfo(zone))
        due[f"r{route.id}:report:{first.isoformat()}"] = (route, first, last)
    planned = []
    already = known_keys(list(due))
    for key, (route, first, last) in due.items():
        if key in already:
            continue
        period = period_report.Period(first, last)
        groups = period_report.summarise(*period_report.load(connection, period, zone))["groups"]
        notice = notice_text.report_notice(first.isoformat(), last.isoformat(), groups,
                                           route.language, sites)
        planned.append(Planned(key, route, f"{first.isoformat()}/{last.isoformat()}", notice,
                               now, {"report": [first.isoformat(), last.isoformat()]}))
    return planned
