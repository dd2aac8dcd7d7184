"""Transport requests in the database: the row of each request, and one `request_change` row
per state change, attributed to the authenticated sender. The change rows are the outbox the
notifications read (`notified_at` is theirs to set): a request's state changes nowhere else."""

import json
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from dronelog.domain.requests import Change, RequestState, TransportRequest
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import RequestChange, TransportRequestRow

REQUEST, CHANGE = TransportRequestRow.__table__, RequestChange.__table__


def new_request_id(now: datetime, zone: str) -> str:
    """TR<the network's local date>-<6 hex>: the date the clinic sees on its wall."""
    return f"TR{now.astimezone(ZoneInfo(zone)).strftime('%Y%m%d')}-{secrets.token_hex(3).upper()}"


def to_domain(row: Any) -> TransportRequest:
    return TransportRequest(
        id=row.id, origin_site_id=row.origin_site_id,
        destination_site_id=row.destination_site_id, priority=row.priority,
        requested_at=as_utc(row.requested_at), ready_at=as_utc(row.ready_at),
        state=RequestState(row.state), carrier=row.carrier, drone_id=row.drone_id,
        flight_id=row.flight_id, courier_id=row.courier_id,
        picked_up_at=as_utc(row.picked_up_at), delivered_at=as_utc(row.delivered_at))


def create(connection: Connection, values: dict, by: str, now: datetime) -> str:
    """Store a new request (state `requested`) and its first change."""
    values = {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in values.items()}
    connection.execute(insert(REQUEST).values(
        state=RequestState.REQUESTED.value, updated_at=now, requested_by=by,
        containers=json.dumps(values.pop("containers", [])), **values))
    _log(connection, values["id"], "request", None, RequestState.REQUESTED.value, now, by,
         {"priority": values["priority"], "origin_site_id": values["origin_site_id"],
          "destination_site_id": values["destination_site_id"]})
    return values["id"]


def load(connection: Connection, request_id: str, *, for_update: bool = False) -> Any | None:
    query = select(REQUEST).where(REQUEST.c.id == request_id)
    if for_update and connection.dialect.name == "postgresql":
        query = query.with_for_update()  # two dispatchers assigning at once: one after the other
    return connection.execute(query).first()


def save(connection: Connection, after: TransportRequest, change: Change, by: str,
         **extra) -> None:
    """The request as `transition` left it, plus fields the domain does not decide (the
    flight's plan, the approval reference), and the change, attributed to `by`."""
    connection.execute(update(REQUEST).where(REQUEST.c.id == after.id).values(
        state=after.state.value, carrier=after.carrier, drone_id=after.drone_id,
        flight_id=after.flight_id, courier_id=after.courier_id,
        picked_up_at=after.picked_up_at, delivered_at=after.delivered_at,
        updated_at=change.at, **extra))
    _log(connection, after.id, change.action.value, change.from_state.value,
         change.to_state.value, change.at, by,
         {k: v for k, v in {"drone_id": after.drone_id, "flight_id": after.flight_id,
                            "courier_id": after.courier_id, **extra}.items() if v is not None})


def note(connection: Connection, request_id: str, action: str, state: str, now: datetime,
         by: str, **values) -> None:
    """A change that leaves the state as it is (an approval entered, a held flight sent)."""
    connection.execute(update(REQUEST).where(REQUEST.c.id == request_id)
                       .values(updated_at=now, **values))
    _log(connection, request_id, action, state, state, now, by, values)


def _log(connection: Connection, request_id: str, action: str, from_state: str | None,
         to_state: str, at: datetime, by: str, detail: dict) -> None:
    connection.execute(insert(CHANGE).values(
        request_id=request_id, action=action, from_state=from_state, to_state=to_state, at=at,
        by=by, detail=json.dumps(detail, default=str)))


def history(connection: Connection, request_id: str, limit: int = 200) -> list[Any]:
    return connection.execute(select(CHANGE).where(CHANGE.c.request_id == request_id)
                              .order_by(CHANGE.c.id).limit(limit)).all()
