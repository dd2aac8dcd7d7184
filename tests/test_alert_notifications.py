"""Alert changes leave the database: to MQTT under <prefix>/alerts/... through the real broker,
and to a webhook with retries; and `dronelog scheduler` does it all as a real process."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.storage.tables import AlertChange
from dronelog.turnaround.notify import AlertPublisher
from dronelog.turnaround.service import TurnaroundJobs, mqtt_alert_publisher
from tests.support import LAYOUT, IngesterProcess, Publisher, wait_for_count


class Subscriber:
    def __init__(self, port: int, topic: str, protocol: str) -> None:
        self.messages: list[tuple[str, dict]] = []
        version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=version)
        self.client.on_message = lambda _c, _u, msg: self.messages.append(
            (msg.topic, json.loads(msg.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def collected(barcode: str, at: datetime) -> m.Collected:
    return m.Collected(schema_version=1, event_id=uuid.uuid4(), kind="collected",
                       event_time=at, barcode=barcode, site_id="cjzxwsy",
                       actor={"kind": "staff", "id": "nurse-1"},
                       specimen={"kind": "blood_sample", "priority": "stat",
                                 "temperature_class": "ambient", "origin_site_id": "cjzxwsy",
                                 "destination_site_id": "pdrmyy", "order_ref": "ORD-9"})


def store(engine, clock, *events) -> None:
    from dronelog.ingest.delivery import Accepted, Delivery
    from dronelog.storage.writer import BatchWriter

    topic = LAYOUT.site_custody("cjzxwsy")
    BatchWriter(engine, clock).write(
        [Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), e) for e in events],
        [])


def test_every_alert_change_is_published_once_acknowledged_by_the_broker(broker, engine):
    clock = ManualClock(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    settings = Settings(database_url=str(engine.url), mqtt_url=broker.url,
                        mqtt_protocol=broker.protocol)
    subscriber = Subscriber(broker.port, f"{settings.topic_prefix}/alerts/#", broker.protocol)
    publisher, client = mqtt_alert_publisher(settings)
    try:
        jobs = TurnaroundJobs(engine, settings, clock=clock, publisher=publisher)
        store(engine, clock, collected("SPEC-1", clock.now()))
        clock.advance(34 * 60)
        jobs.turnaround()  # warning opened
        clock.advance(12 * 60)
        jobs.turnaround()  # breach opened, warning resolved
        messages = subscriber.wait_for(3)
    finally:
        client.disconnect()
        client.loop_stop()
        subscriber.close()
    assert [(topic, message["change"], message["alert"]["kind"]) for topic, message in messages] \
        == [("dronelog/v1/alerts/turnaround_warning/specimen/SPEC-1", "opened",
             "turnaround_warning"),
            ("dronelog/v1/alerts/breach/specimen/SPEC-1", "opened", "breach"),
            ("dronelog/v1/alerts/turnaround_warning/specimen/SPEC-1", "resolved",
             "turnaround_warning")]
    assert len({message["event_id"] for _, message in messages}) == 3
    breach = messages[1][1]["alert"]
    assert breach["severity"] == "critical"
    # a code with parameters (times in UTC) and a text in the network's language (zh by
    # default), the time on the site's wall clock (Asia/Shanghai: no site is known here)
    assert (breach["code"], breach["params"]["barcode"], breach["params"]["deadline"]) == (
        "breach", "SPEC-1", "2026-11-20T02:45:00+00:00")
    assert (breach["language"], breach["text"]) == (
        "zh", "标本 SPEC-1（急诊）未在截止时间 11月20日 10:45 前签收")
    assert breach["params"]["origin_site_id"] == "cjzxwsy"  # its origin's lab learns of it
    with engine.connect() as connection:
        assert set(connection.execute(select(AlertChange.__table__.c.published)).scalars()) \
            == {True}


def test_an_unacknowledged_publish_stays_in_the_outbox_for_the_next_pass(engine):
    clock = ManualClock(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    sent: list[str] = []
    broker_up = False

    def publish(topic: str, _payload: bytes) -> bool:
        if broker_up:
            sent.append(topic)
        return broker_up

    jobs = TurnaroundJobs(engine, settings, clock=clock,
                          publisher=AlertPublisher("dronelog/v1", publish))
    store(engine, clock, collected("SPEC-2", clock.now()))
    clock.advance(46 * 60)
    jobs.turnaround()
    assert sent == []
    broker_up = True
    assert jobs.publish() == 1
    assert sent == ["dronelog/v1/alerts/breach/specimen/SPEC-2"]
    assert jobs.publish() == 0


class _Hook(BaseHTTPRequestHandler):
    failures_left = 2
    received: list[dict] = []

    def do_POST(self):  # the name http.server calls
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.failures_left:
            _Hook.failures_left -= 1
            self.send_response(503)
        else:
            _Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_args):
        pass


def test_the_webhook_is_retried_until_it_takes_the_change(engine):
    _Hook.failures_left, _Hook.received = 2, []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clock = ManualClock(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    url = f"http://127.0.0.1:{server.server_port}/alerts"
    jobs = TurnaroundJobs(engine, settings, clock=clock,
                          publisher=AlertPublisher("dronelog/v1", lambda _t, _p: True, url,
                                                   language="en"))
    try:
        store(engine, clock, collected("SPEC-3", clock.now()))
        clock.advance(46 * 60)
        jobs.turnaround()
        for _ in range(3):
            jobs.publish()
    finally:
        server.shutdown()
    assert [(hook["change"], hook["alert"]["subject_id"]) for hook in _Hook.received] == \
        [("opened", "SPEC-3")]
    alert = _Hook.received[0]["alert"]
    assert (alert["code"], alert["params"]["deadline"], alert["language"], alert["text"]) == (
        "breach", "2026-11-20T02:45:00+00:00", "en",
        "SPEC-3 (STAT) not received by its deadline 20 Nov 10:45")
    with engine.connect() as connection:
        row = connection.execute(select(AlertChange.__table__)).mappings().one()
    assert (row["webhook_delivered"], row["webhook_attempts"]) == (True, 3)


@pytest.mark.timeout(120)
def test_the_scheduler_process_raises_and_publishes_an_alert(broker, database_url, tmp_path):
    env = {**os.environ, "DRONELOG_DATABASE_URL": database_url, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_MQTT_PROTOCOL": broker.protocol, "DRONELOG_SWEEP_INTERVAL_S": "0.5",
           "DRONELOG_CONFIG": str(tmp_path / "none.toml"), "DRONELOG_LOG_FORMAT": "json"}
    subscriber = Subscriber(broker.port, "dronelog/v1/alerts/#", broker.protocol)
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    scheduler = subprocess.Popen([sys.executable, "-m", "dronelog", "scheduler"], env=env,
                                 cwd=tmp_path, stderr=open(tmp_path / "scheduler.log", "wb"))
    ingester.wait_connected()
    try:
        publisher = Publisher(broker.url, protocol=broker.protocol)
        late = collected("SPEC-4", datetime.now(UTC) - timedelta(hours=2))
        publisher.publish(LAYOUT.site_custody("cjzxwsy"), late.model_dump_json().encode())
        publisher.wait_all_acked()
        messages = subscriber.wait_for(1, timeout=60)
        publisher.close()
    finally:  # both are told to stop before either is waited for, and neither outlives the test
        scheduler.terminate()
        ingester.process.terminate()
        subscriber.close()
        for process in (scheduler, ingester.process):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert scheduler.returncode == 0
    assert [(t, msg["change"]) for t, msg in messages] == [
        ("dronelog/v1/alerts/breach/specimen/SPEC-4", "opened")]
    from dronelog.storage.database import create_db_engine

    engine = create_db_engine(database_url)
    assert wait_for_count(engine, "SELECT count(*) FROM alert WHERE kind = 'breach'", 1) == 1
    engine.dispose()
