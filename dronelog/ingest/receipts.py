"""Receipts: what became of each sender's events in a stored batch (docs/contract.md).

A pure function of the batch's triage and the writer's result: which events were new, which
were already stored, and which were refused (with the dead letter's reason). The service
publishes what this returns after the batch's transaction has committed.

- The sender is the device the topic belongs to (`sender_for`): a drone on its own topics, a
  site's scanners on their site's. Deliveries the API authenticated (HTTP) get their answer in
  the HTTP response, not here.
- An accepted event the writer reports neither new nor already stored was isolated and refused
  by the database (persist.py dead-letters it as `storage_rejected`).
- A refusal without an event id (oversized, not JSON, no UUID in `event_id`) or on a topic
  that names no sender (unknown topic) gets no receipt: nothing to name, nobody to tell.
- Each event id is listed once per sender: if two copies in one batch fared differently (one
  stored, one refused), the better outcome is told, since that is what the database holds.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from pydantic import ValidationError

from dronelog.contract.messages import (
    RECEIPT_MAX_EVENTS,
    RECEIPT_MAX_REASON_CHARS,
    EventOutcome,
    Receipt,
    ReceiptSender,
)
from dronelog.contract.topics import TopicLayout
from dronelog.domain.custody_rules import Sender, SenderKind
from dronelog.ingest.delivery import Delivery, RejectReason, sender_for
from dronelog.ingest.triage import Triage
from dronelog.storage.writer import WriteResult

# For one event id, the outcome the receipt tells: what is in the database wins.
_RANK = {"stored": 2, "duplicate": 1, "refused": 0}
MAX_EVENTS_PER_RECEIPT = min(500, RECEIPT_MAX_EVENTS)
_STORAGE_REFUSED = "the database refused the event (see the dead letters)"


@dataclass(frozen=True)
class OutgoingReceipt:
    topic: str
    receipt: Receipt

    def payload(self) -> bytes:
        return self.receipt.model_dump_json(exclude_none=True).encode()


def build_receipts(sorted_out: Triage, result: WriteResult, layout: TopicLayout,
                   issued_at: datetime, new_id: Callable[[], UUID] = uuid4,
                   max_events: int = MAX_EVENTS_PER_RECEIPT) -> list[OutgoingReceipt]:
    """The receipts for one stored batch: one per sender (more if it has more than
    `max_events` events in the batch), in the order senders first appear."""
    outcomes: dict[Sender, dict[UUID, EventOutcome]] = {}

    def tell(sender: Sender | None, outcome: EventOutcome) -> None:
        if sender is None or sender.account is not None or sender.kind is SenderKind.STAFF:
            return
        told = outcomes.setdefault(sender, {})
        held = told.get(outcome.event_id)
        if held is None or _RANK[outcome.outcome] > _RANK[held.outcome]:
            told[outcome.event_id] = outcome

    for accepted in sorted_out.accepted:
        event_id = accepted.event.event_id
        if event_id in result.new_ids:
            outcome = EventOutcome(event_id=event_id, outcome="stored")
        elif event_id in result.duplicate_ids:
            outcome = EventOutcome(event_id=event_id, outcome="duplicate")
        else:
            outcome = EventOutcome(event_id=event_id, outcome="refused",
                                   reason_code=RejectReason.STORAGE_REJECTED.value,
                                   reason=_STORAGE_REFUSED)
        tell(accepted.sender, outcome)
    for rejected in sorted_out.rejected:
        event_id = _uuid(rejected.event_id)
        if event_id is None:
            continue
        tell(_topic_sender(rejected.delivery, layout),
             EventOutcome(event_id=event_id, outcome="refused",
                          reason_code=rejected.reason_code.value,
                          reason=_shortened(rejected.reason)))

    receipts = []
    for sender, told in outcomes.items():
        try:
            who = ReceiptSender(kind=sender.kind.value, id=sender.id)
        except ValidationError:
            continue  # a refused message on a topic level that is no contract id: nobody to tell
        topic = (layout.drone_receipts(sender.id) if sender.kind is SenderKind.DRONE
                 else layout.site_receipts(sender.id))
        events = list(told.values())
        for start in range(0, len(events), max_events):
            receipts.append(OutgoingReceipt(topic, Receipt(
                schema_version=1, receipt_id=new_id(), issued_at=issued_at, sender=who,
                events=events[start:start + max_events])))
    return receipts


def _topic_sender(delivery: Delivery, layout: TopicLayout) -> Sender | None:
    if delivery.sender is not None:
        return delivery.sender
    address = layout.parse(delivery.topic)
    return sender_for(address) if address is not None else None


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _shortened(reason: str) -> str:
    if len(reason) <= RECEIPT_MAX_REASON_CHARS:
        return reason
    return reason[:RECEIPT_MAX_REASON_CHARS - 3] + "..."
