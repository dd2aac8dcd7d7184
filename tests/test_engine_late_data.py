"""Late data, gaps and diversions through the turnaround engine on SQLite and PostgreSQL:
telemetry stored after its flight has landed (store and forward after a lost link) counts,
a gap between box readings is unknown rather than the last reading extended, and a diverted
flight is judged against its new plan."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.contract import messages as m
from dronelog.domain.telemetry_rules import TEMPERATURE_MAX_GAP_S
from dronelog.storage.network import import_network
from dronelog_sim.scenario import load_scenario
from tests.test_engine_clocks import SkewedNetwork
from tests.test_turnaround import (
    LAB_POINT,
    T0,
    TOWN_POINT,
    WAYPOINT,
    collected,
    flight,
    loaded,
    packed,
    position,
)

WJWSY_POINT = (36.8860, 119.8240)  # the alternate: no planned route from the town to it


@pytest.fixture
def net(engine):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    return SkewedNetwork(engine, ManualClock(T0))


def refrigerated_on_board(net, barcode="RF-1"):
    net.store(collected(barcode, net.at(0), priority="routine",
                        temperature_class="refrigerated"),
              packed(barcode, net.at(2)), loaded(barcode, net.at(4)),
              flight("planned", net.at(1)), flight("takeoff", net.at(5)))


def other_activity(net, minute: float) -> None:
    """A custody event of another specimen stored at `minute`: the network goes on, and the
    tracker's watermark on stored events moves past what came before (by more than its
    overlap), as it does in service."""
    net.clock._now = net.at(minute)
    net.store(collected(f"OTHER-{round(minute * 10)}", net.at(minute)))


def along(minute: float) -> tuple[float, float]:
    return (TOWN_POINT[0] + (WAYPOINT[0] - TOWN_POINT[0]) * minute / 20,
            TOWN_POINT[1] + (WAYPOINT[1] - TOWN_POINT[1]) * minute / 20)


def reports(net, start_min: float, end_min: float, temp: float, every_s: float = 30.0,
            seq0: int = 0) -> list[m.Telemetry]:
    count = round((end_min - start_min) * 60 / every_s) + 1
    return [position(net.at(start_min + i * every_s / 60), along(start_min + i * every_s / 60),
                     seq=seq0 + i, temp=temp) for i in range(count)]


def tracking(net, barcode="RF-1"):
    with net.engine.connect() as connection:
        return connection.execute(text(
            "SELECT excursion, temp_out_of_range_s, temp_unknown_s, temp_max_c FROM "
            "specimen_tracking WHERE barcode = :b"), {"b": barcode}).one()


def test_telemetry_stored_after_the_landing_counts_and_the_gap_was_unknown(net, api):
    """The issue's case: 9 min at 14 °C for a 2-8 °C unit, sent by store and forward after
    a lost link and arriving 3 min after the landing."""
    refrigerated_on_board(net)
    net.receive([(r, r.event_time) for r in reports(net, 5, 8, temp=5.0)])  # live, in range
    net.sweep_at(8.2)
    net.clock._now = net.at(20)
    net.store(flight("landed", net.at(20)))
    net.sweep_at(20.5)
    row = tracking(net)
    assert not row.excursion and row.temp_out_of_range_s == 0
    # from the last reading at 8 to the landing at 20: 720 s, of which the reading vouches
    # for the first 120
    assert row.temp_unknown_s == pytest.approx(720 - TEMPERATURE_MAX_GAP_S)
    lookup = api.http.get("/api/v1/specimens/RF-1", headers=api.as_role(Role.LAB)).json()
    assert lookup["temp_unknown_s"] == pytest.approx(720 - TEMPERATURE_MAX_GAP_S)
    assert ("temperature_excursion", "RF-1") not in net.alerts()

    other_activity(net, 22)
    net.sweep_at(22.5)
    late = reports(net, 8.5, 17.5, temp=14.0, seq0=100)  # 9 min of readings, every 30 s
    net.receive([(r, net.at(23)) for r in late])
    net.sweep_at(23.5)
    row = tracking(net)
    assert row.excursion and row.temp_max_c == 14.0
    assert row.temp_out_of_range_s == pytest.approx(9 * 60)  # 8.5 to 17.5 at 14 °C
    assert row.temp_unknown_s == pytest.approx(150 - TEMPERATURE_MAX_GAP_S)  # 17.5 to 20
    assert ("temperature_excursion", "RF-1") in net.active()


def test_an_excursion_in_the_air_is_raised_while_the_flight_is_in_the_air(net):
    refrigerated_on_board(net)
    net.receive([(r, r.event_time) for r in reports(net, 5, 6, temp=5.0)])
    other_activity(net, 6)
    net.sweep_at(6)
    for minute in (7, 8, 9, 10):  # out of range from minute 6 on, reported live
        net.receive([(r, r.event_time) for r in reports(net, minute - 0.5, minute, temp=12.0,
                                                        seq0=minute * 10)])
        net.sweep_at(minute)
    assert tracking(net).excursion
    assert ("temperature_excursion", "RF-1") in net.active()  # before any landing


def test_a_report_stored_late_with_an_old_received_time_counts_while_in_the_air(net):
    """An ingester that retried a batch through an outage stores it with the time it
    received it, minutes before the tracker's telemetry watermark (which other drones'
    live reports moved on): the flights in the air are re-derived every run, so its
    readings still count."""
    refrigerated_on_board(net)
    net.receive([(r, r.event_time) for r in reports(net, 5, 6, temp=5.0)])  # then silent
    other_drone = [r.model_copy(update={"drone_id": "uav-01", "flight_id": "F9"})
                   for r in reports(net, 5, 10, temp=5.0, seq0=500)]
    net.receive([(r, r.event_time) for r in other_drone])  # live until minute 10
    other_activity(net, 8)
    net.sweep_at(10)
    held = reports(net, 6.5, 9, temp=13.0, seq0=100)
    net.receive([(r, net.at(7)) for r in held])  # received at 7, stored only now, at 10
    net.sweep_at(10.2)
    assert tracking(net).temp_out_of_range_s == pytest.approx(150)  # 6.5 to 9
    assert ("temperature_excursion", "RF-1") in net.active()


# --- diversions ----------------------------------------------------------------------------


def diverted(net, at_min: float, to: str = "wjwsy"):
    return m.FlightDiverted(schema_version=1, event_id=uuid.uuid4(), kind="diverted",
                            event_time=net.at(at_min), drone_id="uav-02", flight_id="F1",
                            new_destination_site_id=to, reason="weather over the lab")


def towards(start, end, fraction):
    return (start[0] + (end[0] - start[0]) * fraction, start[1] + (end[1] - start[1]) * fraction)


def fly_path(net, start_min, end_min, path, seq0):
    count = round((end_min - start_min) * 12) + 1  # every 5 s
    net.receive([(position(net.at(start_min + i / 12), path(start_min + i / 12),
                           seq=seq0 + i), net.at(start_min + i / 12)) for i in range(count)])


def test_a_diverted_flight_is_judged_against_its_new_plan(net):
    refrigerated_on_board(net)
    # on the planned route to the waypoint, at 18 m/s-ish, reaching it at minute 10
    fly_path(net, 5, 10, lambda minute: towards(TOWN_POINT, WAYPOINT, (minute - 5) / 5), 0)
    net.store(diverted(net, 10))
    # from the waypoint straight to the alternate; the line from the town to the alternate
    # (the old way of judging it) is some 6 km west of here
    fly_path(net, 10, 14, lambda minute: towards(WAYPOINT, WJWSY_POINT, (minute - 10) / 20),
             100)
    for minute in (11, 12, 13, 14):
        net.sweep_at(minute)
        assert ("off_route", "F1") not in net.alerts(), minute


def test_a_diverted_flight_that_strays_from_its_new_plan_is_off_route(net):
    refrigerated_on_board(net)
    fly_path(net, 5, 10, lambda minute: towards(TOWN_POINT, WAYPOINT, (minute - 5) / 5), 0)
    net.store(diverted(net, 10))
    # it keeps flying to the lab it was diverted from
    fly_path(net, 10, 14, lambda minute: towards(WAYPOINT, LAB_POINT, (minute - 10) / 8), 100)
    net.sweep_at(14)
    assert ("off_route", "F1") in net.active()


def test_off_route_against_the_old_plan_clears_once_the_diversion_is_known(net):
    refrigerated_on_board(net)
    fly_path(net, 5, 10, lambda minute: towards(TOWN_POINT, WAYPOINT, (minute - 5) / 5), 0)
    # it turns for the alternate at minute 10; the diversion reaches dronelog at minute 13
    fly_path(net, 10, 13, lambda minute: towards(WAYPOINT, WJWSY_POINT, (minute - 10) / 20),
             100)
    net.sweep_at(13)
    assert ("off_route", "F1") in net.active()  # against the route it was given
    net.clock._now = net.at(13)
    net.store(diverted(net, 10))
    fly_path(net, 13 + 1 / 12, 14, lambda minute: towards(WAYPOINT, WJWSY_POINT,
                                                          (minute - 10) / 20), 200)
    net.sweep_at(14)
    assert ("off_route", "F1") in net.alerts("resolved")
    assert ("off_route", "F1") not in net.active()


def test_a_diversion_before_any_report_is_judged_from_the_origin(net):
    refrigerated_on_board(net)
    net.store(diverted(net, 5.5))
    fly_path(net, 6, 9, lambda minute: towards(TOWN_POINT, WJWSY_POINT, (minute - 6) / 15), 0)
    net.sweep_at(9)
    assert ("off_route", "F1") not in net.alerts()
