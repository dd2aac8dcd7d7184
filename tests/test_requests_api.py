"""Transport requests over real HTTP on SQLite and PostgreSQL: a clinic requests a flight for
its box; the dispatcher is offered the nearest drone with battery enough; the assignment's
flight plan is a `planned` event stored by the shared ingest path (triage, persister), and a
reassignment aborts the old plan the same way; a flight waits for its airspace approval where
the route requires it; a courier takes over; fixed departures are created at their cut-off.
Every change is attributed in the request's change log and the audit log."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.contract.messages import DroneStatus
from dronelog.dispatch.departures import create_due
from dronelog.domain.dispatch import DispatchRules
from dronelog.domain.requests import Departure
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.network import import_network
from dronelog.storage.writer import BatchWriter
from dronelog_sim.scenario import load_scenario
from tests.support import LAB, LAYOUT, TOWN, scan, write_telemetry

NURSE = "lab-cj"
TOWN_PAD, NEARBY = (36.6890, 119.7610), (36.7000, 119.7800)  # NEARBY: about 2 km away


def _nurse(api) -> dict:
    with api.engine.begin() as connection:
        add_user(connection, NURSE, Role.LAB, api.clock.now(), site_id=TOWN)
        token = issue_token(connection, NURSE, api.clock.now(), timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def _drone(api, drone_id: str, at: tuple[float, float], battery: float) -> None:
    """A drone on line at `at` with `battery` %, registered with its registration number."""
    admin = api.as_role(Role.ADMIN)
    assert api.http.put(f"/api/v1/admin/drones/{drone_id}", headers=admin, json={
        "registration_number": f"UAS-{drone_id.upper()}"}).status_code == 200
    write_telemetry(api.engine, api.clock, drone_id, 3, lat=at[0], lon=at[1],
                    battery_pct=battery, ground_speed_mps=0.0)
    status = DroneStatus(schema_version=1, event_id=__import__("uuid").uuid4(),
                         event_time=api.clock.now(), drone_id=drone_id, online=True,
                         reason="connected")
    topic = LAYOUT.status(drone_id)
    BatchWriter(api.engine, api.clock).write(
        [Accepted(Delivery(topic, b"", api.clock.now()), LAYOUT.parse(topic), status)], [])


def _network(api) -> None:
    import_network(api.engine, load_scenario(Path(__file__).parents[1] / "scenarios" /
                                             "pingdu.toml"))
    _drone(api, "uav-near", TOWN_PAD, 90)
    _drone(api, "uav-weak", TOWN_PAD, 40)  # 20 km route: not enough with the reserve
    _drone(api, "uav-far", NEARBY, 95)


def _flight_events(api, flight_id: str) -> list[tuple]:
    with api.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT kind, drone_id, origin_site_id, destination_site_id FROM flight_event "
            "WHERE flight_id = :f ORDER BY received_at, kind"), {"f": flight_id})]


def _changes(api, request_id: str) -> list[tuple]:
    with api.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT action, to_state, by FROM request_change WHERE request_id = :r ORDER BY id"),
            {"r": request_id})]


def _act(api, request_id: str, headers: dict, **body):
    return api.http.post(f"/api/v1/requests/{request_id}/actions", headers=headers, json=body)


def test_request_suggest_assign_reassign_pick_up_through_the_ingest_path(api):
    _network(api)
    nurse, dispatcher = _nurse(api), api.as_role(Role.DISPATCHER)
    assert api.http.post("/api/v1/requests", headers=nurse, json={
        "destination_site_id": LAB, "origin_site_id": LAB}).status_code == 403
    created = api.http.post("/api/v1/requests", headers=nurse, json={
        "destination_site_id": LAB, "priority": "stat", "containers": ["BOX-R1"]})
    assert created.status_code == 201, created.text
    request = created.json()
    rid = request["id"]
    assert (request["state"], request["origin_site_id"], request["containers"]) == (
        "requested", TOWN, ["BOX-R1"])
    api.clock.advance(300)
    queue = api.http.get("/api/v1/requests", headers=dispatcher).json()
    assert [r["id"] for r in queue["items"]] == [rid] and queue["items"][0]["waiting_s"] == 300
    offered = api.http.get(f"/api/v1/requests/{rid}/drones", headers=dispatcher).json()
    assert [d["drone_id"] for d in offered] == ["uav-near", "uav-far"]
    assert offered[0]["registration_number"] == "UAS-UAV-NEAR"
    assert _act(api, rid, nurse, action="assign").status_code == 403  # dispatchers assign

    assigned = _act(api, rid, dispatcher, action="assign")
    assert assigned.status_code == 200, assigned.text
    body = assigned.json()
    assert (body["state"], body["drone_id"], body["flight_id"], body["drone_registration"]) == (
        "assigned", "uav-near", f"{rid}-F1", "UAS-UAV-NEAR")
    assert body["eta"] is not None and not body["flight_held"]
    assert _flight_events(api, f"{rid}-F1") == [("planned", "uav-near", TOWN, LAB)]
    # the drone is taken: no longer offered for another request
    other = api.http.post("/api/v1/requests", headers=nurse,
                          json={"destination_site_id": LAB}).json()
    offered = api.http.get(f"/api/v1/requests/{other['id']}/drones", headers=dispatcher).json()
    assert [d["drone_id"] for d in offered] == ["uav-far"]

    api.clock.advance(60)
    moved = _act(api, rid, dispatcher, action="reassign", drone_id="uav-far").json()
    assert (moved["drone_id"], moved["flight_id"]) == ("uav-far", f"{rid}-F2")
    assert [e[0] for e in _flight_events(api, f"{rid}-F1")] == ["planned", "aborted"]
    assert _flight_events(api, f"{rid}-F2") == [("planned", "uav-far", TOWN, LAB)]

    assert _act(api, rid, dispatcher, action="pick_up").json()["state"] == "picked_up"
    for action in ("reassign", "cancel", "to_courier"):
        refused = _act(api, rid, dispatcher, action=action, drone_id="uav-near",
                       courier_id="c-1")
        assert refused.status_code == 409 and "picked_up" in refused.json()["detail"]
    assert _changes(api, rid) == [("request", "requested", f"user:{NURSE}"),
                                  ("assign", "assigned", "user:disp-1"),
                                  ("reassign", "assigned", "user:disp-1"),
                                  ("pick_up", "picked_up", "user:disp-1")]
    with api.engine.connect() as connection:
        audited = connection.execute(text(
            "SELECT action, user_id FROM audit_log WHERE subject = :r ORDER BY id"),
            {"r": rid}).all()
    assert [tuple(a) for a in audited] == [
        ("request.create", NURSE), ("request.assign", "disp-1"),
        ("request.reassign", "disp-1"), ("request.pick_up", "disp-1")]
    detail = api.http.get(f"/api/v1/requests/{rid}", headers=nurse).json()
    assert [h["action"] for h in detail["history"]] == ["request", "assign", "reassign",
                                                       "pick_up"]


def test_a_flight_waits_for_its_approval_and_a_courier_takes_over(api):
    _network(api)
    api.server.config.app.state.dispatch = DispatchRules(
        approval_required=frozenset({(TOWN, LAB)}))
    nurse, dispatcher = _nurse(api), api.as_role(Role.DISPATCHER)
    rid = api.http.post("/api/v1/requests", headers=nurse,
                        json={"destination_site_id": LAB}).json()["id"]
    held = _act(api, rid, dispatcher, action="assign", drone_id="uav-near").json()
    assert held["state"] == "assigned" and held["flight_held"] and held["eta"] is None
    assert _flight_events(api, held["flight_id"]) == []  # nothing sent without the approval
    approved = _act(api, rid, dispatcher, action="approve", approval_ref="KY-2026-0815").json()
    assert approved["approval_ref"] == "KY-2026-0815" and not approved["flight_held"]
    assert _flight_events(api, held["flight_id"]) == [("planned", "uav-near", TOWN, LAB)]

    api.clock.advance(60)
    handed = _act(api, rid, dispatcher, action="to_courier", courier_id="courier-7").json()
    assert (handed["state"], handed["carrier"], handed["drone_id"]) == ("courier", "courier",
                                                                        None)
    assert [e[0] for e in _flight_events(api, held["flight_id"])] == ["planned", "aborted"]
    # the clinic records the courier's pickup, the lab at the destination the delivery
    assert _act(api, rid, nurse, action="deliver").status_code == 403
    assert _act(api, rid, nurse, action="pick_up").json()["state"] == "picked_up"
    lab = api.as_role(Role.LAB)
    assert _act(api, rid, lab, action="deliver").json()["state"] == "delivered"
    assert _act(api, rid, lab, action="cancel").status_code == 403


def test_fixed_departures_are_created_once_at_their_cut_off(api):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    _network(api)
    zone = ZoneInfo("Asia/Shanghai")
    noon = Departure(TOWN, LAB, datetime(2026, 1, 1, 12, 30).time(), cutoff_min=30)
    rules = DispatchRules(departures=(noon,))
    day = api.clock.now().astimezone(zone).date()
    cutoff = datetime.combine(day, noon.departs, tzinfo=zone) - timedelta(minutes=30)
    with api.engine.begin() as connection:
        assert create_due(connection, rules, cutoff - timedelta(seconds=1), "Asia/Shanghai") == []
        created = create_due(connection, rules, cutoff, "Asia/Shanghai")
        assert created == [f"S-{noon.key(day)}"]
        assert create_due(connection, rules, cutoff + timedelta(minutes=5), "Asia/Shanghai") == []
    listed = api.http.get("/api/v1/requests", headers=api.as_role(Role.DISPATCHER)).json()
    (scheduled,) = listed["items"]
    assert (scheduled["source"], scheduled["ready_at"]) == (
        "schedule", (cutoff + timedelta(minutes=30)).astimezone(
            ZoneInfo("UTC")).isoformat().replace("+00:00", "Z"))
    assert json.loads(json.dumps(scheduled["containers"])) == []


# Shanghai's midnight is 16:00 UTC: a request made in its first second is dated that day, one
# made in the last second before it the day before (the date in the id was the UTC date, so
# from 00:00 to 08:00 a clinic saw yesterday's).
@pytest.mark.parametrize(("clock", "dated"), [
    (datetime(2026, 11, 20, 16, 0, 0, tzinfo=UTC), "TR20261121-"),
    (datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC), "TR20261120-")],
    indirect=["clock"], ids=["first-second", "last-second"])
def test_a_request_id_carries_the_networks_local_date(api, dated):
    import_network(api.engine, load_scenario(Path(__file__).parents[1] / "scenarios" /
                                             "pingdu.toml"))
    created = api.http.post("/api/v1/requests", headers=_nurse(api), json={
        "destination_site_id": LAB, "containers": ["BOX-D1"]})
    assert created.status_code == 201, created.text
    assert created.json()["id"].startswith(dated)


def _packed(api, barcode: str, box: str, at: datetime) -> None:
    """A tube for the lab collected at the clinic and packed into `box` at `at`."""
    from pydantic import TypeAdapter

    from dronelog.contract.messages import CustodyEvent

    events = TypeAdapter(CustodyEvent)
    collected = scan("custody.collected", barcode=barcode,
                     event_time=(at - timedelta(minutes=10)).isoformat())
    packed = scan("custody.packed", barcode=barcode, container_id=box,
                  event_time=at.isoformat())
    topic = LAYOUT.site_custody(TOWN)
    BatchWriter(api.engine, api.clock).write(
        [Accepted(Delivery(topic, b"", at), LAYOUT.parse(topic), events.validate_python(e))
         for e in (collected, packed)], [])


@pytest.mark.parametrize("morning_cancelled", [False, True], ids=["open", "cancelled"])
def test_a_box_on_the_mornings_open_request_is_not_offered_to_the_afternoons(
        api, morning_cancelled):
    from zoneinfo import ZoneInfo

    _network(api)
    zone = ZoneInfo("Asia/Shanghai")
    morning, afternoon = (Departure(TOWN, LAB, datetime(2026, 1, 1, h).time(), cutoff_min=20)
                          for h in (10, 15))
    rules = DispatchRules(departures=(morning, afternoon))
    day = api.clock.now().astimezone(zone).date() - timedelta(days=1)
    local = lambda h, m: datetime.combine(day, datetime(2026, 1, 1, h, m).time(),  # noqa: E731
                                          tzinfo=zone)
    _packed(api, "CJ-MORNING-1", "BOX-AM", local(9, 40))  # at the morning's cut-off
    with api.engine.begin() as connection:
        (am,) = create_due(connection, rules, local(9, 40), "Asia/Shanghai")
    assert api.http.get(f"/api/v1/requests/{am}", headers=api.as_role(Role.DISPATCHER)
                        ).json()["containers"] == ["BOX-AM"]
    if morning_cancelled:
        assert _act(api, am, api.as_role(Role.DISPATCHER), action="cancel",
                    reason="no drone").status_code == 200
    _packed(api, "CJ-NOON-1", "BOX-PM", local(12, 0))
    with api.engine.begin() as connection:
        (pm,) = create_due(connection, rules, local(14, 40), "Asia/Shanghai")
    containers = api.http.get(f"/api/v1/requests/{pm}", headers=api.as_role(Role.DISPATCHER)
                              ).json()["containers"]
    assert containers == (["BOX-AM", "BOX-PM"] if morning_cancelled else ["BOX-PM"])


# 23:48 in Shanghai (15:48 UTC): the requests are made on 20 November and the pickup, 12
# minutes later, is at 00:00 on the 21st. The report counts a request on the day it was made
# (dispatch/service_level.py), so it is asked for the 20th. On the wall clock, between
# 23:48 and midnight in Shanghai, the test asked for the pickup's day and found no row.
@pytest.mark.parametrize("clock", [datetime(2026, 11, 20, 15, 48, tzinfo=UTC)],
                         indirect=True, ids=["pickup-at-midnight"])
def test_the_service_level_is_request_to_pickup_per_route_and_priority(api):
    from zoneinfo import ZoneInfo

    _network(api)
    nurse, dispatcher = _nurse(api), api.as_role(Role.DISPATCHER)
    day = api.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()  # of the requests
    picked, waiting = (api.http.post("/api/v1/requests", headers=nurse, json={
        "destination_site_id": LAB, "priority": "urgent"}).json()["id"] for _ in range(2))
    api.clock.advance(12 * 60)
    _act(api, picked, dispatcher, action="to_courier", courier_id="courier-1")
    assert _act(api, picked, nurse, action="pick_up").json()["state"] == "picked_up"
    assert api.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date() > day
    (row,) = api.http.get(f"/api/v1/reports/requests?day={day.isoformat()}",
                          headers=dispatcher).json()
    assert (row["origin_site_id"], row["priority"], row["requests"], row["picked_up"],
            row["by_courier"]) == (TOWN, "urgent", 2, 1, 1)
    assert row["request_to_pickup_p50_min"] == row["request_to_pickup_p90_min"] == 12.0
    assert waiting
    # the report of a period holding that day shows the same leg (issue 20)
    period = api.http.get("/api/v1/reports/period", headers=dispatcher, params={
        "from": (day - timedelta(days=6)).isoformat(), "to": day.isoformat()}).json()
    assert period["requests"] == [{k: v for k, v in row.items() if k != "day"}]


def test_the_request_follows_its_flight_to_pickup_and_delivery(api):
    from dronelog.config import Settings
    from dronelog.contract.messages import FlightLanded, FlightTakeoff
    from dronelog.turnaround.service import TurnaroundJobs

    _network(api)
    nurse, dispatcher = _nurse(api), api.as_role(Role.DISPATCHER)
    rid = api.http.post("/api/v1/requests", headers=nurse,
                        json={"destination_site_id": LAB}).json()["id"]
    flight = _act(api, rid, dispatcher, action="assign", drone_id="uav-near").json()["flight_id"]
    jobs = TurnaroundJobs(api.engine, Settings(database_url=str(api.engine.url),
                                               mqtt_url="mqtt://127.0.0.1:1"), clock=api.clock)

    def fly(model, **fields) -> None:
        api.clock.advance(120)
        event = model(schema_version=1, event_id=__import__("uuid").uuid4(),
                      event_time=api.clock.now(), drone_id="uav-near", flight_id=flight,
                      **fields)
        topic = LAYOUT.flight("uav-near")
        BatchWriter(api.engine, api.clock).write(
            [Accepted(Delivery(topic, b"", api.clock.now()), LAYOUT.parse(topic), event)], [])
        jobs.turnaround()
        jobs.transport_requests()

    jobs.transport_requests()
    assert _changes(api, rid)[-1][1] == "assigned"  # planned only: nothing to follow
    fly(FlightTakeoff, kind="takeoff", site_id=TOWN)
    took_off = api.clock.now()
    fly(FlightLanded, kind="landed", site_id=LAB)
    done = api.http.get(f"/api/v1/requests/{rid}", headers=nurse).json()
    assert done["state"] == "delivered"
    assert done["picked_up_at"] == took_off.isoformat().replace("+00:00", "Z")
    assert _changes(api, rid)[-2:] == [("pick_up", "picked_up", "scheduler"),
                                       ("deliver", "delivered", "scheduler")]
