"""Accounts, as an outside test found them (issue 15, finding 7), over real HTTP and through
the real `dronelog` command:

- an administrator could mint a 366-day token for a person, itself included: a person's
  token now lives at most DRONELOG_PERSON_TOKEN_MAX_H, a device's may be long;
- `dronelog users add --password-stdin` took a one-character password while the API wanted
  ten: one policy now serves both;
- `dronelog users revoke nosuchuser` reported success.
"""

import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from dronelog.api.accounts import Role
from dronelog.config import Settings
from tests.support import Api


@pytest.fixture
def admin_api(engine, clock):
    api = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9",
                               person_token_max_h=24), clock)
    yield api
    api.close()


def _expires(response) -> datetime:
    return datetime.fromisoformat(response.json()["expires_at"])


def test_a_persons_token_lives_at_most_the_configured_maximum_a_devices_longer(admin_api):
    api, admin = admin_api, admin_api.as_role(Role.ADMIN)
    year = {"hours": 24 * 366}
    for person in ("lab-1", "disp-1", "admin-1"):  # the administrator itself included
        refused = api.http.post(f"/api/v1/admin/users/{person}/tokens", headers=admin,
                                json=year)
        assert refused.status_code == 422, (person, refused.text)
        assert "at most 24 h" in refused.json()["detail"]
    day = api.http.post("/api/v1/admin/users/disp-1/tokens", headers=admin, json={"hours": 24})
    assert day.status_code == 201
    assert _expires(day) == api.clock.now() + timedelta(hours=24)
    device = api.http.post("/api/v1/admin/users/scanner-cj/tokens", headers=admin, json=year)
    assert device.status_code == 201
    assert _expires(device) == api.clock.now() + timedelta(days=366)


def test_a_login_token_never_outlives_the_maximum(engine, clock):
    api = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9",
                               token_ttl_h=72, person_token_max_h=8), clock)
    try:
        login = api.http.post("/api/v1/auth/token",
                              data={"username": "disp-1", "password": "pw-disp-1"})
        assert login.status_code == 200
        assert _expires(login) == clock.now() + timedelta(hours=8)
    finally:
        api.close()


def test_the_api_applies_the_password_policy_to_new_and_changed_passwords(admin_api):
    api, admin = admin_api, admin_api.as_role(Role.ADMIN)
    for password in ("x", "123456789", "DISP-new-01"):  # short, short, the user id
        weak = api.http.post("/api/v1/admin/users", headers=admin, json={
            "id": "disp-new-01", "role": "dispatcher", "password": password})
        assert weak.status_code == 422, password
    changed = api.http.patch("/api/v1/admin/users/lab-1", headers=admin, json={"password": "x"})
    assert changed.status_code == 422 and "at least 10" in changed.json()["detail"]
    good = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "disp-new-01", "role": "dispatcher", "password": "1234567890"})
    assert good.status_code == 201


def _dronelog(database_url: str, tmp_path, *args: str, stdin: str | None = None
              ) -> subprocess.CompletedProcess:
    env = {**os.environ, "DRONELOG_DATABASE_URL": database_url,
           "DRONELOG_CONFIG": str(tmp_path / "none.toml"), "DRONELOG_PERSON_TOKEN_MAX_H": "24"}
    return subprocess.run([sys.executable, "-m", "dronelog", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_applies_the_same_policies(database_url, tmp_path):
    weak = _dronelog(database_url, tmp_path, "users", "add", "disp-9", "--role", "dispatcher",
                     "--password-stdin", stdin="x\n")
    assert weak.returncode != 0 and "at least 10 characters" in weak.stderr
    added = _dronelog(database_url, tmp_path, "users", "add", "disp-9", "--role",
                      "dispatcher", "--password-stdin", stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    year = _dronelog(database_url, tmp_path, "users", "token", "disp-9", "--hours", "8784")
    assert year.returncode != 0 and "at most 24 h" in year.stderr
    assert year.stdout == ""  # no token printed


def test_revoking_an_unknown_user_fails_clearly(database_url, tmp_path):
    unknown = _dronelog(database_url, tmp_path, "users", "revoke", "nosuchuser")
    assert unknown.returncode != 0
    assert "no user 'nosuchuser'" in unknown.stderr and "revoked" not in unknown.stdout
