"""Notifications delivered to local stand-ins only: a local SMTP server (aiosmtpd) for e-mail,
a local HTTP server in place of the WeCom and DingTalk bot endpoints (DRONELOG_NOTIFY_BOT_RELAY).
Never the internet. On SQLite and PostgreSQL, on a controllable clock: alerts once per route,
quiet hours, escalation at exactly N minutes, retries until failed, the rate limit's digest,
the request assigned, the box received, the lab before the flight lands, the scheduled
report once per period across restarts and two schedulers."""

import email
import json
import threading
from datetime import UTC, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from dronelog.api.accounts import Role
from dronelog.broker import free_port
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.contract.topics import TopicLayout
from dronelog.domain.notifications import MAX_ATTEMPTS
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.notify.routes import ROUTE
from dronelog.storage.network import import_network
from dronelog.storage.tables import (
    Alert,
    AlertChange,
    Notification,
    RequestChange,
    TransportRequestRow,
)
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround import alert_store
from dronelog.turnaround.service import TurnaroundJobs
from dronelog_sim.scenario import load_scenario
from tests.support import LAB, TOWN, scan, telemetry

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALERT, CHANGE, NOTIFICATION = Alert.__table__, AlertChange.__table__, Notification.__table__
REQUEST, REQUEST_CHANGE = TransportRequestRow.__table__, RequestChange.__table__
SCENARIO = Path(__file__).parent.parent / "scenarios" / "pingdu.toml"
LAYOUT = TopicLayout()


class BotStandIn:
    """A local HTTP server standing in for the WeCom and DingTalk bot endpoints: it keeps
    each request's path and JSON and answers `status`."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.status = 200
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                stand_in.posts.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self, path_start: str) -> list[str]:
        return [body["text"]["content"] for path, body in self.posts
                if path.startswith(path_start)]


class MailStandIn:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        stand_in = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                stand_in.messages.append((envelope.rcpt_tos, email.message_from_bytes(
                    envelope.content, policy=policy.default)))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def bots():
    stand_in = BotStandIn()
    yield stand_in
    stand_in.server.shutdown()


@pytest.fixture
def mail():
    stand_in = MailStandIn()
    yield stand_in
    stand_in.controller.stop()


WECOM, DINGTALK = "/cgi-bin/webhook/send", "/robot/send"


@pytest.fixture
def network(engine):
    import_network(engine, load_scenario(SCENARIO))


def jobs(engine, clock, bots, mail, holder="one", **settings) -> TurnaroundJobs:
    channels = {"wecom": "wecombot://labgroupkey0123456789",
                "dingtalk": "dingtalk://clinicgrouptoken0123",
                "mail": f"mailto://127.0.0.1:{mail.port}?from=dronelog@lab.example"
                        "&mode=insecure"}
    return TurnaroundJobs(engine, Settings(
        database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1",
        notify_channels=json.dumps(channels), notify_bot_relay=bots.url, **settings),
        clock=clock, holder=holder)


def add_route(engine, clock, **fields) -> int:
    values = {"name": "r", "source": "alert", "channel": "wecom", "recipients": "[]",
              "alert_kinds": "[]", "site_ids": "[]", "priorities": "[]", "after_min": 0,
              "language": "zh", "active": True, "updated_at": clock.now(), "updated_by": "t"}
    for name in ("recipients", "alert_kinds", "site_ids", "priorities"):
        if name in fields:
            fields[name] = json.dumps(fields[name])
    with engine.begin() as connection:
        return connection.execute(insert(ROUTE).values(**(values | fields))
                                  .returning(ROUTE.c.id)).scalar_one()


def open_alert(engine, at: datetime, kind="lost_link", severity="high", site=LAB,
               subject="F7") -> int:
    with engine.begin() as connection:
        alert_id = connection.execute(insert(ALERT).values(
            subject_kind="flight", subject_id=subject, kind=kind, severity=severity,
            state="open", message=f"{kind} of {subject}", details=json.dumps({"site_id": site}),
            site_id=site, opened_at=at).returning(ALERT.c.id)).scalar_one()
        connection.execute(insert(CHANGE).values(alert_id=alert_id, change="opened", at=at))
    return alert_id


def rows(engine, **where) -> list:
    query = select(NOTIFICATION).order_by(NOTIFICATION.c.id)
    for name, value in where.items():
        query = query.where(NOTIFICATION.c[name] == value)
    with engine.connect() as connection:
        return connection.execute(query).all()


def at_local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


def test_an_opened_alert_goes_once_to_each_route_wecom_dingtalk_and_mail(engine, network,
                                                                          bots, mail):
    clock = ManualClock(at_local(5, 10))
    add_route(engine, clock, channel="wecom", site_ids=[LAB])
    add_route(engine, clock, channel="dingtalk", alert_kinds=["breach"])  # not this kind
    add_route(engine, clock, channel="mail", min_severity="high", language="en",
              recipients=["lab-duty@hospital.example", "qc@hospital.example"])
    alert_id = open_alert(engine, clock.now())
    scheduler = jobs(engine, clock, bots, mail)
    run = scheduler.notifications()
    assert (run.planned, run.sent, run.failed) == (2, 2, 0)
    [wecom] = bots.texts(WECOM)
    assert "平度市人民医院" in wecom and "lost_link of F7" in wecom and "12月5日 10:00" in wecom
    assert bots.texts(DINGTALK) == []
    [(to, message)] = [(to, msg) for to, msg in mail.messages if to == [
        "lab-duty@hospital.example"]] or [(None, None)]
    assert message["Subject"].startswith("[Alert, high]")
    assert {tuple(to) for to, _ in mail.messages} == {("lab-duty@hospital.example",),
                                                       ("qc@hospital.example",)}
    # again, and on a second scheduler: nothing more
    clock.advance(60)
    assert scheduler.notifications().planned == 0
    assert jobs(engine, clock, bots, mail, holder="two").notifications() is None  # the lease
    assert len(bots.posts) == 1 and len(mail.messages) == 2
    with engine.connect() as connection:
        assert connection.execute(select(CHANGE.c.notices_planned).where(
            CHANGE.c.alert_id == alert_id)).scalar_one() is True
    assert [row.state for row in rows(engine)] == ["sent", "sent"]


def test_quiet_hours_hold_a_notice_to_their_end_but_never_a_critical_alert(engine, network,
                                                                           bots, mail):
    clock = ManualClock(at_local(5, 23, 30))
    add_route(engine, clock, quiet_start="22:00", quiet_end="07:00")
    open_alert(engine, clock.now(), kind="lost_link", severity="high", subject="F7")
    open_alert(engine, clock.now(), kind="breach", severity="critical", subject="S1")
    scheduler = jobs(engine, clock, bots, mail)
    assert scheduler.notifications().sent == 1  # the critical one
    held = rows(engine, state="planned")
    assert len(held) == 1 and held[0].not_before.replace(tzinfo=UTC) == at_local(6, 7)
    clock.advance((at_local(6, 6, 59, 59) - clock.now()).total_seconds())
    assert scheduler.notifications().sent == 0
    clock.advance((at_local(6, 7) - clock.now()).total_seconds())
    assert scheduler.notifications().sent == 1
    assert len(bots.posts) == 2


def test_an_unacknowledged_alert_escalates_at_exactly_n_minutes(engine, network, bots, mail):
    clock = ManualClock(at_local(5, 10))
    add_route(engine, clock, channel="wecom")
    add_route(engine, clock, channel="dingtalk", after_min=15)
    add_route(engine, clock, channel="mail", after_min=30, recipients=["chief@h.example"])
    escalated = open_alert(engine, clock.now(), subject="F7")
    acknowledged = open_alert(engine, clock.now(), subject="F8")
    scheduler = jobs(engine, clock, bots, mail)
    scheduler.notifications()
    assert len(bots.texts(WECOM)) == 2 and bots.texts(DINGTALK) == []
    with engine.begin() as connection:
        alert_store.acknowledge(connection, acknowledged, "user:disp", clock.now())
    clock.advance(15 * 60 - 1)
    scheduler.notifications()
    assert bots.texts(DINGTALK) == []
    clock.advance(1)
    scheduler.notifications()
    [tier1] = bots.texts(DINGTALK)
    assert "未确认 15 分钟" in tier1 and "F7" in tier1
    clock.advance(15 * 60)
    scheduler.notifications()
    assert [m["Subject"] for _, m in mail.messages] == ["【未确认 30 分钟·高】平度市人民医院"]
    clock.advance(3600)
    scheduler.notifications()
    assert len(bots.posts) == 4 and len(mail.messages) == 1  # 4: F8's acknowledgement
    assert [t for t in bots.texts(WECOM) if "已确认" in t and "lost_link of F8" in t]
    assert {row.subject for row in rows(engine) if row.route_id != 1} == {str(escalated)}


def test_who_was_told_of_an_alert_hears_its_acknowledgement_and_its_resolution(
        engine, network, bots, mail):
    clock = ManualClock(at_local(5, 10))
    lab_group = add_route(engine, clock, channel="wecom")
    add_route(engine, clock, channel="dingtalk", alert_kinds=["breach"])  # never told
    chief = add_route(engine, clock, channel="mail", after_min=30, language="en",
                      recipients=["chief@h.example"])
    handled = open_alert(engine, clock.now(), subject="F7")
    forgotten = open_alert(engine, clock.now(), subject="F8")
    scheduler = jobs(engine, clock, bots, mail)
    assert scheduler.notifications().sent == 2
    clock.advance(5 * 60)
    with engine.begin() as connection:
        alert_store.acknowledge(connection, handled, "user:disp-01", clock.now())
    clock.advance(15 * 60)
    with engine.begin() as connection:
        alert_store.resolve(connection, handled, "user:disp-01", "换机重飞", clock.now())
    scheduler.notifications()
    acknowledged, resolved = bots.texts(WECOM)[2:]
    assert acknowledged.startswith("【已确认·高】平度市人民医院")
    assert "lost_link of F7" in acknowledged
    assert "12月5日 10:05 由 disp-01 确认" in acknowledged
    assert resolved.startswith("【已解除·高】") and "12月5日 10:20 解除：换机重飞" in resolved
    assert mail.messages == []  # the chief was never told of F7: nor of its end
    clock.advance(10 * 60)  # 10:30: the chief is told of F8, still open
    scheduler.notifications()
    with engine.begin() as connection:
        alert_store.resolve(connection, forgotten, "user:disp-02", "link back", clock.now())
    scheduler.notifications()
    assert [m["Subject"].split(" Pingdu")[0] for _, m in mail.messages] == [
        "[Unacknowledged for 30 min, high]", "[Resolved, high]"]
    body = mail.messages[1][1].get_body(("plain",)).get_content()
    assert "Alert 2, resolved at" in body and "10:30" in body and ": link back" in body
    scheduler.notifications()
    assert bots.texts(DINGTALK) == []
    assert len(bots.texts(WECOM)) == 5  # F7 and F8 opened, F7 acknowledged and resolved, F8
    assert sorted((row.route_id, row.dedupe_key.rsplit(":", 1)[1]) for row in rows(engine)
                  if row.route_id == chief) == [(chief, "after30"), (chief, "resolved")]
    assert lab_group != chief


def test_an_alert_acknowledged_before_the_first_pass_is_told_opened_then_acknowledged(
        engine, network, bots, mail):
    clock = ManualClock(at_local(5, 10))
    add_route(engine, clock, channel="wecom")
    alert = open_alert(engine, clock.now())
    with engine.begin() as connection:
        alert_store.acknowledge(connection, alert, "user:disp-01", clock.now())
    jobs(engine, clock, bots, mail).notifications()
    assert [t.split("】")[0] for t in bots.texts(WECOM)] == ["【告警·高", "【已确认·高"]


def test_a_failing_endpoint_is_retried_with_backoff_then_the_message_is_failed(
        engine, network, bots, mail):
    clock = ManualClock(at_local(5, 10))
    add_route(engine, clock)
    open_alert(engine, clock.now())
    scheduler = jobs(engine, clock, bots, mail)
    bots.status = 500
    assert scheduler.notifications().failed == 1
    [row] = rows(engine)
    assert (row.state, row.attempts) == ("planned", 1)
    assert row.not_before.replace(tzinfo=UTC) == clock.now() + timedelta(seconds=30)
    clock.advance(29)
    assert scheduler.notifications().failed == 0  # not yet
    clock.advance(1)
    bots.status = 200
    assert scheduler.notifications().sent == 1
    assert [(r.state, r.attempts) for r in rows(engine)] == [("sent", 2)]

    open_alert(engine, clock.now(), subject="F9")
    bots.status = 500
    for _ in range(MAX_ATTEMPTS):
        clock.advance(3600)
        scheduler.notifications()
    failing = rows(engine)[-1]
    assert (failing.state, failing.attempts) == ("failed", MAX_ATTEMPTS)
    assert "refused or unreachable" in failing.last_error
    clock.advance(3600)
    scheduler.notifications()
    assert len(bots.posts) == 2 + MAX_ATTEMPTS  # never again


def test_the_rate_limit_sends_a_digest_of_the_rest_and_drops_nothing(engine, network, bots,
                                                                     mail):
    clock = ManualClock(at_local(5, 10))
    add_route(engine, clock)
    for n in range(6):
        open_alert(engine, clock.now(), subject=f"F{n}")
    scheduler = jobs(engine, clock, bots, mail, notify_rate_per_hour=3)
    assert scheduler.notifications().sent == 3
    texts = bots.texts(WECOM)
    assert "4 条通知" in texts[2] and all(f"F{n}" in texts[2] for n in range(2, 6))
    assert {row.state for row in rows(engine)} == {"sent"}
    assert len({row.delivery for row in rows(engine)}) == 3
    open_alert(engine, clock.now(), subject="F6")
    clock.advance(3599)
    assert scheduler.notifications().sent == 0  # the hour is full
    # a digest counts once: 3 messages (6 rows) leave room for 2 under a limit of 5
    roomier = jobs(engine, clock, bots, mail, notify_rate_per_hour=5)
    assert roomier.notifications().sent == 1
    open_alert(engine, clock.now(), subject="F7")
    clock.advance(1)
    assert scheduler.notifications().sent == 1
    assert {row.state for row in rows(engine)} == {"sent"} and len(rows(engine)) == 8


def test_the_clinic_hears_when_its_request_is_assigned(engine, network, bots, mail):
    clock = ManualClock(at_local(5, 9))
    add_route(engine, clock, source="assigned", channel="dingtalk", site_ids=[TOWN])
    add_route(engine, clock, source="assigned", channel="mail", site_ids=[LAB],
              recipients=["x@h.example"])
    with engine.begin() as connection:
        connection.execute(insert(REQUEST).values(
            id="REQ-1", origin_site_id=TOWN, destination_site_id=LAB, priority="stat",
            state="assigned", source="site", requested_at=clock.now(), ready_at=clock.now(),
            requested_by="user:cj", carrier="drone", drone_id="uav-03", flight_id="REQ-1-F1",
            containers="[]",
            planned_departure=at_local(5, 9, 10), updated_at=clock.now()))
        connection.execute(insert(REQUEST_CHANGE), [
            {"request_id": "REQ-1", "action": "request", "to_state": "requested",
             "from_state": None, "at": clock.now(), "by": "user:cj", "detail": "{}"},
            {"request_id": "REQ-1", "action": "assign", "from_state": "requested",
             "to_state": "assigned", "at": clock.now(), "by": "user:disp",
             "detail": "{}"}])
    scheduler = jobs(engine, clock, bots, mail)
    assert scheduler.notifications().sent == 1
    [text] = bots.texts(DINGTALK)
    assert "REQ-1" in text and "uav-03" in text and "急诊" in text and "09:10" in text
    with engine.connect() as connection:
        assert None not in connection.execute(select(REQUEST_CHANGE.c.notified_at)).scalars()
    assert scheduler.notifications().planned == 0 and mail.messages == []


def test_the_clinic_hears_when_its_box_is_received(api, engine, clock, bots, mail):
    import_network(engine, load_scenario(SCENARIO))
    add_route(engine, clock, source="received", channel="dingtalk", site_ids=[TOWN])
    device, lab = api.as_role(Role.DEVICE), api.as_role(Role.LAB)

    def box(barcode: str, container: str) -> None:
        for minutes, name, headers, changes in (
                (40, "custody.collected", device, {}), (35, "custody.packed", device, {}),
                (1, "custody.received", lab, {"actor": {"kind": "staff", "id": "lab-1"}})):
            boxed = {} if name == "custody.collected" else {"container_id": container}
            response = api.http.post("/api/v1/custody", headers=headers, json=scan(
                name, minutes_ago=minutes, barcode=barcode, **boxed, **changes))
            assert response.status_code == 201, response.text

    box("CJ2611220041", "BOX-0100")  # received before the notifier's first pass
    clock.advance(120)
    scheduler = jobs(engine, clock, bots, mail)
    scheduler.notifications()  # the first pass sets the watermark: no notice of the past
    box("CJ2611220042", "BOX-0193")
    TurnaroundJobs(engine, Settings(database_url=str(engine.url),
                                    mqtt_url="mqtt://127.0.0.1:1"), clock=clock).turnaround()
    clock.advance(5)
    assert scheduler.notifications().sent == 1
    [text] = bots.texts(DINGTALK)
    assert "BOX-0193" in text and "平度市人民医院" in text and "1 件" in text
    clock.advance(5)
    assert scheduler.notifications().planned == 0


def _flight_in_the_air(engine, clock):
    """F7 from the town to the lab, a third of the way, at 18 m/s (as tests/test_api_eta.py)."""
    now, writer = clock.now(), BatchWriter(engine, clock)
    town, lab = (36.6890, 119.7610), (36.7790, 119.9560)

    def store(event, topic, received_at):
        writer.write([Accepted(Delivery(topic, b"", received_at), LAYOUT.parse(topic), event)],
                     [])

    base = dict(schema_version=1, drone_id="uav-03", flight_id="F7")
    store(m.FlightPlanned(**base, event_id=scan("flight.planned")["event_id"], kind="planned",
                          event_time=now - timedelta(minutes=9), origin_site_id=TOWN,
                          destination_site_id=LAB), LAYOUT.flight("uav-03"),
          now - timedelta(minutes=9))
    store(m.FlightTakeoff(**base, event_id=scan("flight.takeoff")["event_id"], kind="takeoff",
                          event_time=now - timedelta(minutes=5), site_id=TOWN),
          LAYOUT.flight("uav-03"), now - timedelta(minutes=5))
    for seq, back in enumerate(range(60, -1, -5)):
        fraction = 0.3 - back / 3000
        sent = now - timedelta(seconds=back)
        store(telemetry("uav-03", seq=seq, at=sent, flight_id="F7",
                        lat=town[0] + fraction * (lab[0] - town[0]),
                        lon=town[1] + fraction * (lab[1] - town[1]),
                        ground_speed_mps=18.0, heading_deg=60.0),
              LAYOUT.telemetry("uav-03"), sent)


def test_the_lab_hears_before_the_flight_lands_with_its_eta(engine, network, bots, mail):
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    add_route(engine, clock, source="landing", channel="wecom", site_ids=[LAB])
    add_route(engine, clock, source="landing", channel="dingtalk", site_ids=[TOWN])
    _flight_in_the_air(engine, clock)
    jobs(engine, clock, bots, mail).turnaround()  # the flight is airborne in the projection
    far = jobs(engine, clock, bots, mail, notify_landing_lead_min=5).notifications()
    assert far.planned == 0  # more than 5 minutes away
    run = jobs(engine, clock, bots, mail, notify_landing_lead_min=30).notifications()
    assert run.sent == 1
    [text] = bots.texts(WECOM)
    assert "F7" in text and "平度市人民医院" in text and "分钟后" in text
    assert bots.texts(DINGTALK) == []


def test_the_scheduled_report_is_sent_once_per_period(engine, network, bots, mail):
    clock = ManualClock(at_local(7, 8))  # a Monday
    add_route(engine, clock, source="report", channel="mail", period="daily", send_at="08:00",
              recipients=["director@h.example"], language="en")
    add_route(engine, clock, source="report", channel="wecom", period="weekly",
              send_at="08:00")
    scheduler = jobs(engine, clock, bots, mail)
    assert scheduler.notifications().sent == 2
    [(to, message)] = mail.messages
    assert to == ["director@h.example"]
    assert message["Subject"] == "[Turnaround] 2026-12-06 to 2026-12-06"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "turnaround-2026-12-06-2026-12-06.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    [weekly] = bots.texts(WECOM)
    assert "2026-11-30 至 2026-12-06" in weekly
    # a restart, a second scheduler after the lease: the same periods are not sent again
    clock.advance(3600)
    assert jobs(engine, clock, bots, mail, holder="restarted").notifications().sent == 0
    clock.advance((at_local(8, 7, 59, 59) - clock.now()).total_seconds())
    assert scheduler.notifications().sent == 0
    clock.advance((at_local(8, 8) - clock.now()).total_seconds())
    assert scheduler.notifications().sent == 1
    assert len(mail.messages) == 2 and len(bots.posts) == 1
