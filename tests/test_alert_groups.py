"""Alerts a dispatcher works through (issue 17): grouped by flight and container, filtered by
kind, site, state and severity, sorted by severity then age, acknowledged a group at once;
on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from dronelog.api import alert_groups
from dronelog.api.accounts import Role, issue_token
from dronelog.api.routes.alerts import filtered
from dronelog.domain.alerts import AlertKind, Condition, Reconciliation
from dronelog.storage.database import create_db_engine, migrate
from dronelog.storage.tables import AlertChange, AuditEntry
from dronelog.turnaround import alert_store
from tests.support import LAB, TOWN

OTHER_LAB = "pddermyy"


def _open(engine, clock, *conditions: Condition) -> list[int]:
    with engine.begin() as connection:
        return alert_store.apply(connection, Reconciliation(to_open=list(conditions)),
                                 clock.now())


def _excursion(barcode: str, container: str | None, flight: str | None,
               site: str = LAB) -> Condition:
    return Condition("specimen", barcode, AlertKind.TEMPERATURE_EXCURSION,
                     f"{barcode} too warm", {"container_id": container, "flight_id": flight,
                                             "temp_max_c": 14.0},
                     site_id=site, drone_id="uav-01", origin_site_id=TOWN)


@pytest.fixture
def seeded(api, engine, clock):
    """A box of three tubes too warm on flight F1; a box of two on the same flight; a lost
    link (a flight's); one tube warm before it was boxed; a breach on F1's cargo (other
    kind); an old medium warning elsewhere."""
    ids = {}
    clock.advance(-600)
    ids["warning"] = _open(engine, clock, Condition(
        "specimen", "CJW0001", AlertKind.TURNAROUND_WARNING, "late soon",
        {"flight_id": None}, site_id=OTHER_LAB))
    clock.advance(300)
    ids["box1"] = _open(engine, clock, *(_excursion(f"CJA000{i}", "BOX-1", "F1")
                                         for i in range(3)))
    clock.advance(60)
    ids["box2"] = _open(engine, clock, *(_excursion(f"CJB000{i}", "BOX-2", "F1")
                                         for i in range(2)))
    clock.advance(10)
    ids["loose"] = _open(engine, clock, _excursion("CJC0001", None, None))
    clock.advance(10)
    ids["lost"] = _open(engine, clock, Condition(
        "flight", "F2", AlertKind.LOST_LINK, "no telemetry", {}, site_id=LAB,
        drone_id="uav-02"))
    clock.advance(10)
    ids["breach"] = _open(engine, clock, *(Condition(
        "specimen", f"CJA000{i}", AlertKind.BREACH, "late", {"flight_id": "F1"},
        site_id=LAB) for i in range(2)))
    clock.advance(240)
    return ids


def test_one_entry_per_box_and_flight_sorted_by_severity_then_age(api, seeded):
    page = api.http.get("/api/v1/alerts/groups", params={"state": "active"},
                        headers=api.as_role(Role.DISPATCHER)).json()
    entries = [(g["kind"], g["subject_kind"], g["flight_id"], g["container_id"], g["count"])
               for g in page["items"]]
    assert entries == [
        # critical, oldest first: box 1, box 2, the loose tube, F1's breaches
        ("temperature_excursion", "cargo", "F1", "BOX-1", 3),
        ("temperature_excursion", "cargo", "F1", "BOX-2", 2),
        ("temperature_excursion", "specimen", None, None, 1),
        ("breach", "cargo", "F1", None, 2),
        ("lost_link", "flight", "F2", None, 1),  # high: a flight alert, alone
        ("turnaround_warning", "specimen", None, None, 1),  # medium, though the oldest
    ]
    assert page["total"] == 6
    box = page["items"][0]
    assert sorted(a["subject_id"] for a in box["alerts"]) == ["CJA0000", "CJA0001", "CJA0002"]
    assert sorted(a["id"] for a in box["alerts"]) == seeded["box1"]
    assert (box["state"], box["counts"]) == ("open", {"open": 3, "acknowledged": 0,
                                                       "resolved": 0})
    second = api.http.get("/api/v1/alerts/groups", params={"limit": 2, "offset": 2},
                          headers=api.as_role(Role.DISPATCHER)).json()
    assert [g["kind"] for g in second["items"]] == ["temperature_excursion", "breach"]
    assert (second["total"], second["limit"]) == (6, 2)


def test_filters_apply_to_the_alerts_before_grouping(api, seeded):
    dispatcher = api.as_role(Role.DISPATCHER)

    def keys(**params):
        page = api.http.get("/api/v1/alerts/groups", params=params, headers=dispatcher)
        assert page.status_code == 200, page.text
        return [(g["kind"], g["container_id"], g["count"]) for g in page.json()["items"]]

    assert keys(severity="medium") == [("turnaround_warning", None, 1)]
    assert keys(kind="lost_link") == [("lost_link", None, 1)]
    assert keys(site=OTHER_LAB) == [("turnaround_warning", None, 1)]
    assert len(keys(site=LAB)) == 5
    api.http.post(f"/api/v1/alerts/{seeded['box1'][0]}/acknowledge", headers=dispatcher)
    assert keys(state="acknowledged") == [("temperature_excursion", "BOX-1", 1)]
    assert keys(state="open")[0] == ("temperature_excursion", "BOX-1", 2)
    mixed = api.http.get("/api/v1/alerts/groups", params={"kind": "temperature_excursion"},
                         headers=dispatcher).json()["items"][0]
    assert (mixed["state"], mixed["counts"]["acknowledged"]) == ("open", 1)
    assert [a["state"] for a in mixed["alerts"]] == ["open", "open", "acknowledged"]
    lab = api.http.get("/api/v1/alerts/groups", params={"site": OTHER_LAB},
                       headers=api.as_role(Role.LAB)).json()  # a lab sees its own site's
    assert {g["site_id"] for g in lab["items"]} == {LAB}
    for bad in ({"severity": "low"}, {"state": "closed"}, {"limit": 201}, {"limit": 0},
                {"kind": "k" * 33}):
        assert api.http.get("/api/v1/alerts/groups", params=bad,
                            headers=dispatcher).status_code == 422, bad
    assert api.http.get("/api/v1/alerts", params={"severity": "high"}, headers=dispatcher
                        ).json()["total"] == 1


def test_a_group_is_acknowledged_in_one_request_attributed_and_audited(api, engine, seeded):
    dispatcher = api.as_role(Role.DISPATCHER)
    box = seeded["box1"]
    first = api.http.post(f"/api/v1/alerts/{box[0]}/acknowledge", headers=dispatcher)
    assert first.status_code == 200
    resolved = api.http.post(f"/api/v1/alerts/{seeded['lost'][0]}/resolve",
                             json={"note": "link back"}, headers=dispatcher)
    assert resolved.status_code == 200
    body = {"ids": [*box, box[1], seeded["lost"][0], 999_999]}
    response = api.http.post("/api/v1/alerts/acknowledge", json=body, headers=dispatcher)
    assert response.status_code == 200, response.text
    assert response.json() == {"acknowledged": box[1:], "skipped": [
        {"id": box[0], "state": "acknowledged"}, {"id": seeded["lost"][0], "state": "resolved"},
        {"id": 999_999, "state": None}]}
    alerts = {a["id"]: a for a in api.http.get(
        "/api/v1/alerts", params={"kind": "temperature_excursion"},
        headers=dispatcher).json()["items"]}
    assert all(alerts[i]["acknowledged_by"] == "disp-1" for i in box)
    with engine.connect() as connection:
        audited = connection.execute(select(AuditEntry.__table__.c.subject).where(
            AuditEntry.__table__.c.action == "alert.acknowledge")).scalars().all()
        changes = connection.execute(select(AlertChange.__table__.c.alert_id).where(
            AlertChange.__table__.c.change == "acknowledged")).scalars().all()
    assert sorted(audited) == sorted(str(i) for i in box)
    assert sorted(changes) == sorted(box)  # one outbox change each: notified like one by one


def test_bulk_acknowledgement_is_bounded_and_for_dispatchers(api, seeded):
    for role in (Role.LAB, Role.ADMIN, Role.DEVICE):
        assert api.http.post("/api/v1/alerts/acknowledge", json={"ids": seeded["box1"]},
                             headers=api.as_role(role)).status_code == 403
    dispatcher = api.as_role(Role.DISPATCHER)
    for ids in ([], list(range(1, 202)), [0], [2**31]):
        assert api.http.post("/api/v1/alerts/acknowledge", json={"ids": ids},
                             headers=dispatcher).status_code == 422, len(ids)
    assert api.http.post("/api/v1/alerts/acknowledge", json={"ids": list(range(1, 201))},
                         headers=dispatcher).status_code == 200
    assert api.http.get("/api/v1/alerts/groups",
                        headers=api.as_role(Role.DEVICE)).status_code == 403


def test_a_group_lists_at_most_its_first_hundred_alerts(api, engine, clock):
    _open(engine, clock, *(_excursion(f"CJZ{i:04d}", "BOX-BIG", "F9") for i in range(105)))
    clock.advance(timedelta(seconds=1).total_seconds())
    (group,) = api.http.get("/api/v1/alerts/groups",
                            headers=api.as_role(Role.DISPATCHER)).json()["items"]
    assert (group["count"], len(group["alerts"])) == (105, 100)


def test_resolved_alerts_are_grouped_from_a_bounded_window(api, engine, clock):
    """Grouping reads every alert it selects, so resolved alerts are read for a window: those
    resolved in the last 30 days, or `resolved_days` (1 to 366); open and acknowledged ones
    however old. At the edge: resolved exactly 30 days ago is in, a second earlier is out."""
    dispatcher = api.as_role(Role.DISPATCHER)
    _open(engine, clock, Condition("flight", "F-OLD", AlertKind.LOST_LINK, "no telemetry", {},
                                   site_id=LAB))
    earlier, edge = _open(engine, clock, _excursion("CJE0001", None, None),
                          _excursion("CJE0002", None, None))
    resolve = {"note": "checked at the bench"}
    assert api.http.post(f"/api/v1/alerts/{earlier}/resolve", json=resolve,
                         headers=dispatcher).status_code == 200
    clock.advance(1)
    assert api.http.post(f"/api/v1/alerts/{edge}/resolve", json=resolve,
                         headers=dispatcher).status_code == 200
    clock.advance(timedelta(days=30).total_seconds())
    with engine.begin() as connection:  # the dispatcher logs in again, 30 days on
        token = issue_token(connection, "disp-1", clock.now(), timedelta(hours=1))
    dispatcher = {"Authorization": f"Bearer {token}"}

    def grouped(**params) -> set[str]:
        page = api.http.get("/api/v1/alerts/groups", params=params, headers=dispatcher)
        assert page.status_code == 200, page.text
        return {alert["subject_id"] for group in page.json()["items"]
                for alert in group["alerts"]}

    assert grouped() == {"F-OLD", "CJE0002"}
    assert grouped(state="resolved") == {"CJE0002"}
    assert grouped(state="active") == {"F-OLD"}  # 30 days open: still there
    assert grouped(state="resolved", resolved_days=31) == {"CJE0001", "CJE0002"}
    assert grouped(state="resolved", resolved_days=1) == set()
    for bad in (0, 367):
        assert api.http.get("/api/v1/alerts/groups", params={"resolved_days": bad},
                            headers=dispatcher).status_code == 422, bad


@pytest.mark.parametrize("state", [None, "resolved"])
def test_resolved_alerts_are_read_through_the_window_of_an_index(tmp_path, state):
    """The window bounds what is read, not only what is shown: SQLite reaches the resolved
    alerts through ix_alert_state_resolved's range on resolved_at."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(engine)
    reader = SimpleNamespace(role=Role.DISPATCHER, site_id=None)
    query = alert_groups.resolved_since(filtered(reader, state, None, None, None), state,
                                        datetime(2026, 12, 1, tzinfo=UTC))
    with engine.connect() as connection:
        sql = str(query.compile(connection, compile_kwargs={"literal_binds": True}))
        plan = [row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
    engine.dispose()
    assert any("ix_alert_state_resolved (state=? AND resolved_at>?)" in step
               for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan
