"""The HTTP API through real HTTP (uvicorn on a loopback port), on SQLite and PostgreSQL:
auth and roles, custody scans on the ingester's path, specimen lookup, alerts, operations."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import select, text

from dronelog.api.accounts import Role, add_user, issue_token, revoke_tokens
from dronelog.api.app import create_app
from dronelog.broker import free_port
from dronelog.config import Settings
from dronelog.contract.examples import EXAMPLES
from dronelog.storage.tables import AuditEntry
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import (
    LAB,
    LAYOUT,
    TOWN,
    Api,
    IngesterProcess,
    Publisher,
    scan,
    wait_for_count,
    write_telemetry,
)


def test_health_needs_no_token_and_readiness_checks_database_and_broker(api, engine, clock):
    assert api.http.get("/healthz").json() == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    settings = Settings(database_url=str(engine.url), mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    lonely = Api.__new__(Api)
    lonely.server = uvicorn.Server(uvicorn.Config(create_app(settings, engine, clock),
                                                  host="127.0.0.1", port=free_port(),
                                                  log_level="warning"))
    thread = threading.Thread(target=lonely.server.run, daemon=True)
    thread.start()
    while not lonely.server.started:
        time.sleep(0.02)
    port = lonely.server.config.port
    response = httpx.get(f"http://127.0.0.1:{port}/readyz")
    lonely.server.should_exit = True
    thread.join(10)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["broker"] == "unreachable"


def test_login_gives_a_token_that_expires_and_can_be_revoked(api, clock):
    refused = api.http.post("/api/v1/auth/token", data={"username": "disp-1",
                                                         "password": "wrong"})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == "Bearer"
    login = api.http.post("/api/v1/auth/token", data={"username": "disp-1",
                                                       "password": "pw-disp-1"})
    assert login.status_code == 200 and login.json()["role"] == "dispatcher"
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert api.http.get("/api/v1/auth/me", headers=api.as_role(Role.LAB)).json() == {
        "user_id": "lab-1", "role": "lab", "site_id": LAB}
    assert api.http.get("/api/v1/alerts", headers=bearer).status_code == 200
    clock.advance(13 * 3600)
    assert api.http.get("/api/v1/alerts", headers=bearer).status_code == 401
    clock.advance(-13 * 3600)
    with api.engine.begin() as connection:
        revoke_tokens(connection, "disp-1", clock.now())
    gone = api.http.get("/api/v1/alerts", headers=bearer)
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    assert api.http.get("/api/v1/alerts").status_code == 401


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/api/v1/specimens", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/alerts", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("POST", "/api/v1/alerts/999/acknowledge", {Role.DISPATCHER}),
    ("POST", "/api/v1/alerts/999/resolve", {Role.DISPATCHER}),
    ("POST", "/api/v1/custody", {Role.DEVICE, Role.LAB}),
    ("GET", "/api/v1/departures", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/containers", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/containers/BOX-1/manifest.hl7", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/containers/BOX-1/epcis", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("POST", "/api/v1/containers/BOX-1/checks", {Role.LAB}),
    ("POST", "/api/v1/containers/BOX-1/close", {Role.LAB}),
    ("GET", "/metrics", {Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/flights", {Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/flights/F1", {Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/drones", {Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/sites", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/routes", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/reports/turnaround?day=2026-11-20", {Role.LAB, Role.DISPATCHER,
                                                          Role.ADMIN}),
    ("GET", "/api/v1/reports/period?from=2026-11-02&to=2026-11-08",
     {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/dead-letters", {Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/specimens/CJ2611220042/fhir", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/specimens/CJ2611220042/epcis", {Role.LAB, Role.DISPATCHER, Role.ADMIN}),
    ("GET", "/api/v1/auth/me", set(Role)),
    ("GET", "/api/v1/specimen-definitions", set(Role)),
    ("GET", "/api/v1/specimen-definitions/urine", set(Role)),
])
def test_the_role_matrix(api, method, path, allowed):
    body = {"note": "checked"} if path.endswith("resolve") else None
    for role in Role:
        response = api.http.request(method, path, headers=api.as_role(role), json=body)
        if role in allowed:  # allowed and working: neither refused nor a server error
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500, (role, response.status_code, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code)
            assert response.json()["title"] == "Forbidden"


def test_custody_scans_share_the_ingest_path(api):
    device = api.as_role(Role.DEVICE)
    collected = scan("custody.collected", minutes_ago=20)
    first = api.http.post("/api/v1/custody", headers=device, json=collected)
    assert first.status_code == 201 and first.json()["stored"] is True
    again = api.http.post("/api/v1/custody", headers=device, json=collected)
    assert again.status_code == 200 and again.json() == {"event_id": collected["event_id"],
                                                         "stored": False}
    elsewhere = api.http.post("/api/v1/custody", headers=device,
                              json=scan("custody.received"))  # the lab's site, not ours
    assert elsewhere.status_code == 422
    assert elsewhere.json()["reason_code"] == "identity_mismatch"
    broken = api.http.post("/api/v1/custody", headers=device, content=b"{nope",
                           )
    assert broken.status_code == 422 and broken.json()["reason_code"] == "not_json"
    impossible = api.http.post("/api/v1/custody", headers=device,
                               json=scan("custody.collected", specimen={
                                   **EXAMPLES["custody.collected"]["specimen"],
                                   "order_ref": "370283199001011234"}))
    assert impossible.status_code == 422 and "resident identity" in impossible.json()["detail"]
    lab = api.as_role(Role.LAB)
    assert api.http.post("/api/v1/custody", headers=lab,
                         json=scan("custody.unloaded", site_id=LAB)).status_code == 403
    for actor in ({"kind": "staff", "id": "lab-pdrmyy-2"}, {"kind": "drone", "id": "uav-03"}):
        spoofed = api.http.post("/api/v1/custody", headers=lab,
                                json=scan("custody.received", actor=actor))
        assert spoofed.status_code == 422, actor
        assert spoofed.json()["reason_code"] == "actor_mismatch"
    receipt = api.http.post("/api/v1/custody", headers=lab, json=scan(
        "custody.received", actor={"kind": "staff", "id": "lab-1"}))
    assert receipt.status_code == 201
    with api.engine.connect() as connection:
        recorded_by = connection.execute(text(
            "SELECT kind, recorded_by FROM custody_event ORDER BY kind")).all()
        assert list(map(tuple, recorded_by)) == [("collected", "user:scanner-cj"),
                                                 ("received", "user:lab-1")]
        audit = connection.execute(select(AuditEntry.__table__.c.user_id,
                                          AuditEntry.__table__.c.action)).all()
        stored = connection.execute(text("SELECT count(*) FROM custody_event")).scalar_one()
        letters = connection.execute(text("SELECT count(*) FROM dead_letter")).scalar_one()
    assert stored == 2 and letters == 0
    assert sorted(map(tuple, audit)) == [("lab-1", "custody.received"),
                                         ("scanner-cj", "custody.collected"),
                                         ("scanner-cj", "custody.collected")]


def test_a_specimen_stored_by_the_ingester_is_looked_up_by_barcode(api, engine, broker,
                                                                   database_url, clock,
                                                                   tmp_path):
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    publisher = Publisher(broker.url, protocol=broker.protocol)
    for name, minutes in (("custody.collected", 30), ("custody.packed", 25)):
        publisher.publish(LAYOUT.site_custody(TOWN),
                          json.dumps(scan(name, minutes_ago=minutes)).encode())
    publisher.wait_all_acked()
    assert wait_for_count(engine, "SELECT count(*) FROM custody_event", 2) == 2
    ingester.terminate()
    publisher.close()
    settings = Settings(database_url=str(engine.url), mqtt_url=broker.url)
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    response = api.http.get("/api/v1/specimens/CJ2611220042", headers=api.as_role(Role.LAB))
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["priority"], body["order_ref"]) == ("packed", "stat",
                                                                   "ORD-7F3K-22")
    assert [step["kind"] for step in body["timeline"]] == ["collected", "packed"]
    assert body["turnaround"] == "on_track"  # 30 of its 45 minutes gone; warning at 33.75
    clock.advance(5 * 60)
    assert api.http.get("/api/v1/specimens/CJ2611220042",
                        headers=api.as_role(Role.LAB)).json()["turnaround"] == "warning"
    clock.advance(15 * 60)
    listed = api.http.get("/api/v1/specimens", params={"site": TOWN, "open_only": True},
                          headers=api.as_role(Role.DISPATCHER)).json()
    assert listed["total"] == 1 and listed["items"][0]["turnaround"] == "breached"
    missing = api.http.get("/api/v1/specimens/NOPE1234", headers=api.as_role(Role.LAB))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_dispatchers_acknowledge_and_resolve_alerts_and_it_is_audited(api, engine, clock):
    device = api.as_role(Role.DEVICE)
    assert api.http.post("/api/v1/custody", headers=device,
                         json=scan("custody.collected", minutes_ago=60)).status_code == 201
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    dispatcher = api.as_role(Role.DISPATCHER)
    active = api.http.get("/api/v1/alerts", params={"state": "active"},
                          headers=dispatcher).json()
    assert [(a["kind"], a["subject_id"]) for a in active["items"]] == [
        ("breach", "CJ2611220042")]
    alert_id = active["items"][0]["id"]
    acked = api.http.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=dispatcher)
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"] == "disp-1"
    twice = api.http.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=dispatcher)
    assert twice.status_code == 409
    no_note = api.http.post(f"/api/v1/alerts/{alert_id}/resolve", headers=dispatcher,
                            json={"note": "  "})
    assert no_note.status_code == 409
    done = api.http.post(f"/api/v1/alerts/{alert_id}/resolve", headers=dispatcher,
                         json={"note": "courier sent"})
    assert (done.json()["state"], done.json()["resolution_note"]) == ("resolved", "courier sent")
    assert api.http.post("/api/v1/alerts/424242/acknowledge",
                         headers=dispatcher).status_code == 404
    lab_view = api.http.get("/api/v1/alerts", headers=api.as_role(Role.LAB)).json()
    assert lab_view["total"] == 1  # lab staff see the alerts of specimens due at their site
    other = api.http.get("/api/v1/alerts", params={"site": TOWN},
                         headers=api.as_role(Role.LAB)).json()
    assert other["total"] == 1  # ...and only those: the site filter is theirs, not the query's
    # the specimen's origin learns of its breach too (it must be collected again); a third
    # site does not; the alert is a code with parameters the screens render themselves
    with engine.begin() as connection:
        tokens = {}
        for user_id, site in (("lab-town", TOWN), ("lab-other", "wjwsy")):
            add_user(connection, user_id, Role.LAB, clock.now(), password=f"pw-{user_id}",
                     site_id=site)
            tokens[site] = issue_token(connection, user_id, clock.now(), timedelta(hours=1))
    town = api.http.get("/api/v1/alerts", headers={
        "Authorization": f"Bearer {tokens[TOWN]}"}).json()
    assert [(a["kind"], a["site_id"], a["origin_site_id"]) for a in town["items"]] == [
        ("breach", LAB, TOWN)]
    assert town["items"][0]["details"]["barcode"] == "CJ2611220042"
    assert "deadline" in town["items"][0]["details"]
    assert api.http.get("/api/v1/alerts", headers={
        "Authorization": f"Bearer {tokens['wjwsy']}"}).json()["total"] == 0
    assert api.http.get("/api/v1/alerts", params={"site": TOWN},
                        headers=dispatcher).json()["total"] == 1
    with engine.connect() as connection:
        actions = connection.execute(select(AuditEntry.__table__.c.action).where(
            AuditEntry.__table__.c.user_id == "disp-1")).scalars().all()
    assert sorted(actions) == ["alert.acknowledge", "alert.resolve"]
    metrics = api.http.get("/metrics", headers=dispatcher)
    assert metrics.status_code == 200
    assert 'dronelog_custody_posts_total{outcome="stored"} 1.0' in metrics.text
    assert "dronelog_open_alerts" in metrics.text


def test_flights_and_the_fleet_for_dispatchers(api, engine, clock):
    from dronelog.contract import messages as m
    from dronelog.ingest.delivery import Accepted, Delivery
    from dronelog.storage.writer import BatchWriter

    base = clock.now() - timedelta(minutes=20)

    def at(minutes):
        return base + timedelta(minutes=minutes)

    def ids():
        return {"schema_version": 1, "event_id": uuid.uuid4()}

    events = [
        m.FlightPlanned(**ids(), kind="planned", event_time=at(0), drone_id="uav-02",
                        flight_id="F1", origin_site_id=TOWN, destination_site_id=LAB),
        m.FlightTakeoff(**ids(), kind="takeoff", event_time=at(1), drone_id="uav-02",
                        flight_id="F1", site_id=TOWN),
        m.Loaded(**ids(), kind="loaded", event_time=at(0.5), barcode="CJ2611220042",
                 site_id=TOWN, actor={"kind": "staff", "id": "crew-1"}, container_id="BOX-1",
                 flight_id="F1", drone_id="uav-02"),
        *[m.Telemetry(**ids(), event_time=at(1 + i), drone_id="uav-02", seq=i, flight_id="F1",
                      lat=36.69 + 0.01 * i, lon=119.76 + 0.01 * i, alt_m=170,
                      ground_speed_mps=18, heading_deg=45, battery_pct=90 - i,
                      payload_temp_c=5.0, link_quality_pct=88) for i in range(3)],
    ]
    accepted = []
    for event in events:
        topic = (LAYOUT.telemetry("uav-02") if isinstance(event, m.Telemetry)
                 else LAYOUT.flight("uav-02") if isinstance(event, m.FlightEventBase)
                 else LAYOUT.site_custody(TOWN))
        accepted.append(Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), event))
    BatchWriter(engine, clock).write(accepted, [])
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    dispatcher = api.as_role(Role.DISPATCHER)
    flights = api.http.get("/api/v1/flights", params={"state": "airborne"},
                           headers=dispatcher).json()
    assert [(f["flight_id"], f["origin_site_id"], f["destination_site_id"])
            for f in flights["items"]] == [("F1", TOWN, LAB)]
    detail = api.http.get("/api/v1/flights/F1", headers=dispatcher).json()
    assert [e["kind"] for e in detail["events"]] == ["planned", "takeoff"]
    assert detail["cargo"] == ["CJ2611220042"]
    line = detail["track"]["features"][0]["geometry"]
    assert line["type"] == "LineString" and line["coordinates"][0] == [119.76, 36.69, 170.0]
    assert len(line["coordinates"]) == 3
    fleet = api.http.get("/api/v1/drones", headers=dispatcher).json()
    assert [(d["drone_id"], d["flight_id"], d["position"]["battery_pct"]) for d in fleet] == [
        ("uav-02", "F1", 88.0)]
    assert fleet[0]["link_age_s"] == pytest.approx(17 * 60, abs=1)
    assert api.http.get("/api/v1/flights/NOPE", headers=dispatcher).status_code == 404

    # The newest report by event time wins, whatever the order of arrival (each batch below
    # is stored after the one before it, so a later row id can carry an older time); a
    # drone known only from its status has no position.
    def report(drone, minutes, battery, seq):
        event = m.Telemetry(**ids(), event_time=at(minutes), drone_id=drone, seq=seq,
                            lat=36.7, lon=119.8, alt_m=150, ground_speed_mps=10,
                            heading_deg=90, battery_pct=battery)
        topic = LAYOUT.telemetry(drone)
        return Accepted(Delivery(topic, b"", clock.now()), LAYOUT.parse(topic), event)

    status = m.DroneStatus(**ids(), event_time=at(2), drone_id="uav-04", online=True,
                           reason="connected")
    writer = BatchWriter(engine, clock)
    writer.write([report("uav-03", 5, 70.0, 1), report("uav-02", 2.5, 10.0, 9),
                  Accepted(Delivery(LAYOUT.status("uav-04"), b"", clock.now()),
                           LAYOUT.parse(LAYOUT.status("uav-04")), status)], [])
    writer.write([report("uav-03", 4, 75.0, 0), report("uav-03", 4.5, 72.0, 2)], [])
    fleet = api.http.get("/api/v1/drones", headers=dispatcher).json()
    assert [(d["drone_id"], d["flight_id"], d["online"],
             d["position"] and d["position"]["battery_pct"]) for d in fleet] == [
        ("uav-02", "F1", None, 88.0), ("uav-03", None, None, 70.0),
        ("uav-04", None, True, None)]
    assert fleet[1]["last_seen"] == at(5).isoformat().replace("+00:00", "Z")
    assert fleet[2]["last_seen"] is None and fleet[2]["link_age_s"] is None


# 01:00 in Shanghai: the specimen is collected an hour before, at 00:00, the first instant of
# the day the report is asked for. Its scans are timed by the test's clock, not the wall
# clock: with the wall clock's scans, a test that began in the second before 01:00 asked
# for the day before (by its clock) the one the scans fell on, and the report was empty.
@pytest.mark.parametrize("clock", [datetime(2026, 11, 20, 17, 0, tzinfo=UTC)], indirect=True,
                         ids=["collected-at-midnight"])
def test_sites_reports_and_dead_letters(api, engine, clock, broker, database_url, tmp_path):
    from pathlib import Path

    from dronelog.storage.network import import_network
    from dronelog_sim.scenario import load_scenario

    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    lab = api.as_role(Role.LAB)
    sites = api.http.get("/api/v1/sites", headers=lab).json()
    assert {s["id"]: s["name_zh"] for s in sites}[LAB] == "平度市人民医院"
    routes = {(r["origin_site_id"], r["destination_site_id"]): r
              for r in api.http.get("/api/v1/routes", headers=lab).json()}
    assert set(routes) == {("pddermyy", LAB), (TOWN, LAB), ("wjwsy", LAB), (LAB, "pddermyy")}
    assert routes[(TOWN, LAB)]["cruise_alt_m"] == 120.0
    device = api.as_role(Role.DEVICE)
    for minutes, name in ((60, "custody.collected"), (30, "custody.packed")):
        at = (clock.now() - timedelta(minutes=minutes)).isoformat()
        assert api.http.post("/api/v1/custody", headers=device,
                             json=scan(name, event_time=at)).status_code == 201
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    from zoneinfo import ZoneInfo

    day = (clock.now() - timedelta(minutes=60)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    report = api.http.get("/api/v1/reports/turnaround", params={"day": day.isoformat()},
                          headers=lab).json()
    assert [(r["origin_site_id"], r["priority"], r["specimens"], r["received"])
            for r in report] == [(TOWN, "stat", 1, 0)]
    as_csv = api.http.get("/api/v1/reports/turnaround",
                          params={"day": day.isoformat(), "format": "csv"}, headers=lab)
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith("day,origin_site_id,destination_site_id,priority,kind")
    assert lines[1].split(",")[1:5] == [TOWN, LAB, "stat", "blood_sample"]
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    publisher = Publisher(broker.url, protocol=broker.protocol)
    publisher.publish(LAYOUT.telemetry("uav-01"), b"not json at all")
    publisher.wait_all_acked()
    assert wait_for_count(engine, "SELECT count(*) FROM dead_letter", 1) == 1
    ingester.terminate()
    publisher.close()
    letters = api.http.get("/api/v1/dead-letters", headers=api.as_role(Role.ADMIN)).json()
    assert [(d["reason_code"], d["payload"]) for d in letters["items"]] == [
        ("not_json", "not json at all")]


def test_a_specimen_in_the_air_shows_its_box_temperature_against_its_band(api, engine, clock):
    device = api.as_role(Role.DEVICE)
    for minutes, name, changes in ((20, "custody.collected", {}), (15, "custody.packed", {}),
                                   (10, "custody.loaded", {"flight_id": "F7",
                                                           "drone_id": "uav-03"})):
        assert api.http.post("/api/v1/custody", headers=device,
                             json=scan(name, minutes_ago=minutes, **changes)).status_code == 201
    write_telemetry(engine, clock, "uav-03", 3, flight_id="F7", payload_temp_c=9.5)
    write_telemetry(engine, clock, "uav-04", 2, flight_id="F8", payload_temp_c=30.0)
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    body = api.http.get("/api/v1/specimens/CJ2611220042", headers=api.as_role(Role.LAB)).json()
    assert (body["allowed_min_c"], body["allowed_max_c"]) == (15.0, 25.0)  # ambient
    assert [(r["flight_id"], r["payload_temp_c"]) for r in body["temperature"]] == [
        ("F7", 9.5)] * 3
    for path in ("/api/v1/specimens/AB%00CD", "/api/v1/flights/F%00", "/api/v1/alerts?site=%00"):
        refused = api.http.get(path, headers=api.as_role(Role.DISPATCHER))
        assert refused.status_code == 400 and "NUL" in refused.json()["detail"], path
