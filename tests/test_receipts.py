"""Receipts (docs/contract.md, "Receipts"): what became of each sender's events.

Three layers: the pure receipt building (triage and the writer's result in, receipts out), the
writer telling new from already stored events on SQLite and PostgreSQL, and the real ingester
behind a real broker sending a device its receipts.
"""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import get_args
from uuid import UUID

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import structlog.testing
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract.examples import EXAMPLES, RECEIPT_EXAMPLE
from dronelog.contract.messages import EventOutcome, Receipt, ReceiptReasonCode
from dronelog.contract.schemas import render_schemas
from dronelog.contract.topics import TopicLayout
from dronelog.domain.custody_rules import Sender, SenderKind
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.mqtt_source import BrokerAddress, MqttSource
from dronelog.ingest.receipt_connection import ReceiptConnection
from dronelog.ingest.receipts import ReceiptHold, build_receipts
from dronelog.ingest.service import Ingester
from dronelog.ingest.triage import TriageRules, triage
from dronelog.storage.writer import TELEMETRY, BatchWriter, WriteResult
from tests.support import IngesterProcess, Publisher

CLOCK = ManualClock(datetime(2026, 11, 22, 0, 30, tzinfo=UTC))  # examples are 08:xx +08:00
LAYOUT = TopicLayout()
RULES = TriageRules(layout=LAYOUT, max_payload_bytes=4096)


def delivery(topic: str, payload) -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery(topic=topic, payload=body, received_at=CLOCK.now())


def example(name: str, **changes) -> dict:
    return {**EXAMPLES[name], "event_id": str(uuid.uuid4()), **changes}


def outcomes(receipts) -> dict[str, dict[str, tuple]]:
    """topic -> event id -> (outcome, reason_code)"""
    told: dict[str, dict[str, tuple]] = {}
    for receipt in receipts:
        for entry in receipt.receipt.events:
            assert str(entry.event_id) not in told.get(receipt.topic, {}), "listed twice"
            told.setdefault(receipt.topic, {})[str(entry.event_id)] = (entry.outcome,
                                                                       entry.reason_code)
    return told


# --- the contract ----------------------------------------------------------------------------


def test_the_receipt_example_is_valid_for_model_and_schema():
    Receipt.model_validate(RECEIPT_EXAMPLE)
    jsonschema.validate(RECEIPT_EXAMPLE, json.loads(render_schemas()["receipt.schema.json"]))


def test_a_receipt_names_every_reason_code_of_the_dead_letters():
    assert set(get_args(ReceiptReasonCode)) == {reason.value for reason in RejectReason}


@pytest.mark.parametrize("entry", [
    {"outcome": "stored", "reason_code": "schema_invalid", "reason": "x"},
    {"outcome": "refused"},
    {"outcome": "refused", "reason_code": "schema_invalid"},
    {"outcome": "kept"},
])
def test_a_reason_comes_with_a_refusal_and_only_then(entry):
    payload = json.loads(json.dumps(RECEIPT_EXAMPLE))
    payload["events"] = [{"event_id": str(uuid.uuid4()), **entry}]
    with pytest.raises(ValueError):
        Receipt.model_validate(payload)


# --- building receipts: a pure function -------------------------------------------------------


def test_each_sender_is_told_what_became_of_each_of_its_events():
    stored, again, bad = example("telemetry"), example("telemetry"), example("telemetry", lat=200)
    spoofed = example("telemetry", drone_id="uav-09")  # on uav-03's topic
    scan = example("custody.received")  # at pdrmyy
    wrong_site = example("custody.collected")  # says cjzxwsy, sent on pdrmyy's topic
    sorted_out = triage([
        delivery(LAYOUT.telemetry("uav-03"), stored),
        delivery(LAYOUT.telemetry("uav-03"), again),
        delivery(LAYOUT.telemetry("uav-03"), bad),
        delivery(LAYOUT.telemetry("uav-03"), spoofed),
        delivery(LAYOUT.telemetry("uav-03"), stored),  # a repeat in the same batch: listed once
        delivery(LAYOUT.telemetry("uav-03"), b"{not json"),  # no event id: no receipt
        delivery(f"{LAYOUT.prefix}/drones/uav-03/selfie", example("telemetry")),  # unknown topic
        delivery(LAYOUT.site_custody("pdrmyy"), scan),
        delivery(LAYOUT.site_custody("pdrmyy"), wrong_site),
    ], RULES, CLOCK)
    written = WriteResult(new_ids={UUID(stored["event_id"]), UUID(scan["event_id"])},
                          duplicate_ids={UUID(again["event_id"])})
    ids = iter([UUID(int=1), UUID(int=2)])
    receipts = build_receipts(sorted_out, written, LAYOUT, CLOCK.now(), new_id=lambda: next(ids))

    assert outcomes(receipts) == {
        "dronelog/v1/receipts/drones/uav-03": {
            stored["event_id"]: ("stored", None),
            again["event_id"]: ("duplicate", None),
            bad["event_id"]: ("refused", "impossible_value"),
            spoofed["event_id"]: ("refused", "identity_mismatch"),
        },
        "dronelog/v1/receipts/sites/pdrmyy": {
            scan["event_id"]: ("stored", None),
            wrong_site["event_id"]: ("refused", "identity_mismatch"),
        },
    }
    drone, site = receipts
    assert (drone.receipt.sender.kind, drone.receipt.sender.id) == ("drone", "uav-03")
    assert (site.receipt.sender.kind, site.receipt.sender.id) == ("site", "pdrmyy")
    assert [r.receipt.receipt_id for r in receipts] == [UUID(int=1), UUID(int=2)]
    assert drone.receipt.issued_at == CLOCK.now()
    refusal = next(e for e in drone.receipt.events if e.outcome == "refused")
    assert "lat" in refusal.reason
    schema = json.loads(render_schemas()["receipt.schema.json"])
    for receipt in receipts:  # what goes on the wire is valid for the published schema
        jsonschema.validate(json.loads(receipt.payload), schema)


def test_an_event_the_database_refused_is_told_as_refused():
    event = example("telemetry")
    sorted_out = triage([delivery(LAYOUT.telemetry("uav-03"), event)], RULES, CLOCK)
    [receipt] = build_receipts(sorted_out, WriteResult(), LAYOUT, CLOCK.now())
    assert outcomes([receipt]) == {LAYOUT.drone_receipts("uav-03"): {
        event["event_id"]: ("refused", "storage_rejected")}}


def test_what_the_database_holds_wins_over_a_refused_copy():
    good = example("telemetry")
    broken = {**good, "lat": 200}  # the same event id, a corrupted copy
    sorted_out = triage([delivery(LAYOUT.telemetry("uav-03"), broken),
                         delivery(LAYOUT.telemetry("uav-03"), good)], RULES, CLOCK)
    receipts = build_receipts(sorted_out, WriteResult(new_ids={UUID(good["event_id"])}),
                              LAYOUT, CLOCK.now())
    assert outcomes(receipts) == {LAYOUT.drone_receipts("uav-03"): {
        good["event_id"]: ("stored", None)}}


def test_many_events_are_split_over_several_receipts_and_nobody_unknown_is_told():
    events = [example("telemetry") for _ in range(7)]
    sorted_out = triage([delivery(LAYOUT.telemetry("uav-03"), e) for e in events]
                        + [delivery("dronelog/v1/drones/a b/telemetry", example("telemetry"))],
                        RULES, CLOCK)
    receipts = build_receipts(sorted_out, WriteResult(new_ids={UUID(e["event_id"])
                                                               for e in events}),
                              LAYOUT, CLOCK.now(), max_events=3)
    assert [len(r.receipt.events) for r in receipts] == [3, 3, 1]
    assert {r.topic for r in receipts} == {LAYOUT.drone_receipts("uav-03")}
    assert {str(e.event_id) for r in receipts for e in r.receipt.events} == {
        e["event_id"] for e in events}


def test_no_events_no_receipts():
    assert build_receipts(triage([], RULES, CLOCK), WriteResult(), LAYOUT, CLOCK.now()) == []


# --- the writer tells new from already stored -------------------------------------------------


def test_the_writer_names_new_and_already_stored_events(engine):
    """On PostgreSQL telemetry goes through COPY (storage/telemetry_copy.py), custody events
    through INSERT ... RETURNING: both must name their new rows."""
    now = datetime.now(UTC)
    fresh = {"event_time": (now - timedelta(minutes=1)).isoformat()}
    first = [example("telemetry", **fresh), example("custody.collected", **fresh)]
    second = [example("telemetry", **fresh), example("custody.packed", **fresh)]
    rules = TriageRules(layout=LAYOUT)
    clock = ManualClock(now)

    def deliveries(payloads):
        return [delivery(LAYOUT.telemetry("uav-03") if "drone_id" in p
                         else LAYOUT.site_custody(p["site_id"]), p) for p in payloads]

    writer = BatchWriter(engine)
    batch = triage(deliveries(first), rules, clock)
    assert batch.rejected == []
    result = writer.write(batch.accepted, [])
    assert result.new_ids == {UUID(p["event_id"]) for p in first}
    assert result.duplicate_ids == set()
    batch = triage(deliveries(first + second), rules, clock)
    result = writer.write(batch.accepted, [])
    assert result.new_ids == {UUID(p["event_id"]) for p in second}
    assert result.duplicate_ids == {UUID(p["event_id"]) for p in first}
    assert result.duplicates == 2


# --- the ingester's loop: receipts after the commit, before the acknowledgements -------------


class RecordingSource:
    """Stands in for MqttSource: records receipts and acknowledgements in the order they come,
    and, at each receipt, whether the events it says are stored are in the database."""

    def __init__(self, engine, fail: Exception | None = None, refuse: bool = False) -> None:
        self.engine, self.fail, self.refuse = engine, fail, refuse
        self.calls: list[str] = []
        self.receipts: list[dict] = []
        self.stored_at_publish: list[bool] = []

    def publish(self, topic: str, payload: bytes) -> bool:
        self.calls.append("receipt")
        if self.fail:
            raise self.fail
        receipt = json.loads(payload)
        self.receipts.append(receipt)
        with self.engine.connect() as connection:
            for entry in receipt["events"]:
                if entry["outcome"] == "stored":
                    self.stored_at_publish.append(connection.execute(
                        select(func.count()).select_from(TELEMETRY)
                        .where(TELEMETRY.c.event_id == UUID(entry["event_id"]))).scalar_one() == 1)
        return not self.refuse

    def acknowledge(self, deliveries) -> int:
        self.calls.append("ack")
        return len(deliveries)


def ingester_over(engine, source: RecordingSource, hold_s: float = 0) -> Ingester:
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1",
                        receipt_hold_s=hold_s)
    return Ingester(settings, engine, ManualClock(datetime.now(UTC)), source=source,
                    receipt_publisher=source)


def recent_telemetry(count: int) -> list[Delivery]:
    at = {"event_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    return [Delivery(LAYOUT.telemetry("uav-03"), json.dumps(example("telemetry", **at)).encode(),
                     datetime.now(UTC), mid=i + 1, qos=1) for i in range(count)]


def test_receipts_go_out_after_the_commit_and_before_the_acknowledgements(engine):
    source = RecordingSource(engine)
    ingester = ingester_over(engine, source)
    batch = recent_telemetry(3)
    assert ingester.process(batch)
    assert ingester.process(batch[:1])  # a redelivery
    assert source.calls == ["receipt", "ack", "receipt", "ack"]
    assert source.stored_at_publish == [True] * 3
    assert [[e["outcome"] for e in r["events"]] for r in source.receipts] == [
        ["stored"] * 3, ["duplicate"]]
    assert (ingester.stats.receipts_published, ingester.stats.receipts_failed) == (2, 0)


def test_held_receipts_tell_a_sender_about_several_batches_in_one_message(engine):
    source = RecordingSource(engine)
    ingester = ingester_over(engine, source, hold_s=60)
    first, second = recent_telemetry(2), recent_telemetry(1)
    assert ingester.process(first)
    assert ingester.process(second)
    assert ingester.process(first[:1])  # a redelivery: already told `stored`, that stays
    assert source.calls == ["ack", "ack", "ack"], "held: the batches do not wait for them"
    ingester._publish_due_receipts(everything=True)  # as at a stop
    assert source.calls[-1] == "receipt"
    [receipt] = source.receipts
    told = {e["event_id"]: e["outcome"] for e in receipt["events"]}
    assert told == {json.loads(d.payload)["event_id"]: "stored" for d in first + second}
    assert len(receipt["events"]) == 3
    Receipt.model_validate(receipt)


class OneBatchSource(RecordingSource):
    """A source that hands out one batch, then nothing, and asks the ingester to stop."""

    broker = BrokerAddress(host="127.0.0.1", port=1)
    connected = True

    def __init__(self, engine, batch: list[Delivery]) -> None:
        super().__init__(engine)
        self.batch, self.ingester = batch, None

    def start(self) -> None:
        pass

    def next_batch(self, _max_size: int, _max_wait_s: float) -> list[Delivery]:
        batch, self.batch = self.batch, []
        if not batch:
            self.ingester.request_stop()
        return batch

    def drain(self) -> list[Delivery]:
        return []

    def stop(self) -> None:
        self.calls.append("stop")


def test_held_receipts_go_out_when_the_ingester_stops(engine):
    batch = recent_telemetry(2)
    source = OneBatchSource(engine, batch)
    source.ingester = ingester_over(engine, source, hold_s=60)
    source.ingester.run()
    assert source.calls == ["ack", "receipt", "stop"]
    assert {e["event_id"] for e in source.receipts[0]["events"]} == {
        json.loads(d.payload)["event_id"] for d in batch}


def test_a_held_receipt_is_due_when_its_oldest_outcome_is_old_enough_or_it_is_full():
    def outcomes(drone: str, count: int = 1) -> dict:
        return {Sender(SenderKind.DRONE, drone): {
            str(event_id): EventOutcome(event_id=event_id, outcome="stored").model_dump_json()
            for event_id in (uuid.uuid4() for _ in range(count))}}

    hold = ReceiptHold(LAYOUT, hold_s=5, max_events=3)
    hold.add(outcomes("uav-01"), now=100.0)
    hold.add(outcomes("uav-02") | outcomes("uav-01"), now=103.0)
    assert hold.due(104.9, CLOCK.now()) == []
    [due] = hold.due(105.0, CLOCK.now())  # uav-01's oldest is 5 s old; uav-02's is not
    assert due.topic == LAYOUT.drone_receipts("uav-01") and len(due.receipt.events) == 2
    assert hold.waiting() == 1
    hold.add(outcomes("uav-02", 2), now=104.0)
    [full] = hold.due(104.0, CLOCK.now())  # three events: full before its time
    assert full.topic == LAYOUT.drone_receipts("uav-02") and len(full.receipt.events) == 3
    assert hold.waiting() == 0
    Receipt.model_validate_json(full.payload)
    hold.add(outcomes("uav-03"), now=200.0)
    assert [r.topic for r in hold.due(200.0, CLOCK.now(), everything=True)] == [
        LAYOUT.drone_receipts("uav-03")]


def test_no_receipt_and_no_acknowledgement_while_the_database_is_away(engine):
    source = RecordingSource(engine)
    ingester = ingester_over(engine, source)
    ingester.persister.writer.write = lambda *_args: (_ for _ in ()).throw(
        OperationalError("INSERT", {}, Exception("database away")))
    ingester._give_up.set()  # as at a stop: give up instead of retrying for ever
    assert not ingester.process(recent_telemetry(2))
    assert source.calls == []


@pytest.mark.parametrize("trouble", ["refused", "raises"])
def test_a_receipt_that_cannot_be_sent_never_holds_up_the_batch(engine, trouble):
    source = RecordingSource(engine, fail=RuntimeError("boom") if trouble == "raises" else None,
                             refuse=trouble == "refused")
    ingester = ingester_over(engine, source)
    assert ingester.process(recent_telemetry(2))
    assert source.calls == ["receipt", "ack"]
    assert (ingester.stats.receipts_published, ingester.stats.receipts_failed) == (0, 1)
    assert ingester.stats.acked == 2


def test_receipts_refused_together_are_told_in_one_line(engine):
    # a full outbox refuses a whole fleet's receipts at once: one warning, not one per drone
    source = RecordingSource(engine, refuse=True)
    ingester = ingester_over(engine, source)
    at = {"event_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    batch = [Delivery(LAYOUT.telemetry(drone),
                      json.dumps(example("telemetry", drone_id=drone, seq=seq, **at)).encode(),
                      datetime.now(UTC), mid=mid, qos=1)
             for mid, (drone, seq) in enumerate(((d, s) for d in ("uav-01", "uav-02", "uav-03")
                                                 for s in (1, 2)), start=1)]
    with structlog.testing.capture_logs() as logs:
        assert ingester.process(batch)
    told = [entry for entry in logs if entry["event"].startswith("receipt")]
    assert told == [{"event": "receipts not published", "log_level": "warning", "receipts": 3,
                     "events": 6, "first_topic": LAYOUT.drone_receipts("uav-01"),
                     "error": "refused by the MQTT client (its outbox is full)"}]
    assert (ingester.stats.receipts_published, ingester.stats.receipts_failed) == (0, 3)


# --- end to end: a device receives its receipts from the real ingester ------------------------


class ReceiptReader:
    """A device's client reading its own receipts topic."""

    def __init__(self, url: str, topic_filter: str, protocol: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"reader-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        self.receipts: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, _client, _userdata, message) -> None:
        with self._lock:
            self.receipts.append((message.topic, json.loads(message.payload)))

    def told(self) -> dict[str, list[tuple]]:
        """event id -> every (topic, outcome, reason_code) told about it"""
        with self._lock:
            told: dict[str, list[tuple]] = {}
            for topic, receipt in self.receipts:
                for entry in receipt["events"]:
                    told.setdefault(entry["event_id"], []).append(
                        (topic, entry["outcome"], entry.get("reason_code")))
            return told

    def wait_for(self, event_ids, times: int = 1, timeout: float = 15) -> dict[str, list]:
        """Until each event id has been told about `times` times."""
        deadline = time.monotonic() + timeout
        while True:
            told = self.told()
            missing = [e for e in event_ids if len(told.get(e, [])) < times]
            if not missing:
                return told
            assert time.monotonic() < deadline, f"no receipt for {missing}"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_receives_receipts_for_stored_duplicate_and_refused_events(broker,
                                                                            database_url,
                                                                            tmp_path):
    now = datetime.now(UTC)
    fresh = {"event_time": (now - timedelta(minutes=1)).isoformat()}
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    reader = ReceiptReader(broker.url, f"{LAYOUT.prefix}/receipts/#", broker.protocol)
    publisher = Publisher(broker.url, protocol=broker.protocol)
    try:
        good = [example("telemetry", **fresh, seq=i) for i in range(3)]
        scan = example("custody.received", **fresh)
        for payload in good:
            publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(payload).encode())
        publisher.publish(LAYOUT.site_custody("pdrmyy"), json.dumps(scan).encode())
        told = reader.wait_for([p["event_id"] for p in good] + [scan["event_id"]])
        drone_topic, site_topic = LAYOUT.drone_receipts("uav-03"), LAYOUT.site_receipts("pdrmyy")
        assert {p["event_id"]: told[p["event_id"]] for p in good} == {
            p["event_id"]: [(drone_topic, "stored", None)] for p in good}
        assert told[scan["event_id"]] == [(site_topic, "stored", None)]

        bad = example("telemetry", **fresh, lat=200.0)
        spoofed = example("telemetry", **fresh, drone_id="uav-09")
        publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(good[0]).encode())  # resent
        publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(bad).encode())
        publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(spoofed).encode())
        publisher.publish(LAYOUT.telemetry("uav-03"), b"{not json")  # nothing to name
        publisher.wait_all_acked()
        reader.wait_for([bad["event_id"], spoofed["event_id"]])
        told = reader.wait_for([good[0]["event_id"]], times=2)
        assert told[good[0]["event_id"]] == [(drone_topic, "stored", None),
                                             (drone_topic, "duplicate", None)]
        assert told[bad["event_id"]] == [(drone_topic, "refused", "impossible_value")]
        assert told[spoofed["event_id"]] == [(drone_topic, "refused", "identity_mismatch")]
        time.sleep(0.3)
        assert set(reader.told()) == {p["event_id"] for p in (*good, scan, bad, spoofed)}
        schema = json.loads(render_schemas()["receipt.schema.json"])
        for _, receipt in reader.receipts:
            jsonschema.validate(receipt, schema)
        assert ingester.terminate() == 0
        assert '"receipts_failed": 0' in ingester.log_path.read_text()
    finally:
        reader.close()
        publisher.close()
        if ingester.process.poll() is None:
            ingester.kill()


@pytest.mark.parametrize("own_connection", [True, False])
def test_receipts_on_a_connection_of_their_own_leave_while_the_ingester_is_stalled(
        broker, engine, own_connection):
    """DRONELOG_RECEIPTS_MQTT_URL. Under a backlog the ingester's delivery queue is full and
    paho's network thread waits for room in it, writing nothing meanwhile: a receipt queued on
    that connection stays unsent until the batch loop catches up (docs/benchmarks.md saw 13 to
    27 % refused under a flood). On their own connection receipts leave at once."""
    settings = Settings(database_url=str(engine.url), mqtt_url=broker.url,
                        mqtt_protocol=broker.protocol, queue_limit=100, receipt_hold_s=0,
                        mqtt_client_id=f"ingester-{uuid.uuid4().hex[:8]}",
                        receipts_mqtt_url=broker.url if own_connection else "")
    ingester = Ingester(settings, engine)
    assert (ingester.receipt_connection is not None) == own_connection
    source, cleanup = ingester.source, []
    draining = threading.Event()

    def drain() -> None:  # lets a stalled network thread go, so that the source can stop
        while not draining.is_set():
            source.drain()
            time.sleep(0.01)

    def queue_full() -> None:  # the network thread now waits for room
        deadline = time.monotonic() + 10
        while source._queue.qsize() < 100:
            assert time.monotonic() < deadline, "the backlog did not fill the queue"
            time.sleep(0.01)
    try:
        reader = ReceiptReader(broker.url, f"{LAYOUT.prefix}/receipts/#", broker.protocol)
        cleanup.append(reader.close)
        publisher = Publisher(broker.url, protocol=broker.protocol)
        cleanup.append(publisher.close)
        for connection in filter(None, (ingester.receipt_connection, source)):
            cleanup.insert(0, connection.stop)
            connection.start()
            assert connection.wait_connected(10)
        at = {"event_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
        backlog = [example("telemetry", **at, drone_id=f"uav-{i % 10:02d}", seq=i)
                   for i in range(400)]
        for payload in backlog:
            publisher.publish(LAYOUT.telemetry(payload["drone_id"]), json.dumps(payload).encode())
        publisher.wait_all_acked()
        queue_full()
        batch = source.next_batch(50, 0.01)
        queue_full()  # again, before the receipts: the room taken was filled
        assert ingester.process(batch)
        first = [json.loads(delivery.payload)["event_id"] for delivery in batch]
        if own_connection:
            assert set(reader.wait_for(first, timeout=5)) == set(first)
        else:  # the behaviour that made the connection of their own worth having
            time.sleep(1.0)
            assert reader.told() == {}
        assert ingester.stats.receipts_failed == 0
    finally:
        drain_thread = threading.Thread(target=drain, daemon=True)
        drain_thread.start()
        try:
            for step in cleanup:
                step()
        finally:
            draining.set()
            drain_thread.join()


def _connection(kind: str, url: str, client_id: str, protocol: str = "5"):
    """Either connection that publishes receipts: the ingester's own, or theirs alone."""
    if kind == "receipts":
        return ReceiptConnection(BrokerAddress.parse(url), client_id, protocol=protocol)
    return MqttSource(BrokerAddress.parse(url), client_id, [(f"{LAYOUT.prefix}/none", 1)],
                      clock=lambda: datetime.now(UTC), protocol=protocol)


@pytest.mark.parametrize("kind", ["receipts", "ingester"])
def test_a_connection_stops_once_the_broker_has_answered_its_receipts(broker, kind):
    """paho writes the DISCONNECT behind what it holds and closes the socket at once; either
    connection first waits (boundedly) for the broker's PUBACKs, and says how many it stops
    without."""
    reachable = _connection(kind, broker.url, f"receipts-test-{uuid.uuid4().hex[:8]}",
                            broker.protocol)
    reachable.start()
    assert reachable.wait_connected(10)
    for n in range(50):
        assert reachable.publisher.publish(LAYOUT.drone_receipts(f"uav-{n:02d}"), b"{}")
    with structlog.testing.capture_logs() as told:
        reachable.stop()
    assert reachable.publisher.waiting == 0
    assert [e for e in told if e["event"].startswith("receipts not confirmed")] == []

    away = _connection(kind, "mqtt://127.0.0.1:1", "receipts-away")
    away.start()
    for n in range(3):
        assert away.publisher.publish(LAYOUT.drone_receipts(f"uav-{n:02d}"), b"{}")
    with structlog.testing.capture_logs() as told:
        away.stop(settle_s=0.2)
    assert [(e["event"], e["receipts"]) for e in told
            if e["event"].startswith("receipts not")] == [
        ("receipts not confirmed by the broker at stop", 3)]
