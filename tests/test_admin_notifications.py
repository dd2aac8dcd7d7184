"""The notifications' administration over HTTP: admin only, every route change audited
(without the recipients' addresses), channels by name and kind only, messages paged."""

import json

import pytest
from sqlalchemy import select

from dronelog.api.accounts import Role
from dronelog.config import Settings
from dronelog.storage.tables import AuditEntry
from tests.support import Api

CHANNELS = {"lab-mail": "mailtos://user:secretpass@smtp.hospital.example?from=d@h.example",
            "wecom": "wecombot://secretkey0123456789"}


@pytest.fixture
def admin_api(engine, clock, broker):
    settings = Settings(database_url=str(engine.url), mqtt_url=broker.url,
                        mqtt_protocol=broker.protocol, notify_channels=json.dumps(CHANNELS))
    running = Api(engine, settings, clock)
    yield running
    running.close()


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/admin/notification-routes"), ("POST", "/api/v1/admin/notification-routes"),
    ("PUT", "/api/v1/admin/notification-routes/1"),
    ("DELETE", "/api/v1/admin/notification-routes/1"),
    ("GET", "/api/v1/admin/notification-channels"), ("GET", "/api/v1/admin/notifications"),
])
def test_only_administrators_administer_notifications(admin_api, method, path):
    for role in Role:
        response = admin_api.http.request(method, path, headers=admin_api.as_role(role),
                                          json={})
        assert (response.status_code == 403) == (role is not Role.ADMIN), (role, response.text)


def test_routes_are_added_changed_deleted_and_audited(admin_api, engine):
    admin = admin_api.as_role(Role.ADMIN)
    channels = admin_api.http.get("/api/v1/admin/notification-channels", headers=admin)
    assert channels.json() == [{"name": "lab-mail", "scheme": "mailtos", "attachments": True},
                               {"name": "wecom", "scheme": "wecombot", "attachments": False}]
    assert "secret" not in channels.text
    route = {"name": "STAT breaches to the lab", "source": "alert", "channel": "lab-mail",
             "recipients": ["duty@h.example"], "alert_kinds": ["breach"],
             "priorities": ["stat"], "quiet_start": "22:00", "quiet_end": "07:00"}
    for wrong, why in (({"channel": "sms"}, "no channel 'sms'"),
                       ({"site_ids": ["nowhere"]}, "no site 'nowhere'"),
                       ({"quiet_end": None}, "both"),
                       ({"source": "report"}, "period and send_at"),
                       ({"source": "landing"}, "for alert routes")):
        refused = admin_api.http.post("/api/v1/admin/notification-routes", headers=admin,
                                      json=route | wrong)
        assert refused.status_code in (409, 422) and why in refused.text, (wrong, refused.text)
    created = admin_api.http.post("/api/v1/admin/notification-routes", headers=admin,
                                  json=route | {"site_ids": []})
    assert created.status_code == 201, created.text
    route_id = created.json()["id"]
    assert created.json()["recipients"] == ["duty@h.example"]
    report = admin_api.http.post("/api/v1/admin/notification-routes", headers=admin, json={
        "name": "weekly", "source": "report", "channel": "wecom", "period": "weekly",
        "send_at": "08:00"})
    assert report.status_code == 201, report.text
    changed = admin_api.http.put(f"/api/v1/admin/notification-routes/{route_id}",
                                 headers=admin, json=route | {"after_min": 15})
    assert changed.status_code == 200 and changed.json()["after_min"] == 15
    listed = admin_api.http.get("/api/v1/admin/notification-routes", headers=admin).json()
    assert listed["total"] == 2 and [r["name"] for r in listed["items"]] == [
        "STAT breaches to the lab", "weekly"]
    gone = admin_api.http.delete(f"/api/v1/admin/notification-routes/{route_id}",
                                 headers=admin)
    assert gone.status_code == 200
    assert admin_api.http.delete(f"/api/v1/admin/notification-routes/{route_id}",
                                 headers=admin).status_code == 404
    with engine.connect() as connection:
        audit = connection.execute(select(AuditEntry.__table__.c.action,
                                          AuditEntry.__table__.c.detail)).all()
    actions = [action for action, _ in audit if action.startswith("notification_route")]
    assert actions == ["notification_route.add", "notification_route.add",
                       "notification_route.change", "notification_route.delete"]
    assert not any("duty@h.example" in detail for _, detail in audit)
    messages = admin_api.http.get("/api/v1/admin/notifications?state=sent&limit=10",
                                  headers=admin)
    assert messages.status_code == 200 and messages.json()["total"] == 0
    assert admin_api.http.get("/api/v1/admin/notifications?limit=201",
                              headers=admin).status_code == 422
