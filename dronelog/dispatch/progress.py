"""Requests follow their flights: the scheduler records the pickup when the assigned flight
takes off and the delivery when it lands at the request's destination (domain/requests.py,
`follow_flight`), attributed to the scheduler, as changes like any other."""

from datetime import datetime

from sqlalchemy import Connection, and_, select

from dronelog.dispatch import records
from dronelog.domain.requests import FlightProgress, RequestState, follow_flight, transition
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import FlightTracking

SCHEDULER = "scheduler"
R, F = records.REQUEST, FlightTracking.__table__
BATCH = 500


def follow_flights(connection: Connection, now: datetime) -> int:
    """Advance the requests whose flight took off or landed; how many changes were made."""
    rows = connection.execute(
        select(R, F.c.took_off_at, F.c.landed_at, F.c.landed_site_id)
        .select_from(R.join(F, F.c.flight_id == R.c.flight_id))
        .where(and_(R.c.carrier == "drone", R.c.state.in_((RequestState.ASSIGNED.value,
                                                           RequestState.PICKED_UP.value)),
                    R.c.flight_held.is_(False), F.c.took_off_at.is_not(None)))
        .order_by(R.c.id).limit(BATCH)).all()
    changes = 0
    for row in rows:
        request = records.to_domain(row)
        flight = FlightProgress(row.flight_id, as_utc(row.took_off_at), as_utc(row.landed_at),
                                row.landed_site_id)
        while (step := follow_flight(request, flight)) is not None:
            outcome = transition(request, step)
            if not isinstance(outcome, tuple):
                break
            request, change = outcome
            records.save(connection, request, change, SCHEDULER)
            changes += 1
    return changes
