"""Custody rules through the real entrances (HTTP and MQTT), the engine and the API, on
SQLite and PostgreSQL: the reviewer's findings replayed, and adversarial timelines by
hypothesis with the invariants checked through the API."""

import json
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.contract.examples import EXAMPLES
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import (
    LAB,
    LAYOUT,
    TOWN,
    IngesterProcess,
    Publisher,
    telemetry,
    wait_for_count,
)

OTHER = "wjwsy"  # a third site: neither the origin nor the destination


@pytest.fixture
def people(api):
    """Tokens for the origin's scanner, the destination's lab and a foreign lab."""
    with api.engine.begin() as connection:
        add_user(connection, "lab-wjwsy", Role.LAB, api.clock.now(), password="pw-lab-wjwsy",
                 site_id=OTHER)
        foreign = issue_token(connection, "lab-wjwsy", api.clock.now(), timedelta(hours=1))
    return {"scanner": api.as_role(Role.DEVICE), "lab": api.as_role(Role.LAB),
            "foreign": {"Authorization": f"Bearer {foreign}"}}


def payload(api, name: str, barcode: str, minutes_ago: float, **changes) -> dict:
    body = json.loads(json.dumps(EXAMPLES[name]))
    body.update(event_id=str(uuid.uuid4()), barcode=barcode,
                event_time=(api.clock.now() - timedelta(minutes=minutes_ago)).isoformat())
    body.update(changes)
    return body


def me(user_id: str) -> dict:
    return {"kind": "staff", "id": user_id}


def post(api, headers, body, expected: int = 201) -> dict:
    response = api.http.post("/api/v1/custody", headers=headers, json=body)
    assert response.status_code == expected, response.text
    return response.json()


def engine_run(api) -> None:
    """One turnaround run (tracker and sweep) by the same scheduler, which holds the lease."""
    if not hasattr(api, "jobs"):
        settings = Settings(database_url=str(api.engine.url), mqtt_url="mqtt://127.0.0.1:1")
        api.jobs = TurnaroundJobs(api.engine, settings, clock=api.clock)
    api.jobs.turnaround()


def specimen(api, barcode: str) -> dict:
    response = api.http.get(f"/api/v1/specimens/{barcode}", headers=api.as_role(Role.LAB))
    assert response.status_code == 200, response.text
    return response.json()


def alert_kinds(api, barcode: str) -> set[str]:
    items = api.http.get("/api/v1/alerts", params={"limit": 200},
                         headers=api.as_role(Role.DISPATCHER)).json()["items"]
    return {a["kind"] for a in items if a["subject_id"] == barcode}


def send_towards_the_lab(api, people, barcode: str) -> None:
    for name, minutes in (("custody.collected", 30), ("custody.packed", 25),
                          ("custody.loaded", 20)):
        post(api, people["scanner"], payload(api, name, barcode, minutes))


def test_a_foreign_site_cannot_close_a_specimen_and_final_times_never_move(api, people):
    barcode = "CJZXWS26120400008"
    send_towards_the_lab(api, people, barcode)
    # a lab at a third site rejects it: kept, recorded by that user, and misrouted
    post(api, people["foreign"], payload(api, "custody.rejected", barcode, 10, site_id=OTHER,
                                         actor=me("lab-wjwsy"), note=None))
    engine_run(api)
    body = specimen(api, barcode)
    assert body["state"] == "misrouted" and body["site_id"] == OTHER
    assert body["turnaround"] == "warning"  # never on track while it is elsewhere
    assert {"misrouted", "custody_anomaly"} <= set(body["problems"])
    assert alert_kinds(api, barcode) >= {"misrouted", "custody_anomaly"}
    open_list = api.http.get("/api/v1/specimens", params={"open_only": True, "site": LAB},
                             headers=api.as_role(Role.LAB)).json()
    assert barcode in [item["barcode"] for item in open_list["items"]]

    # the destination's lab receives it; a second receipt stamped later moves nothing
    post(api, people["lab"], payload(api, "custody.received", barcode, 5, actor=me("lab-1")))
    post(api, people["lab"], payload(api, "custody.received", barcode, -4, actor=me("lab-1")))
    post(api, people["foreign"], payload(api, "custody.received", barcode, 1, site_id=OTHER,
                                         actor=me("lab-wjwsy")))
    engine_run(api)
    body = specimen(api, barcode)
    received = (api.clock.now() - timedelta(minutes=5)).isoformat()
    assert body["state"] == "received" and body["site_id"] == LAB
    assert body["received_at"].replace("Z", "+00:00") == received
    assert any("second receipt" in a for a in body["anomalies"])
    assert any(f"received at {OTHER} after it was closed" in a for a in body["anomalies"])
    assert [s["recorded_by"] for s in body["timeline"]].count("user:lab-wjwsy") == 2
    assert len(body["timeline"]) == 7  # every fact kept


def test_a_poisoned_description_never_replaces_the_origins_and_is_flagged(api, people):
    barcode = "CJZXWS26120400009"
    poison = payload(api, "custody.received", barcode, 25, site_id=OTHER, actor=me("lab-wjwsy"),
                     container_id=None, seal_id=None,
                     specimen={"kind": "blood_sample", "priority": "routine",
                               "temperature_class": "ambient", "origin_site_id": TOWN,
                               "destination_site_id": OTHER, "order_ref": "FAKE-9"})
    post(api, people["foreign"], poison)
    post(api, people["scanner"], payload(api, "custody.collected", barcode, 5))
    engine_run(api)
    body = specimen(api, barcode)
    assert (body["priority"], body["destination_site_id"], body["order_ref"]) == (
        "stat", LAB, "ORD-7F3K-22")
    assert body["description_source"] == "origin_collection"
    assert len(body["description_conflicts"]) == 1
    assert "priority routine ≠ stat" in body["description_conflicts"][0]
    assert "description_conflict" in body["problems"]
    assert "description_conflict" in alert_kinds(api, barcode)


def test_spoofed_actors_and_steps_beyond_a_role_are_refused_with_a_reason(api, people):
    barcode = "CJZXWS26120400010"
    for actor in ({"kind": "drone", "id": "uav-01"}, me("lab-1")):
        refused = post(api, people["foreign"], payload(api, "custody.received", barcode, 1,
                                                       site_id=OTHER, actor=actor), 422)
        assert refused["reason_code"] == "actor_mismatch"
    refused = post(api, people["lab"], payload(api, "custody.unloaded", barcode, 1,
                                                site_id=LAB, actor=me("lab-1")), 403)
    assert refused["reason_code"] == "step_not_allowed"
    refused = post(api, people["scanner"], payload(api, "custody.unloaded", barcode, 1,
                                                   site_id=TOWN), 422)
    assert refused["reason_code"] == "actor_mismatch"  # a scanner cannot speak as a drone
    with api.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM custody_event")).scalar_one() == 0


def test_a_specimen_without_collection_or_description_is_tracked_from_first_sight(api, people):
    barcode = "CJZXWS26120400011"
    post(api, people["scanner"], payload(api, "custody.packed", barcode, 50))
    engine_run(api)
    body = specimen(api, barcode)
    assert body["state"] == "packed" and body["description_source"] == "none"
    assert {"undescribed", "custody_gap"} <= set(body["problems"])
    # the strictest budget from its first step: STAT 45 min, 50 min ago
    assert body["turnaround"] == "breached"
    assert {"custody_gap", "breach"} <= alert_kinds(api, barcode)


def test_drones_record_only_their_own_loading_and_unloading_over_mqtt(api, people, broker,
                                                                     database_url, tmp_path):
    barcode = "CJZXWS26120400012"
    send_towards_the_lab(api, people, barcode)
    ingester = IngesterProcess(database_url, broker.url, tmp_path, broker.protocol).start()
    ingester.wait_connected()
    publisher = Publisher(broker.url, protocol=broker.protocol)
    drone = {"kind": "drone", "id": "uav-03"}
    sends = [
        payload(api, "custody.received", barcode, 3, actor=drone),  # not a drone's step
        payload(api, "custody.unloaded", barcode, 3, drone_id="uav-01"),  # another drone
        payload(api, "custody.unloaded", barcode, 3),  # its own: stored
    ]
    for body in sends:
        publisher.publish(LAYOUT.drone_custody("uav-03"), json.dumps(body).encode())
    publisher.wait_all_acked()
    assert wait_for_count(api.engine, "SELECT count(*) FROM dead_letter", 2) == 2
    assert wait_for_count(api.engine, "SELECT count(*) FROM custody_event", 4) == 4
    ingester.terminate()
    publisher.close()
    with api.engine.connect() as connection:
        letters = sorted(connection.execute(text("SELECT reason_code FROM dead_letter")
                                            ).scalars())
        unloaded_by = connection.execute(text(
            "SELECT recorded_by FROM custody_event WHERE kind = 'unloaded'")).scalar_one()
    assert letters == ["identity_mismatch", "step_not_allowed"]
    assert unloaded_by == "drone:uav-03"


# --- adversarial timelines through HTTP --------------------------------------------------------

STEP = st.tuples(
    st.sampled_from(["received", "rejected"]),
    st.sampled_from(["lab", "foreign"]),
    st.integers(min_value=-4, max_value=19),  # after the loading (20 min ago), up to 4 min ahead
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=1, max_size=4))
def test_adversarial_receipts_close_only_at_the_destination_and_keep_every_fact(api, people,
                                                                                steps):
    barcode = f"CJ{uuid.uuid4().hex[:12].upper()}"
    send_towards_the_lab(api, people, barcode)
    received = rejected = None  # the closing facts, as the rules should pick them
    for kind, who, minutes_ago in steps:
        site, user = (LAB, "lab-1") if who == "lab" else (OTHER, "lab-wjwsy")
        body = payload(api, f"custody.{kind}", barcode, minutes_ago, site_id=site,
                       actor=me(user))
        body.update({"container_id": None, "seal_id": None} if kind == "received"
                    else {"note": None})
        post(api, people[who], body)
        if who == "lab" and kind == "received" and received is None and rejected is None:
            received = body["event_time"]
        elif who == "lab" and kind == "rejected" and rejected is None:
            rejected = body["event_time"]
        engine_run(api)
        seen = specimen(api, barcode)
        if seen["state"] in ("received", "rejected"):
            assert seen["site_id"] == LAB  # closed only at its destination
        assert seen["state"] == ("rejected" if rejected else "received" if received
                                 else "misrouted")
        at = seen["received_at"]
        assert (at.replace("Z", "+00:00") if at else None) == received  # never moved
    assert len(seen["timeline"]) == 3 + len(steps)  # the record keeps every fact
    closing = (received is not None) + (rejected is not None)
    named = [a for a in seen["anomalies"] if "impossible order" not in a]
    assert len(named) == len(steps) - closing  # every other receipt is named, none dropped


def test_a_landing_in_a_field_leaves_the_location_unknown_with_the_last_position(api, people):
    barcode = "CJZXWS26120400013"
    send_towards_the_lab(api, people, barcode)  # loaded onto F20261122-0007, uav-03
    now, flight = api.clock.now(), EXAMPLES["custody.loaded"]["flight_id"]
    writer = BatchWriter(api.engine, api.clock)
    base = dict(schema_version=1, drone_id="uav-03", flight_id=flight)
    events = [
        (m.FlightTakeoff(**base, event_id=uuid.uuid4(), kind="takeoff",
                         event_time=now - timedelta(minutes=15), site_id=TOWN), "flight"),
        (telemetry("uav-03", seq=1, at=now - timedelta(minutes=9), flight_id=flight,
                   lat=36.71, lon=119.80), "telemetry"),
        (telemetry("uav-03", seq=2, at=now - timedelta(minutes=8), flight_id=flight,
                   lat=36.72, lon=119.81), "telemetry"),
        (m.FlightAborted(**base, event_id=uuid.uuid4(), kind="aborted",
                         event_time=now - timedelta(minutes=7), reason="forced landing"),
         "flight"),
    ]
    for event, channel in events:
        topic = getattr(LAYOUT, channel)("uav-03")
        writer.write([Accepted(Delivery(topic, b"", now), LAYOUT.parse(topic), event)], [])
    engine_run(api)
    body = specimen(api, barcode)
    assert body["state"] == "location_unknown" and body["site_id"] is None
    assert "location_unknown" in body["problems"] and body["turnaround"] != "on_track"
    assert (body["position"]["lat"], body["position"]["lon"]) == (36.72, 119.81)
    assert "location_unknown" in alert_kinds(api, barcode)
