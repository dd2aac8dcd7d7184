"""Two scheduler processes on one database: one works, and when it is SIGKILLed the other
takes over within the lease time; no alert is raised twice."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dronelog.storage.database import create_db_engine
from tests.support import LAYOUT, IngesterProcess, Publisher, count, wait_for_count
from tests.test_alert_notifications import collected

LEASE_S = 3.0


def lease_holder(engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT holder FROM job_lease WHERE name = 'turnaround' AND expires_at > :now"),
            {"now": datetime.now(UTC)}).scalar()


@pytest.mark.timeout(180)
def test_the_other_scheduler_takes_over_within_the_lease(broker, database_url, tmp_path):
    env = {**os.environ, "DRONELOG_DATABASE_URL": database_url, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_MQTT_PROTOCOL": broker.protocol, "DRONELOG_SWEEP_INTERVAL_S": "0.5",
           "DRONELOG_SCHEDULER_LEASE_S": str(LEASE_S), "DRONELOG_LOG_FORMAT": "json",
           "DRONELOG_CONFIG": str(tmp_path / "none.toml")}
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    schedulers = {}
    for name in ("a", "b"):
        process = subprocess.Popen([sys.executable, "-m", "dronelog", "scheduler"], env=env,
                                   cwd=tmp_path, stderr=open(tmp_path / f"{name}.log", "wb"))
        schedulers[process.pid] = process
    ingester.wait_connected()
    engine = create_db_engine(database_url)
    publisher = Publisher(broker.url, protocol=broker.protocol)
    try:
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        for i in range(3):
            publisher.publish(LAYOUT.site_custody("cjzxwsy"), collected(
                f"LATE-{i}", two_hours_ago).model_dump_json().encode())
        publisher.wait_all_acked()
        assert wait_for_count(engine, "SELECT count(*) FROM alert WHERE kind = 'breach'",
                              3, timeout=60) == 3
        holder = lease_holder(engine)
        leader = next(p for pid, p in schedulers.items() if f"-{pid}-" in holder)
        leader.send_signal(signal.SIGKILL)  # no chance to release its lease
        leader.wait(10)
        killed_at = time.monotonic()
        for i in range(3, 6):
            publisher.publish(LAYOUT.site_custody("cjzxwsy"), collected(
                f"LATE-{i}", two_hours_ago).model_dump_json().encode())
        publisher.wait_all_acked()
        assert wait_for_count(engine, "SELECT count(*) FROM alert WHERE kind = 'breach'",
                              6, timeout=60) == 6
        takeover_s = time.monotonic() - killed_at
        assert takeover_s < LEASE_S + 3, takeover_s  # lease expiry plus a sweep or two
        successor = lease_holder(engine)
        assert successor is not None and successor != holder
        time.sleep(2)  # more sweeps by the successor: nothing is raised again
        assert count(engine, "SELECT count(*) FROM alert_change WHERE change = 'opened'") == 6
        assert count(engine, "SELECT count(*) FROM (SELECT subject_id, kind FROM alert "
                             "GROUP BY subject_id, kind HAVING count(*) > 1) AS twice") == 0
    finally:
        publisher.close()
        for process in schedulers.values():
            if process.poll() is None:
                process.terminate()
                assert process.wait(20) == 0
        ingester.terminate()
        engine.dispose()
