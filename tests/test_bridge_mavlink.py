"""The MAVLink bridge: frames encoded by pymavlink's generated classes, decoded and translated
(units, unknown values, armed and landed transitions), and end to end: real UDP datagrams to
`python -m dronelog.bridges mavlink`, a private broker, the real ingester, the rows stored."""

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink
from sqlalchemy import select, text
from structlog.testing import capture_logs

from dronelog.bridges.flights import FlightBook, Site, SiteBook, event_id
from dronelog.bridges.mapping import MappingError, load_drones, load_sites
from dronelog.bridges.mavlink import MavlinkTranslator, decode_datagram
from dronelog.contract.messages import (
    DroneStatus,
    FlightAborted,
    FlightLanded,
    FlightPlanned,
    FlightReturnedHome,
    FlightTakeoff,
    Telemetry,
)
from dronelog.storage.tables import FlightEvent
from tests.support import LAYOUT, IngesterProcess, Publisher, count, wait_for_count

T0 = datetime(2026, 11, 22, 0, 12, 30, tzinfo=UTC)
ORIGIN = Site("cjzxwsy", 36.6890, 119.7610, 30)
DESTINATION = Site("pdrmyy", 36.7790, 119.9560, 30)
SITES = SiteBook([ORIGIN, DESTINATION])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def encode(sysid: int, *messages, v1: bool = False, compid: int = 1) -> bytes:
    """Frames as an autopilot sends them: pymavlink's generated classes, packed."""
    mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=compid)
    return b"".join(message.pack(mav, force_mavlink1=v1) for message in messages)


def heartbeat(armed: bool, autopilot: int = mavlink.MAV_AUTOPILOT_PX4):
    mode = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    if armed:
        mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    return mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_QUADROTOR, autopilot, mode, 0,
                                             mavlink.MAV_STATE_ACTIVE, 3)


def position(lat: float, lon: float, alt_m: float = 60.0, height_m: float = 0.0,
             vx: int = 0, vy: int = 0, hdg: int = 65535):
    return mavlink.MAVLink_global_position_int_message(
        1000, round(lat * 1e7), round(lon * 1e7), round(alt_m * 1000), round(height_m * 1000),
        vx, vy, 0, hdg)


def sys_status(battery: int):
    return mavlink.MAVLink_sys_status_message(0, 0, 0, 500, 15800, 1200, battery, 0, 0, 0, 0,
                                              0, 0)


def battery_status(remaining: int, battery_id: int = 0):
    return mavlink.MAVLink_battery_status_message(
        battery_id, 0, 0, 2500, [3950] * 4 + [65535] * 6, 1200, 800, -1, remaining)


def landed_state(state: int):
    return mavlink.MAVLink_extended_sys_state_message(0, state)


def box_temperature(celsius: float, name: bytes = b"BOX_T"):
    return mavlink.MAVLink_named_value_float_message(1000, name, celsius)


def translate(translator: MavlinkTranslator, data: bytes, now: datetime) -> list:
    decoded = decode_datagram(data)
    assert not decoded.problems
    return [e for m in decoded.messages for e in translator.translate(m, now)]


def only(events: list, kind: type):
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


# --- units ------------------------------------------------------------------------------------


def test_global_position_int_units_become_degrees_metres_and_metres_per_second():
    translator = MavlinkTranslator({1: "uav-01"})
    frame = encode(1, sys_status(76), mavlink.MAVLink_global_position_int_message(
        1000, 367890123, 1199512345, 152000, 30500, -1234, 1234, -50, 9000))
    report = only(translate(translator, frame, at(0)), Telemetry)
    assert report.lat == pytest.approx(36.7890123, abs=1e-9)
    assert report.lon == pytest.approx(119.9512345, abs=1e-9)
    assert report.alt_m == 152.0
    assert report.height_m == 30.5
    assert report.ground_speed_mps == pytest.approx(17.452, abs=1e-3)  # hypot(12.34, 12.34)
    assert report.heading_deg == pytest.approx(135.0)  # south-east: course, not the 90° yaw
    assert report.battery_pct == 76.0
    assert report.payload_temp_c is None and report.link_quality_pct is None
    assert report.drone_id == "uav-01" and report.flight_id is None
    assert report.event_time == at(0)
    assert report.seq == int(at(0).timestamp())  # report periods of 1 s since the epoch
    assert report.event_id == event_id("uav-01", "telemetry", report.seq)


def test_battery_status_wins_over_sys_status_and_the_box_temperature_comes_by_name():
    translator = MavlinkTranslator({1: "uav-01"})
    frame = encode(1, sys_status(76), battery_status(71), battery_status(12, battery_id=1),
                   box_temperature(5.5), box_temperature(40.0, b"ESC_T"),
                   position(36.7, 119.9))
    report = only(translate(translator, frame, at(0)), Telemetry)
    assert report.battery_pct == 71.0  # battery 0, not battery 1 nor SYS_STATUS
    assert report.payload_temp_c == 5.5


def test_mavlink_1_frames_are_read_too():
    translator = MavlinkTranslator({1: "uav-01"})
    frame = encode(1, sys_status(50), position(36.7, 119.9, alt_m=80), v1=True)
    assert only(translate(translator, frame, at(0)), Telemetry).alt_m == 80.0


# --- unknown values ---------------------------------------------------------------------------


def test_unknown_values_are_never_reported_as_numbers():
    translator = MavlinkTranslator({1: "uav-01"})
    with capture_logs() as logs:
        # battery_remaining -1 (unknown): no report, the contract requires a battery level
        assert translate(translator, encode(1, sys_status(-1), position(36.7, 119.9)),
                         at(0)) == []
    assert any(e["event"] == "telemetry held back" and "battery" in e["why"] for e in logs)
    # lat = lon = 0 is an autopilot without a fix: nothing to report
    no_fix = mavlink.MAVLink_global_position_int_message(1000, 0, 0, 0, 0, 0, 0, 0, 65535)
    assert translate(translator, encode(1, sys_status(60), no_fix), at(1)) == []
    # hovering, yaw unknown (hdg 65535): VFR_HUD's heading is the one left
    frame = encode(1, mavlink.MAVLink_vfr_hud_message(0.3, 0.2, 271, 40, 80.0, 0.0),
                   position(36.7, 119.9, vx=10, vy=-10))
    report = only(translate(translator, frame, at(2)), Telemetry)
    assert report.heading_deg == 271.0 and report.battery_pct == 60.0
    # hovering with a known yaw: the yaw, degrees from centidegrees
    report = only(translate(translator, encode(1, position(36.7, 119.9, hdg=35999)), at(3)),
                  Telemetry)
    assert report.heading_deg == pytest.approx(359.99)


def test_a_stale_box_temperature_is_left_out():
    translator = MavlinkTranslator({1: "uav-01"}, box_temperature_max_age_s=10)
    translate(translator, encode(1, sys_status(60), box_temperature(4.0)), at(0))
    first = only(translate(translator, encode(1, position(36.7, 119.9)), at(5)), Telemetry)
    later = only(translate(translator, encode(1, position(36.7, 119.9)), at(11)), Telemetry)
    assert first.payload_temp_c == 4.0 and later.payload_temp_c is None


def test_one_report_per_period_with_consecutive_seq():
    translator = MavlinkTranslator({1: "uav-01"}, report_period_s=1.0)
    translate(translator, encode(1, sys_status(60)), at(0))
    reports = []
    for tenth in range(0, 30, 2):  # 5 Hz for 3 s
        reports += translate(translator, encode(1, position(36.7, 119.9)), at(tenth / 10))
    assert [r.event_time for r in reports] == [at(0), at(1), at(2)]
    assert [r.seq for r in reports] == [r.seq for r in reports][:1] + [
        reports[0].seq + 1, reports[0].seq + 2]
    # a restarted bridge (no memory) gives the same seq and id for the same second
    again = MavlinkTranslator({1: "uav-01"}, report_period_s=1.0)
    translate(again, encode(1, sys_status(60)), at(2.5))
    assert only(translate(again, encode(1, position(36.7, 119.9)), at(2.5)),
                Telemetry).event_id == reports[2].event_id


def test_systems_that_are_not_mapped_and_heartbeats_of_other_components_are_ignored():
    translator = MavlinkTranslator({1: "uav-01"})
    assert translate(translator, encode(7, heartbeat(True), sys_status(50),
                                        position(36.7, 119.9)), at(0)) == []
    assert translator.unmapped == {7}
    gimbal = heartbeat(False, autopilot=mavlink.MAV_AUTOPILOT_INVALID)
    assert translate(translator, encode(1, gimbal, compid=154), at(0)) == []


# --- armed, landed, take-off, landing ---------------------------------------------------------


def plan(drone: str = "uav-01", flight: str = "F20261122-0007", minutes_before: float = 10):
    return FlightPlanned(schema_version=1, event_id=uuid.uuid4(),
                         event_time=T0 - timedelta(minutes=minutes_before), kind="planned",
                         drone_id=drone, flight_id=flight, origin_site_id=ORIGIN.id,
                         destination_site_id=DESTINATION.id)


def fly(translator: MavlinkTranslator, with_landed_state: bool = True) -> list:
    """On the ground at the origin, take-off, cruise, landing at the destination."""
    state = ([landed_state(mavlink.MAV_LANDED_STATE_ON_GROUND)] if with_landed_state else [])
    events = translate(translator, encode(1, heartbeat(False), sys_status(95), *state,
                                          position(ORIGIN.lat, ORIGIN.lon)), at(0))
    events += translate(translator, encode(1, heartbeat(True), position(ORIGIN.lat, ORIGIN.lon,
                                                                        height_m=0.2)), at(1))
    state = ([landed_state(mavlink.MAV_LANDED_STATE_TAKEOFF)] if with_landed_state else [])
    events += translate(translator, encode(1, *state, position(
        ORIGIN.lat, ORIGIN.lon + 0.0001, height_m=4.0)), at(2))
    state = ([landed_state(mavlink.MAV_LANDED_STATE_IN_AIR)] if with_landed_state else [])
    events += translate(translator, encode(1, *state, position(
        36.73, 119.86, height_m=120, vx=800, vy=1500)), at(3))
    state = ([landed_state(mavlink.MAV_LANDED_STATE_ON_GROUND)] if with_landed_state else [])
    events += translate(translator, encode(1, position(  # the descent is seen before
        DESTINATION.lat, DESTINATION.lon + 0.0001, height_m=0.1), *state), at(4))
    if not with_landed_state:
        events += translate(translator, encode(1, heartbeat(False)), at(5))
    return events


def test_landed_state_transitions_are_take_off_and_landing_of_the_planned_flight():
    translator = MavlinkTranslator({1: "uav-01"}, FlightBook(SITES))
    translator.flights.plan(plan())
    events = fly(translator)
    status = only(events, DroneStatus)
    assert (status.online, status.reason, status.event_time) == (True, "connected", at(0))
    takeoff, landed = only(events, FlightTakeoff), only(events, FlightLanded)
    assert (takeoff.flight_id, takeoff.site_id, takeoff.event_time) == (
        "F20261122-0007", ORIGIN.id, at(2))
    assert (landed.flight_id, landed.site_id, landed.event_time) == (
        "F20261122-0007", DESTINATION.id, at(4))
    assert takeoff.event_id == event_id("uav-01", "takeoff", "F20261122-0007")
    reports = [e for e in events if isinstance(e, Telemetry)]
    # the touchdown report came before the landed state: it still belongs to the flight
    assert [r.flight_id for r in reports] == [None, None] + ["F20261122-0007"] * 3
    assert [e.kind for e in events if hasattr(e, "kind")] == ["takeoff", "landed"]


def test_without_extended_sys_state_armed_and_height_tell_take_off_and_disarm_landing():
    translator = MavlinkTranslator({1: "uav-01"}, FlightBook(SITES))
    events = fly(translator, with_landed_state=False)
    takeoff, landed = only(events, FlightTakeoff), only(events, FlightLanded)
    # no plan: the flight is named by the drone and the UTC take-off time
    assert takeoff.flight_id == landed.flight_id == "uav-01-20261122T001232Z"
    assert takeoff.event_time == at(2)  # armed, 4 m above home: above the 3 m fallback
    assert (takeoff.site_id, landed.site_id, landed.event_time) == (
        ORIGIN.id, DESTINATION.id, at(5))


def test_landing_back_at_the_origin_is_returned_home_and_elsewhere_aborted():
    book = FlightBook(SITES)
    book.plan(plan(flight="F1"))
    assert book.takeoff("uav-01", at(0), (ORIGIN.lat, ORIGIN.lon)).flight_id == "F1"
    home = book.landed("uav-01", at(60), (ORIGIN.lat, ORIGIN.lon))
    assert isinstance(home, FlightReturnedHome) and home.site_id == ORIGIN.id
    book.plan(plan(flight="F2"))
    book.takeoff("uav-01", at(100), (ORIGIN.lat, ORIGIN.lon))
    field = book.landed("uav-01", at(200), (36.70, 119.80))
    assert isinstance(field, FlightAborted) and field.site_id is None
    assert "36.700000, 119.800000" in field.reason
    # a plan redelivered after its flight was flown does not name the next take-off
    book.plan(plan(flight="F2"))
    assert book.takeoff("uav-01", at(300), (ORIGIN.lat, ORIGIN.lon)).flight_id.startswith(
        "uav-01-2026")


def test_without_sites_the_plan_names_origin_and_destination_and_old_plans_expire():
    book = FlightBook(plan_max_age=timedelta(hours=1))
    book.plan(plan(flight="OLD", minutes_before=120))
    with capture_logs() as logs:
        assert book.takeoff("uav-01", at(0), (36.0, 119.0)) is None  # origin unknown
    assert any("take-off not reported" in e["event"] for e in logs)
    book.landed("uav-01", at(10), None)
    book.plan(plan(flight="F3"))
    assert book.takeoff("uav-01", at(20), None).site_id == ORIGIN.id
    assert book.landed("uav-01", at(30), None).site_id == DESTINATION.id


def test_a_bridge_started_mid_flight_reports_no_take_off_and_no_unknown_landing():
    translator = MavlinkTranslator({1: "uav-01"}, FlightBook(SITES))
    events = translate(translator, encode(1, heartbeat(True), sys_status(60), landed_state(
        mavlink.MAV_LANDED_STATE_IN_AIR), position(36.73, 119.86, height_m=100)), at(0))
    assert [type(e) for e in events] == [DroneStatus, Telemetry]
    with capture_logs() as logs:
        events = translate(translator, encode(1, landed_state(
            mavlink.MAV_LANDED_STATE_ON_GROUND), position(DESTINATION.lat, DESTINATION.lon)),
            at(5))
    assert [type(e) for e in events] == [Telemetry]
    assert any("landing not reported" in e["event"] for e in logs)
    # but a plan known by then names the flight it is flying
    translator = MavlinkTranslator({1: "uav-01"}, FlightBook(SITES))
    translator.flights.plan(plan())
    translate(translator, encode(1, heartbeat(True), sys_status(60), landed_state(
        mavlink.MAV_LANDED_STATE_IN_AIR), position(36.73, 119.86, height_m=100)), at(0))
    events = translate(translator, encode(1, position(DESTINATION.lat, DESTINATION.lon),
                                          landed_state(mavlink.MAV_LANDED_STATE_ON_GROUND)),
                       at(5))
    assert only(events, FlightLanded).flight_id == "F20261122-0007"


def test_silence_is_a_lost_link_and_a_heartbeat_brings_it_back():
    translator = MavlinkTranslator({1: "uav-01"}, link_timeout_s=10)
    translate(translator, encode(1, heartbeat(False)), at(0))
    assert translator.tick(at(10)) == []
    lost = translator.tick(at(10.5))
    assert [(s.online, s.reason, s.event_time) for s in lost] == [
        (False, "disconnected", at(10.5))]
    assert translator.tick(at(20)) == []
    back = translate(translator, encode(1, heartbeat(False)), at(21))
    assert [(s.online, s.reason) for s in back] == [(True, "connected")]
    assert [(s.online, s.reason) for s in translator.shutdown(at(22))] == [
        (False, "disconnected")]


# --- decoding hostile input -------------------------------------------------------------------


def test_garbage_is_reported_and_never_swallows_the_next_datagram():
    good = encode(1, sys_status(50), position(36.7, 119.9))
    # a MAVLink 2 marker announcing a 255-byte frame: a shared parser would wait for it and
    # eat the next datagram's frames
    truncated = decode_datagram(good[:-3])
    assert [m.get_type() for m in truncated.messages] == ["SYS_STATUS"] and truncated.problems
    for garbage in (b"\xfd\xff" + b"\x00" * 20, b"hello world", b"\xfe", b"",
                    bytes(range(256))):
        decoded = decode_datagram(garbage)
        assert decoded.messages == [] and (decoded.problems or garbage == b"")
        assert [m.get_type() for m in decode_datagram(good).messages] == [
            "SYS_STATUS", "GLOBAL_POSITION_INT"]
    mixed = decode_datagram(good + b"\x00junk")
    assert len(mixed.messages) == 2 and mixed.problems
    corrupt = bytearray(good)
    corrupt[15] ^= 0xFF  # a payload byte: the CRC no longer matches
    assert decode_datagram(bytes(corrupt)).problems


# --- mapping ----------------------------------------------------------------------------------


def test_the_mapping_comes_from_toml_and_options(tmp_path):
    mapping = tmp_path / "bridges.toml"
    mapping.write_text('[mavlink]\n1 = "uav-01"\n2 = "uav-02"\n[dji]\n"1581F5BKD" = "uav-03"\n'
                       '[[sites]]\nid = "pdrmyy"\nlat = 36.779\nlon = 119.956\n'
                       'pad_radius_m = 30\n', encoding="utf-8")
    assert load_drones("mavlink", mapping, ["2=uav-09", "3=uav-03"]) == {
        1: "uav-01", 2: "uav-09", 3: "uav-03"}
    assert load_drones("dji", mapping, []) == {"1581F5BKD": "uav-03"}
    assert load_sites([mapping], 100.0) == [Site("pdrmyy", 36.779, 119.956, 30.0)]
    scenario = Path(__file__).parent.parent / "scenarios" / "pingdu.toml"
    assert {s.id for s in load_sites([scenario], 100.0)} == {
        "pdrmyy", "pddermyy", "cjzxwsy", "wjwsy"}
    for bad in (["0=uav-01"], ["256=uav-01"], ["x=uav-01"], ["1=uav 01"], ["1"],
                ["1=uav-01", "2=uav-01"]):
        with pytest.raises(MappingError):
            load_drones("mavlink", None, bad)


# --- end to end -------------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_bridge(kind: str, args: list[str], broker, workdir: Path) -> tuple:
    log_path = workdir / f"bridge-{kind}.log"
    env = {**os.environ, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_MQTT_PROTOCOL": broker.protocol, "DRONELOG_LOG_FORMAT": "json",
           "DRONELOG_LOG_LEVEL": "DEBUG", "DRONELOG_CONFIG": str(workdir / "none.toml")}
    log = open(log_path, "ab")  # the child process owns it
    process = subprocess.Popen([sys.executable, "-m", "dronelog.bridges", kind, *args],
                               env=env, cwd=workdir, stdout=log, stderr=log)
    return process, log_path


def wait_for_log(process, log_path: Path, needle: str, times: int = 1, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.read_text(errors="replace").count(needle) >= times:
            return
        if process.poll() is not None:
            raise RuntimeError(f"bridge exited: {log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no {needle!r} in the bridge's log: {log_path.read_text()[-3000:]}")


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rows(engine, sql: str) -> list:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_udp_frames_reach_the_database_through_the_bridge_and_the_ingester(
        broker, engine, database_url, tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    sites = tmp_path / "sites.toml"
    sites.write_text("".join(f'[[sites]]\nid = "{s.id}"\nlat = {s.lat}\nlon = {s.lon}\n'
                             f"pad_radius_m = {s.radius_m}\n" for s in (ORIGIN, DESTINATION)),
                     encoding="utf-8")
    port = free_udp_port()
    bridge, log_path = start_bridge("mavlink", [
        "--listen", f"127.0.0.1:{port}", "--map", "1=uav-m1", "--sites", str(sites),
        "--report-period", "0.05"], broker, tmp_path)
    try:
        wait_for_log(bridge, log_path, "MAVLink bridge listening")
        wait_for_log(bridge, log_path, '"subscribed"')
        flight = "F-BRIDGE-0001"
        dispatch = Publisher(broker.url, protocol=broker.protocol)
        planned = plan("uav-m1", flight).model_copy(update={"event_time": datetime.now(UTC)})
        dispatch.publish(LAYOUT.flight("uav-m1"), planned.model_dump_json().encode())
        dispatch.wait_all_acked()
        dispatch.close()
        wait_for_log(bridge, log_path, "plan received")

        start = datetime.now(UTC)
        on_ground = mavlink.MAV_LANDED_STATE_ON_GROUND
        datagrams = [
            encode(1, heartbeat(False), sys_status(95), landed_state(on_ground),
                   position(ORIGIN.lat, ORIGIN.lon, alt_m=52.0)),
            encode(9, heartbeat(True), sys_status(50), position(36.0, 119.0)),  # not mapped
            encode(1, heartbeat(True), position(ORIGIN.lat, ORIGIN.lon, alt_m=52.1)),
            encode(1, landed_state(mavlink.MAV_LANDED_STATE_TAKEOFF),
                   position(ORIGIN.lat, ORIGIN.lon, alt_m=57.0, height_m=5.0)),
            encode(1, landed_state(mavlink.MAV_LANDED_STATE_IN_AIR), battery_status(80),
                   box_temperature(4.5), position(36.7300, 119.8600, alt_m=172.0,
                                                  height_m=120.0, vx=800, vy=1500)),
            b"\xfd\xff\x00\x00 this is not MAVLink",
            encode(1, position(36.7500, 119.9000, alt_m=172.5, height_m=120.5, vx=0,
                               vy=-1234)),
            encode(1, landed_state(mavlink.MAV_LANDED_STATE_LANDING),
                   position(DESTINATION.lat, DESTINATION.lon, alt_m=48.0, height_m=3.0)),
            encode(1, landed_state(on_ground),
                   position(DESTINATION.lat, DESTINATION.lon, alt_m=45.0, height_m=0.0)),
            encode(1, heartbeat(False)),
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for datagram in datagrams:
                udp.sendto(datagram, ("127.0.0.1", port))
                time.sleep(0.25)
        wait_for_log(bridge, log_path, "MAVLink datagram skipped")
        assert bridge.poll() is None  # garbage did not stop it
        bridge.terminate()
        assert bridge.wait(30) == 0
        end = datetime.now(UTC)

        telemetry_sql = ("SELECT drone_id, flight_id, lat, lon, alt_m, height_m, "
                         "ground_speed_mps, heading_deg, battery_pct, payload_temp_c "
                         "FROM telemetry ORDER BY event_time")
        assert wait_for_count(engine, "SELECT count(*) FROM telemetry", 7, settle=1.0) == 7
        stored = rows(engine, telemetry_sql)
        expected = [
            ("uav-m1", None, ORIGIN.lat, ORIGIN.lon, 52.0, 0.0, 0.0, 0.0, 95.0, None),
            ("uav-m1", None, ORIGIN.lat, ORIGIN.lon, 52.1, 0.0, 0.0, 0.0, 95.0, None),
            ("uav-m1", flight, ORIGIN.lat, ORIGIN.lon, 57.0, 5.0, 0.0, 0.0, 95.0, None),
            ("uav-m1", flight, 36.73, 119.86, 172.0, 120.0, 17.0, 61.9275, 80.0, 4.5),
            ("uav-m1", flight, 36.75, 119.90, 172.5, 120.5, 12.34, 270.0, 80.0, 4.5),
            ("uav-m1", flight, DESTINATION.lat, DESTINATION.lon, 48.0, 3.0, 0.0, 270.0, 80.0,
             4.5),
            ("uav-m1", None, DESTINATION.lat, DESTINATION.lon, 45.0, 0.0, 0.0, 270.0, 80.0,
             4.5),
        ]
        for row, want in zip(stored, expected, strict=True):
            assert row[:2] == want[:2]
            assert [None if v is None else pytest.approx(v, abs=1e-4) for v in want[2:]] == list(
                row[2:])
        seqs = [r[0] for r in rows(engine, "SELECT seq FROM telemetry ORDER BY event_time")]
        assert seqs == sorted(set(seqs))

        wait_for_count(engine, "SELECT count(*) FROM flight_event", 3, settle=0.5)
        events = rows(engine, "SELECT kind, flight_id, drone_id, site_id, origin_site_id, "
                      "destination_site_id FROM flight_event ORDER BY event_time")
        assert events == [
            ("planned", flight, "uav-m1", None, ORIGIN.id, DESTINATION.id),
            ("takeoff", flight, "uav-m1", ORIGIN.id, None, None),
            ("landed", flight, "uav-m1", DESTINATION.id, None, None),
        ]
        table = FlightEvent.__table__
        with engine.connect() as connection:
            times = connection.execute(select(table.c.event_time).where(
                table.c.kind != "planned")).scalars().all()
        assert len(times) == 2 and all(start <= utc(t) <= end for t in times)
        wait_for_count(engine, "SELECT count(*) FROM drone_status_event", 2, settle=0.5)
        assert rows(engine, "SELECT drone_id, online, reason FROM drone_status_event "
                    "ORDER BY event_time") == [("uav-m1", True, "connected"),
                                               ("uav-m1", False, "disconnected")]
        assert count(engine, "SELECT count(*) FROM dead_letter") == 0
        assert count(engine, "SELECT count(*) FROM telemetry WHERE drone_id <> 'uav-m1'") == 0
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait(10)
        assert ingester.terminate() == 0


def test_the_plan_nearest_the_take_off_names_it_and_aborted_plans_are_dropped():
    book = FlightBook(SITES)
    for flight, departure_minutes in (("MORNING", -60), ("NOW", 2), ("LATER", 120)):
        book.plan(plan(flight=flight).model_copy(update={
            "planned_departure": T0 + timedelta(minutes=departure_minutes)}))
    book.plan(FlightAborted(schema_version=1, event_id=uuid.uuid4(), event_time=T0,
                            kind="aborted", drone_id="uav-01", flight_id="MORNING",
                            reason="cancelled"))
    assert book.takeoff("uav-01", at(0), (ORIGIN.lat, ORIGIN.lon)).flight_id == "NOW"
    book.landed("uav-01", at(600), (DESTINATION.lat, DESTINATION.lon))
    book.plan(plan(flight="MORNING"))  # redelivered after its abort: stays dropped
    assert book.takeoff("uav-01", at(7000), (ORIGIN.lat, ORIGIN.lon)).flight_id == "LATER"
