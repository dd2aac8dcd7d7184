"""Site staff send (issue 16, item 1): a lab user at a township clinic records `collected`,
`packed` and `loaded` at its own site, as itself, through the HTTP custody entrance and the
same custody rules as every other entrance; over real HTTP on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import text

from dronelog.api.accounts import Role, add_user, issue_token
from tests.support import LAB, TOWN, scan

NURSE = "lab-cj"


@pytest.fixture
def clinic(api):
    """A lab user of the township clinic (TOWN), and its bearer header."""
    with api.engine.begin() as connection:
        add_user(connection, NURSE, Role.LAB, api.clock.now(), site_id=TOWN)
        token = issue_token(connection, NURSE, api.clock.now(), timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def _as_nurse(name: str, minutes_ago: float, **changes) -> dict:
    return scan(name, minutes_ago, actor={"kind": "staff", "id": NURSE}, **changes)


def test_clinic_staff_record_collection_packing_and_loading_as_themselves(api, clinic):
    steps = [_as_nurse("custody.collected", 20), _as_nurse("custody.packed", 15),
             _as_nurse("custody.loaded", 10)]
    for step in steps:
        response = api.http.post("/api/v1/custody", headers=clinic, json=step)
        assert response.status_code == 201, response.text
    again = api.http.post("/api/v1/custody", headers=clinic, json=steps[1])
    assert again.status_code == 200 and again.json()["stored"] is False  # idempotent
    with api.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT kind, site_id, actor_id, recorded_by FROM custody_event "
            "ORDER BY event_time")).all()
    assert [tuple(r) for r in rows] == [(kind, TOWN, NURSE, f"user:{NURSE}")
                                        for kind in ("collected", "packed", "loaded")]


@pytest.mark.parametrize("name, changes, status, code", [
    # at another site: the lead hospital's lab, not the clinic
    ("custody.collected", {"site_id": LAB}, 422, "identity_mismatch"),
    ("custody.packed", {"site_id": LAB}, 422, "identity_mismatch"),
    # speaking as a drone, or as another person
    ("custody.loaded", {"actor": {"kind": "drone", "id": "uav-03"}}, 422, "actor_mismatch"),
    ("custody.collected", {"actor": {"kind": "staff", "id": "nurse-cj-07"}}, 422,
     "actor_mismatch"),
    # unloading is the drone's (or a site scanner's), never a person's at the dashboards
    ("custody.unloaded", {"site_id": TOWN, "actor": {"kind": "staff", "id": NURSE}}, 403,
     "step_not_allowed"),
])
def test_clinic_staff_are_refused_elsewhere_and_as_someone_else(api, clinic, name, changes,
                                                                 status, code):
    response = api.http.post("/api/v1/custody", headers=clinic,
                             json=scan(name, **({"actor": {"kind": "staff", "id": NURSE}}
                                                | changes)))
    assert response.status_code == status, response.text
    assert response.json()["reason_code"] == code
    with api.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM custody_event")).scalar() == 0
