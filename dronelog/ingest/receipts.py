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
    return receipts_for(sort_outcomes(sorted_out, result, layout), layout, issued_at, new_id,
                        max_events)


Outcomes = dict[Sender, dict[UUID, EventOutcome]]


def sort_outcomes(sorted_out: Triage, result: WriteResult, layout: TopicLayout) -> Outcomes:
    """What became of each event of a stored batch, per sender, each event id once."""
    outcomes: Outcomes = {}
    for accepted in sorted_out.accepted:
        event_id = accepted.event.event_id
        if event_id in result.new_ids:
            # Valid by construction: built without validation, once per event at full rate.
            outcome = EventOutcome.model_construct(event_id=event_id, outcome="stored")
        elif event_id in result.duplicate_ids:
            outcome = EventOutcome.model_construct(event_id=event_id, outcome="duplicate")
        else:
            outcome = EventOutcome(event_id=event_id, outcome="refused",
                                   reason_code=RejectReason.STORAGE_REJECTED.value,
                                   reason=_STORAGE_REFUSED)
        _tell(outcomes, accepted.sender, outcome)
    for rejected in sorted_out.rejected:
        event_id = _uuid(rejected.event_id)
        if event_id is None:
            continue
        _tell(outcomes, _topic_sender(rejected.delivery, layout),
              EventOutcome(event_id=event_id, outcome="refused",
                           reason_code=rejected.reason_code.value,
                           reason=_shortened(rejected.reason)))
    return outcomes


def receipts_for(outcomes: Outcomes, layout: TopicLayout, issued_at: datetime,
                 new_id: Callable[[], UUID] = uuid4,
                 max_events: int = MAX_EVENTS_PER_RECEIPT) -> list[OutgoingReceipt]:
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
            # Its parts are valid already (the sender just checked, the outcomes built from
            # stored ids and dead letters): built without validating them again.
            receipts.append(OutgoingReceipt(topic, Receipt.model_construct(
                schema_version=1, receipt_id=new_id(), issued_at=issued_at, sender=who,
                events=events[start:start + max_events])))
    return receipts


def _tell(outcomes: Outcomes, sender: Sender | None, outcome: EventOutcome) -> None:
    if sender is None or sender.account is not None or sender.kind is SenderKind.STAFF:
        return
    told = outcomes.setdefault(sender, {})
    held = told.get(outcome.event_id)
    if held is None or _RANK[outcome.outcome] > _RANK[held.outcome]:
        told[outcome.event_id] = outcome


class ReceiptHold:
    """Outcomes waiting to be told, per sender; a sender's receipt is due when its oldest
    waiting outcome is `hold_s` old or it names `max_events` events. Times are the caller's
    monotonic seconds."""

    def __init__(self, layout: TopicLayout, hold_s: float,
                 max_events: int = MAX_EVENTS_PER_RECEIPT,
                 new_id: Callable[[], UUID] = uuid4) -> None:
        self.layout = layout
        self.hold_s = hold_s
        self.max_events = max_events
        self._new_id = new_id
        # oldest first: a sender enters at its first outcome and leaves when told
        self._waiting: dict[Sender, tuple[float, dict[UUID, EventOutcome]]] = {}
        self._full: set[Sender] = set()

    def add(self, outcomes: Outcomes, now: float) -> None:
        for sender, told in outcomes.items():
            _, waiting = self._waiting.setdefault(sender, (now, {}))
            for event_id, outcome in told.items():
                held = waiting.get(event_id)
                if held is None or _RANK[outcome.outcome] > _RANK[held.outcome]:
                    waiting[event_id] = outcome
            if len(waiting) >= self.max_events:
                self._full.add(sender)

    def due(self, now: float, issued_at: datetime, everything: bool = False
            ) -> list[OutgoingReceipt]:
        """The receipts to publish now (all of them with `everything`, as at a stop)."""
        ready: dict[Sender, None] = {}
        for sender, (since, _) in self._waiting.items():
            if not everything and now - since < self.hold_s:
                break
            ready[sender] = None
        for sender in self._full:
            ready.setdefault(sender)
        self._full.clear()
        told = {sender: self._waiting.pop(sender)[1] for sender in ready}
        return receipts_for(told, self.layout, issued_at, self._new_id, self.max_events)

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
