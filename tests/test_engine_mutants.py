"""Tests that kill the mutants of issue 13's finding 8 the suite let live: the accepted event
age and clock skew doubled, `seal_id` (or another handover field) left out of the custody
hash, and retention deleting custody or flight events. Each test is at a boundary: one
second inside and outside the window, one field changed, events older than the cutoff."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dronelog.api.app import create_app
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.service import Ingester
from dronelog.ingest.triage import triage
from dronelog.storage.database import create_db_engine
from dronelog.turnaround.service import TurnaroundJobs
from tests.test_custody_chain import BARCODE, _stored_id, store_journey, tamper, verify
from tests.test_turnaround import (
    Network,
    collected,
    flight,
    loaded,
    packed,
    position,
    received,
    unloaded,
)

LAYOUT = TopicLayout()
NOW = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)

# --- (a) the accepted event time: 5 minutes ahead, 30 days back, at both entrances ------------


def _rules(entrance: str, tmp_path: Path):
    """The triage rules an entrance builds from the default settings."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'rules.db'}",
                        mqtt_url="mqtt://127.0.0.1:1")
    engine = create_db_engine(settings.database_url)
    if entrance == "ingester":
        return Ingester(settings, engine, clock=ManualClock(NOW)).rules
    return create_app(settings, engine, ManualClock(NOW)).state.rules


@pytest.mark.parametrize("entrance", ["ingester", "api"])
@pytest.mark.parametrize(("offset", "accepted"), [
    (timedelta(seconds=300), True), (timedelta(seconds=301), False),
    (-timedelta(days=30), True), (-timedelta(days=30, seconds=1), False)])
def test_event_times_are_accepted_5_minutes_ahead_and_30_days_back(entrance, offset, accepted,
                                                                   tmp_path):
    payload = dict(EXAMPLES["telemetry"]) | {"event_time": (NOW + offset).isoformat()}
    delivery = Delivery(LAYOUT.telemetry(payload["drone_id"]), json.dumps(payload).encode(),
                        NOW)
    result = triage([delivery], _rules(entrance, tmp_path), ManualClock(NOW))
    assert len(result.accepted) == int(accepted)
    if not accepted:
        assert result.rejected[0].reason_code is RejectReason.EVENT_TIME_OUT_OF_RANGE


# --- (d) every handover field is in the custody hash ------------------------------------------


@pytest.mark.parametrize(("step", "column", "value"), [
    (1, "seal_id", "SEAL-FORGED"), (1, "container_id", "BOX-FORGED"),
    (2, "flight_id", "F-FORGED"), (2, "drone_id", "uav-99"), (0, "site_id", "elsewhere")])
def test_a_changed_handover_field_breaks_the_chain_at_its_row(engine, step, column, value):
    ids = store_journey(engine)
    tamper(engine, f"UPDATE custody_event SET {column} = '{value}' "
                   f"WHERE event_id = '{_stored_id(engine, ids[step])}'")
    broken = verify(engine).first_break
    assert broken is not None, f"{column} is not in the custody hash"
    assert (broken.barcode, broken.event_id) == (BARCODE, ids[step])
    assert "changed" in broken.problem


# --- (e), (f) retention touches telemetry only -------------------------------------------------


def _count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_retention_completes_and_leaves_custody_and_flight_events_untouched(engine):
    """A whole journey 800 days old, past a 760-day telemetry retention: its telemetry
    goes, its custody events, their chain and its flight events stay, and the job runs to
    its end (it never tries to delete what it may not: a refusal would abort the run)."""
    old = NOW - timedelta(days=800)
    journey = Network(engine, ManualClock(old))

    def at(minutes: float) -> datetime:
        return old + timedelta(minutes=minutes)

    journey.store(collected("SP-OLD", at(0)), packed("SP-OLD", at(2)),
                  loaded("SP-OLD", at(4)), flight("planned", at(1)), flight("takeoff", at(5)),
                  *[position(at(5 + i), (36.69 + i * 0.01, 119.76), seq=i) for i in range(10)],
                  flight("landed", at(25)), unloaded("SP-OLD", at(26)),
                  received("SP-OLD", at(28)))
    before = {table: _count(engine, table)
              for table in ("custody_event", "custody_link", "flight_event")}
    assert before == {"custody_event": 5, "custody_link": 5, "flight_event": 3}
    assert _count(engine, "telemetry") == 10

    jobs = TurnaroundJobs(engine, Settings(database_url=str(engine.url),
                                           mqtt_url="mqtt://127.0.0.1:1",
                                           telemetry_full_days=731,
                                           telemetry_retention_days=760),
                          clock=ManualClock(NOW), holder="retention-test")
    result = jobs.telemetry_retention()
    assert result is not None  # it ran to its end
    assert _count(engine, "telemetry") == 0  # the cutoff reached this journey
    assert {table: _count(engine, table) for table in before} == before
    assert verify(engine, ["SP-OLD"]).first_break is None
