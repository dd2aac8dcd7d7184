"""An accelerated simulator run through the turnaround engine raises exactly the alerts its
ground truth expects: no missing, no spurious.

The run's messages are stored in time order as the ingester would store them, and the
engine sweeps every 30 simulated seconds on a controllable clock, so four hours pass
in seconds without sleeping.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Delivery
from dronelog.ingest.triage import TriageRules, triage
from dronelog.storage.network import import_network
from dronelog.storage.tables import Alert, SpecimenTracking
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.service import TurnaroundJobs
from dronelog_sim.faults import FaultRates
from dronelog_sim.network import NetworkSimulator
from dronelog_sim.scenario import load_scenario

SCENARIO = Path(__file__).parent.parent / "scenarios" / "pingdu.toml"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
DURATION = timedelta(hours=4)
STEP = timedelta(seconds=30)
FAULTS = ("lost_link=0.4,temperature_excursion=0.3,seal_changed=0.6,delayed_receipt=0.15,"
          "delayed_pickup=0.1,duplicate=0.05,out_of_order=0.05,malformed=0.02")


def expected_alerts(outcomes: list[dict]) -> set[tuple[str, str]]:
    """What the ground truth says must raise an alert."""
    specimens = [o for o in outcomes if o["type"] == "specimen"]
    flights = {o["flight_id"]: o for o in outcomes if o["type"] == "flight"}
    faults = [o for o in outcomes if o["type"] == "fault"]
    expected = {("breach", o["barcode"]) for o in specimens if o["breach"]}
    expected |= {("temperature_excursion", o["barcode"]) for o in specimens if o["excursion"]}
    expected |= {("lost_link", f["subject"]) for f in faults if f["fault"] == "lost_link"}
    expected |= {("custody_gap", barcode) for f in faults if f["fault"] == "seal_changed"
                 for barcode in flights[f["subject"]]["cargo"]}
    return expected


@pytest.mark.timeout(600)
def test_four_simulated_hours_raise_exactly_the_expected_alerts(engine):
    scenario = load_scenario(SCENARIO)
    import_network(engine, scenario)
    run = NetworkSimulator(scenario, START, DURATION, seed=21,
                           faults=FaultRates.parse(FAULTS)).run()
    expected = expected_alerts(run.outcomes)
    assert {kind for kind, _ in expected} == {"breach", "temperature_excursion", "lost_link",
                                              "custody_gap"}, "the run should exercise each"

    clock = ManualClock(START)
    writer = BatchWriter(engine, clock)
    rules = TriageRules(layout=TopicLayout(), max_age=timedelta(days=3650))
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    jobs = TurnaroundJobs(engine, settings, clock=clock)
    emissions = iter(run.emissions)
    pending = next(emissions, None)
    moment = START
    while moment <= START + DURATION:
        batch = []
        while pending is not None and pending.at <= moment:
            batch.append(Delivery(pending.topic, pending.payload, pending.at))
            pending = next(emissions, None)
        clock._now = moment
        if batch:
            sorted_out = triage(batch, rules, clock)
            writer.write(sorted_out.accepted, sorted_out.rejected)
        jobs.turnaround()
        moment += STEP

    table = Alert.__table__
    with engine.connect() as connection:
        raised = {(row.kind, row.subject_id) for row in connection.execute(
            select(table.c.kind, table.c.subject_id))}
    checked = {"breach", "temperature_excursion", "lost_link", "custody_gap",
               "rejected_specimen", "off_route", "low_battery"}
    raised_checked = {alert for alert in raised if alert[0] in checked}
    assert raised_checked - expected == set(), "spurious alerts"
    assert expected - raised_checked == set(), "missing alerts"
    truth = {o["barcode"]: o for o in run.outcomes if o["type"] == "specimen"}
    tracking = SpecimenTracking.__table__
    with engine.connect() as connection:
        recorded = connection.execute(select(tracking).where(tracking.c.excursion.is_(True))
                                      ).all()
    assert {row.barcode for row in recorded} == {
        b for kind, b in expected if kind == "temperature_excursion"}
    end = START + DURATION
    unseen = {f["subject"] for f in run.outcomes if f["type"] == "fault"
              and f["fault"] == "lost_link"}  # telemetry missing in the gap
    unseen |= {o["flight_id"] for o in run.outcomes if o["type"] == "flight"
               and datetime.fromisoformat(o["landed_at"]) > end}  # still flying at the end
    for row in recorded:
        real = truth[row.barcode]
        if unseen & set(real["flights"]):
            # part of the flight was never reported: the box may have been warmer than
            # anyone could see, never cooler
            assert row.temp_max_c <= real["temp_max_c"] + 0.5
            continue
        # min, max and time out of range as the truth has them (give or take sensor noise)
        assert row.temp_max_c == pytest.approx(real["temp_max_c"], abs=0.5)
        assert row.temp_min_c == pytest.approx(real["temp_min_c"], abs=0.5)
        assert row.temp_out_of_range_s == pytest.approx(real["seconds_out_of_range"], abs=30)
