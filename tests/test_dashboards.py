"""The dashboards end to end, in real headless Chromium (Debian's, driven by Playwright),
against the running demo (`dronelog demo`: broker, ingester, scheduler, API, simulator).

A drone of the test's own flies into the demo through the public contract, as a real drone and
its scanners would: a STAT refrigerated specimen in a box that is too warm. The dispatcher sees
it move on the map; the scheduler's sweep turns the excursion into an alert; a dispatcher
acknowledges it and the other open dashboards follow over the live stream; the lab receives
the specimen, and the receipt reaches the API and the specimen's timeline.

Screenshots of each view are taken on the way: into DRONELOG_SCREENSHOTS_DIR when set
(docs/screenshots is what the README shows), else into the test's temporary folder.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from dronelog.broker import free_port
from tests.processes import Process, children, kill
from tests.support import LAYOUT, Publisher, chromium, scan, telemetry

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "demo1234"
TOWN, LAB = "cjzxwsy", "pdrmyy"
# the cj-pd route of scenarios/pingdu.toml: Cuijia, its waypoint, the lead hospital
ROUTE = [(36.6890, 119.7610), (36.7300, 119.8500), (36.7790, 119.9560)]
SWEEP_S = 2
WAIT_S = 30

pytestmark = pytest.mark.timeout(240)


class Demo:
    """`dronelog demo` as a subprocess on free ports, in a folder of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.api_port, self.broker_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.mqtt_url = f"mqtt://127.0.0.1:{self.broker_port}"
        self.log = workdir / "demo.log"
        self.env = {**os.environ, "DRONELOG_DATABASE_URL": f"sqlite:///{workdir / 'demo.db'}",
                    "DRONELOG_HOME": str(workdir),
                    "DRONELOG_CONFIG": str(workdir / "none.toml"),
                    "DRONELOG_SWEEP_INTERVAL_S": str(SWEEP_S), "DRONELOG_LOG_LEVEL": "WARNING"}
        history = os.environ.get("DRONELOG_TEST_DEMO_HISTORY", "1h")
        self.full_history = "DRONELOG_TEST_DEMO_HISTORY" in os.environ  # for screenshots
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dronelog", "demo", "--port", str(self.broker_port),
                 "--api-port", str(self.api_port), "--history", history,
                 "--scenario", str(ROOT / "scenarios" / "pingdu.toml")],
                cwd=workdir, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.children: set[Process] = set()
        self.tokens: dict[str, str] = {}
        self.flights_seen = -1

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo exited:\n{self.log.read_text()[-3000:]}")
            self.children.update(children(self.process.pid))
            try:
                if self.get("/api/v1/sites") and self.get("/api/v1/drones") and (
                        not self.full_history or self.caught_up()):
                    return  # the network imported, the simulator's history coming in
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the demo did not come up:\n{self.log.read_text()[-3000:]}")

    def caught_up(self) -> bool:
        """The simulator has sent its history (at once) and goes on live: the number of
        flights no longer grows from one look to the next, 10 s apart."""
        total = self.get("/api/v1/flights?limit=1")["total"]
        settled = total > 0 and total == self.flights_seen
        self.flights_seen = total
        if not settled:
            time.sleep(10)
        return settled

    def login(self, user: str) -> str:
        response = httpx.post(f"{self.base}/api/v1/auth/token", timeout=10,
                              data={"username": user, "password": PASSWORD})
        response.raise_for_status()
        return response.json()["access_token"]

    def get(self, path: str, user: str = "dispatcher") -> dict:
        if user not in self.tokens:
            self.tokens[user] = self.login(user)
        token = self.tokens[user]
        response = httpx.get(f"{self.base}{path}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.children.update(children(self.process.pid))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for child in self.children:  # only if the demo could not stop them itself
            kill(child)


def _along(fraction: float) -> tuple[float, float, float]:
    """A point `fraction` of the way along ROUTE, and the heading there."""
    legs = [math.dist(a, b) for a, b in zip(ROUTE, ROUTE[1:], strict=False)]
    distance = fraction * sum(legs)
    for (a, b), leg in zip(zip(ROUTE, ROUTE[1:], strict=False), legs, strict=True):
        if distance <= leg or b == ROUTE[-1]:
            u = min(1.0, distance / leg)
            heading = math.degrees(math.atan2((b[1] - a[1]) * math.cos(math.radians(a[0])),
                                              b[0] - a[0])) % 360
            return a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), heading
        distance -= leg
    raise AssertionError("unreachable")


class TestFlight:
    """The test's own drone: a STAT refrigerated specimen from Cuijia to the lead hospital in
    a box at 14 °C (allowed 2-8 °C), told in contract messages to the demo's broker."""

    __test__ = False
    FLIGHT_S = 20 * 60

    def __init__(self, mqtt_url: str) -> None:
        self.publisher = Publisher(mqtt_url)
        tag = uuid.uuid4().hex[:6].upper()
        self.drone, self.flight = "uav-t9", f"FT-{tag}"
        self.barcode, self.container = f"CJT{tag}", f"BOX-T{tag}"
        self.second = f"CJM{tag}"  # a microbiology specimen in the same box
        self.seq = 0
        self.took_off = datetime.now(UTC) - timedelta(minutes=5)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _send(self, topic: str, payload: dict) -> None:
        self.publisher.publish(topic, json.dumps(payload).encode())

    def _report(self, at: datetime, fraction: float | None = None) -> None:
        if fraction is None:
            fraction = (at - self.took_off).total_seconds() / self.FLIGHT_S
        lat, lon, heading = _along(min(1.0, fraction))
        self.seq += 1
        event = telemetry(self.drone, seq=self.seq, at=at, flight_id=self.flight, lat=lat,
                          lon=lon, alt_m=170.0, height_m=120.0, ground_speed_mps=17.5,
                          heading_deg=round(heading, 1), battery_pct=76.0, payload_temp_c=14.0,
                          link_quality_pct=92.0)
        self.publisher.publish(LAYOUT.telemetry(self.drone), event.model_dump_json().encode())

    def depart(self) -> None:
        """Collected, packed and loaded at Cuijia; planned, took off 5 minutes ago; the box's
        readings since then (all out of range), then one report a second, live."""
        site_custody = LAYOUT.site_custody(TOWN)
        for barcode, kind, priority in ((self.barcode, "blood_sample", "stat"),
                                        (self.second, "microbiology", "urgent")):
            specimen = {"kind": kind, "priority": priority, "temperature_class": "refrigerated",
                        "origin_site_id": TOWN, "destination_site_id": LAB,
                        "order_ref": "ORD-TEST-9"}
            collected = scan("custody.collected", 12, barcode=barcode, specimen=specimen)
            self.collected_at = datetime.fromisoformat(collected["event_time"])
            self._send(site_custody, collected)
            self._send(site_custody, scan("custody.packed", 9, barcode=barcode,
                                          container_id=self.container, seal_id="SEAL-T9"))
            self._send(site_custody, scan("custody.loaded", 6, barcode=barcode,
                                          container_id=self.container, flight_id=self.flight,
                                          drone_id=self.drone))
        self._send(LAYOUT.flight(self.drone), scan(
            "flight.planned", 8, drone_id=self.drone, flight_id=self.flight,
            origin_site_id=TOWN, destination_site_id=LAB, planned_departure=None))
        self._send(LAYOUT.flight(self.drone), scan(
            "flight.takeoff", 0, drone_id=self.drone, flight_id=self.flight, site_id=TOWN,
            event_time=self.took_off.isoformat()))
        now = datetime.now(UTC)
        at = self.took_off
        while at < now:
            self._report(at)
            at += timedelta(seconds=2)
        self._thread = threading.Thread(target=self._fly, daemon=True)
        self._thread.start()

    def _fly(self) -> None:
        while not self._stop.wait(1.0):
            self._report(datetime.now(UTC))

    def land(self) -> None:
        """Lands at the lead hospital; the drone records the unloading."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._report(datetime.now(UTC), fraction=1.0)
        self._send(LAYOUT.flight(self.drone), scan(
            "flight.landed", 0, drone_id=self.drone, flight_id=self.flight, site_id=LAB))
        for barcode in (self.barcode, self.second):
            self._send(LAYOUT.drone_custody(self.drone), scan(
                "custody.unloaded", 0, barcode=barcode, site_id=LAB,
                actor={"kind": "drone", "id": self.drone}, container_id=self.container,
                flight_id=self.flight, drone_id=self.drone, seal_id="SEAL-T9"))
        self.publisher.wait_all_acked(20)

    def close(self) -> None:
        self._stop.set()
        self.publisher.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = Demo(tmp_path_factory.mktemp("demo"))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(demo):
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("DRONELOG_SCREENSHOTS_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def flight(demo):
    flying = TestFlight(demo.mqtt_url)
    flying.depart()
    yield flying
    flying.close()


class Session:
    """One person's browser tab, logged in; page errors are collected and fail the test."""

    def __init__(self, browser, demo: Demo, user: str | None, language: str = "zh") -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900},
                                           locale="zh-CN", timezone_id="Europe/London")
        if language != "zh":
            self.context.add_init_script(f"localStorage.setItem('dronelog.lang', '{language}')")
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_S * 1000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error"
                     and "Failed to load resource" not in message.text
                     and self.errors.append(message.text))
        self.page.goto(demo.base + "/")
        if user:
            self.login(user)

    def login(self, user: str, password: str = PASSWORD, succeeds: bool = True) -> None:
        self.page.fill("#username", user)
        self.page.fill("#password", password)
        self.page.click("form.login-form button[type=submit]")
        if succeeds:
            self.page.wait_for_selector("#app-header:not([hidden])")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def sessions(browser, demo):
    opened: list[Session] = []

    def open_session(user: str | None, language: str = "zh") -> Session:
        opened.append(Session(browser, demo, user, language))
        return opened[-1]

    yield open_session
    for session in opened:
        session.close()


# --- the tests, in the order of a dispatcher's and a lab's day ---------------------------------


def test_dashboards_are_served_with_security_headers_and_leave_the_api_alone(demo):
    page = httpx.get(demo.base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in policy  # no external origin unless a tile server is configured
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = httpx.get(demo.base + "/js/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in script.headers
    for path in ("/js/../../pyproject.toml", "/vendor/leaflet/LICENSE", "/api/v1/nothing"):
        missing = httpx.get(demo.base + path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"
    assert httpx.get(demo.base + "/healthz").json() == {"status": "ok"}
    assert httpx.get(demo.base + "/openapi.json").status_code == 200


def test_login_language_and_what_each_role_sees(demo, sessions, shots):
    anonymous = sessions(None)
    page = anonymous.page
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#login-title").inner_text() == "登录"
    page.screenshot(path=str(shots / "login.png"))
    anonymous.login("dispatcher", "wrong", succeeds=False)
    page.wait_for_selector("#login-error:has-text('用户名或密码错误')")
    anonymous.login("lab-pdrmyy")
    # lab staff: their lab's view and the report; no dispatch view, no acknowledge buttons
    assert page.url.endswith("#/lab")
    nav = page.locator("nav .nav-link").all_inner_texts()
    assert nav == ["检验科", "装箱发送", "到箱核对", "申请航班", "周转报告"]
    page.goto(demo.base + "/#/dispatch")
    page.wait_for_url("**/#/lab")
    assert page.locator("[data-action=ack], [data-action=resolve]").count() == 0
    assert "Asia/Shanghai" in page.locator(".tz").inner_text()
    # English on request, kept across a reload
    page.click("#lang-switch")
    page.wait_for_selector("nav .nav-link:has-text('Lab')")
    assert page.locator("html").get_attribute("lang") == "en"
    page.reload()
    page.wait_for_selector("nav .nav-link:has-text('Turnaround report')")
    page.click("#lang-switch")
    page.wait_for_selector("nav .nav-link:has-text('检验科')")
    # a token the API no longer honours sends the person back to the login form
    page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem('dronelog.session'));
        s.access_token = 'no-longer-valid';
        sessionStorage.setItem('dronelog.session', JSON.stringify(s));
    }""")
    page.evaluate("location.hash = '#/report'")  # (a refresh on a timer may come first)
    page.wait_for_selector("#login-error:has-text('登录已过期')")
    page.reload()  # the reason stays until the next login
    page.wait_for_selector("#login-error:has-text('登录已过期')")


def test_the_map_shows_the_network_and_drones_moving(demo, flight, sessions, shots):
    dispatcher = sessions("dispatcher")
    page = dispatcher.page
    assert page.url.endswith("#/dispatch")
    page.wait_for_selector(".site-label:has-text('平度市人民医院')")
    assert page.locator(".leaflet-tile").count() == 0  # no tile server: the plain basemap
    page.wait_for_selector("path.route")  # at least the test flight's route, cj-pd
    simulated = demo.get("/api/v1/drones")
    for drone in (d["drone_id"] for d in simulated if d.get("position")):
        page.wait_for_selector(f".leaflet-marker-icon[data-drone-id='{drone}']")
    marker = page.locator(f".leaflet-marker-icon[data-drone-id='{flight.drone}']")
    marker.wait_for()
    first = marker.evaluate("e => e.style.transform")
    page.wait_for_function(
        """([selector, first]) => {
            const el = document.querySelector(selector);
            return el && el.style.transform !== first;
        }""", arg=[f".leaflet-marker-icon[data-drone-id='{flight.drone}']", first])
    icon = marker.locator(".drone-marker")
    assert icon.get_attribute("data-state") == "airborne"
    assert icon.locator("svg").evaluate("e => e.style.transform").startswith("rotate(")
    row = page.locator(f"#fleet-table tr[data-drone-id='{flight.drone}']")
    row.wait_for()
    # the band comes with the flight's cargo (read once the scheduler has tracked it)
    page.wait_for_function("el => el.classList.contains('out-of-band')",
                           arg=row.locator("td").nth(6).element_handle())
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "170 m" and cells[5] == "76%", cells
    assert cells[6] == "14.0 °C (要求 2–8 °C)", cells  # refrigerated cargo: out of its band
    item = page.locator(f".flight-item[data-flight-id='{flight.flight}']")
    item.wait_for()
    assert "崔家中心卫生院 → 平度市人民医院" in item.inner_text()
    page.wait_for_function(
        """selector => {
            const bar = document.querySelector(selector);
            return bar && bar.value > 5 && bar.value < 95;
        }""", arg=f".flight-item[data-flight-id='{flight.flight}'] progress")
    assert page.locator("#live-status").get_attribute("data-state") == "live"
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "dispatcher.png"))
    # the test flight's track so far, replayed
    item.locator("button:has-text('回放航迹')").click()
    slider = page.locator("#replay-slider")
    slider.wait_for()
    assert int(slider.get_attribute("max")) > 100  # 5 minutes of reports
    page.click("#replay-play")
    page.wait_for_function("() => Number(document.querySelector('#replay-slider').value) > 5")
    assert page.locator("path.replay-track").count() == 1
    page.click("#replay button:has-text('关闭')")
    assert page.locator("path.replay-track").count() == 0
    # the network goes away and comes back: the page says so, and goes on live
    dispatcher.context.set_offline(True)
    page.wait_for_selector("#live-status[data-state=reconnecting]")
    assert page.locator("#banner").is_visible()
    dispatcher.context.set_offline(False)
    page.wait_for_selector("#live-status[data-state=live]")
    page.wait_for_selector("#banner", state="hidden")


def test_an_excursion_becomes_an_alert_and_its_acknowledgement_reaches_everyone(
        demo, flight, sessions, shots):
    dispatcher, admin, lab = sessions("dispatcher"), sessions("admin"), sessions("lab-pdrmyy")
    selector = (f".alert-item[data-kind='temperature_excursion']:has-text('{flight.barcode}')")
    for session in (dispatcher, admin, lab):
        session.page.wait_for_selector(selector, timeout=60_000)
        session.page.evaluate("window.__notReloaded = true")
    alert = dispatcher.page.locator(selector)
    assert alert.get_attribute("data-state") == "open"
    assert admin.page.locator(selector).locator("[data-action]").count() == 0  # read only
    assert lab.page.locator(selector).locator("[data-action]").count() == 0
    alert.locator("[data-action=ack]").click()
    for session in (dispatcher, admin, lab):  # the others only through the live stream
        session.page.wait_for_selector(f"{selector}[data-state='acknowledged']", timeout=10_000)
        assert session.page.evaluate("window.__notReloaded") is True
    alert_id = alert.get_attribute("data-alert-id")
    stored = demo.get("/api/v1/alerts?kind=temperature_excursion&state=acknowledged")
    assert any(str(a["id"]) == alert_id and a["acknowledged_by"] == "dispatcher"
               for a in stored["items"])
    dispatcher.page.screenshot(path=str(shots / "dispatcher-alert.png"))
    # resolving asks for a note; the resolved alert leaves the others' active lists
    alert.locator("[data-action=resolve]").click()
    dispatcher.page.fill("#resolve-note", "标本已隔离，通知检验科复核")
    dispatcher.page.locator("dialog button[value=ok]").click()
    for session in (dispatcher, admin, lab):
        session.page.wait_for_selector(selector, state="detached", timeout=10_000)
    resolved = demo.get("/api/v1/alerts?state=resolved&kind=temperature_excursion")
    assert any(str(a["id"]) == alert_id and a["resolution_note"] == "标本已隔离，通知检验科复核"
               for a in resolved["items"])


def test_the_lab_sees_the_story_and_records_the_receipt(demo, flight, sessions, shots):
    flight.land()
    lab = sessions("lab-pdrmyy")
    page = lab.page
    page.fill("#barcode", flight.barcode)
    page.press("#barcode", "Enter")
    page.wait_for_url(f"**/#/lab/{flight.barcode}")
    story = page.locator("#story")
    story.locator(".timeline-step[data-kind='unloaded']").wait_for(timeout=WAIT_S * 1000)
    text = story.inner_text()
    assert "急诊" in text and "冷藏 2–8 °C" in text and "崔家中心卫生院 → 平度市人民医院" in text
    assert story.locator(".notice.danger").count() == 1  # the excursion, shown at receipt
    assert "ORD-TEST-9" in text
    # the scheduler sees it landed and unloaded; the open story follows without a reload
    story.locator("[data-role=specimen-state]:has-text('已到达')").wait_for()
    kinds = story.locator(".timeline-step").evaluate_all("steps => steps.map(s => s.dataset.kind)")
    assert kinds == ["collected", "packed", "loaded", "unloaded"]
    collected = demo.get(f"/api/v1/specimens/{flight.barcode}")["timeline"][0]["at"]
    shanghai = datetime.fromisoformat(collected).astimezone(ZoneInfo("Asia/Shanghai"))
    # the site's time zone, not the browser's (this browser is set to Europe/London)
    assert shanghai.strftime("%H:%M:%S") in story.locator(".timeline-step").first.inner_text()
    # at the bench, the excursion is a red problem in the incoming list, never a green 正常
    item = page.locator(f".incoming-item[data-barcode='{flight.barcode}']")
    item.locator(".badge.problem[data-problem='excursion']:has-text('温度超标')").wait_for()
    assert item.locator("[class*='tat-badge']").count() == 0
    page.screenshot(path=str(shots / "lab-specimen.png"), full_page=True)
    story.locator("#receive").click()
    # receiving asks for the seal on the box and compares it with the seal packed
    seal = page.locator("dialog #receive-seal")
    assert seal.get_attribute("required") is not None
    assert "SEAL-T9" in page.locator("dialog").inner_text()
    seal.fill("SEAL-X1")
    page.locator("dialog button[value=ok]").click()  # receive in spite of the excursion
    mismatch = page.locator("dialog .notice.danger")
    mismatch.wait_for()
    assert "SEAL-X1" in mismatch.inner_text() and "SEAL-T9" in mismatch.inner_text()
    page.locator("dialog button[value=cancel]").click()  # not opened after all: look again
    story.locator("#receive").click()
    page.locator("dialog #receive-seal").fill("SEAL-T9")
    page.locator("dialog button[value=ok]").click()
    # it leaves the incoming list at once, before any poll or live event
    item.wait_for(state="detached", timeout=2000)
    story.locator(".timeline-step[data-kind='received']").wait_for()
    received = story.locator(".timeline-step[data-kind='received']").inner_text()
    assert "lab-pdrmyy" in received and "平度市人民医院" in received
    detail = demo.get(f"/api/v1/specimens/{flight.barcode}", user="lab-pdrmyy")
    step = next(s for s in detail["timeline"] if s["kind"] == "received")
    assert step["actor_id"] == "lab-pdrmyy" and step["site_id"] == LAB
    assert (step["seal_id"], step["recorded_by"]) == ("SEAL-T9", "user:lab-pdrmyy")
    assert story.locator("#receive").count() == 0  # received: nothing more to do here
    # the other specimen of the box is rejected, with the excursion as the reason
    page.locator(f".incoming-item[data-barcode='{flight.second}'] a").click()
    page.wait_for_url(f"**/#/lab/{flight.second}")
    story.locator("#reject").click()
    assert page.locator("#reject-reason").input_value() == "temperature_excursion"
    page.fill("#reject-note", "箱温 14 °C，超出 2–8 °C")
    page.locator("dialog button[value=ok]").click()
    rejected = story.locator(".timeline-step[data-kind='rejected']")
    rejected.wait_for()
    assert "温度超标" in rejected.inner_text()
    detail = demo.get(f"/api/v1/specimens/{flight.second}", user="lab-pdrmyy")
    step = next(s for s in detail["timeline"] if s["kind"] == "rejected")
    assert step["reason"] == "temperature_excursion" and step["actor_id"] == "lab-pdrmyy"


def test_the_turnaround_report_and_its_csv(demo, sessions, shots, tmp_path):
    lab = sessions("lab-pdrmyy")
    page = lab.page
    page.click("nav .nav-link:has-text('周转报告')")
    page.wait_for_selector("#report-table, .report-body .empty-state")
    page.wait_for_selector("#trend-title ~ svg")
    if page.locator("#report-table").count():
        assert page.locator(".chart.bars").count() == 1
        assert page.locator(".chart.legs .column-title").count() == 4
    with page.expect_download() as download:
        page.click("#report-csv")
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[0].startswith("origin_site_id,destination_site_id")
    page.screenshot(path=str(shots / "report.png"), full_page=True)


def test_every_label_exists_in_chinese_and_english():
    """Each dictionary has the same keys, and every literal key the views use is in them."""
    source = (ROOT / "dashboards" / "js" / "i18n.js").read_text(encoding="utf-8")
    zh_part, en_part = source.split("\nconst en = {", 1)
    key = re.compile(r"^  '([\w.]+)': ", re.MULTILINE)
    zh_keys, en_keys = set(key.findall(zh_part)), set(key.findall(en_part.split("\n};", 1)[0]))
    assert zh_keys and zh_keys == en_keys, sorted(zh_keys ^ en_keys)
    used = set()
    for script in (ROOT / "dashboards" / "js").rglob("*.js"):
        used |= set(re.findall(r"\bt\('([\w.]+)'", script.read_text(encoding="utf-8")))
    assert used and used <= zh_keys, sorted(used - zh_keys)
