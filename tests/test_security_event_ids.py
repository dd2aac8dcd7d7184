"""An event id another sender already used (issue 15, finding 7): it was answered "200
already stored" although nothing of it was stored. Now the shared writer compares what it
finds under the id: the same event from the same sender is a repeat; anything else is
refused and dead-lettered (`storage_rejected`), answered 409 over HTTP and told as refused
in the sender's receipt over MQTT. One path, through the real API and the real ingester
behind the real broker; SQLite and PostgreSQL.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from dronelog.api.accounts import Role
from dronelog.contract.examples import EXAMPLES
from tests.support import LAYOUT, IngesterProcess, Publisher, count, wait_for_count
from tests.test_receipts import ReceiptReader


def _scan(api, name: str, **changes) -> dict:
    body = json.loads(json.dumps(EXAMPLES[name]))
    body.update(event_id=str(uuid.uuid4()),
                event_time=(api.clock.now() - timedelta(minutes=5)).isoformat())
    body.update(changes)
    return body


def _stored(engine, event_id: str) -> list:
    key = uuid.UUID(event_id).hex if engine.dialect.name == "sqlite" else event_id
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT kind, site_id, recorded_by FROM custody_event WHERE event_id = :e"),
            {"e": key}).all()


def test_an_event_id_used_by_another_sender_gets_409_over_http(api, engine):
    scanner, lab = api.as_role(Role.DEVICE), api.as_role(Role.LAB)
    collected = _scan(api, "custody.collected")
    first = api.http.post("/api/v1/custody", headers=scanner, json=collected)
    assert first.status_code == 201
    again = api.http.post("/api/v1/custody", headers=scanner, json=collected)
    assert again.status_code == 200 and again.json()["stored"] is False  # a true repeat

    received = _scan(api, "custody.received", event_id=collected["event_id"],
                     actor={"kind": "staff", "id": "lab-1"})
    taken = api.http.post("/api/v1/custody", headers=lab, json=received)
    assert taken.status_code == 409, taken.text
    assert taken.json()["reason_code"] == "storage_rejected"
    assert "already stored for a different event" in taken.json()["detail"]
    assert [row.kind for row in _stored(engine, collected["event_id"])] == ["collected"]

    other_content = dict(collected)
    other_content["specimen"] = dict(collected["specimen"], priority="routine")
    changed = api.http.post("/api/v1/custody", headers=scanner, json=other_content)
    assert changed.status_code == 409  # the same sender, other content under the same id
    with engine.connect() as connection:
        priority = connection.execute(text("SELECT priority FROM specimen")).scalar()
    assert priority == "stat"  # the registry kept the stored event's description
    assert count(engine, "SELECT count(*) FROM dead_letter "
                         "WHERE reason LIKE '%already stored for a different event%'") == 2


def test_over_mqtt_the_second_sender_is_refused_with_a_dead_letter_and_a_receipt(
        broker, database_url, engine, tmp_path):
    fresh = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    reader = ReceiptReader(broker.url, f"{LAYOUT.prefix}/receipts/#", broker.protocol)
    publisher = Publisher(broker.url, protocol=broker.protocol)
    try:
        report = dict(EXAMPLES["telemetry"], event_id=str(uuid.uuid4()), event_time=fresh,
                      drone_id="uav-03", seq=1)
        publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(report).encode())
        reader.wait_for([report["event_id"]])
        copycat = dict(report, drone_id="uav-04", seq=7)
        publisher.publish(LAYOUT.telemetry("uav-04"), json.dumps(copycat).encode())
        reader.wait_for([report["event_id"]], times=2)
        publisher.publish(LAYOUT.telemetry("uav-03"), json.dumps(report).encode())  # resent
        told = reader.wait_for([report["event_id"]], times=3)[report["event_id"]]
        assert sorted(told) == sorted([
            (LAYOUT.drone_receipts("uav-03"), "stored", None),
            (LAYOUT.drone_receipts("uav-03"), "duplicate", None),
            (LAYOUT.drone_receipts("uav-04"), "refused", "storage_rejected")])
        wait_for_count(engine, "SELECT count(*) FROM dead_letter "
                               "WHERE reason LIKE '%already stored for a different event%'", 1)
        assert count(engine, "SELECT count(*) FROM telemetry WHERE drone_id = 'uav-04'") == 0
    finally:
        reader.close()
        publisher.close()
        ingester.terminate()
