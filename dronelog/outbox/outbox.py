"""A device's outbox: every event it sends is kept until a receipt names it (docs/contract.md,
"What the ingester guarantees"), and sent again, with the same event id, when its receipt is
late. The ingester stores each event id once, so sending again is always safe.

- `add` keeps an event before it is published. An event id already held stays held once.
- `settle` takes a receipt: `stored` and `duplicate` events are delivered (safe in the
  database), `refused` ones are dropped from the outbox and counted, since sending them again
  cannot help; the reason is logged for the device maker.
- `due` names what was sent longer than `resend_after_s` ago without a receipt, and marks it
  sent again; `held_for` names everything a reconnected client must send again.
- Bounds: at most `max_events` events and `max_bytes` of payload. At the bound `add` waits up
  to its `wait_s` for receipts to make room (back-pressure on the sender), then raises
  `OutboxFull`. Nothing held is ever dropped to make room.
- `report` says what it holds: events, bytes, the oldest one's age, and what it has
  delivered, seen refused, sent again and refused to take.

Time comes from a clock (dronelog/clock.py); the outbox never sleeps but in `add`'s wait and
`wait_empty`, which wait for receipts, not for time to pass.
"""

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from uuid import UUID

import structlog

from dronelog.clock import Clock, SystemClock
from dronelog.contract.messages import Receipt
from dronelog.outbox.stores import Held, MemoryStore, SqliteStore

log = structlog.get_logger("dronelog.outbox")


class OutboxFull(Exception):
    """The outbox is at its bound and no receipt made room in time: the event was not taken
    (and not published). The caller decides: wait longer, or tell its operator."""


@dataclass(frozen=True)
class OutboxReport:
    held: int
    held_bytes: int
    oldest_age_s: float | None
    delivered: int
    refused: int
    resent: int
    refused_full: int

    def fields(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def event_id_of(payload: bytes) -> UUID | None:
    """The contract event id in a payload, or None if it has none (the ingester could not
    name such a message in a receipt, so an outbox cannot wait for one)."""
    try:
        value = json.loads(payload).get("event_id")
        return UUID(value) if isinstance(value, str) else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


class Outbox:
    def __init__(self, store: MemoryStore | SqliteStore | None = None,
                 clock: Clock | None = None, resend_after_s: float = 30.0,
                 max_events: int = 100_000, max_bytes: int = 256 * 2**20) -> None:
        self.store = store or MemoryStore()
        self.clock = clock or SystemClock()
        self.resend_after_s = resend_after_s
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.delivered = 0
        self.refused = 0
        self.resent = 0
        self.refused_full = 0
        self._changed = threading.Condition()

    def add(self, event_id: UUID, topic: str, payload: bytes, retain: bool = False,
            wait_s: float = 0.0) -> bool:
        """Keep an event that is about to be published; False if it was already held (it is
        still published again). Raises OutboxFull at the bound after `wait_s`."""
        with self._changed:
            if self.store.get(event_id) is not None:
                return False
            if not self._changed.wait_for(lambda: self._has_room(len(payload)), wait_s):
                self.refused_full += 1
                raise OutboxFull(f"outbox full: {self.store.count()} events, "
                                 f"{self.store.payload_bytes()} bytes held")
            now = self._now()
            self.store.put(Held(event_id, topic, payload, retain, added_at=now, sent_at=now))
            return True

    def settle(self, receipt: Receipt) -> int:
        """Drop every event the receipt names; returns how many were held."""
        settled = 0
        with self._changed:
            for outcome in receipt.events:
                held = self.store.remove(outcome.event_id)
                if held is None:
                    continue  # a second receipt for an event sent twice, or not ours
                settled += 1
                if outcome.outcome == "refused":
                    self.refused += 1
                    log.warning("event refused by dronelog", event_id=str(outcome.event_id),
                                topic=held.topic, reason_code=outcome.reason_code,
                                reason=outcome.reason)
                else:
                    self.delivered += 1
            if settled:
                self._changed.notify_all()
        return settled

    def due(self, sendable: Callable[[Held], bool] = lambda _held: True) -> list[Held]:
        """Events whose receipt is `resend_after_s` late, among those `sendable` accepts;
        marked as sent again now."""
        now = self._now()
        with self._changed:
            late = [held for held in self.store.sent_before(now - self.resend_after_s)
                    if sendable(held)]
            return self._mark_resent(late, now)

    def held_for(self, topics: Callable[[str], bool]) -> list[Held]:
        """Everything held on topics `topics` accepts (a client that reconnected sends them
        all again: the broker may have lost what it had acknowledged); marked as sent."""
        now = self._now()
        with self._changed:
            return self._mark_resent([h for h in self.store.all() if topics(h.topic)], now)

    def topics(self) -> set[str]:
        with self._changed:
            return {held.topic for held in self.store.all()}

    def report(self) -> OutboxReport:
        with self._changed:
            oldest = self.store.oldest_added_at()
            return OutboxReport(
                held=self.store.count(), held_bytes=self.store.payload_bytes(),
                oldest_age_s=None if oldest is None else round(self._now() - oldest, 1),
                delivered=self.delivered, refused=self.refused, resent=self.resent,
                refused_full=self.refused_full)

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every held event has its receipt."""
        with self._changed:
            return self._changed.wait_for(lambda: self.store.count() == 0, timeout)

    def close(self) -> None:
        with self._changed:
            self.store.close()

    def _has_room(self, size: int) -> bool:
        return (self.store.count() < self.max_events
                and self.store.payload_bytes() + size <= self.max_bytes)

    def _mark_resent(self, events: Iterable[Held], now: float) -> list[Held]:
        events = list(events)
        if events:
            self.store.mark_sent([held.event_id for held in events], now)
            self.resent += len(events)
        return events

    def _now(self) -> float:
        return self.clock.now().timestamp()
