"""Issue 20 in real headless Chromium, in Chinese, at desktop (1280×800) and phone (390×844)
sizes, against the running demo: the fleet view never shows an unknown as good (a drone never
heard from, one offline, a 14 °C box on a refrigerated flight in red with its band) and its
drone labels keep clear of the site labels; the report over a week and a month with short
route names (full names as tooltips), every chart drawn 1:1 and labelled with its unit and the
time zone, nothing wider than the phone, CSV and PDF; a barcode typed in lower case behind a
scanner's prefix finds the specimen, whose temperature chart reads on a phone.

Reuses the demo, browser, screenshot and test-flight fixtures of tests/test_dashboards.py (a
demo of this module's own: module-scoped fixtures run once per module)."""

import json
import re
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import LAYOUT, Publisher, scan, telemetry
from tests.test_dashboards import (  # noqa: F401 (fixtures)
    LAB,
    PASSWORD,
    WAIT_S,
    browser,
    demo,
    flight,
    shots,
)

pytestmark = pytest.mark.timeout(300)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NEVER, OFF, PAD = "uav-never", "uav-off", "uav-pad"
# a drone on the ground just east of the lead hospital: its label, on the usual side (left),
# would cover the hospital's label
PAD_LAT, PAD_LON = 36.7790, 119.9560 + 0.07
# three more on the same spot: the last of the four finds every side taken (the hospital's
# label on the left, its neighbours' labels elsewhere) and must still keep off the hospital's
CROWD = ("uav-pad-2", "uav-pad-3", "uav-pad-4")


def _open(browser, demo, user: str, viewport: dict, language: str = "zh"):  # noqa: F811
    context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Europe/London",
                                  is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    if language != "zh":
        context.add_init_script(f"localStorage.setItem('dronelog.lang', '{language}')")
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(demo.base + "/")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_selector("#app-header:not([hidden])")
    return context, page, errors


def _site_labels_hidden(page) -> list[str]:
    """The site labels cut by the map's edge or under the map's legend."""
    return page.evaluate("""() => {
        const rect = (el) => el.getBoundingClientRect();
        const map = rect(document.querySelector('#map'));
        const legends = [...document.querySelectorAll('#map .map-legend')].map(rect);
        const hit = (a, b) => a.left < b.right && b.left < a.right
          && a.top < b.bottom && b.top < a.bottom;
        return [...document.querySelectorAll('.site-label')].filter((el) => {
          const r = rect(el);
          return r.left < map.left || r.right > map.right || r.top < map.top
            || r.bottom > map.bottom || legends.some((legend) => hit(r, legend));
        }).map((el) => el.textContent);
    }""")


def _drone_labels_placed(page) -> dict:
    """The labels of the drones in view (`shown`), and those of them cut by the map's edge
    or covering another's (`hidden`)."""
    return page.evaluate("""() => {
        const rect = (el) => el.getBoundingClientRect();
        const map = rect(document.querySelector('#map'));
        const inView = (arrow) => {
          const r = rect(arrow), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
          return x >= map.left && x <= map.right && y >= map.top && y <= map.bottom;
        };
        const labels = [...document.querySelectorAll('.drone-marker')]
          .filter((marker) => inView(marker.querySelector('.drone-arrow')))
          .map((marker) => marker.querySelector('.drone-label'));
        const hit = (a, b) => a.left < b.right && b.left < a.right
          && a.top < b.bottom && b.top < a.bottom;
        const hidden = labels.filter((el) => {
          const r = rect(el);
          return r.left < map.left || r.right > map.right || r.top < map.top
            || r.bottom > map.bottom
            || labels.some((other) => other !== el && hit(r, rect(other)));
        });
        return {shown: labels.map((el) => el.textContent),
                hidden: hidden.map((el) => el.textContent)};
    }""")


def _drones_under_site_labels(page) -> list[str]:
    """The drones in view whose arrow a site's label covers."""
    return page.evaluate("""() => {
        const rect = (el) => el.getBoundingClientRect();
        const map = rect(document.querySelector('#map'));
        const hit = (a, b) => a.left < b.right && b.left < a.right
          && a.top < b.bottom && b.top < a.bottom;
        const sites = [...document.querySelectorAll('.site-label')].map(rect);
        return [...document.querySelectorAll('.leaflet-marker-icon[data-drone-id]')]
          .filter((marker) => {
            const arrow = rect(marker.querySelector('.drone-arrow'));
            return hit(arrow, map) && sites.some((site) => hit(arrow, site));
          }).map((marker) => marker.dataset.droneId);
    }""")


def _no_sideways_scroll(page, width: int) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def _charts_drawn_one_to_one(page, selector: str) -> None:
    """Each chart's text is drawn at its own size: the SVG's box is its viewBox (±5 %)."""
    scales = page.eval_on_selector_all(selector, """svgs => svgs.map(
        s => s.getBoundingClientRect().width / s.viewBox.baseVal.width)""")
    assert scales and all(0.95 <= scale <= 1.05 for scale in scales), scales


@pytest.fixture(scope="module")
def fleet(demo, flight):  # noqa: F811
    """A drone registered but never heard from, one that said it went offline, one standing
    on the ground beside the lead hospital."""
    token = httpx.post(f"{demo.base}/api/v1/auth/token", timeout=10,
                       data={"username": "admin", "password": PASSWORD}).json()["access_token"]
    registered = httpx.put(f"{demo.base}/api/v1/admin/drones/{NEVER}", timeout=10,
                           headers={"Authorization": f"Bearer {token}"},
                           json={"display_name": "备用机", "home_site_id": LAB})
    assert registered.status_code == 200, registered.text
    publisher = Publisher(demo.mqtt_url)
    status = {**scan("status"), "drone_id": OFF, "online": False, "reason": "disconnected"}
    publisher.publish(LAYOUT.status(OFF), json.dumps(status).encode())
    publisher.publish(LAYOUT.telemetry(OFF), telemetry(OFF, lat=36.70, lon=119.80)
                      .model_dump_json().encode())
    for drone in (PAD, *CROWD):
        publisher.publish(LAYOUT.telemetry(drone), telemetry(drone, lat=PAD_LAT, lon=PAD_LON,
                                                             payload_temp_c=None)
                          .model_dump_json().encode())
    publisher.wait_all_acked(20)
    yield
    publisher.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_fleet_never_shows_an_unknown_as_good(demo, browser, flight, fleet, shots,  # noqa: F811
                                                 viewport):
    context, page, errors = _open(browser, demo, "dispatcher", viewport)
    row = page.locator(f"#fleet-table tr[data-drone-id='{NEVER}']")
    row.wait_for()
    # never heard from: its own neutral state, never "on the ground"
    assert row.get_attribute("data-state") == "never"
    assert row.locator(".state-pill").inner_text() == "从未上报"
    assert row.locator("td").last.inner_text() == "从未"
    page.wait_for_selector(f"#fleet-table tr[data-drone-id='{OFF}'][data-state=offline]")
    page.wait_for_selector(f"#fleet-table tr[data-drone-id='{PAD}'][data-state=ground]")
    # the test flight's refrigerated box at 14 °C: red, with the band it should be in
    temp = page.locator(f"#fleet-table tr[data-drone-id='{flight.drone}'] td").nth(6)
    page.wait_for_function("el => el.classList.contains('out-of-band')", arg=temp.element_handle())
    assert temp.inner_text() == "14.0 °C (要求 2–8 °C)"
    assert temp.evaluate("el => getComputedStyle(el).color") == "rgb(198, 40, 40)"
    on_pad = page.locator(f"#fleet-table tr[data-drone-id='{PAD}'] td").nth(6)
    assert "out-of-band" not in (on_pad.get_attribute("class") or "")  # nothing on board
    # the scale bar in the rings' words
    assert re.fullmatch(r"\d+ (米|公里)", page.locator(".leaflet-control-scale-line").inner_text())
    # no drone label covers a site label (the drone beside the hospital moved its label)
    for drone in (PAD, *CROWD):
        page.locator(f".leaflet-marker-icon[data-drone-id='{drone}']").wait_for()
    page.wait_for_timeout(1200)  # the once-a-second repaint places the labels
    overlaps = page.evaluate("""() => {
        const rect = (el) => el.getBoundingClientRect();
        const sites = [...document.querySelectorAll('.site-label')].map(rect);
        const hit = (a, b) => a.left < b.right && b.left < a.right
          && a.top < b.bottom && b.top < a.bottom;
        return [...document.querySelectorAll('.drone-label')]
          .filter((label) => sites.some((site) => hit(rect(label), site)))
          .map((label) => label.textContent);
    }""")
    assert overlaps == []
    # ... and no site label lies on the drones on the pad: the hospital's name steps to the
    # left of them (on the right, its usual side, it covered their arrows)
    assert not {PAD, *CROWD} & set(_drones_under_site_labels(page))
    hospital = page.locator(".site-label", has_text=re.compile("^(平度市人民医院|平度人医)$"))
    assert "leaflet-tooltip-left" in hospital.get_attribute("class")
    # a site with no drone near it keeps its name on the right
    assert "leaflet-tooltip-right" in page.locator(
        ".site-label", has_text="万家卫生院").get_attribute("class")
    # the four drones on the hospital's pad: each label whole inside the map, none on another
    placed = _drone_labels_placed(page)
    assert {PAD, *CROWD} <= set(placed["shown"]) and placed["hidden"] == [], placed
    # ... and the drones beside the hospital are why its name is on the left: on its usual
    # side, the right (the mirror image about its marker), it would cover them
    covered_on_the_right = hospital.evaluate("""(el, ids) => {
        const hit = (a, b) => a.left < b.right && b.left < a.right
          && a.top < b.bottom && b.top < a.bottom;
        const r = el.getBoundingClientRect();
        // the marker's centre: the label's offset (10 px) and its margin (Leaflet's -6 px on
        // the left, +6 px on the right) away from it
        const margin = parseFloat(getComputedStyle(el).marginLeft);
        const x = r.right + 10 - margin;
        const right = {left: x + 10 - margin, right: x + 10 - margin + r.width,
                       top: r.top, bottom: r.bottom};
        return ids.some((id) => hit(right, document.querySelector(
          `.leaflet-marker-icon[data-drone-id='${id}'] .drone-arrow`).getBoundingClientRect()));
    }""", [PAD, *CROWD])
    assert covered_on_the_right
    # every site's label whole inside the map, and no legend on top of one
    assert _site_labels_hidden(page) == []
    assert page.locator(".map-legend").is_visible()
    if viewport is PHONE:
        _no_sideways_scroll(page, PHONE["width"])
    page.screenshot(path=str(shots / ("fleet.png" if viewport is DESKTOP
                                      else "dispatcher-phone.png")))
    # zoomed in, the drones out of view leave no label inside the map
    for _ in range(4):
        page.locator(".leaflet-control-zoom-in").click()
        page.wait_for_timeout(300)
    page.wait_for_timeout(1200)  # the zoom's animation, then the repaint
    placed = _drone_labels_placed(page)
    strays = page.evaluate("""shown => {
        const map = document.querySelector('#map').getBoundingClientRect();
        return [...document.querySelectorAll('.drone-label')]
          .filter((el) => !shown.includes(el.textContent)).filter((el) => {
            const r = el.getBoundingClientRect();
            return r.left < map.right && map.left < r.right && r.top < map.bottom
              && map.top < r.bottom;
          }).map((el) => el.textContent);
    }""", placed["shown"])
    assert len(placed["shown"]) < 7 and strays == [] and placed["hidden"] == [], (
        placed, strays)
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_in_english_every_site_label_is_whole_and_clear_of_the_legend(demo, browser, shots,  # noqa: F811
                                                                      viewport):
    """English names are the longest: on a phone they were cut at the map's right edge and
    the legend lay over a site's."""
    context, page, errors = _open(browser, demo, "dispatcher", viewport, language="en")
    page.wait_for_selector(".site-label")
    page.wait_for_timeout(1200)  # the once-a-second repaint places the labels
    assert page.locator(".site-label").count() == 4
    assert _site_labels_hidden(page) == []
    assert page.locator(".map-legend").is_visible()
    # the scale bar whole inside the map and clear of the (longer, English) attribution
    scale, attribution, box = (page.locator(selector).bounding_box() for selector in (
        ".leaflet-control-scale", ".leaflet-control-attribution", "#map"))
    assert box["x"] <= scale["x"] and scale["x"] + scale["width"] <= box["x"] + box["width"]
    assert box["y"] <= scale["y"] and scale["y"] + scale["height"] <= box["y"] + box["height"]
    assert (scale["y"] + scale["height"] <= attribution["y"]
            or attribution["x"] + attribution["width"] <= scale["x"]
            or scale["x"] + scale["width"] <= attribution["x"]), (scale, attribution)
    assert re.fullmatch(r"\d+ k?m", page.locator(".leaflet-control-scale-line").inner_text())
    page.screenshot(path=str(shots / f"map-en-{viewport['width']}.png"))
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_report_of_a_week_and_a_month_fits_any_width(demo, browser, flight, shots,  # noqa: F811
                                                         tmp_path, viewport):
    # the test flight's specimens give the week a route whatever the hour (the demo's one
    # hour of history can be empty at night, when the clinics are closed): the week of the
    # day they were collected, 12 minutes before the flight (in the first 12 minutes of a
    # Monday, the week before the flight's)
    context, page, errors = _open(browser, demo, "lab-pdrmyy", viewport)
    day = flight.collected_at.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    page.evaluate(f"location.hash = '#/report/week/{day}'")
    page.wait_for_selector("#report-table")
    assert page.locator("#report-mode").input_value() == "week"
    # short route names, the full names as the tooltip, wrapped rather than cut
    route = page.locator("#report-table tbody th.route-cell").first
    title, short = route.get_attribute("title"), route.inner_text()
    assert " → " in title and " → " in short and len(short) < len(title)
    assert route.evaluate("el => getComputedStyle(el).whiteSpace") == "normal"
    shorts = {"平度人医", "平度二院", "崔家卫生院", "万家卫生院"}
    assert set(short.split(" → ")) <= shorts
    assert page.locator(".chart.bars text.label title").count() > 0  # tooltips on the chart
    # every chart says its unit; the trend its time zone; all drawn at their own size
    assert page.locator(".chart .axis-title:has-text('单位：分钟')").count() >= 2
    page.wait_for_selector("#trend-title ~ svg")
    assert "Asia/Shanghai" in page.locator("#trend-title ~ p.muted").inner_text()
    _charts_drawn_one_to_one(page, ".report-body svg.chart, .panel svg.trend")
    legs = page.locator(".chart.legs .column-title, .leg-chart figcaption").all_text_contents()
    assert "装机→起飞" in legs and len(legs) == 4
    assert page.locator("#report-rejections").count() == 1
    assert page.locator("#report-excursions").count() == 1
    if viewport is PHONE:
        _no_sideways_scroll(page, PHONE["width"])
        assert page.locator(".chart.legs").count() == 0  # one chart per leg instead
        page.screenshot(path=str(shots / "report-phone.png"), full_page=True)
    else:
        page.screenshot(path=str(shots / "report-week.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#report-pdf")
        saved = tmp_path / "report.pdf"
        download.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        with page.expect_download() as download:
            page.click("#report-csv")
        download.value.save_as(tmp_path / "report.csv")
        header = (tmp_path / "report.csv").read_text().splitlines()[0]
        assert "p90_loaded_to_took_off_min" in header
    # the month holding the day: from its first day, the period written out
    page.select_option("#report-mode", "month")
    page.wait_for_function("() => location.hash.startsWith('#/report/month/')")
    page.wait_for_selector(f".report-summary:has-text('{day[:8]}01')")
    assert page.locator("#report-from").input_value() == f"{day[:8]}01"
    context.close()
    assert not errors, errors


def test_a_barcode_typed_in_lower_case_behind_a_scanner_prefix_finds_the_specimen(
        demo, browser, flight, shots):  # noqa: F811
    context, page, errors = _open(browser, demo, "lab-pdrmyy", PHONE)
    page.wait_for_selector("#barcode")
    page.fill("#barcode", f"  ]C1{flight.barcode.lower()} ")
    page.press("#barcode", "Enter")
    page.wait_for_function(f"() => location.hash === '#/lab/{flight.barcode}'")
    chart = page.locator("figure.temperature svg.temperature-chart")
    chart.wait_for()
    assert page.input_value("#barcode") == flight.barcode
    axes = chart.locator(".axis-title").all_text_contents()
    assert "温度 °C" in axes and "时间（Asia/Shanghai）" in axes
    _charts_drawn_one_to_one(page, "figure.temperature svg")
    _no_sideways_scroll(page, PHONE["width"])
    page.locator("#story").screenshot(path=str(shots / "lab-specimen-phone.png"))
    # the same lookup through the address, as a link typed by hand
    page.evaluate(f"location.hash = '#/lab/{flight.barcode.lower()}'")
    page.wait_for_function(f"() => document.querySelector('#barcode').value === '{flight.barcode}'")
    context.close()
    assert not errors, errors


def test_the_report_refuses_a_period_longer_than_a_quarter(demo):  # noqa: F811
    token = httpx.post(f"{demo.base}/api/v1/auth/token", timeout=10,
                       data={"username": "lab-pdrmyy", "password": PASSWORD}).json()
    response = httpx.get(f"{demo.base}/api/v1/reports/period", timeout=10,
                         params={"from": "2026-01-01", "to": "2026-06-30"},
                         headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 422

