"""Custody scans over HTTP, for scanners without MQTT.

The same path as the MQTT entrance: the scan is triaged as if it had arrived on the custody
topic of the user's own site, with the signed-in user as its sender, so the custody rules'
authority check (domain/custody_rules.py) refuses a scan at another site, a step the user
may not record (403 `step_not_allowed`) and a scan naming someone else (422
`actor_mismatch`); it is then stored by the same persister, idempotent on the event id, and
recorded by the user (`recorded_by`). A refused scan gets a problem
response with the reason (the sender is there to read it, so it is not dead-lettered). A scan
the database itself refuses is dead-lettered by the persister, as on the MQTT path, and also
answered as refused (`storage_rejected`): 409 when its event id is already stored for a
different event (storage/writer.py), else 422.
"""

import threading
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter
from sqlalchemy import select

from dronelog.api import audit
from dronelog.api.accounts import Role, User
from dronelog.api.deps import require
from dronelog.api.problems import Problem
from dronelog.api.schemas import CustodyAccepted
from dronelog.contract.messages import CustodyEvent
from dronelog.domain.custody_rules import Sender
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.persist import Persister
from dronelog.ingest.triage import triage
from dronelog.storage.tables import DeadLetter
from dronelog.storage.writer import BatchWriter

router = APIRouter(prefix="/api/v1/custody", tags=["custody"])
Scanner = Annotated[User, Depends(require(Role.DEVICE, Role.LAB))]
STORE_TIMEOUT_S = 10.0
_SCHEMA = TypeAdapter(CustodyEvent).json_schema()


@router.post("", response_model=CustodyAccepted, status_code=201,
             summary="Record a custody scan (devices; site staff: collection, packing, "
                     "loading, receipt, rejection)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": _SCHEMA}}}},
             responses={200: {"description": "already stored (an idempotent repeat)"},
                        409: {"description": "the event id is already stored for a different "
                                             "event (another sender's, or other content): "
                                             "nothing was stored"},
                        422: {"description": "refused, with the reason"},
                        503: {"description": "storage unavailable; retry, it is idempotent"}})
async def post_custody(request: Request, response: Response,
                       user: Scanner) -> CustodyAccepted:
    body = await _body_within_limit(request, request.app.state.rules.max_payload_bytes)
    return await run_in_threadpool(_store, request, response, user, body)


async def _body_within_limit(request: Request, limit: int) -> bytes:
    """The request body, holding no more than `limit` bytes of it in memory: a larger body
    (a 4 GB chunked upload, say) is read to its end, so the connection stays usable, but not
    kept, and is refused as the ingester refuses an oversized message."""
    kept, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            kept += chunk
    if size > limit:
        request.app.state.custody_posts.labels("refused").inc()
        raise Problem(422, "Custody scan refused",
                      f"payload of {size} bytes exceeds the limit of {limit}",
                      kind=f"urn:dronelog:problem:{RejectReason.OVERSIZED.value}",
                      reason_code=RejectReason.OVERSIZED.value)
    return bytes(kept)


def _store(request: Request, response: Response, user: User, body: bytes) -> CustodyAccepted:
    state = request.app.state
    topic = state.rules.layout.site_custody(user.site_id)
    sorted_out = triage([Delivery(topic, body, datetime.now(UTC), sender=_sender(user))],
                        state.rules, state.clock)
    if sorted_out.rejected:
        refused = sorted_out.rejected[0]
        state.custody_posts.labels("refused").inc()
        forbidden = refused.reason_code is RejectReason.STEP_NOT_ALLOWED
        raise Problem(403 if forbidden else 422,
                      "Forbidden" if forbidden else "Custody scan refused", refused.reason,
                      kind=f"urn:dronelog:problem:{refused.reason_code.value}",
                      reason_code=refused.reason_code.value)
    event = sorted_out.accepted[0].event
    give_up = threading.Event()
    timer = threading.Timer(STORE_TIMEOUT_S, give_up.set)
    timer.start()
    try:
        result = Persister(BatchWriter(state.engine, state.clock)).store(
            sorted_out.accepted, [], give_up)
    finally:
        timer.cancel()
    if result is None:
        state.custody_posts.labels("unavailable").inc()
        raise Problem(503, "Storage unavailable", "the database did not answer in time; send "
                      "the same scan again, it will be stored once", headers={"Retry-After": "5"})
    stored = result.stored.get("custody_event", 0) == 1
    if not stored and result.duplicates == 0:  # neither new nor a repeat: the database refused it
        state.custody_posts.labels("refused").inc()
        taken = event.event_id in result.conflicting_ids
        raise Problem(409 if taken else 422, "Conflict" if taken else "Custody scan refused",
                      _storage_reason(state.engine, event.event_id),
                      kind=f"urn:dronelog:problem:{RejectReason.STORAGE_REJECTED.value}",
                      reason_code=RejectReason.STORAGE_REJECTED.value)
    if not stored:
        response.status_code = 200
    with state.engine.begin() as conn:
        audit.record(conn, user, f"custody.{event.kind}", event.barcode, state.clock.now(),
                     event_id=str(event.event_id), stored=stored)
    state.custody_posts.labels("stored" if stored else "repeat").inc()
    return CustodyAccepted(event_id=str(event.event_id), stored=stored)


def _sender(user: User) -> Sender:
    """Who the scan is recorded by: site staff (the lab role) as themselves, a device token
    as its site's scanner (domain/custody_rules.py)."""
    if user.role is Role.DEVICE:
        return Sender.site(user.site_id, account=user.id)
    return Sender.staff(user.id, user.site_id)


def _storage_reason(engine, event_id) -> str:
    """The database's reason, as the persister wrote it into the dead letter."""
    letters = DeadLetter.__table__
    with engine.connect() as conn:
        reason = conn.execute(
            select(letters.c.reason)
            .where(letters.c.event_id == str(event_id),
                   letters.c.reason_code == RejectReason.STORAGE_REJECTED.value)
            .order_by(letters.c.id.desc()).limit(1)).scalar()
    return reason or "the database refused the event"
