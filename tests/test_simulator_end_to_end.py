"""An accelerated Pingdu run through a real broker and the real ingester: dronelog stores
exactly the ground truth's valid events, and the malformed ones land as dead letters with
the reasons the simulator expects."""

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from dronelog.storage.database import create_db_engine
from tests.support import IngesterProcess, wait_for_count

SCENARIO = Path(__file__).parent.parent / "scenarios" / "pingdu.toml"
EVENT_TABLES = ("telemetry", "flight_event", "custody_event", "drone_status_event")


def run_simulator(broker, truth: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_MQTT_PROTOCOL": broker.protocol,
           "DRONELOG_CONFIG": str(workdir / "none.toml")}
    return subprocess.run([sys.executable, "-m", "dronelog", "simulate", "run", str(SCENARIO),
                           "--truth", str(truth), *args], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=300, check=True)


def test_accelerated_pingdu_run_is_stored_exactly_as_the_ground_truth_says(
        broker, database_url, tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    start = (datetime.now(UTC) - timedelta(hours=5)).replace(microsecond=0)
    truth_path = tmp_path / "truth.jsonl"
    done = run_simulator(broker, truth_path, tmp_path, "--duration", "4h", "--speed", "0",
                         "--start", start.isoformat(), "--seed", "11", "--faults",
                         "all=0.05")
    assert "ground truth" in done.stderr
    truth = [json.loads(line) for line in truth_path.read_text(encoding="utf-8").splitlines()]
    sent = [t for t in truth if t["type"] == "sent"]
    valid = {uuid.UUID(t["event_id"]) for t in sent if t["valid"]}
    malformed = [t for t in sent if not t["valid"]]
    assert malformed and len(valid) > 1000

    db = create_db_engine(database_url)
    union = " UNION ALL ".join(f"SELECT event_id FROM {table}" for table in EVENT_TABLES)
    stored_count = wait_for_count(db, f"SELECT count(*) FROM ({union}) AS events",
                                  len(valid), timeout=120, settle=1.0)
    dead_count = wait_for_count(db, "SELECT count(*) FROM dead_letter", len(malformed),
                                settle=0.5)
    with db.connect() as connection:
        stored = {uuid.UUID(str(row[0])) for row in connection.execute(text(union))}
        reasons = Counter(connection.execute(text(
            "SELECT reason_code FROM dead_letter")).scalars())
    assert stored_count == len(valid)
    assert stored == valid
    assert dead_count == len(malformed)
    assert reasons == Counter(t["expected_reason"] for t in malformed)
    assert ingester.terminate() == 0
    db.dispose()
