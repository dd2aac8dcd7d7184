"""Persist stage: store a batch, retrying while the database is away, isolating poison.

- Transient failures (connection lost, database restarting, locked) are retried with
  exponential backoff for as long as it takes; nothing is acknowledged meanwhile, so the
  broker keeps every message and the ingester resumes by itself when the database returns.
- A data error that the database raises for one event (an integrity or data error) must not
  take the rest of its batch down: the batch is retried one event at a time and the event
  that fails goes to the dead letters with the database's reason.
"""

import threading
from collections.abc import Callable

import structlog
from sqlalchemy import exc

from dronelog.ingest.delivery import Accepted, Rejected, RejectReason
from dronelog.storage.writer import BatchWriter, WriteResult

log = structlog.get_logger("dronelog.ingest.persist")

_DATA_ERRORS = (exc.IntegrityError, exc.DataError)


class Persister:
    def __init__(self, writer: BatchWriter, max_delay_s: float = 30.0, first_delay_s: float = 0.5,
                 on_retry: Callable[[Exception], None] | None = None) -> None:
        self.writer = writer
        self.max_delay_s = max_delay_s
        self.first_delay_s = first_delay_s
        self.on_retry = on_retry

    def store(self, accepted: list[Accepted], rejected: list[Rejected],
              give_up: threading.Event | None = None) -> WriteResult | None:
        """The stored result, or None if `give_up` was set while the database was away."""
        give_up = give_up or threading.Event()
        delay = self.first_delay_s
        while True:
            try:
                return self._store_isolating(accepted, rejected)
            except Exception as error:  # anything else is retried, never lost
                log.warning("storage unavailable; holding the batch and retrying",
                            error=_short(error), retry_in_s=delay, events=len(accepted))
                if self.on_retry:
                    self.on_retry(error)
                if give_up.wait(delay):
                    return None
                delay = min(delay * 2, self.max_delay_s)

    def _store_isolating(self, accepted: list[Accepted], rejected: list[Rejected]) -> WriteResult:
        try:
            return self.writer.write(accepted, rejected)
        except _DATA_ERRORS as error:
            log.warning("batch refused by the database; storing event by event",
                        error=_short(error), events=len(accepted))
        total = WriteResult()
        poisoned = list(rejected)
        for item in accepted:
            try:
                _add(total, self.writer.write([item], []))
            except _DATA_ERRORS as error:
                poisoned.append(Rejected(item.delivery, RejectReason.STORAGE_REJECTED,
                                         f"the database refused the event: {_short(error)}",
                                         str(item.event.event_id)))
        for item in poisoned:
            try:
                _add(total, self.writer.write([], [item]))
            except _DATA_ERRORS as error:
                log.error("dead letter refused by the database; dropped",
                          topic=item.delivery.topic, reason=item.reason, error=_short(error))
        return total


def _add(total: WriteResult, part: WriteResult) -> None:
    for table, count in part.stored.items():
        total.stored[table] = total.stored.get(table, 0) + count
    total.duplicates += part.duplicates
    total.dead_lettered += part.dead_lettered
    total.new_ids |= part.new_ids
    total.duplicate_ids |= part.duplicate_ids
    total.conflicting_ids |= part.conflicting_ids


def _short(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0][:300] if str(original).strip() else repr(error)
