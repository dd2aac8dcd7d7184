"""The flight plan of an assignment, sent as a ground station would send it: a `planned`
flight event (dronelog/contract/messages.py, FlightPlanned) on the drone's flight topic,
triaged and stored by the same stages as every other event (dronelog/ingest/triage.py,
persist.py), with the dispatcher who assigned it as the sender, as the HTTP custody entrance
does. The flight event table keeps no sender; the assignment is attributed in the request's
change log and the audit log.

The plan is stored in its own transaction before the request's row changes: if the request
cannot be saved afterwards, a planned flight without a request remains (the planned event is
a fact, and the dispatcher sees the drone busy), never a request pointing at no plan."""

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

from dronelog.clock import Clock
from dronelog.domain.custody_rules import Sender
from dronelog.ingest.delivery import Delivery
from dronelog.ingest.persist import Persister
from dronelog.ingest.triage import TriageRules, triage
from dronelog.storage.writer import BatchWriter

STORE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Plan:
    drone_id: str
    flight_id: str
    origin_site_id: str
    destination_site_id: str
    departure: datetime


class PlanRefused(Exception):
    """The contract or the database refused the plan (the message says why)."""


def send_plan(engine, rules: TriageRules, clock: Clock, sender: Sender, plan: Plan) -> str:
    """Store the `planned` event of `plan`; its event id. Raises PlanRefused."""
    return _send(engine, rules, clock, sender, plan.drone_id, {
        "kind": "planned", "flight_id": plan.flight_id, "origin_site_id": plan.origin_site_id,
        "destination_site_id": plan.destination_site_id,
        "planned_departure": plan.departure.isoformat()})


def send_abort(engine, rules: TriageRules, clock: Clock, sender: Sender, drone_id: str,
               flight_id: str, reason: str) -> str:
    """Store an `aborted` event for a planned flight the request no longer needs (reassigned,
    handed to a courier, cancelled); its event id. Raises PlanRefused."""
    return _send(engine, rules, clock, sender, drone_id,
                 {"kind": "aborted", "flight_id": flight_id, "reason": reason[:500]})


def _send(engine, rules: TriageRules, clock: Clock, sender: Sender, drone_id: str,
          fields: dict) -> str:
    now = clock.now()
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "event_time": now.isoformat(),
             "drone_id": drone_id, **fields}
    delivery = Delivery(rules.layout.flight(drone_id), json.dumps(event).encode(), now,
                        sender=sender)
    sorted_out = triage([delivery], rules, clock)
    if sorted_out.rejected:
        raise PlanRefused(sorted_out.rejected[0].reason)
    give_up = threading.Event()
    timer = threading.Timer(STORE_TIMEOUT_S, give_up.set)
    timer.start()
    try:
        result = Persister(BatchWriter(engine, clock)).store(sorted_out.accepted, [], give_up)
    finally:
        timer.cancel()
    if result is None or result.stored.get("flight_event", 0) != 1:
        raise PlanRefused("the flight event could not be stored; try again")
    return event["event_id"]
