"""The DJI Cloud API bridge: DJI-format JSON (OSD, events, topology) translated into the
contract (units, mode_code transitions, online and offline), malformed input skipped, and end
to end: DJI messages on a private Mosquitto, `python -m dronelog.bridges dji`, the real
ingester, the rows stored."""

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from dronelog.bridges.dji import DjiBridge, DjiInputError, DjiTranslator
from dronelog.bridges.flights import FlightBook, Site, SiteBook, event_id
from dronelog.contract.messages import DroneStatus, FlightLanded, FlightTakeoff, Telemetry
from dronelog.storage.tables import DroneStatusEvent, FlightEvent, TelemetryPoint
from tests.support import IngesterProcess, Publisher, count, wait_for_count
from tests.test_bridge_mavlink import start_bridge, wait_for_log

AIRCRAFT, DOCK = "1581F5BKD225D00A0B2C", "4TADKAQ000002F"
ORIGIN = Site("cjzxwsy", 36.6890, 119.7610, 30)
DESTINATION = Site("pdrmyy", 36.7790, 119.9560, 30)
T0_MS = 1_795_000_000_000  # 2026-11-18T...Z, device time in Unix milliseconds
TASK = "0f4b1c5e-8a8d-4f2b-9d59-3c2f1a7e6b10"


def envelope(data: dict, at_ms: int, method: str | None = None, gateway: str = DOCK) -> bytes:
    message = {"tid": str(uuid.uuid4()), "bid": str(uuid.uuid4()), "timestamp": at_ms,
               "data": data, "gateway": gateway}
    if method:
        message["method"] = method
    return json.dumps(message).encode()


def osd(lat: float, lon: float, mode: int, at_ms: int, *, height: float = 60.0,
        elevation: float = 0.0, speed: float = 0.0, head: float = 0.0, battery: int = 90,
        **extra) -> bytes:
    data = {"latitude": lat, "longitude": lon, "height": height, "elevation": elevation,
            "horizontal_speed": speed, "vertical_speed": 0.0, "attitude_head": head,
            "attitude_pitch": 0.0, "attitude_roll": 0.0, "mode_code": mode, "gear": 1,
            "battery": {"capacity_percent": battery, "remain_flight_time": 1500,
                        "return_home_power": 25, "landing_power": 10, "batteries": []},
            "wind_speed": 3.2, "home_distance": 0.0, "total_flight_time": 0,
            "position_state": {"gps_number": 20, "is_fixed": 2, "quality": 5, "rtk_number": 25}}
    data.update(extra)
    return envelope(data, at_ms)


def topology(at_ms: int, *aircraft: str) -> bytes:
    subs = [{"sn": sn, "type": 89, "sub_type": 0, "index": "A", "device_secret": "secret",
             "nonce": "nonce", "thing_version": "1.1.2"} for sn in aircraft]
    return envelope({"type": 119, "sub_type": 0, "device_secret": "secret", "nonce": "nonce",
                     "thing_version": "1.1.2", "sub_devices": subs}, at_ms, "update_topo")


def task_progress(at_ms: int, flight_id: str = TASK) -> bytes:
    return envelope({"result": 0, "output": {
        "ext": {"current_waypoint_index": 0, "media_count": 0, "track_id": "",
                "flight_id": flight_id, "wayline_mission_state": 4},
        "progress": {"current_step": 5, "percent": 10}, "status": "in_progress"}},
        at_ms, "flighttask_progress")


def ms(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def translator(**options) -> DjiTranslator:
    return DjiTranslator({AIRCRAFT: "uav-03"}, FlightBook(SiteBook([ORIGIN, DESTINATION])),
                         **options)


def osd_topic(sn: str = AIRCRAFT) -> str:
    return f"thing/product/{sn}/osd"


# --- units ------------------------------------------------------------------------------------


def test_aircraft_osd_becomes_telemetry_with_contract_units():
    dji = translator(geoid_separation_m=8.5)
    events = dji.translate(osd_topic(), osd(36.7300123, 119.8600456, 5, T0_MS, height=180.5,
                                            elevation=120.25, speed=14.8, head=-90.0,
                                            battery=67))
    status, report = events
    assert isinstance(status, DroneStatus) and (status.online, status.reason) == (
        True, "connected")
    assert isinstance(report, Telemetry)
    assert (report.lat, report.lon) == (36.7300123, 119.8600456)
    assert report.alt_m == 172.0  # ellipsoidal 180.5 m less the geoid's 8.5 m
    assert report.height_m == 120.25 and report.ground_speed_mps == 14.8
    assert report.heading_deg == 270.0  # -90 (west) in 0..360
    assert report.battery_pct == 67.0 and report.payload_temp_c is None
    assert report.event_time == ms(T0_MS) and report.seq == T0_MS // 2000
    assert report.event_id == event_id("uav-03", "telemetry", T0_MS)
    # a redelivered OSD is the same event, so dronelog stores it once
    again = dji.translate(osd_topic(), osd(36.7300123, 119.8600456, 5, T0_MS, height=180.5,
                                           elevation=120.25, speed=14.8, head=-90.0,
                                           battery=67))
    assert [e.event_id for e in again] == [report.event_id]


def test_seq_grows_by_one_per_osd_period():
    dji = translator(osd_period_s=2.0)
    seqs = [dji.translate(osd_topic(), osd(36.7, 119.9, 0, T0_MS + i))[-1].seq
            for i in (0, 2010, 3990, 4001, 6000)]  # jitter: 3990 and 4001 share a period
    assert seqs == [seqs[0] + i for i in range(5)]


# --- mode_code: take-off and landing ----------------------------------------------------------


def test_mode_code_changes_are_take_off_and_landing_named_by_the_docks_wayline_task():
    dji = translator()
    assert [(s.online, s.reason) for s in dji.translate(
        f"sys/product/{DOCK}/status", topology(T0_MS, AIRCRAFT))] == [(True, "connected")]
    dji.translate(f"thing/product/{DOCK}/events", task_progress(T0_MS + 1000))
    flights = []
    for step, (mode, lat, lon) in enumerate([(0, ORIGIN.lat, ORIGIN.lon),
                                             (1, ORIGIN.lat, ORIGIN.lon),
                                             (4, ORIGIN.lat, ORIGIN.lon),
                                             (5, 36.73, 119.86), (9, 36.75, 119.90),
                                             (10, DESTINATION.lat, DESTINATION.lon),
                                             (0, DESTINATION.lat, DESTINATION.lon)]):
        events = dji.translate(osd_topic(), osd(lat, lon, mode, T0_MS + 2000 * (step + 1)))
        flights += [e for e in events if not isinstance(e, Telemetry | DroneStatus)]
        report = [e for e in events if isinstance(e, Telemetry)][0]
        assert report.flight_id == (TASK if mode not in (0, 1) else None)
    takeoff, landed = flights
    assert isinstance(takeoff, FlightTakeoff) and isinstance(landed, FlightLanded)
    assert (takeoff.flight_id, takeoff.site_id, takeoff.event_time) == (
        TASK, ORIGIN.id, ms(T0_MS + 6000))
    assert (landed.flight_id, landed.site_id, landed.event_time) == (
        TASK, DESTINATION.id, ms(T0_MS + 14000))


def test_modes_that_tell_nothing_change_nothing():
    dji = translator()
    dji.translate(osd_topic(), osd(ORIGIN.lat, ORIGIN.lon, 0, T0_MS))
    for mode in (14, 19, 99, None, "4"):  # not connected, dock address selecting, unknown
        events = dji.translate(osd_topic(), osd(ORIGIN.lat, ORIGIN.lon, mode, T0_MS + 2000))
        assert [type(e) for e in events] == [Telemetry]


# --- topology: online and offline -------------------------------------------------------------


def test_the_gateways_topology_tells_online_and_offline():
    dji = DjiTranslator({AIRCRAFT: "uav-03", "OTHER01": "uav-04"})
    status = f"sys/product/{DOCK}/status"
    online = dji.translate(status, topology(T0_MS, AIRCRAFT, "UNMAPPED9"))
    assert [(s.drone_id, s.online, s.event_time) for s in online] == [
        ("uav-03", True, ms(T0_MS))]
    assert dji.translate(status, topology(T0_MS + 1000, AIRCRAFT)) == []
    offline = dji.translate(status, topology(T0_MS + 5000))
    assert [(s.drone_id, s.online, s.reason) for s in offline] == [
        ("uav-03", False, "disconnected")]
    # an OSD from the aircraft says it is back; the RC it flies with now is its gateway
    back = dji.translate(osd_topic(), osd(36.7, 119.9, 0, T0_MS + 9000))
    assert [(e.online, e.reason) for e in back if isinstance(e, DroneStatus)] == [
        (True, "connected")]
    assert dji.translate("sys/product/RC0001/status", topology(T0_MS + 9500)) == []
    assert [s.online for s in dji.shutdown(ms(T0_MS + 10_000))] == [False]


# --- malformed and foreign input --------------------------------------------------------------


@pytest.mark.parametrize("topic, payload", [
    (osd_topic(), b"{not json"),
    (osd_topic(), b"\xff\xfe"),
    (osd_topic(), b"[1, 2, 3]"),
    (osd_topic(), json.dumps({"timestamp": T0_MS}).encode()),
    (osd_topic(), json.dumps({"timestamp": "yesterday", "data": {}}).encode()),
    (osd_topic(), json.dumps({"timestamp": 1_700_000_000, "data": {}}).encode()),  # seconds
    ("thing/product//osd", osd(36.7, 119.9, 0, T0_MS)),
    ("thing/product/x/y/osd", osd(36.7, 119.9, 0, T0_MS)),
    (f"sys/product/{DOCK}/status", envelope({"sub_devices": "none"}, T0_MS, "update_topo")),
])
def test_malformed_messages_are_refused_with_a_reason(topic, payload):
    with pytest.raises(DjiInputError):
        translator().translate(topic, payload)


def test_incomplete_osd_is_held_back_and_foreign_devices_ignored():
    dji = translator()
    with capture_logs() as logs:
        events = dji.translate(osd_topic(), envelope({"latitude": 36.7, "longitude": 119.9,
                                                      "mode_code": 0}, T0_MS))
        assert [type(e) for e in events] == [DroneStatus]
        assert dji.translate(osd_topic(), osd(0.0, 0.0, 0, T0_MS + 2000)) == []
        assert dji.translate(osd_topic(), osd(36.7, 119.9, 0, T0_MS + 4000,
                                              speed=float("nan"))) == []
        assert dji.translate(osd_topic(), osd(36.7, 119.9, 0, T0_MS + 6000, battery=140)) == []
    why = [e["why"] for e in logs if e["event"] == "telemetry held back"]
    assert "height" in why[0] and "battery.capacity_percent" in why[0]
    assert "no position" in why[1] and "horizontal_speed" in why[2] and "battery" in why[3]
    # the dock's own OSD, unmapped devices, and topics the bridge does not use
    assert dji.translate(osd_topic(DOCK), envelope({"mode_code": 4, "latitude": 36.7},
                                                   T0_MS)) == []
    assert dji.translate(f"thing/product/{AIRCRAFT}/state", osd(36.7, 119.9, 0, T0_MS)) == []
    assert dji.translate(f"thing/product/{DOCK}/events",
                         envelope({"output": "x"}, T0_MS, "flighttask_progress")) == []


def test_the_bridge_loop_skips_what_it_cannot_read_and_goes_on():
    published = []

    class Recorder:
        def publish(self, event):
            published.append(event)

    bridge = DjiBridge(translator(), Recorder())
    for item in [("dji", osd_topic(), b"garbage"),
                 ("dji", "thing/product//osd", b"{}"),
                 ("dji", osd_topic(), osd(36.7, 119.9, 0, T0_MS))]:
        bridge.handle(item)
    assert bridge.skipped == 2
    assert [type(e) for e in published] == [DroneStatus, Telemetry]


# --- end to end -------------------------------------------------------------------------------


def test_dji_messages_reach_the_database_through_the_bridge_and_the_ingester(
        mosquitto, engine, database_url, tmp_path):
    ingester = IngesterProcess(database_url, mosquitto.url, tmp_path, mosquitto.protocol).start()
    ingester.wait_connected()
    sites = tmp_path / "sites.toml"
    sites.write_text("".join(f'[[sites]]\nid = "{s.id}"\nlat = {s.lat}\nlon = {s.lon}\n'
                             f"pad_radius_m = {s.radius_m}\n" for s in (ORIGIN, DESTINATION)),
                     encoding="utf-8")
    # the same Mosquitto stands for DJI's broker and dronelog's
    bridge, log_path = start_bridge("dji", [
        "--dji-url", mosquitto.url, "--map", f"{AIRCRAFT}=uav-d1", "--sites", str(sites),
        "--geoid-separation", "8"], mosquitto, tmp_path)
    device = Publisher(mosquitto.url, protocol="3.1.1")
    try:
        wait_for_log(bridge, log_path, '"subscribed"', times=2)
        t0 = (int(time.time()) - 120) * 1000
        osd_at = [t0 + 2000 * i for i in range(1, 8)]
        messages = [
            (f"sys/product/{DOCK}/status", topology(t0, AIRCRAFT)),
            (osd_topic(DOCK), envelope({"mode_code": 4, "cover_state": 1}, t0)),  # the dock's
            (f"thing/product/{DOCK}/events", task_progress(t0 + 500)),
            (osd_topic(), osd(ORIGIN.lat, ORIGIN.lon, 0, osd_at[0], height=60.0)),
            (osd_topic(), osd(ORIGIN.lat, ORIGIN.lon, 4, osd_at[1], height=70.0,
                              elevation=10.0, head=12.0, battery=89)),
            (osd_topic(), b"{\"tid\": broken"),
            (osd_topic(), osd(36.73, 119.86, 5, osd_at[2], height=180.0, elevation=120.0,
                              speed=15.5, head=-135.0, battery=80)),
            (osd_topic(), envelope({"latitude": 36.75, "mode_code": 5}, osd_at[3])),
            (osd_topic(), osd(DESTINATION.lat, DESTINATION.lon, 10, osd_at[4], height=58.0,
                              elevation=5.0, head=45.0, battery=71)),
            (osd_topic(), osd(DESTINATION.lat, DESTINATION.lon, 0, osd_at[5], height=53.0,
                              head=45.0, battery=70)),
            (f"sys/product/{DOCK}/status", topology(osd_at[6])),
        ]
        for topic, payload in messages:
            device.publish(topic, payload)
        device.wait_all_acked()
        wait_for_log(bridge, log_path, "DJI message skipped")
        wait_for_log(bridge, log_path, '"online": false')
        assert bridge.poll() is None
        bridge.terminate()
        assert bridge.wait(30) == 0

        assert wait_for_count(engine, "SELECT count(*) FROM telemetry", 5, settle=1.0) == 5
        table = TelemetryPoint.__table__
        with engine.connect() as connection:
            stored = connection.execute(select(
                table.c.event_time, table.c.drone_id, table.c.flight_id, table.c.lat,
                table.c.lon, table.c.alt_m, table.c.height_m, table.c.ground_speed_mps,
                table.c.heading_deg, table.c.battery_pct).order_by(table.c.event_time)).all()
        assert [(utc(r[0]), *r[1:]) for r in stored] == [
            (ms(osd_at[0]), "uav-d1", None, ORIGIN.lat, ORIGIN.lon, 52.0, 0.0, 0.0, 0.0, 90.0),
            (ms(osd_at[1]), "uav-d1", TASK, ORIGIN.lat, ORIGIN.lon, 62.0, 10.0, 0.0, 12.0,
             89.0),
            (ms(osd_at[2]), "uav-d1", TASK, 36.73, 119.86, 172.0, 120.0, 15.5, 225.0, 80.0),
            (ms(osd_at[4]), "uav-d1", TASK, DESTINATION.lat, DESTINATION.lon, 50.0, 5.0, 0.0,
             45.0, 71.0),
            (ms(osd_at[5]), "uav-d1", None, DESTINATION.lat, DESTINATION.lon, 45.0, 0.0, 0.0,
             45.0, 70.0),
        ]
        wait_for_count(engine, "SELECT count(*) FROM flight_event", 2, settle=0.5)
        table = FlightEvent.__table__
        with engine.connect() as connection:
            events = connection.execute(select(
                table.c.kind, table.c.flight_id, table.c.drone_id, table.c.site_id,
                table.c.event_time).order_by(table.c.event_time)).all()
        assert [(*e[:4], utc(e[4])) for e in events] == [
            ("takeoff", TASK, "uav-d1", ORIGIN.id, ms(osd_at[1])),
            ("landed", TASK, "uav-d1", DESTINATION.id, ms(osd_at[5])),
        ]
        wait_for_count(engine, "SELECT count(*) FROM drone_status_event", 2, settle=0.5)
        table = DroneStatusEvent.__table__
        with engine.connect() as connection:
            statuses = connection.execute(select(
                table.c.drone_id, table.c.online, table.c.reason, table.c.event_time
            ).order_by(table.c.event_time)).all()
        assert [(*s[:3], utc(s[3])) for s in statuses] == [
            ("uav-d1", True, "connected", ms(t0)),
            ("uav-d1", False, "disconnected", ms(osd_at[6])),
        ]
        assert count(engine, "SELECT count(*) FROM dead_letter") == 0
    finally:
        device.close()
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait(10)
        assert ingester.terminate() == 0


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_the_cli_explains_itself():
    from click.testing import CliRunner

    from dronelog.bridges.cli import bridge
    from dronelog.config import Settings

    runner = CliRunner()
    settings = Settings()  # as `dronelog` passes it to its subcommands
    for command in (["--help"], ["mavlink", "--help"], ["dji", "--help"]):
        result = runner.invoke(bridge, command, obj=settings)
        assert result.exit_code == 0, result.output
    assert "--dji-url" in runner.invoke(bridge, ["dji", "--help"], obj=settings).output
    refused = runner.invoke(bridge, ["mavlink", "--listen", "127.0.0.1:0"], obj=settings)
    assert refused.exit_code != 0 and "no vehicle mapped" in refused.output
    refused = runner.invoke(bridge, ["dji", "--dji-url", "mqtt://127.0.0.1:1", "--map", "x"],
                            obj=settings)
    assert refused.exit_code != 0 and "KEY=DRONE" in refused.output

