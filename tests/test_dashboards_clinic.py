"""The clinic's side in real headless Chromium at a phone's viewport (390×844), in Chinese,
against the running demo (issue 16): a township clinic's nurse describes tubes, packs them
into a sealed box (warned before mixing temperature classes) and hands the box to the drone of
a flight planned at the clinic; one step is recorded while the API cannot be reached and is
stored exactly once when the link returns; the printable manifest; the flight lands and the
lead hospital's lab checks the box in: the expected tube received, an extra one and a missing
one flagged at once, each an alert that reaches both sites.

Reuses the demo, browser and screenshot fixtures of tests/test_dashboards.py (a demo of this
module's own: module-scoped fixtures run once per module)."""

import json
import time
import uuid

import httpx
import pytest

from tests.support import LAYOUT, Publisher, scan
from tests.test_dashboards import LAB, PASSWORD, TOWN, WAIT_S, browser, demo, shots  # noqa: F401

pytestmark = pytest.mark.timeout(300)
PHONE = {"width": 390, "height": 844}


class Phone:
    """One person's phone browser, signed in, Chinese by default; page errors fail the test."""

    def __init__(self, browser, demo, user: str) -> None:  # noqa: F811 (the fixture's value)
        self.context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True,
                                           has_touch=True, timezone_id="Europe/London")
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_S * 1000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(demo.base + "/")
        self.page.fill("#username", user)
        self.page.fill("#password", PASSWORD)
        self.page.click("form.login-form button[type=submit]")
        self.page.wait_for_selector("#app-header:not([hidden])")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


def _wait(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _story(running, barcode: str, user: str) -> dict | None:
    """A specimen's story, once the scheduler's tracker has taken its first scan (at its next
    sweep, not with the scan's commit); None before."""
    try:
        return running.get(f"/api/v1/specimens/{barcode}", user=user)
    except httpx.HTTPStatusError as error:
        if error.response.status_code != 404:
            raise
        return None


def _reply_lost(route) -> None:
    """The request reaches the API; its reply never reaches the browser."""
    route.fetch()
    route.abort()


def _describe(page, barcode: str, priority: str, tclass: str) -> None:
    page.fill("#tube-barcode", barcode)
    page.press("#tube-barcode", "Enter")  # a keyboard-wedge scanner: the code, then Enter
    page.select_option("#tube-kind", "blood_sample")
    page.select_option("#tube-priority", priority)
    page.select_option("#tube-tclass", tclass)
    page.select_option("#tube-destination", LAB)
    page.fill("#tube-order", f"ORD-{barcode}")
    page.click("#collect-submit")
    page.locator(f".tube-row[data-barcode='{barcode}']").wait_for()


def test_describe_pack_load_offline_then_the_lab_reconciles_the_box(
        demo, browser, shots):  # noqa: F811
    policy = httpx.get(demo.base + "/").headers["permissions-policy"]
    assert "camera=(self)" in policy and "microphone=()" in policy  # scanning by camera only
    tag = uuid.uuid4().hex[:5].upper()
    first, second, extra = f"CJP{tag}1", f"CJP{tag}2", f"CJP{tag}3"
    box, seal, flight, drone = f"BOX-P{tag}", f"SEAL-P{tag}", f"FP-{tag}", "uav-p1"
    publisher = Publisher(demo.mqtt_url)
    publisher.publish(LAYOUT.flight(drone), json.dumps(scan(
        "flight.planned", 1, drone_id=drone, flight_id=flight, origin_site_id=TOWN,
        destination_site_id=LAB, planned_departure=None)).encode())
    publisher.wait_all_acked(20)
    _wait(lambda: any(f["flight_id"] == flight
                      for f in demo.get("/api/v1/departures", user="lab-cjzxwsy")),
          "the planned flight among the clinic's departures")
    nurse = Phone(browser, demo, "lab-cjzxwsy")
    page = nurse.page
    try:
        page.click("nav .nav-link:has-text('装箱发送')")
        page.wait_for_selector("h1:has-text('装箱发送')")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _describe(page, first, "stat", "refrigerated")
        page.locator(f".tube-row[data-barcode='{first}'] "
                     ".step[data-step=collected][data-status=stored]").wait_for()
        # the link is lost while the second tube is recorded; the server stores the scan but
        # its reply never arrives: kept here as pending, sent again, stored exactly once
        page.route("**/api/v1/custody", _reply_lost)
        _describe(page, second, "urgent", "refrigerated")
        row = page.locator(f".tube-row[data-barcode='{second}']")
        row.locator(".step[data-step=collected][data-status=pending]").wait_for()
        page.wait_for_selector("#outbox-status[data-pending='1']")
        assert "待发送" in page.locator("#outbox-status").inner_text()
        page.unroute_all(behavior="wait")
        page.wait_for_selector("#outbox-status[data-pending='0']", timeout=20_000)
        row.locator(".step[data-step=collected][data-status=stored]").wait_for()
        story = _wait(lambda: _story(demo, second, "lab-cjzxwsy"), f"{second} tracked")
        assert [s["kind"] for s in story["timeline"]] == ["collected"]  # exactly once
        _describe(page, extra, "routine", "ambient")
        # packing: mixing refrigerated with ambient is warned about before anything is sent
        page.fill("#box-id", box)
        page.fill("#box-seal", seal)
        for barcode in (first, second, extra):
            page.check(f".pack-tube[data-barcode='{barcode}'] input")
        warning = page.locator("#mix-warning")
        warning.wait_for()
        assert "冷藏 2–8 °C" in warning.inner_text() and "常温 15–25 °C" in warning.inner_text()
        page.click("#pack-submit")
        page.locator("dialog #mix-confirm").wait_for()
        page.locator("dialog button[value=cancel]").click()  # not mixed after all
        page.uncheck(f".pack-tube[data-barcode='{extra}'] input")
        page.wait_for_selector("#mix-warning", state="hidden")
        page.click("#pack-submit")
        handover = page.locator(f".handover-box[data-container='{box}']")
        handover.wait_for()
        assert "尚缺：装机" in page.locator(f".tube-row[data-barcode='{first}']").inner_text()
        handover.locator("select.flight-select").select_option(flight)
        handover.locator("button.load-submit").click()
        for barcode in (first, second):
            page.locator(f".tube-row[data-barcode='{barcode}'] "
                         ".step[data-step=loaded][data-status=stored]").wait_for()
        assert "尚缺" not in page.locator(f".tube-row[data-barcode='{first}']").inner_text()
        page.screenshot(path=str(shots / "packing-phone.png"), full_page=True)
        # the printable manifest, with the QR code of the box
        page.goto(f"{demo.base}/#/manifest/{box}")
        page.wait_for_selector(f"#manifest[data-container='{box}'] svg.qr rect")
        rows = page.locator("#manifest tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.barcode)")
        assert rows == [first, second]
        assert "急诊" in page.locator("#manifest").inner_text()
        page.screenshot(path=str(shots / "manifest-phone.png"), full_page=True)
        with page.expect_download() as download:  # behind the token: fetched, then saved
            page.click("#manifest-pdf")
        assert download.value.suggested_filename == f"manifest-{box}.pdf"
        assert open(download.value.path(), "rb").read(5) == b"%PDF-"
        # English at a click
        page.click("#lang-switch")
        page.wait_for_selector("h1:has-text('Specimen shipment manifest')")
    finally:
        nurse.close()
    # the simulated flight: take-off, landing, the drone unloads the box at the lab
    publisher.publish(LAYOUT.flight(drone), json.dumps(scan(
        "flight.takeoff", 0.5, drone_id=drone, flight_id=flight, site_id=TOWN)).encode())
    publisher.publish(LAYOUT.flight(drone), json.dumps(scan(
        "flight.landed", 0.1, drone_id=drone, flight_id=flight, site_id=LAB)).encode())
    for barcode in (first, second):
        publisher.publish(LAYOUT.drone_custody(drone), json.dumps(scan(
            "custody.unloaded", 0.1, barcode=barcode, site_id=LAB,
            actor={"kind": "drone", "id": drone}, container_id=box, flight_id=flight,
            drone_id=drone, seal_id=seal)).encode())
    publisher.wait_all_acked(20)
    publisher.close()
    lab = Phone(browser, demo, "lab-pdrmyy")
    page = lab.page
    try:
        page.click("nav .nav-link:has-text('到箱核对')")
        card = page.locator(f".incoming-box[data-container='{box}']")
        card.wait_for()
        assert card.locator(".expected-tubes li").count() == 2
        card.locator("button.open-box").click()
        page.fill("#receive-seal", seal)
        page.press("#receive-seal", "Enter")
        page.wait_for_selector("#seal-result .ok-notice")
        page.fill("#receive-scan", first)
        page.press("#receive-scan", "Enter")
        page.wait_for_selector(f".check[data-barcode='{first}'][data-finding=expected]")
        page.fill("#receive-scan", extra)  # collected at the clinic, never packed
        page.press("#receive-scan", "Enter")
        page.wait_for_selector(f".check[data-barcode='{extra}'][data-finding=extra]")
        page.click("#close-box")
        missing = page.locator(f".check[data-barcode='{second}'][data-finding=missing]")
        missing.wait_for()
        assert "缺失" in missing.inner_text()
        page.screenshot(path=str(shots / "receiving-phone.png"), full_page=True)
    finally:
        lab.close()
    received = _wait(lambda: [s for s in demo.get(f"/api/v1/specimens/{first}",
                                                  user="lab-pdrmyy")["timeline"]
                              if s["kind"] == "received"], "the receipt of the first tube")
    assert (received[0]["container_id"], received[0]["seal_id"]) == (box, seal)
    for user in ("lab-pdrmyy", "lab-cjzxwsy"):  # both sites see both discrepancies
        alerts = demo.get("/api/v1/alerts?kind=manifest_discrepancy&limit=200", user=user)
        findings = {a["subject_id"]: a["details"]["finding"] for a in alerts["items"]}
        assert findings.get(extra) == "extra" and findings.get(second) == "missing", user
