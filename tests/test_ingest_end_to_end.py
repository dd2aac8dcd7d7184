"""The ingester as a real process between a real broker and real databases.

Counts are exact: every valid event published at QoS 1 is stored once, whatever happens to
the ingester or the broker in between, and every bad message is a dead letter with a reason.
"""

import json
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dronelog.contract.examples import EXAMPLES
from dronelog.storage.database import create_db_engine
from tests.support import (
    LAYOUT,
    IngesterProcess,
    Publisher,
    count,
    telemetry,
    telemetry_stream,
    wait_for_count,
)

TELEMETRY_ROWS = "SELECT count(*) FROM telemetry"


@pytest.fixture
def db(database_url):
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def test_duplicates_and_resends_are_stored_once(broker, database_url, db, tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    messages = telemetry_stream(2000)
    resent = random.Random(7).sample(messages, 300)
    publisher = Publisher(broker.url, protocol=broker.protocol)
    publisher.publish_all(messages + resent + resent[:50])
    publisher.wait_all_acked()
    assert wait_for_count(db, TELEMETRY_ROWS, 2000, settle=1.0) == 2000
    assert count(db, "SELECT count(DISTINCT event_id) FROM telemetry") == 2000
    assert ingester.terminate() == 0
    publisher.close()


def _now_example(name, minutes_ago=5, **changes):
    payload = json.loads(json.dumps(EXAMPLES[name]))
    payload["event_id"] = str(uuid.uuid4())
    payload["event_time"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    payload.update(changes)
    return payload


def test_bad_input_is_dead_lettered_and_never_takes_valid_events_down(broker, database_url,
                                                                       db, tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol,
                               max_payload_bytes=8192).start()
    ingester.wait_connected()
    drone_topic = LAYOUT.telemetry("uav-03")
    bad = {
        "not_json": (drone_topic, b"\x00\x01 definitely not json"),
        "schema_invalid": (drone_topic, json.dumps(_now_example("telemetry", seq="x"))),
        "unknown_schema_version": (drone_topic,
                                   json.dumps(_now_example("telemetry", schema_version=9))),
        "impossible_value": (drone_topic, json.dumps(_now_example("telemetry", lat=200.0))),
        "identity_mismatch": (LAYOUT.telemetry("uav-99"), json.dumps(_now_example("telemetry"))),
        "event_time_out_of_range": (drone_topic, json.dumps(_now_example(
            "telemetry", minutes_ago=-3 * 24 * 60))),
        "oversized": (drone_topic, json.dumps(_now_example("telemetry")) + " " * 9000),
        "unknown_topic": (f"{LAYOUT.prefix}/drones/uav-03/selfie", b"{}"),
    }
    spoofed_site = _now_example("custody.collected")  # says cjzxwsy, sent on the lab's topic
    publisher = Publisher(broker.url, protocol=broker.protocol)
    valid = 0
    for topic, payload in bad.values():
        publisher.publish(topic, payload if isinstance(payload, bytes) else payload.encode())
        publisher.publish(drone_topic, json.dumps(_now_example("telemetry")).encode())
        valid += 1
    publisher.publish(LAYOUT.site_custody("pdrmyy"), json.dumps(spoofed_site).encode())
    publisher.publish(LAYOUT.site_custody("cjzxwsy"),
                      json.dumps(_now_example("custody.collected")).encode())
    publisher.wait_all_acked()

    assert wait_for_count(db, "SELECT count(*) FROM dead_letter", len(bad) + 1,
                          settle=0.5) == len(bad) + 1
    assert wait_for_count(db, TELEMETRY_ROWS, valid) == valid
    assert wait_for_count(db, "SELECT count(*) FROM custody_event", 1) == 1
    with db.connect() as connection:
        letters = connection.execute(text(
            "SELECT reason_code, reason, topic FROM dead_letter")).all()
    codes = sorted(letter.reason_code for letter in letters)
    assert codes == sorted([*bad, "identity_mismatch"])
    assert all(letter.reason for letter in letters)
    spoof = [letter for letter in letters if letter.topic == LAYOUT.site_custody("pdrmyy")]
    assert "pdrmyy" in spoof[0].reason and "cjzxwsy" in spoof[0].reason
    assert ingester.process.poll() is None, "bad input must never stop the ingester"
    assert ingester.terminate() == 0
    publisher.close()


@pytest.mark.mosquitto
def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(mosquitto, database_url, db,
                                                              tmp_path):
    total = 12_000
    messages = telemetry_stream(total, drones=50)
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path).start()
    ingester.wait_connected()
    publisher = Publisher(mosquitto.url)

    def publish_paced():
        for start in range(0, total, 200):
            publisher.publish_all(messages[start:start + 200])
            time.sleep(0.02)

    feeder = threading.Thread(target=publish_paced)
    feeder.start()
    chance = random.Random(2)
    for _ in range(3):
        time.sleep(chance.uniform(0.3, 1.2))
        ingester.kill()
        time.sleep(chance.uniform(0.0, 0.5))
        ingester.start()
    feeder.join()
    publisher.wait_all_acked()
    assert wait_for_count(db, TELEMETRY_ROWS, total, timeout=90, settle=1.0) == total
    with db.connect() as connection:
        stored = set(connection.execute(text("SELECT event_id FROM telemetry")).scalars())
    published = {uuid.UUID(json.loads(payload)["event_id"]) for _, payload in messages}
    assert {uuid.UUID(str(event_id)) for event_id in stored} == published
    assert ingester.terminate() == 0
    publisher.close()


@pytest.mark.mosquitto
def test_broker_restart_mid_stream_loses_nothing(mosquitto, database_url, db, tmp_path):
    total = 6000
    messages = telemetry_stream(total)
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path).start()
    ingester.wait_connected()
    publisher = Publisher(mosquitto.url)
    publisher.publish_all(messages[:3000])
    time.sleep(0.3)
    mosquitto.restart()
    publisher.publish_all(messages[3000:])
    publisher.wait_all_acked(timeout=90)
    assert wait_for_count(db, TELEMETRY_ROWS, total, timeout=90, settle=1.0) == total
    assert count(db, "SELECT count(DISTINCT event_id) FROM telemetry") == total
    assert b"disconnected from broker" in ingester.log_path.read_bytes()
    assert ingester.terminate() == 0
    publisher.close()


@pytest.mark.mosquitto
def test_events_sent_while_the_ingester_is_down_arrive_after_it_returns(mosquitto, database_url,
                                                                        db, tmp_path):
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path).start()
    ingester.wait_connected()
    assert ingester.terminate() == 0  # the broker now holds its persistent session
    publisher = Publisher(mosquitto.url)
    publisher.publish_all(telemetry_stream(1500))
    publisher.wait_all_acked()
    assert count(db, TELEMETRY_ROWS) == 0
    ingester.start()
    assert wait_for_count(db, TELEMETRY_ROWS, 1500, settle=0.5) == 1500
    assert ingester.terminate() == 0
    publisher.close()


@pytest.mark.mosquitto
def test_sigterm_stores_what_it_holds_and_exits_cleanly(mosquitto, database_url, db, tmp_path):
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path,
                               batch_interval_s=2, batch_size=10_000).start()
    ingester.wait_connected()
    publisher = Publisher(mosquitto.url)
    publisher.publish_all(telemetry_stream(800))
    publisher.wait_all_acked()
    time.sleep(0.3)  # received, but the 2 s batch window keeps it uncommitted
    assert ingester.terminate() == 0
    assert count(db, TELEMETRY_ROWS) == 800
    log = ingester.log_path.read_text()
    assert "ingester stopped" in log
    publisher.close()


@pytest.mark.mosquitto
def test_last_will_records_a_drone_going_offline(mosquitto, database_url, db, tmp_path):
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path).start()
    ingester.wait_connected()
    online = _now_example("status", minutes_ago=0)
    will = _now_example("status", minutes_ago=0, online=False, reason="will")
    drone = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import json, time
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="uav-03",
                        protocol=mqtt.MQTTv5)
        c.will_set({LAYOUT.status('uav-03')!r}, {json.dumps(will)!r}, qos=1, retain=True)
        c.connect("127.0.0.1", {mosquitto.port})
        c.loop_start()
        c.publish({LAYOUT.status('uav-03')!r}, {json.dumps(online)!r}, qos=1,
                  retain=True).wait_for_publish()
        print("online", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE)
    assert drone.stdout.readline().strip() == b"online"
    assert wait_for_count(db, "SELECT count(*) FROM drone WHERE online", 1) == 1
    drone.kill()  # the link drops without a DISCONNECT: the broker sends the will
    drone.wait()
    assert wait_for_count(db, "SELECT count(*) FROM drone_status_event", 2) == 2
    with db.connect() as connection:
        assert not connection.execute(text("SELECT online FROM drone")).scalar_one()
        reasons = connection.execute(text(
            "SELECT reason FROM drone_status_event ORDER BY received_at")).scalars().all()
    assert reasons == ["connected", "will"]
    assert ingester.terminate() == 0


def test_a_valid_event_published_once_is_stored_once_per_table(broker, database_url, db,
                                                               tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    publisher = Publisher(broker.url, protocol=broker.protocol)
    event = telemetry("uav-05", seq=1, flight_id="F1")
    publisher.publish(LAYOUT.telemetry("uav-05"), event.model_dump_json().encode())
    publisher.publish(LAYOUT.flight("uav-05"), json.dumps(_now_example(
        "flight.planned", drone_id="uav-05", flight_id="F1")).encode())
    for name in ("custody.collected", "custody.packed"):
        publisher.publish(LAYOUT.site_custody("cjzxwsy"), json.dumps(_now_example(name)).encode())
    publisher.wait_all_acked()
    assert wait_for_count(db, "SELECT count(*) FROM custody_event", 2) == 2
    assert wait_for_count(db, TELEMETRY_ROWS, 1) == 1
    assert wait_for_count(db, "SELECT count(*) FROM flight_event", 1) == 1
    with db.connect() as connection:
        row = connection.execute(text("SELECT * FROM telemetry")).mappings().one()
        flight = connection.execute(text("SELECT * FROM flight")).mappings().one()
    assert (row["drone_id"], row["seq"], row["flight_id"]) == ("uav-05", 1, "F1")
    assert row["lat"] == pytest.approx(36.78)
    assert (flight["drone_id"], flight["destination_site_id"]) == ("uav-05", "pdrmyy")
    assert ingester.terminate() == 0
    publisher.close()


@pytest.mark.mosquitto
@pytest.mark.postgres
def test_database_outage_holds_events_and_resumes_by_itself(mosquitto, private_postgres,
                                                            tmp_path):
    db = create_db_engine(private_postgres.url)
    ingester = IngesterProcess(private_postgres.url, mosquitto.url, tmp_path,
                               retry_max_delay_s=1).start()
    ingester.wait_connected()
    messages = telemetry_stream(3000)
    publisher = Publisher(mosquitto.url)
    publisher.publish_all(messages[:1000])
    assert wait_for_count(db, TELEMETRY_ROWS, 1000) == 1000
    db.dispose()
    private_postgres.stop()
    publisher.publish_all(messages[1000:2000])
    publisher.wait_all_acked()
    time.sleep(3)  # the ingester holds the batch, retrying, acknowledging nothing
    assert ingester.process.poll() is None, "a database outage must not stop the ingester"
    private_postgres.start()
    publisher.publish_all(messages[2000:])
    publisher.wait_all_acked()
    assert wait_for_count(db, TELEMETRY_ROWS, 3000, timeout=60, settle=1.0) == 3000
    assert count(db, "SELECT count(DISTINCT event_id) FROM telemetry") == 3000
    assert b"storage unavailable" in ingester.log_path.read_bytes()
    assert ingester.terminate() == 0
    publisher.close()
    db.dispose()
