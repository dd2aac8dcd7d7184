"""Free text follows one rule on both databases (issue 15, finding 7): a resolve note over
500 characters was a 500 on PostgreSQL and stored whole on SQLite (5 MB, streamed to every
dashboard), and notes took NUL and bidirectional overrides. Every free-text field the API
stores now follows the contract's `FreeText` (names: `Label`), refused with 422 before the
database sees it; the command line applies the same rule. Over real HTTP, SQLite and
PostgreSQL.
"""

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from dronelog.api.accounts import Role
from dronelog.config import Settings
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import scan

BAD_TEXT = {"too long": "x" * 501, "NUL": "checked\x00", "bidi override": "ok \u202eevil",
            "escape sequence": "\x1b[31mred", "C1 control": "a\x85b"}


@pytest.fixture
def alert_id(api, engine, clock) -> int:
    """An open breach alert (a STAT specimen collected an hour ago)."""
    assert api.http.post("/api/v1/custody", headers=api.as_role(Role.DEVICE),
                         json=scan("custody.collected", minutes_ago=60)).status_code == 201
    settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(engine, settings, clock=clock).turnaround()
    active = api.http.get("/api/v1/alerts", params={"state": "active"},
                          headers=api.as_role(Role.DISPATCHER)).json()["items"]
    return active[0]["id"]


@pytest.mark.parametrize("case", BAD_TEXT)
def test_a_resolve_note_breaking_the_rule_is_refused_alike_on_both_databases(api, alert_id,
                                                                             case):
    refused = api.http.post(f"/api/v1/alerts/{alert_id}/resolve",
                            headers=api.as_role(Role.DISPATCHER), json={"note": BAD_TEXT[case]})
    assert refused.status_code == 422, refused.text
    alert = api.http.get("/api/v1/alerts", params={"state": "active"},
                         headers=api.as_role(Role.DISPATCHER)).json()["items"]
    assert [a["id"] for a in alert] == [alert_id]  # still open: nothing was stored


def test_a_note_of_500_characters_with_line_breaks_is_stored_whole(api, alert_id):
    note = ("冷链箱已检查\n" + "x" * 500)[:500]
    done = api.http.post(f"/api/v1/alerts/{alert_id}/resolve",
                         headers=api.as_role(Role.DISPATCHER), json={"note": note})
    assert done.status_code == 200, done.text
    assert done.json()["resolution_note"] == note


@pytest.mark.parametrize("field, value", [
    ("name_zh", "卫生室\u202e"), ("name_en", "clinic\x00"), ("name_en", "two\nlines"),
    ("name_en", "x" * 201)])
def test_names_follow_the_rule_on_one_line(api, field, value):
    site = {"name_zh": "村卫生室", "name_en": "clinic", "kind": "health_centre",
            "lat": 36.8, "lon": 119.9, field: value}
    refused = api.http.put("/api/v1/admin/sites/ljz", headers=api.as_role(Role.ADMIN), json=site)
    assert refused.status_code == 422, refused.text
    drone = api.http.put("/api/v1/admin/drones/uav-77", headers=api.as_role(Role.ADMIN),
                         json={"display_name": value})
    assert drone.status_code == 422


def test_a_nul_in_a_login_name_is_refused_not_a_server_error(api, engine):
    refused = api.http.post("/api/v1/auth/token",
                            data={"username": "disp-1\x00", "password": "whatever"})
    assert refused.status_code == 422, refused.text
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM login_failure")).scalar() == 0


def test_the_command_line_applies_the_same_rule(database_url, alert_id, tmp_path):
    env = {**os.environ, "DRONELOG_DATABASE_URL": database_url,
           "DRONELOG_CONFIG": str(tmp_path / "none.toml")}
    for note in ("x" * 501, "ok \u202eevil"):
        refused = subprocess.run(
            [sys.executable, "-m", "dronelog", "alerts", "resolve", str(alert_id), "--by",
             "disp-1", "--note", note], env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "--note" in refused.stderr
    name = subprocess.run(
        [sys.executable, "-m", "dronelog", "users", "add", "disp-9", "--role", "dispatcher",
         "--name", "调度\u202e"], env=env, capture_output=True, text=True, timeout=120)
    assert name.returncode == 2 and "--name" in name.stderr
