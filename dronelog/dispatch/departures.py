"""Fixed daily departures: at each departure's cut-off the scheduler creates its transport
request, once (the one-day departure's key is unique), with the boxes packed at the origin for
the destination in the day before the cut-off that are neither loaded nor named by another
open request (domain/requests.py, `due_departures`): a box waiting on the morning's request
is not offered to the afternoon's as well; once that request is cancelled, it is."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select

from dronelog.dispatch import records
from dronelog.domain.dispatch import DispatchRules
from dronelog.domain.requests import FINAL, due_departures
from dronelog.storage.tables import CustodyEvent, Specimen

SCHEDULER = "scheduler"
C, SPECIMEN = CustodyEvent.__table__, Specimen.__table__


def create_due(connection: Connection, rules: DispatchRules, now: datetime, zone: str
               ) -> list[str]:
    """Create the requests of the departures due at `now`; the new request ids."""
    tz = ZoneInfo(zone)
    created = []
    for departure, leaves in due_departures(list(rules.departures), now, tz):
        key = departure.key(leaves.astimezone(tz).date())
        taken = connection.execute(select(records.REQUEST.c.id)
                                   .where(records.REQUEST.c.schedule_key == key)).first()
        if taken:
            continue
        cutoff = leaves - timedelta(minutes=departure.cutoff_min)
        records.create(connection, {
            "id": f"S-{key}", "origin_site_id": departure.origin_site_id,
            "destination_site_id": departure.destination_site_id, "priority": "routine",
            "source": "schedule", "schedule_key": key, "requested_at": now, "ready_at": leaves,
            "containers": _boxes_packed(connection, departure.origin_site_id,
                                        departure.destination_site_id, cutoff)},
            SCHEDULER, now)
        created.append(f"S-{key}")
    return created


def _boxes_packed(connection: Connection, origin: str, destination: str, cutoff: datetime,
                  limit: int = 50) -> list[str]:
    """Boxes packed at `origin` in the day up to `cutoff` with tubes for `destination`,
    not loaded yet and not on an open request from `origin`."""
    packed = connection.execute(
        select(C.c.container_id).select_from(C.join(SPECIMEN, SPECIMEN.c.barcode == C.c.barcode))
        .where(and_(C.c.kind == "packed", C.c.site_id == origin,
                    C.c.event_time > cutoff - timedelta(days=1), C.c.event_time <= cutoff,
                    C.c.container_id.is_not(None),
                    SPECIMEN.c.destination_site_id == destination))
        .distinct().limit(limit * 4)).scalars().all()
    loaded = set(connection.execute(select(C.c.container_id).where(and_(
        C.c.kind == "loaded", C.c.container_id.in_(packed)))).scalars())
    requested = set()
    for (names,) in connection.execute(select(records.REQUEST.c.containers).where(and_(
            records.REQUEST.c.origin_site_id == origin,
            records.REQUEST.c.state.not_in([state.value for state in FINAL])))):
        requested.update(json.loads(names))
    return sorted(set(packed) - loaded - requested)[:limit]
