"""The ingester's main loop: take a batch, triage it, persist it, publish the receipts, then
acknowledge it.

Batches close by size (`batch_size`) or by time (`batch_interval_s`), whichever comes first.
A stop request (SIGTERM) lets the current batch finish, stores and acknowledges what has
been received, and disconnects; what cannot be stored in time is left unacknowledged for the
broker to redeliver.

Receipts (docs/contract.md) name only events of committed batches. They go out on the
ingester's connection, or on one of their own (DRONELOG_RECEIPTS_MQTT_URL,
receipt_connection.py). With DRONELOG_RECEIPT_HOLD_S 0 they are handed to the MQTT client after
the batch's transaction commits and before its acknowledgements; with a hold (the default), a
sender's receipt waits up to that long to tell it about several batches (receipts.ReceiptHold),
and goes out at the first batch or idle turn after. An ingester that dies before a receipt went
out loses it: the sender's outbox sends the event again and is told `duplicate`. A receipt that
cannot be published is logged and counted, never retried, and never holds up the batch.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import Engine

from dronelog.clock import Clock, SystemClock
from dronelog.config import Settings
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Delivery
from dronelog.ingest.mqtt_source import BrokerAddress, MqttSource
from dronelog.ingest.persist import Persister
from dronelog.ingest.receipt_connection import ReceiptConnection
from dronelog.ingest.receipts import ReceiptHold, sort_outcomes
from dronelog.ingest.triage import Triage, TriageRules, triage
from dronelog.storage.writer import BatchWriter, WriteResult

log = structlog.get_logger("dronelog.ingest")


@dataclass
class IngestStats:
    received: int = 0
    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    dead_lettered: Counter = field(default_factory=Counter)
    acked: int = 0
    batches: int = 0
    storage_retries: int = 0
    last_batch_seconds: float = 0.0
    receipts_published: int = 0
    receipts_failed: int = 0


class Ingester:
    def __init__(self, settings: Settings, engine: Engine, clock: Clock | None = None,
                 source: MqttSource | None = None, progress_every_s: float = 10.0,
                 receipts: bool | None = None, receipt_publisher=None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        layout = TopicLayout(settings.topic_prefix)
        self.rules = TriageRules(
            layout=layout,
            max_payload_bytes=settings.max_payload_bytes,
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            max_age=timedelta(seconds=settings.max_event_age_s),
        )
        self.source = source or MqttSource(
            BrokerAddress.parse(settings.mqtt_url), settings.mqtt_client_id,
            layout.subscriptions(settings.shared_group), self.clock.now,
            receive_maximum=settings.receive_maximum, queue_limit=settings.queue_limit,
            protocol=settings.mqtt_protocol)
        self.stop_requested = threading.Event()
        self._give_up = threading.Event()
        self.stats = IngestStats()
        self.persister = Persister(BatchWriter(engine), max_delay_s=settings.retry_max_delay_s,
                                   on_retry=self._count_retry)
        self._progress_every_s = progress_every_s
        self.receipts = settings.receipts if receipts is None else receipts
        self._receipt_hold = ReceiptHold(layout, settings.receipt_hold_s)
        self.receipt_connection = None
        if receipt_publisher is None and self.receipts and settings.receipts_mqtt_url:
            self.receipt_connection = ReceiptConnection(
                BrokerAddress.parse(settings.receipts_mqtt_url),
                f"{settings.mqtt_client_id}-receipts", protocol=settings.mqtt_protocol)
        # anything with publish(topic, payload) -> bool
        self.receipt_publisher = receipt_publisher or (
            self.receipt_connection or self.source).publisher

    def request_stop(self, grace_s: float = 30.0) -> None:
        """Finish up: store and acknowledge what was received, giving up on storage (and
        leaving the rest to the broker) if the database stays away for `grace_s`."""
        if not self.stop_requested.is_set():
            self.stop_requested.set()
            timer = threading.Timer(grace_s, self._give_up.set)
            timer.daemon = True
            timer.start()

    def run(self) -> IngestStats:
        if self.receipt_connection:
            self.receipt_connection.start()
        self.source.start()
        log.info("ingester started", broker=f"{self.source.broker.host}:{self.source.broker.port}",
                 prefix=self.rules.layout.prefix, batch_size=self.settings.batch_size,
                 batch_interval_s=self.settings.batch_interval_s)
        next_progress = time.monotonic() + self._progress_every_s
        try:
            while not self.stop_requested.is_set():
                batch = self.source.next_batch(self.settings.batch_size,
                                               self.settings.batch_interval_s)
                if batch:
                    self.process(batch)
                elif self.receipts:
                    self._publish_due_receipts()
                if time.monotonic() >= next_progress:
                    self._log_progress()
                    next_progress = time.monotonic() + self._progress_every_s
            self._flush()
            if self.receipts:
                self._publish_due_receipts(everything=True)
        finally:
            try:
                self.source.stop()
            finally:
                if self.receipt_connection:
                    self.receipt_connection.stop()
            self._log_progress()
            log.info("ingester stopped")
        return self.stats

    def process(self, batch: list[Delivery]) -> bool:
        """Store one batch and acknowledge it; False if it could not be stored."""
        started = time.perf_counter()
        sorted_out = triage(batch, self.rules, self.clock)
        result = self.persister.store(sorted_out.accepted, sorted_out.rejected, self._give_up)
        if result is None:
            return False
        if self.receipts:
            self._publish_receipts(sorted_out, result)
        self.stats.acked += self.source.acknowledge(batch)
        self.stats.received += len(batch)
        self.stats.batches += 1
        self.stats.stored.update(result.stored)
        self.stats.duplicates += result.duplicates + sorted_out.repeats
        for rejected in sorted_out.rejected:
            self.stats.dead_lettered[rejected.reason_code.value] += 1
            log.warning("dead-lettered", topic=rejected.delivery.topic,
                        reason_code=rejected.reason_code.value, reason=rejected.reason)
        self.stats.last_batch_seconds = time.perf_counter() - started
        return True

    def _publish_receipts(self, sorted_out: Triage, result: WriteResult) -> None:
        """Tell each sender what became of its events (now, or once held for a while); never
        raises, never waits."""
        try:
            outcomes = sort_outcomes(sorted_out, result, self.rules.layout)
            self._receipt_hold.add(outcomes, time.monotonic())
        except Exception as error:  # a receipt must never cost the batch its acknowledgement
            self.stats.receipts_failed += 1
            log.error("receipts could not be built", error=repr(error)[:300])
            return
        self._publish_due_receipts()

    def _publish_due_receipts(self, everything: bool = False) -> None:
        try:
            receipts = self._receipt_hold.due(time.monotonic(), self.clock.now(), everything)
        except Exception as error:
            self.stats.receipts_failed += 1
            log.error("receipts could not be built", error=repr(error)[:300])
            return
        # Failures are told in one line per call, not one per receipt: when paho's outbox is
        # full a whole fleet's receipts fail together, and thousands of lines would cost the
        # ingester exactly when it has least to spare.
        failed: list = []
        first_error = None
        for receipt in receipts:
            try:
                published = self.receipt_publisher.publish(receipt.topic, receipt.payload)
            except Exception as error:
                published = False
                first_error = first_error or error
            if published:
                self.stats.receipts_published += 1
            else:
                failed.append(receipt)
        if failed:
            self.stats.receipts_failed += len(failed)
            log.warning("receipts not published", receipts=len(failed),
                        events=sum(receipt.events for receipt in failed),
                        first_topic=failed[0].topic,
                        error=repr(first_error)[:300] if first_error
                        else "refused by the MQTT client (its outbox is full)")

    def _flush(self) -> None:
        """Store and acknowledge what was received before the stop."""
        held = self.source.drain()
        if held:
            log.info("stopping: storing what was received", messages=len(held))
        for start in range(0, len(held), self.settings.batch_size):
            if not self.process(held[start:start + self.settings.batch_size]):
                log.warning("stopping without storing the rest; the broker will redeliver",
                            messages=len(held) - start)
                return

    def _count_retry(self, _error: Exception) -> None:
        self.stats.storage_retries += 1

    def _log_progress(self) -> None:
        stats = self.stats
        log.info("ingest progress", received=stats.received, stored=dict(stats.stored),
                 duplicates=stats.duplicates, dead_lettered=dict(stats.dead_lettered),
                 acked=stats.acked, batches=stats.batches, storage_retries=stats.storage_retries,
                 last_batch_ms=round(stats.last_batch_seconds * 1000, 1),
                 receipts_published=stats.receipts_published,
                 receipts_failed=stats.receipts_failed,
                 receipts_refused_by_broker=getattr(self.receipt_publisher, "refused", 0),
                 receipts_waiting=getattr(self.receipt_publisher, "waiting", 0),
                 connected=self.source.connected,
                 **({"receipts_connected": self.receipt_connection.connected}
                    if self.receipt_connection else {}))
