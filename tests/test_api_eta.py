"""The specimen lookup's position and ETA are the engine's: one ETA (domain/monitoring.py),
from reports on the server's clock, whatever the drone's clock says."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dronelog.api.accounts import Role
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.contract.topics import TopicLayout
from dronelog.domain.monitoring import Report, flight_eta
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.network import import_network
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround import repository as repo
from dronelog.turnaround.service import TurnaroundJobs
from dronelog.turnaround.sweep import SweepRules
from dronelog_sim.scenario import load_scenario
from tests.support import LAB, TOWN, scan, telemetry

LAYOUT = TopicLayout()
TOWN_POINT, LAB_POINT = (36.6890, 119.7610), (36.7790, 119.9560)


@pytest.mark.parametrize("drone_ahead_s", [0, 65, -60])
def test_the_lookup_shows_the_engines_eta_whatever_the_drones_clock(api, engine, clock,
                                                                    drone_ahead_s):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    device = api.as_role(Role.DEVICE)
    for minutes, name, changes in ((20, "custody.collected", {}), (15, "custody.packed", {}),
                                   (10, "custody.loaded", {"flight_id": "F7",
                                                           "drone_id": "uav-03"})):
        assert api.http.post("/api/v1/custody", headers=device,
                             json=scan(name, minutes_ago=minutes, **changes)).status_code == 201
    now, ahead = clock.now(), timedelta(seconds=drone_ahead_s)
    writer = BatchWriter(engine, clock)

    def store(event, topic, received_at):
        writer.write([Accepted(Delivery(topic, b"", received_at), LAYOUT.parse(topic), event)],
                     [])

    base = dict(schema_version=1, drone_id="uav-03", flight_id="F7")
    store(m.FlightPlanned(**base, event_id=scan("flight.planned")["event_id"], kind="planned",
                          event_time=now - timedelta(minutes=9) + ahead, origin_site_id=TOWN,
                          destination_site_id=LAB), LAYOUT.flight("uav-03"),
          now - timedelta(minutes=9))
    store(m.FlightTakeoff(**base, event_id=scan("flight.takeoff")["event_id"], kind="takeoff",
                          event_time=now - timedelta(minutes=5) + ahead, site_id=TOWN),
          LAYOUT.flight("uav-03"), now - timedelta(minutes=5))
    # a third of the way, the last 60 s, one report every 5 s, each received as it is sent
    for seq, back in enumerate(range(60, -1, -5)):
        fraction = 0.3 - back / 3000
        at = (TOWN_POINT[0] + fraction * (LAB_POINT[0] - TOWN_POINT[0]),
              TOWN_POINT[1] + fraction * (LAB_POINT[1] - TOWN_POINT[1]))
        sent = now - timedelta(seconds=back)
        store(telemetry("uav-03", seq=seq, at=sent + ahead, flight_id="F7", lat=at[0],
                        lon=at[1], ground_speed_mps=18.0, heading_deg=60.0),
              LAYOUT.telemetry("uav-03"), sent)
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()

    body = api.http.get("/api/v1/specimens/CJ2611220042", headers=api.as_role(Role.LAB)).json()
    assert body["state"] == "in_transit" and body["position"] is not None
    assert body["eta"] is not None, "no ETA: the drone's clock was taken for the server's"
    with engine.connect() as connection:
        route = repo.route_points(repo.sites(connection), repo.routes(connection), TOWN, LAB)
        reports = [Report(r.telemetry, r.received_at) for r in repo.recent_reports(
            connection, ["uav-03"], now - timedelta(minutes=5),
            now - timedelta(minutes=20))["uav-03"]]
    expected = flight_eta(route, reports, now, SweepRules().monitoring()).arrival_at
    assert datetime.fromisoformat(body["eta"].replace("Z", "+00:00")) == expected
    assert now < expected < now + timedelta(minutes=15)
