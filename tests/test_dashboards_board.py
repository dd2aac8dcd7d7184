"""The dispatch board in real headless Chromium, in Chinese, against the running demo: a
township clinic requests a flight for its box through the public API; the dispatcher sees it
in the queue with its waiting time and the suggested drone, assigns the test's own drone
(online at the clinic's pad, battery full), and the card shows the flight, the drone's
registration number and the ETA, while the `planned` event reaches the flight's story; a
second request is handed to a ground courier. Checked at 1280×800 and at a phone's 390 px.

Reuses the demo, browser and screenshot fixtures of tests/test_dashboards.py (a demo of this
module's own)."""

import time
import uuid

import httpx
import pytest

from tests.support import LAYOUT, Publisher, scan, telemetry
from tests.test_dashboards import LAB, PASSWORD, TOWN, WAIT_S, browser, demo, shots  # noqa: F401

pytestmark = pytest.mark.timeout(300)
TOWN_PAD = (36.6890, 119.7610)
CLINIC = "lab-cjzxwsy"


def _post(demo, path: str, user: str, body: dict) -> dict:  # noqa: F811
    token = demo.tokens.get(user) or demo.login(user)
    demo.tokens[user] = token
    response = httpx.post(demo.base + path, json=body, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text
    return response.json()


def _wait(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _our_drone(demo) -> str:  # noqa: F811
    """A drone of the test's own, online at the clinic's pad with a full battery, registered."""
    drone = f"uav-b{uuid.uuid4().hex[:3]}"
    token = demo.login("admin")
    httpx.put(f"{demo.base}/api/v1/admin/drones/{drone}", timeout=10,
              headers={"Authorization": f"Bearer {token}"},
              json={"registration_number": "UAS-370283-0042"}).raise_for_status()
    publisher = Publisher(demo.mqtt_url)
    publisher.publish(LAYOUT.status(drone), json_of(scan("status", 0, drone_id=drone)))
    report = telemetry(drone, seq=1, lat=TOWN_PAD[0], lon=TOWN_PAD[1], ground_speed_mps=0.0,
                       battery_pct=100.0, alt_m=60.0)
    publisher.publish(LAYOUT.telemetry(drone), report.model_dump_json().encode())
    publisher.wait_all_acked(20)
    _wait(lambda: any(d["drone_id"] == drone and d["online"] and d["position"]
                      for d in demo.get("/api/v1/drones")), "our drone in the fleet")
    return drone


def json_of(payload: dict) -> bytes:
    import json
    return json.dumps(payload).encode()


def test_the_board_queues_suggests_assigns_and_hands_to_a_courier(demo, browser, shots):  # noqa: F811
    drone = _our_drone(demo)
    stat = _clinic_requests_on_a_phone(browser, demo, shots)
    routine = _post(demo, "/api/v1/requests", CLINIC, {"destination_site_id": LAB})
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(demo.base + "/")
        page.fill("#username", "dispatcher")
        page.fill("#password", PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_selector("#app-header:not([hidden])")
        page.click("nav .nav-link:has-text('调度台')")
        card = page.locator(f".request-card[data-request='{stat['id']}']")
        card.wait_for()
        assert "急诊" in card.inner_text() and "待指派" in card.inner_text()
        assert "已等待" in card.inner_text() and "BOX-BD1" in card.inner_text()
        # the STAT request is queued before the routine one made after it
        ids = page.locator(".request-card").evaluate_all("els => els.map(e => e.dataset.request)")
        assert ids.index(stat["id"]) < ids.index(routine["id"])
        card.locator(".suggestion").wait_for()
        assert drone in card.locator("select.drone-select").inner_text()
        card.locator("select.drone-select").select_option(drone)
        page.screenshot(path=str(shots / "board.png"))
        card.locator("button.act-assign").click()
        assigned = page.locator(f".request-card[data-request='{stat['id']}'][data-state=assigned]")
        assigned.wait_for()
        text = assigned.inner_text()
        assert f"{stat['id']}-F1" in text and drone in text
        assert "实名登记号 UAS-370283-0042" in text and "预计到达" in text
        # the plan went the contract's way: the flight's story holds its planned event
        story = _wait(lambda: _flight(demo, f"{stat['id']}-F1"), "the planned flight")
        assert [e["kind"] for e in story["events"]] == ["planned"]
        assert story["drone_id"] == drone
        # the routine request goes by ground courier
        other = page.locator(f".request-card[data-request='{routine['id']}']")
        other.locator("button.act-to_courier").click()
        page.fill("dialog #courier-id", "courier-07")
        page.locator("dialog button[value=ok]").click()
        page.locator(f".request-card[data-request='{routine['id']}'][data-state=courier]"
                     ).wait_for()
        assert "courier-07" in page.locator(
            f".request-card[data-request='{routine['id']}']").inner_text()
        page.screenshot(path=str(shots / "board-assigned.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "board-phone.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    history = demo.get(f"/api/v1/requests/{stat['id']}")["history"]
    assert [(h["action"], h["by"]) for h in history] == [("request", f"user:{CLINIC}"),
                                                        ("assign", "user:dispatcher")]


def _clinic_requests_on_a_phone(browser, demo, shots) -> dict:  # noqa: F811
    """The clinic's nurse, on a phone, asks for a flight for a box with the request form (the
    page its printed QR code opens), and sees the request among the site's own."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  is_mobile=True, has_touch=True, timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(demo.base + "/#/request")
        page.fill("#username", CLINIC)
        page.fill("#password", PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_selector("h1:has-text('申请航班')")  # the QR code's link lands here
        assert page.url.endswith("#/request")
        page.select_option("#request-destination", LAB)
        page.select_option("#request-priority", "stat")
        page.fill("#request-boxes", "BOX-BD1")
        page.click("#request-submit")
        card = page.locator("#my-requests .request-card[data-state=requested]").first
        card.wait_for()
        assert "急诊" in card.inner_text() and "平度市人民医院" in card.inner_text()
        page.click("#show-qr")
        page.wait_for_selector("#form-qr svg.qr rect")
        assert "/#/request" in page.locator("#form-qr").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "request-phone.png"), full_page=True)
        request_id = card.get_attribute("data-request")
    finally:
        context.close()
    assert not errors, errors
    made = demo.get(f"/api/v1/requests/{request_id}", user=CLINIC)
    assert (made["origin_site_id"], made["priority"], made["containers"]) == (
        TOWN, "stat", ["BOX-BD1"])
    return made


def _flight(demo, flight_id: str) -> dict | None:  # noqa: F811
    try:
        return demo.get(f"/api/v1/flights/{flight_id}")
    except httpx.HTTPStatusError:
        return None
