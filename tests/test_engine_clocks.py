"""The turnaround engine with drones whose clocks are wrong, links that go silent and flights
that divert, through the sweep on SQLite and PostgreSQL: liveness by the server's received
time, ETA and battery on corrected times, silence that never clears an alert, and cargo
diverted away from its destination."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dronelog.clock import ManualClock
from dronelog.contract import messages as m
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.network import import_network
from dronelog_sim.scenario import load_scenario
from tests.test_turnaround import (
    LAYOUT,
    T0,
    TOWN_POINT,
    WAYPOINT,
    Network,
    airborne,
    between,
    position,
)

LOST_LINK_S = 30.0  # the default threshold


class SkewedNetwork(Network):
    def receive(self, events_and_times: list[tuple[m.Telemetry, datetime]]) -> None:
        """Store telemetry as received by the server at the given times (its own clock)."""
        accepted = []
        for event, received_at in events_and_times:
            topic = LAYOUT.telemetry(event.drone_id)
            accepted.append(Accepted(Delivery(topic, b"", received_at), LAYOUT.parse(topic),
                                     event))
        self.writer.write(accepted, [])

    def fly(self, start_min: float, end_min: float, *, drone_ahead_s: float = 0.0,
            every_s: float = 5.0, path=None, seq0: int = 0, battery: float = 80.0,
            drain_per_report: float = 0.0, **fields) -> None:
        """Reports made every `every_s` of real time in [start, end] minutes, received
        when made (on the server's clock), stamped by a drone clock `drone_ahead_s` fast
        (negative: slow). `path(minute)` gives the position."""
        path = path or (lambda minute: between(TOWN_POINT, WAYPOINT, 0.1))
        pairs, seconds, seq = [], start_min * 60, seq0
        while seconds <= end_min * 60 + 1e-9:
            real = self.at(seconds / 60)
            event = position(real + timedelta(seconds=drone_ahead_s), path(seconds / 60),
                             seq=seq, battery=battery - drain_per_report * (seq - seq0),
                             **fields)
            pairs.append((event, real))
            seconds, seq = seconds + every_s, seq + 1
        self.receive(pairs)


@pytest.fixture
def net(engine):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    return SkewedNetwork(engine, ManualClock(T0))


def test_a_drone_60_s_slow_reporting_every_5_s_never_loses_its_link(net):
    airborne(net)
    for minute in (6, 7, 8, 9, 10):
        net.fly(minute - 1, minute, drone_ahead_s=-60, seq0=minute * 100)
        net.sweep_at(minute)
        assert ("lost_link", "F1") not in net.alerts(), minute


@pytest.mark.parametrize("drone_ahead_s", [0.0, -60.0, 65.0])
def test_a_silence_of_the_threshold_plus_1_s_is_a_lost_link_minus_1_s_is_not(net,
                                                                              drone_ahead_s):
    airborne(net)
    net.fly(5, 6, drone_ahead_s=drone_ahead_s)  # the last report received at minute 6
    net.sweep_at(6 + (LOST_LINK_S - 1) / 60)
    assert ("lost_link", "F1") not in net.alerts()
    net.sweep_at(6 + (LOST_LINK_S + 1) / 60)
    assert ("lost_link", "F1") in net.active()


def test_a_drone_65_s_fast_still_gets_its_predicted_breach(net):
    airborne(net)
    # halfway to the waypoint at 20 min, crawling at 3 m/s: about 16 km to go, some 90 min
    here = between(TOWN_POINT, WAYPOINT, 0.5)
    net.fly(19, 20, drone_ahead_s=65, speed=3.0, path=lambda minute: here)
    net.sweep_at(20)
    assert ("predicted_breach", "SP-1") in net.active()


def test_a_drone_65_s_fast_still_gets_its_low_battery(net):
    airborne(net)
    # at 18 m/s, draining 0.5 % every 5 s (90 m), with some 15 km to go at about 29 %
    net.fly(10, 10 + 110 / 60, drone_ahead_s=65, battery=40.0, drain_per_report=0.5,
            path=lambda minute: between(TOWN_POINT, WAYPOINT, 0.1 + (minute - 10) * 60 * 0.002))
    net.sweep_at(12)
    assert ("low_battery", "F1") in net.active()


def test_silence_keeps_the_predicted_breach_and_off_route_until_fresh_data_clears_them(net):
    airborne(net)
    crawl = between(TOWN_POINT, WAYPOINT, 0.5)
    off = (crawl[0] + 0.01, crawl[1])  # about 1.1 km north of the leg
    net.fly(19, 20, speed=3.0, path=lambda minute: off)
    net.sweep_at(20)
    assert {("predicted_breach", "SP-1"), ("off_route", "F1")} <= net.active()
    for minute in (21, 22, 23, 24):  # four minutes of silence
        net.sweep_at(minute)
        assert {("predicted_breach", "SP-1"), ("off_route", "F1"),
                ("lost_link", "F1")} <= net.active(), minute
    assert net.alerts("resolved") == set()
    # back on the route and nearly at the lab at full speed: every one of them clears
    near = between(WAYPOINT, (36.7790, 119.9560), 0.9)
    net.fly(24 + 5 / 60, 25, seq0=500, path=lambda minute: near)
    net.sweep_at(25)
    assert {("predicted_breach", "SP-1"), ("off_route", "F1"),
            ("lost_link", "F1")} <= net.alerts("resolved")
    assert not {k for k, _ in net.active()} & {"predicted_breach", "off_route", "lost_link"}


def diverted(net, at_min: float, to: str = "wjwsy"):
    return m.FlightDiverted(schema_version=1, event_id=uuid.uuid4(), kind="diverted",
                            event_time=net.at(at_min), drone_id="uav-02", flight_id="F1",
                            new_destination_site_id=to, reason="weather over the lab")


def test_cargo_diverted_away_from_its_lab_raises_its_own_alert_and_keeps_the_prediction(net):
    airborne(net)
    crawl = between(TOWN_POINT, WAYPOINT, 0.5)
    net.fly(19, 20, speed=3.0, path=lambda minute: crawl)
    net.sweep_at(20)
    assert ("predicted_breach", "SP-1") in net.active()
    net.store(diverted(net, 20.5))
    net.fly(20 + 5 / 60, 21, speed=3.0, seq0=100, path=lambda minute: crawl)
    net.sweep_at(21)
    assert {("cargo_diverted", "SP-1"), ("predicted_breach", "SP-1")} <= net.active()
    assert net.alerts("resolved") == set()


def test_a_diversion_with_time_to_spare_warns_and_leaves_the_prediction_to_come(net):
    airborne(net)
    net.fly(6, 7, path=lambda minute: between(TOWN_POINT, WAYPOINT, 0.1))
    net.store(diverted(net, 7))
    net.fly(7 + 5 / 60, 8, seq0=100, path=lambda minute: between(TOWN_POINT, WAYPOINT, 0.1))
    net.sweep_at(8)
    assert ("cargo_diverted", "SP-1") in net.active()
    assert ("predicted_breach", "SP-1") not in net.alerts()
