"""Administration over HTTP (admin role only): users, device tokens, sites; all audited."""

import hashlib
import json

import pytest
from sqlalchemy import select

from dronelog.api.accounts import Role
from dronelog.storage.tables import AuditEntry, Drone

KIOSK = {"name_zh": "李家庄村卫生室", "name_en": "Lijiazhuang village clinic",
         "kind": "health_centre", "lat": 36.81, "lon": 119.92}


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/admin/users"), ("POST", "/api/v1/admin/users"),
    ("PATCH", "/api/v1/admin/users/lab-1"), ("POST", "/api/v1/admin/users/lab-1/tokens"),
    ("POST", "/api/v1/admin/users/lab-1/revoke"), ("PUT", "/api/v1/admin/sites/ljz"),
    ("PUT", "/api/v1/admin/drones/uav-11"), ("GET", "/api/v1/admin/drones"),
    ("GET", "/api/v1/admin/tokens"), ("POST", f"/api/v1/admin/tokens/{'0' * 64}/revoke"),
])
def test_only_administrators_administer(api, method, path):
    for role in Role:
        response = api.http.request(method, path, headers=api.as_role(role), json={})
        assert (response.status_code == 403) == (role is not Role.ADMIN), (role, response.text)


def test_a_sites_pad_is_bounded_as_in_a_network_file(api):
    """Up to 500 m, as tests/test_simulator.py checks for a network file (before: 1,000 m
    here): a drone that near a pad is taken to be at the site."""
    admin = api.as_role(Role.ADMIN)
    for radius, status in ((500.5, 422), (500, 200)):
        response = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                                json={**KIOSK, "pad_radius_m": radius})
        assert response.status_code == status, (radius, response.text)


def test_an_administrator_adds_a_site_a_scanner_and_a_lab_user(api, engine):
    admin = api.as_role(Role.ADMIN)
    orphan = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "scanner-ljz", "role": "device", "site_id": "ljz"})
    assert orphan.status_code == 409 and "no site 'ljz'" in orphan.json()["detail"]
    bad_zone = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                            json={**KIOSK, "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422
    site = api.http.put("/api/v1/admin/sites/ljz", headers=admin, json=KIOSK)
    assert site.status_code == 200 and site.json()["timezone"] == "Asia/Shanghai"
    listed = api.http.get("/api/v1/sites", headers=api.as_role(Role.LAB)).json()
    assert {s["id"]: s["name_en"] for s in listed}["ljz"] == "Lijiazhuang village clinic"
    renamed = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                           json={**KIOSK, "name_en": "Lijiazhuang clinic"})
    assert renamed.json()["name_en"] == "Lijiazhuang clinic"

    created = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "scanner-ljz", "role": "device", "site_id": "ljz"})
    assert created.status_code == 201 and created.json()["active"] is True
    assert "password" not in created.text
    again = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "scanner-ljz", "role": "device", "site_id": "ljz"})
    assert again.status_code == 409
    issued = api.http.post("/api/v1/admin/users/scanner-ljz/tokens", headers=admin,
                           json={"hours": 24})
    assert issued.status_code == 201
    device = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert api.http.get("/api/v1/auth/me", headers=device).json() == {
        "user_id": "scanner-ljz", "role": "device", "site_id": "ljz"}

    weak = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "lab-ljz", "role": "lab", "site_id": "ljz", "password": "short"})
    assert weak.status_code == 422
    lab = api.http.post("/api/v1/admin/users", headers=admin, json={
        "id": "lab-ljz", "role": "lab", "site_id": "ljz", "password": "a long passphrase"})
    assert lab.status_code == 201
    login = api.http.post("/api/v1/auth/token", data={"username": "lab-ljz",
                                                       "password": "a long passphrase"})
    assert login.status_code == 200 and login.json()["site_id"] == "ljz"

    revoked = api.http.post("/api/v1/admin/users/scanner-ljz/revoke", headers=admin)
    assert revoked.json() == {"user_id": "scanner-ljz", "revoked": 1}
    assert api.http.get("/api/v1/auth/me", headers=device).status_code == 401
    assert api.http.post("/api/v1/admin/users/nobody/revoke", headers=admin).status_code == 404
    with engine.connect() as connection:
        actions = connection.execute(select(AuditEntry.__table__.c.action, AuditEntry.__table__
                                            .c.subject).where(AuditEntry.__table__.c.user_id ==
                                                              "admin-1")).all()
    assert sorted(map(tuple, actions)) == sorted([
        ("site.put", "ljz"), ("site.put", "ljz"), ("user.add", "scanner-ljz"),
        ("token.issue", "scanner-ljz"), ("user.add", "lab-ljz"),
        ("token.revoke", "scanner-ljz")])


def test_deactivating_or_demoting_a_user_ends_their_tokens(api):
    admin = api.as_role(Role.ADMIN)
    dispatcher = api.as_role(Role.DISPATCHER)
    assert api.http.get("/api/v1/auth/me", headers=dispatcher).status_code == 200
    demoted = api.http.patch("/api/v1/admin/users/disp-1", headers=admin,
                             json={"role": "lab"})
    assert demoted.status_code == 409 and "site" in demoted.json()["detail"]
    assert api.http.get("/api/v1/auth/me", headers=dispatcher).status_code == 200
    assert api.http.put("/api/v1/admin/sites/ljz", headers=admin, json=KIOSK).status_code == 200
    moved = api.http.patch("/api/v1/admin/users/disp-1", headers=admin,
                           json={"role": "lab", "site_id": "ljz"})
    assert moved.status_code == 200 and moved.json()["role"] == "lab"
    assert api.http.get("/api/v1/auth/me", headers=dispatcher).status_code == 401
    lab = api.as_role(Role.LAB)
    off = api.http.patch("/api/v1/admin/users/lab-1", headers=admin, json={"active": False})
    assert off.json()["active"] is False
    assert api.http.get("/api/v1/auth/me", headers=lab).status_code == 401
    assert api.http.post("/api/v1/auth/token", data={"username": "lab-1",
                                                     "password": "pw-lab-1"}).status_code == 401
    myself = api.http.patch("/api/v1/admin/users/admin-1", headers=admin, json={"active": False})
    assert myself.status_code == 409
    assert api.http.patch("/api/v1/admin/users/nobody", headers=admin,
                          json={"active": False}).status_code == 404
    users = {u["id"]: u for u in api.http.get("/api/v1/admin/users",
                                              headers=admin).json()["items"]}
    assert (users["lab-1"]["active"], users["disp-1"]["role"]) == (False, "lab")


def test_an_administrator_registers_and_retires_a_drone(api, engine):
    admin = api.as_role(Role.ADMIN)
    assert api.http.put("/api/v1/admin/sites/ljz", headers=admin, json=KIOSK).status_code == 200
    homeless = api.http.put("/api/v1/admin/drones/uav-11", headers=admin,
                            json={"home_site_id": "nowhere"})
    assert homeless.status_code == 409
    registered = api.http.put("/api/v1/admin/drones/uav-11", headers=admin, json={
        "display_name": "平度 11 号", "model": "FP-98", "home_site_id": "ljz"})
    assert registered.status_code == 200
    first_seen = registered.json()["first_seen_at"]
    retired = api.http.put("/api/v1/admin/drones/uav-11", headers=admin, json={
        "display_name": "平度 11 号", "model": "FP-98", "home_site_id": "ljz", "retired": True})
    assert retired.json()["retired"] is True and retired.json()["first_seen_at"] == first_seen
    with engine.connect() as connection:
        row = connection.execute(select(Drone.__table__).where(
            Drone.__table__.c.id == "uav-11")).one()
    assert (row.model, row.home_site_id, row.retired) == ("FP-98", "ljz", True)
    dispatcher = api.as_role(Role.DISPATCHER)
    assert "uav-11" not in [d["drone_id"] for d in api.http.get(
        "/api/v1/drones", headers=dispatcher).json()]
    every = api.http.get("/api/v1/drones", params={"include_retired": True},
                         headers=dispatcher).json()
    assert [(d["drone_id"], d["display_name"], d["retired"]) for d in every] == [
        ("uav-11", "平度 11 号", True)]


def test_logins_are_limited_per_user_and_per_client(api, clock):
    def login(user: str, password: str):
        return api.http.post("/api/v1/auth/token", data={"username": user,
                                                         "password": password})

    for _ in range(5):
        assert login("disp-1", "guess").status_code == 401
    blocked = login("disp-1", "pw-disp-1")  # even the right password, for now
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 900
    assert "too many refused logins" in blocked.json()["detail"]
    assert login("lab-1", "pw-lab-1").status_code == 200  # other users are not locked out
    clock.advance(901)
    assert login("disp-1", "pw-disp-1").status_code == 200
    for attempt in range(20):  # one client spraying user ids
        assert login(f"nobody-{attempt}", "guess").status_code == 401
    assert login("admin-1", "pw-admin-1").status_code == 429


def test_users_and_drones_are_listed_a_page_at_a_time(api):
    admin = api.as_role(Role.ADMIN)
    page = api.http.get("/api/v1/admin/users", params={"limit": 2, "offset": 1},
                        headers=admin).json()
    assert ([u["id"] for u in page["items"]], page["total"]) == (["disp-1", "lab-1"], 4)
    labs = api.http.get("/api/v1/admin/users", params={"role": "lab"}, headers=admin).json()
    assert [u["id"] for u in labs["items"]] == ["lab-1"] and labs["total"] == 1
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"role": "pilot"}):
        assert api.http.get("/api/v1/admin/users", params=bad,
                            headers=admin).status_code == 422, bad
    for drone, retired in (("uav-21", False), ("uav-22", True)):
        assert api.http.put(f"/api/v1/admin/drones/{drone}", headers=admin, json={
            "model": "FP-98", "retired": retired}).status_code == 200
    every = api.http.get("/api/v1/admin/drones", headers=admin).json()
    assert [(d["id"], d["model"], d["retired"]) for d in every["items"]] == [
        ("uav-21", "FP-98", False), ("uav-22", "FP-98", True)]
    serving = api.http.get("/api/v1/admin/drones", params={"include_retired": False},
                           headers=admin).json()
    assert [d["id"] for d in serving["items"]] == ["uav-21"] and serving["total"] == 1
    assert api.http.get("/api/v1/admin/drones", params={"limit": 501},
                        headers=admin).status_code == 422


def test_one_device_token_is_revoked_and_the_others_keep_working(api, engine, clock):
    admin = api.as_role(Role.ADMIN)
    issued = [api.http.post("/api/v1/admin/users/scanner-cj/tokens", headers=admin,
                            json={"hours": 24 * 30}).json()["access_token"] for _ in range(2)]
    clock.advance(1)
    listed = api.http.get("/api/v1/admin/tokens", params={"role": "device"},
                          headers=admin).json()
    # the fixture's token and the two issued; the secret itself is never listed
    assert listed["total"] == 3 and all(t["user_id"] == "scanner-cj" and t["live"]
                                        for t in listed["items"])
    assert not any(secret in str(listed) for secret in issued)
    lost = next(t["id"] for t in listed["items"]
                if t["id"] == hashlib.sha256(issued[0].encode()).hexdigest())
    revoked = api.http.post(f"/api/v1/admin/tokens/{lost}/revoke", headers=admin)
    assert revoked.json() == {"id": lost, "user_id": "scanner-cj", "revoked": True}

    def me(token):
        return api.http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert (me(issued[0]).status_code, me(issued[1]).status_code) == (401, 200)
    live = api.http.get("/api/v1/admin/tokens", params={"user_id": "scanner-cj"},
                        headers=admin).json()
    assert live["total"] == 2 and lost not in [t["id"] for t in live["items"]]
    ended = api.http.get("/api/v1/admin/tokens", params={"user_id": "scanner-cj",
                                                          "include_ended": True},
                         headers=admin).json()
    gone = next(t for t in ended["items"] if t["id"] == lost)
    assert (gone["live"], gone["revoked_at"] is not None) == (False, True)
    assert api.http.post(f"/api/v1/admin/tokens/{'f' * 64}/revoke",
                         headers=admin).status_code == 404
    assert api.http.post("/api/v1/admin/tokens/not-a-hash/revoke",
                         headers=admin).status_code == 422
    with engine.connect() as connection:
        entry = connection.execute(select(AuditEntry.__table__).where(
            AuditEntry.__table__.c.action == "token.revoke")).one()
    assert (entry.user_id, entry.subject, json.loads(entry.detail)) == (
        "admin-1", "scanner-cj", {"token": lost[:12]})


def test_site_short_names_are_set_kept_when_left_out_and_listed(api):
    """Issue 20: short names for narrow labels; a PUT without them (a form that does not show
    them) keeps the ones the site has."""
    admin = api.as_role(Role.ADMIN)
    assert api.http.put("/api/v1/admin/sites/ljz", headers=admin, json={
        **KIOSK, "short_zh": "李家庄", "short_en": "Lijiazhuang"}).status_code == 200
    renamed = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                           json={**KIOSK, "name_en": "Lijiazhuang clinic"})
    assert (renamed.json()["short_zh"], renamed.json()["short_en"]) == ("李家庄", "Lijiazhuang")
    cleared = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                           json={**KIOSK, "short_en": None})
    assert (cleared.json()["short_zh"], cleared.json()["short_en"]) == ("李家庄", None)
    listed = {s["id"]: s for s in api.http.get("/api/v1/sites",
                                                headers=api.as_role(Role.LAB)).json()}
    assert (listed["ljz"]["short_zh"], listed["ljz"]["short_en"]) == ("李家庄", None)
    too_long = api.http.put("/api/v1/admin/sites/ljz", headers=admin,
                            json={**KIOSK, "short_zh": "长" * 41})
    assert too_long.status_code == 422
