"""The fleet view's states (dashboards/js/fleet_state.js) at the edges of their thresholds,
through node; and what the fleet API gives them: the newest report's received time (not the
device's clock) and the temperature bands of the classes on board."""

from datetime import UTC, datetime, timedelta

import pytest

from dronelog.api.accounts import Role
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.tables import FlightTracking, SpecimenTracking
from dronelog.storage.writer import BatchWriter
from tests.support import LAB, LAYOUT, TOWN, run_dashboard_module, telemetry

TH = {"stale_link_s": 5, "lost_link_s": 30, "ground_stale_s": 300, "ground_offline_s": 1800}
# (drone as the view knows it, expected state)
STATES = [
    ({"flying": False, "online": None, "receivedAgeS": None}, "never"),
    ({"flying": False, "online": True, "receivedAgeS": None}, "never"),
    ({"flying": False, "online": False, "receivedAgeS": None}, "offline"),
    ({"flying": True, "receivedAgeS": 5}, "airborne"),
    ({"flying": True, "diverted": True, "receivedAgeS": 0}, "diverted"),
    ({"flying": True, "receivedAgeS": 5.001}, "stale"),
    ({"flying": True, "receivedAgeS": 30}, "stale"),
    ({"flying": True, "receivedAgeS": 30.001}, "lost"),
    ({"flying": True, "online": False, "receivedAgeS": 1}, "airborne"),
    ({"flying": False, "online": None, "receivedAgeS": 300}, "ground"),
    ({"flying": False, "online": None, "receivedAgeS": 300.001}, "stale"),
    ({"flying": False, "online": None, "receivedAgeS": 1800}, "stale"),
    ({"flying": False, "online": None, "receivedAgeS": 1800.001}, "offline"),
    ({"flying": False, "online": True, "receivedAgeS": 86400}, "ground"),
    ({"flying": False, "online": False, "receivedAgeS": 1}, "offline"),
]
# (box temperature, bands on board, expected {out, band})
BANDS = [
    (14.0, [{"low_c": 2, "high_c": 8}], {"out": True, "band": [2, 8]}),
    (8.0, [{"low_c": 2, "high_c": 8}], {"out": False, "band": [2, 8]}),
    (2.0, [{"low_c": 2, "high_c": 8}], {"out": False, "band": [2, 8]}),
    (1.9, [{"low_c": 2, "high_c": 8}], {"out": True, "band": [2, 8]}),
    (9.0, [{"low_c": 2, "high_c": 8}, {"low_c": 1, "high_c": 10}],
     {"out": True, "band": [2, 8]}),
    (None, [{"low_c": 2, "high_c": 8}], {"out": False, "band": [2, 8]}),
    (29.0, [], {"out": False, "band": None}),
]


def _node(script: str, payload) -> object:
    return run_dashboard_module("fleet_state.js", script, payload, "the dashboards' fleet states")


def test_each_state_at_the_edges_of_its_thresholds():
    got = _node("process.stdout.write(JSON.stringify(input.cases.map("
                "(c) => m.droneState(c, input.th))))",
                {"cases": [case for case, _ in STATES], "th": TH})
    assert got == [state for _, state in STATES]


def test_a_box_out_of_any_band_on_board_is_out():
    got = _node("process.stdout.write(JSON.stringify(input.map("
                "([t, bands]) => m.payloadCheck(t, bands))))",
                [[temp, bands] for temp, bands, _ in BANDS])
    assert got == [expected for _, _, expected in BANDS]


@pytest.fixture
def airborne(engine, clock):
    """uav-07 in flight with a refrigerated and an ambient specimen on board (and a received
    one that left it), its one report stamped an hour early by a wrong device clock."""
    now = clock.now()
    with engine.begin() as connection:
        connection.execute(FlightTracking.__table__.insert(), [{
            "flight_id": "F7", "drone_id": "uav-07", "state": "airborne",
            "origin_site_id": TOWN, "destination_site_id": LAB, "took_off_at": now,
            "updated_at": now}])
        connection.execute(SpecimenTracking.__table__.insert(), [
            {"barcode": f"S{i}", "state": state, "is_open": True, "priority": "stat",
             "kind": "blood_sample", "origin_site_id": TOWN, "destination_site_id": LAB,
             "temperature_class": tclass, "collected_at": now, "deadline": now,
             "warning_at": now, "flight_id": "F7", "custody_gaps": "[]", "anomalies": "[]",
             "description_conflicts": "[]", "updated_at": now}
            for i, (state, tclass) in enumerate((("in_transit", "refrigerated"),
                                                 ("in_transit", "ambient"),
                                                 ("received", "frozen")))])
    topic = LAYOUT.telemetry("uav-07")
    report = telemetry("uav-07", at=now - timedelta(hours=1), flight_id="F7")
    BatchWriter(engine, clock).write([Accepted(Delivery(topic, b"", now), LAYOUT.parse(topic),
                                               report)], [])
    return now


def test_the_fleet_api_ages_reports_by_their_receipt_and_gives_the_bands_on_board(
        api, clock, airborne):
    clock.advance(7)
    (drone,) = [d for d in api.http.get("/api/v1/drones",
                                        headers=api.as_role(Role.DISPATCHER)).json()
                if d["drone_id"] == "uav-07"]
    assert drone["received_age_s"] == 7
    assert drone["link_age_s"] == 3607  # the device's clock: not what the view ages by
    assert datetime.fromisoformat(drone["last_received"]) == airborne.astimezone(UTC)
    assert drone["payload_bands"] == [
        {"temperature_class": "ambient", "low_c": 15.0, "high_c": 25.0},
        {"temperature_class": "refrigerated", "low_c": 2.0, "high_c": 8.0}]
