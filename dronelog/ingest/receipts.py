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

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
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

MAX_EVENTS_PER_RECEIPT = min(500, RECEIPT_MAX_EVENTS)
_STORAGE_REFUSED = "the database refused the event (see the dead letters)"
# Stored and duplicate outcomes, once per event at full rate, are written straight into their
# JSON form (valid by construction: a UUID and a fixed word); refusals, rare and carrying a
# reason, go through the contract's EventOutcome. tests/test_receipts.py checks every receipt
# built here against the Receipt model and the published JSON Schema.
_STORED = '{"event_id":"%s","outcome":"stored"}'
_DUPLICATE = '{"event_id":"%s","outcome":"duplicate"}'
_RECEIPT = '{"schema_version":1,"receipt_id":"%s","issued_at":%s,"sender":%s,"events":[%s]}'


# What a receipt says of one event: its entry in the receipt's `events`, as JSON, encoded once,
# kept under the event id's text. Strings only: the garbage collector never walks the outcomes
# held for thousands of senders (with UUID keys and tuples it did, at every collection, and
# that cost the ingester more than building the receipts). For one event id the better
# outcome is told, what is in the database winning: stored, then duplicate, then refused.
Told = dict[str, str]


def _rank(entry: str) -> int:
    if '"outcome":"stored"' in entry:
        return 2
    return 1 if '"outcome":"duplicate"' in entry else 0


@dataclass(frozen=True)
class OutgoingReceipt:
    topic: str
    payload: bytes  # the Receipt, as JSON
    events: int  # how many events it names

    @property
    def receipt(self) -> Receipt:
        """The receipt read back through the contract's model (tests, inspection)."""
        return Receipt.model_validate_json(self.payload)


def build_receipts(sorted_out: Triage, result: WriteResult, layout: TopicLayout,
                   issued_at: datetime, new_id: Callable[[], UUID] = uuid4,
                   max_events: int = MAX_EVENTS_PER_RECEIPT) -> list[OutgoingReceipt]:
    """The receipts for one stored batch: one per sender (more if it has more than
    `max_events` events in the batch), in the order senders first appear."""
    return receipts_for(sort_outcomes(sorted_out, result, layout), layout, issued_at, new_id,
                        max_events)


Outcomes = dict[Sender, Told]


def sort_outcomes(sorted_out: Triage, result: WriteResult, layout: TopicLayout) -> Outcomes:
    """What became of each event of a stored batch, per sender, each event id once."""
    outcomes: Outcomes = {}
    new_ids, duplicate_ids = result.new_ids, result.duplicate_ids
    for accepted in sorted_out.accepted:  # inline: it runs once per event at full rate
        sender = accepted.sender
        if sender is None or sender.account is not None or sender.kind is SenderKind.STAFF:
            continue
        event_id = accepted.event.event_id
        key = str(event_id)
        if event_id in new_ids:
            entry = _STORED % key
        elif event_id in duplicate_ids:
            entry = _DUPLICATE % key
        else:
            entry = _refused(event_id, RejectReason.STORAGE_REJECTED.value, _STORAGE_REFUSED)
        waiting = outcomes.get(sender)
        if waiting is None:
            outcomes[sender] = {key: entry}
        else:
            _merge(waiting, key, entry)
    for rejected in sorted_out.rejected:
        event_id = _uuid(rejected.event_id)
        if event_id is None:
            continue
        sender = _topic_sender(rejected.delivery, layout)
        if sender is None or sender.account is not None or sender.kind is SenderKind.STAFF:
            continue
        _merge(outcomes.setdefault(sender, {}), str(event_id),
               _refused(event_id, rejected.reason_code.value, _shortened(rejected.reason)))
    return outcomes


def receipts_for(outcomes: Outcomes, layout: TopicLayout, issued_at: datetime,
                 new_id: Callable[[], UUID] = uuid4,
                 max_events: int = MAX_EVENTS_PER_RECEIPT) -> list[OutgoingReceipt]:
    receipts = []
    stamp = json.dumps(issued_at.isoformat())
    for sender, told in outcomes.items():
        who = _sender_json(sender.kind, sender.id)
        if who is None:
            continue  # a refused message on a topic level that is no contract id: nobody to tell
        topic = (layout.drone_receipts(sender.id) if sender.kind is SenderKind.DRONE
                 else layout.site_receipts(sender.id))
        entries = list(told.values())
        for start in range(0, len(entries), max_events):
            part = entries[start:start + max_events]
            payload = _RECEIPT % (new_id(), stamp, who, ",".join(part))
            receipts.append(OutgoingReceipt(topic, payload.encode(), len(part)))
    return receipts


def _refused(event_id: UUID, reason_code: str, reason: str) -> str:
    outcome = EventOutcome(event_id=event_id, outcome="refused", reason_code=reason_code,
                           reason=reason)
    return outcome.model_dump_json(exclude_none=True)


@lru_cache(maxsize=65_536)
def _sender_json(kind: SenderKind, sender_id: str) -> str | None:
    """The receipt's `sender`, checked against the contract once per sender."""
    try:
        return ReceiptSender(kind=kind.value, id=sender_id).model_dump_json()
    except ValidationError:
        return None


def _merge(told: Told, key: str, entry: str) -> None:
    held = told.get(key)
    if held is None or _rank(entry) > _rank(held):
        told[key] = entry


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
        self._waiting: dict[Sender, tuple[float, Told]] = {}
        self._full: set[Sender] = set()

    def add(self, outcomes: Outcomes, now: float) -> None:
        for sender, told in outcomes.items():
            held = self._waiting.get(sender)
            if held is None:
                self._waiting[sender] = (now, waiting := dict(told))
            elif (waiting := held[1]).keys().isdisjoint(told):
                waiting.update(told)  # the usual case, merged in C: no event told twice
            else:
                for key, entry in told.items():
                    _merge(waiting, key, entry)
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
