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

`ReceiptHold` lets a sender's receipts wait up to `hold_s` (DRONELOG_RECEIPT_HOLD_S) so that one
message tells it about several batches: at a telemetry report a second per drone, a batch holds
one event per drone, and a receipt per batch would double the messages the ingester handles
(docs/benchmarks.md). A held receipt still only names committed events; what it costs is that
the batch may be acknowledged before the receipt goes out, so an ingester that dies in between
loses the receipt: the device's outbox then sends the event again and is told `duplicate`.
With `hold_s` 0 every receipt goes out with its batch, before the acknowledgements.
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


class ReceiptHold:
    """Receipts waiting to go out, merged per topic; a topic's receipt is due when its oldest
    waiting outcome is `hold_s` old or it names `max_events` events. Times are the caller's
    monotonic seconds."""

    def __init__(self, hold_s: float, max_events: int = MAX_EVENTS_PER_RECEIPT,
                 new_id: Callable[[], UUID] = uuid4) -> None:
        self.hold_s = hold_s
        self.max_events = max_events
        self._new_id = new_id
        self._waiting: dict[str, tuple[float, ReceiptSender, dict[UUID, EventOutcome]]] = {}

    def add(self, receipts: list[OutgoingReceipt], now: float) -> None:
        for outgoing in receipts:
            _, _, told = self._waiting.setdefault(
                outgoing.topic, (now, outgoing.receipt.sender, {}))
            for outcome in outgoing.receipt.events:
                held = told.get(outcome.event_id)
                if held is None or _RANK[outcome.outcome] > _RANK[held.outcome]:
                    told[outcome.event_id] = outcome

    def due(self, now: float, issued_at: datetime, everything: bool = False
            ) -> list[OutgoingReceipt]:
        """The receipts to publish now (all of them with `everything`, as at a stop)."""
        ready = [topic for topic, (since, _, told) in self._waiting.items()
                 if everything or now - since >= self.hold_s or len(told) >= self.max_events]
        receipts = []
        for topic in ready:
            _, sender, told = self._waiting.pop(topic)
            events = list(told.values())
            for start in range(0, len(events), self.max_events):
                # Parts of receipts already validated: nothing to check again.
                receipts.append(OutgoingReceipt(topic, Receipt.model_construct(
                    schema_version=1, receipt_id=self._new_id(), issued_at=issued_at,
                    sender=sender, events=events[start:start + self.max_events])))
        return receipts

    def waiting(self) -> int:
        return len(self._waiting)


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
