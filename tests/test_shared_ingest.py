"""Two ingesters share the stream through an MQTT shared subscription on the real Mosquitto:
each message is stored once, though one of them is killed mid-stream and comes back."""

import json
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from tests.support import IngesterProcess, Publisher, telemetry_stream, wait_for_count

GROUP = "ingesters"


def received_by(ingester: IngesterProcess) -> int:
    """Messages a never-killed ingester received (its last progress line, logged at stop)."""
    received = 0
    for line in ingester.log_path.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("event") == "ingest progress":
            received = entry["received"]
    return received


@pytest.mark.mosquitto
def test_two_ingesters_share_the_stream_and_survive_a_kill(mosquitto, database_url, engine,
                                                          tmp_path):
    total = 8000
    messages = telemetry_stream(total, drones=40)
    ingesters = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        ingesters.append(IngesterProcess(database_url, mosquitto.url, workdir,
                                         mqtt_client_id=f"dronelog-ingester-{name}",
                                         shared_group=GROUP).start())
    for ingester in ingesters:
        ingester.wait_connected()
    publisher = Publisher(mosquitto.url)

    def publish_paced() -> None:
        for start in range(0, total, 200):
            publisher.publish_all(messages[start:start + 200])
            time.sleep(0.02)

    feeder = threading.Thread(target=publish_paced)
    feeder.start()
    time.sleep(0.8)
    ingesters[0].kill()  # mid-stream, with unacknowledged messages in flight
    time.sleep(1.0)
    ingesters[0].start()  # same client id: its session and what it held are redelivered
    feeder.join()
    publisher.wait_all_acked()
    assert wait_for_count(engine, "SELECT count(*) FROM telemetry", total, timeout=90,
                          settle=1.0) == total
    with engine.connect() as connection:
        stored = {uuid.UUID(str(i)) for i in
                  connection.execute(text("SELECT event_id FROM telemetry")).scalars()}
    assert stored == {uuid.UUID(json.loads(payload)["event_id"]) for _, payload in messages}
    for ingester in ingesters:
        assert ingester.terminate() == 0
    # The one never killed logged all it received (the killed one's first run could not):
    # a share, not the whole stream, as each message goes to one member of the group.
    survivor = received_by(ingesters[1])
    assert total / 10 < survivor < 0.8 * total, survivor
    publisher.close()
