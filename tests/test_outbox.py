"""The device outbox (dronelog/outbox): keeps each event until its receipt comes, sends it
again when late and after a reconnect, stays within its bounds, says what it holds.

The outbox's decisions on a manual clock, in memory and in SQLite; then the simulator's device
clients and the bridges' publisher through the real broker and the real ingester.
"""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dronelog.bridges.mqtt import ContractPublisher
from dronelog.clock import ManualClock
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.messages import Receipt, Telemetry
from dronelog.contract.topics import TopicLayout
from dronelog.outbox import MemoryStore, Outbox, OutboxFull, SqliteStore, event_id_of
from dronelog.outbox.mqtt import receipts_topic
from dronelog_sim.publisher import DevicePublisher
from tests.support import IngesterProcess, count, wait_until

LAYOUT = TopicLayout()
START = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
TOPIC = LAYOUT.telemetry("uav-03")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "o.sqlite")
    yield store
    store.close()


def receipt(*outcomes: tuple[uuid.UUID, str]) -> Receipt:
    events = [{"event_id": str(event_id), "outcome": outcome} | (
        {"reason_code": "impossible_value", "reason": "lat 200"} if outcome == "refused" else {})
        for event_id, outcome in outcomes]
    return Receipt.model_validate({
        "schema_version": 1, "receipt_id": str(uuid.uuid4()), "issued_at": START.isoformat(),
        "sender": {"kind": "drone", "id": "uav-03"}, "events": events})


def payload(event_id: uuid.UUID, size: int = 0) -> bytes:
    return json.dumps({"event_id": str(event_id), "pad": "x" * size}).encode()


def test_an_event_is_held_until_a_receipt_names_it(store):
    clock = ManualClock(START)
    outbox = Outbox(store, clock)
    stored, duplicate, refused, silent = (uuid.uuid4() for _ in range(4))
    for event_id in (stored, duplicate, refused, silent):
        assert outbox.add(event_id, TOPIC, payload(event_id))
    assert not outbox.add(stored, TOPIC, payload(stored)), "an id already held is held once"
    clock.advance(12)
    assert outbox.report().held == 4 and outbox.report().oldest_age_s == 12
    assert outbox.settle(receipt((stored, "stored"), (duplicate, "duplicate"),
                                 (refused, "refused"), (uuid.uuid4(), "stored"))) == 3
    assert outbox.settle(receipt((stored, "duplicate"))) == 0, "a second receipt changes nothing"
    report = outbox.report()
    assert (report.held, report.delivered, report.refused) == (1, 2, 1)
    assert report.held_bytes == len(payload(silent))
    assert [held.event_id for held in store.all()] == [silent]


def test_a_late_event_is_sent_again_once_per_period_with_its_own_id(store):
    clock = ManualClock(START)
    outbox = Outbox(store, clock, resend_after_s=30)
    first, second = uuid.uuid4(), uuid.uuid4()
    outbox.add(first, TOPIC, payload(first))
    clock.advance(10)
    outbox.add(second, TOPIC, payload(second))
    clock.advance(19.9)
    assert outbox.due() == []
    clock.advance(0.1)  # exactly 30 s after the first send
    again = outbox.due()
    assert [(h.event_id, h.payload, h.sends) for h in again] == [(first, payload(first), 1)]
    assert outbox.due() == [], "sent again just now"
    clock.advance(10)
    assert [h.event_id for h in outbox.due()] == [second]
    assert [h.event_id for h in outbox.due(lambda _held: False)] == []  # e.g. not connected
    clock.advance(20)
    assert [h.event_id for h in outbox.due()] == [first]
    assert outbox.report().resent == 3
    assert store.get(first).sends == 3


def test_a_reconnected_client_sends_again_everything_it_holds(store):
    outbox = Outbox(store, ManualClock(START))
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    outbox.add(mine, TOPIC, payload(mine))
    outbox.add(theirs, LAYOUT.site_custody("pdrmyy"), payload(theirs))
    again = outbox.held_for(lambda topic: topic == TOPIC)
    assert [h.event_id for h in again] == [mine]
    assert outbox.report().resent == 1


@pytest.mark.parametrize("bound", ["events", "bytes"])
def test_at_its_bound_the_outbox_refuses_new_events_and_drops_nothing(store, bound):
    limits = {"max_events": 3} if bound == "events" else {"max_bytes": 3 * len(payload(
        uuid.uuid4()))}
    outbox = Outbox(store, ManualClock(START), **limits)
    held = [uuid.uuid4() for _ in range(3)]
    for event_id in held:
        outbox.add(event_id, TOPIC, payload(event_id))
    with pytest.raises(OutboxFull):
        outbox.add(uuid.uuid4(), TOPIC, payload(uuid.uuid4()))
    assert {h.event_id for h in store.all()} == set(held)
    assert outbox.report().refused_full == 1

    # Back-pressure: a sender waiting for room gets it when a receipt comes.
    late = uuid.uuid4()
    threading.Timer(0.2, outbox.settle, [receipt((held[0], "stored"))]).start()
    started = time.monotonic()
    assert outbox.add(late, TOPIC, payload(late), wait_s=10)
    assert time.monotonic() - started < 5
    assert {h.event_id for h in store.all()} == {*held[1:], late}


def test_the_sqlite_outbox_keeps_its_events_across_a_restart(tmp_path):
    path = tmp_path / "bridge.sqlite"
    outbox = Outbox(SqliteStore(path), ManualClock(START))
    kept, delivered = uuid.uuid4(), uuid.uuid4()
    outbox.add(kept, TOPIC, payload(kept, 100), retain=True)
    outbox.add(delivered, TOPIC, payload(delivered))
    outbox.settle(receipt((delivered, "stored")))
    outbox.close()
    again = Outbox(SqliteStore(path), ManualClock(START + timedelta(minutes=5)))
    report = again.report()
    assert (report.held, report.held_bytes, report.oldest_age_s) == (1, len(payload(kept, 100)),
                                                                     300)
    [held] = again.store.all()
    assert (held.event_id, held.topic, held.payload, held.retain) == (kept, TOPIC,
                                                                      payload(kept, 100), True)
    assert again.topics() == {TOPIC}
    again.close()


def test_what_an_outbox_can_wait_for():
    event_id = uuid.uuid4()
    assert event_id_of(payload(event_id)) == event_id
    assert event_id_of(b"{not json") is None
    assert event_id_of(b'{"event_id": "nope"}') is None
    assert event_id_of(b"[1]") is None
    assert event_id_of(b"\xff") is None
    assert receipts_topic(LAYOUT, TOPIC) == LAYOUT.drone_receipts("uav-03")
    assert receipts_topic(LAYOUT, LAYOUT.status("uav-03")) == LAYOUT.drone_receipts("uav-03")
    assert receipts_topic(LAYOUT, LAYOUT.site_custody("wjwsy")) == LAYOUT.site_receipts("wjwsy")
    assert receipts_topic(LAYOUT, "elsewhere/drones/uav-03/telemetry") is None


# --- through the real broker and ingester ----------------------------------------------------


def telemetry(seq: int, drone: str = "uav-03", **changes) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps({**EXAMPLES["telemetry"], "event_id": str(uuid.uuid4()),
                       "drone_id": drone, "seq": seq, "event_time": at.isoformat(),
                       **changes}).encode()


@pytest.mark.mosquitto
def test_simulated_devices_wait_for_their_receipts(mosquitto, database_url, tmp_path):
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path, mosquitto.protocol)
    publisher = DevicePublisher(mosquitto.url, LAYOUT, mosquitto.protocol,
                                outbox=Outbox(resend_after_s=30))
    try:
        good = [telemetry(i, drone=f"uav-0{i % 3}") for i in range(30)]
        bad = telemetry(99, lat=200.0)
        for message in good:
            publisher.publish(LAYOUT.telemetry(json.loads(message)["drone_id"]), message)
        publisher.publish(TOPIC, bad)
        publisher.publish(TOPIC, b"{not json")  # no id: published, not held
        assert publisher.outbox.report().held == 31
        assert not publisher.wait_acked(timeout=3), "no ingester yet: no receipt"
        ingester.start()
        ingester.wait_connected()
        assert publisher.wait_acked(timeout=60)
        report = publisher.outbox.report()
        assert (report.held, report.delivered, report.refused) == (0, 30, 1)
        assert count(ingester_engine(database_url), "SELECT count(*) FROM telemetry") == 30
    finally:
        publisher.close()
        if ingester.process and ingester.process.poll() is None:
            ingester.terminate()


@pytest.mark.mosquitto
def test_a_bridge_sends_again_after_a_restart_what_had_no_receipt(mosquitto, database_url,
                                                                  tmp_path):
    """Events published while no ingester reads, the bridge stopped; a new bridge process on
    the same outbox file sends them again at connect, and the receipts empty it."""
    path = tmp_path / "outbox.sqlite"
    events = [Telemetry.model_validate_json(telemetry(i)) for i in range(5)]
    bridge = ContractPublisher(mosquitto.url, LAYOUT, mosquitto.protocol, "bridge-a",
                               outbox=Outbox(SqliteStore(path)))
    for event in events:
        bridge.publish(event)
    assert bridge.wait_acked(10)
    bridge.close()
    mosquitto.stop()  # and the broker forgets everything: a new data folder
    mosquitto.data_dir = tmp_path / "broker-2"
    mosquitto.start()
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path, mosquitto.protocol)
    ingester.start()
    ingester.wait_connected()
    outbox = Outbox(SqliteStore(path), resend_after_s=3600)  # only the reconnect resends
    assert outbox.report().held == 5
    restarted = ContractPublisher(mosquitto.url, LAYOUT, mosquitto.protocol, "bridge-a",
                                  outbox=outbox)
    try:
        assert outbox.wait_empty(60)
        assert outbox.report().delivered == 5 and outbox.report().resent == 5
        engine = ingester_engine(database_url)
        assert wait_until(lambda: count(engine, "SELECT count(*) FROM telemetry") == 5, 10)
    finally:
        restarted.close()
        ingester.terminate()


def ingester_engine(database_url: str):
    from dronelog.storage.database import create_db_engine

    return create_db_engine(database_url)
