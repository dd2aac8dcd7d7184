"""The administration screen and the dispatcher's alert panel in real headless Chromium, in
Chinese at 1280×800 (issue 17): an administrator adds a user (the password policy refusing a
short password first), deactivates them, issues a device token (shown once, then working) and
revokes it, and adds a notification route (its channel shown by name, never its URL); a
dispatcher works through grouped alerts (a box's excursion one entry with its
three tubes), filters them and acknowledges a group and a selection, each in one request.

One API server (in this process, SQLite) and one browser for the module, not the demo: the
scenarios need nothing but the API and what they seed. Screenshots go into
DRONELOG_SCREENSHOTS_DIR when set (docs/screenshots), else a temporary folder."""

import hashlib
import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.domain.alerts import AlertKind, Condition, Reconciliation
from dronelog.storage.database import create_db_engine, migrate
from dronelog.storage.tables import Alert, AuditEntry
from dronelog.turnaround import alert_store
from tests.support import LAB, TOWN, Api, chromium
from tests.test_dashboards import WAIT_S, shots  # noqa: F401

pytestmark = pytest.mark.timeout(180)
DESKTOP = {"width": 1280, "height": 800}
SITES = {LAB: ("平度市人民医院", "Pingdu People's Hospital", "lab_hospital", 36.779, 119.956),
         TOWN: ("崔家中心卫生院", "Cuijia health centre", "health_centre", 36.689, 119.761)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('admin') / 'db.sqlite'}")
    migrate(engine)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    running = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1",
                                   notify_channels='{"lab-wecom": "wecombot://secretkey01"}'),
                  clock)
    admin = running.as_role(Role.ADMIN)
    for site, (zh, en, kind, lat, lon) in SITES.items():
        running.http.put(f"/api/v1/admin/sites/{site}", headers=admin, json={
            "name_zh": zh, "name_en": en, "kind": kind, "lat": lat, "lon": lon}
        ).raise_for_status()
    running.http.put("/api/v1/admin/drones/uav-01", headers=admin, json={
        "display_name": "平度 1 号", "model": "FP-98", "home_site_id": LAB,
        "registration_number": "UAS-PD-0001"}).raise_for_status()
    yield running
    running.close()
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


class Tab:
    """One person's browser tab at 1280×800, in Chinese, logged in; page errors fail the
    test."""

    def __init__(self, browser, server: Api, user: str, viewport: dict = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport, locale="zh-CN",
                                           timezone_id="Asia/Shanghai",
                                           is_mobile=viewport["width"] < 500)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_S * 1000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(str(server.http.base_url) + "/")
        self.page.fill("#username", user)
        self.page.fill("#password", f"pw-{user}")
        self.page.click("form.login-form button[type=submit]")
        self.page.wait_for_selector("#app-header:not([hidden])")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


def _audited(server: Api, user: str) -> list[tuple[str, str]]:
    audit = AuditEntry.__table__
    with server.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(audit.c.action, audit.c.subject).where(audit.c.user_id == user)
            .order_by(audit.c.id))]


def test_an_administrator_adds_deactivates_and_issues_and_revokes_a_token(
        server, browser, shots):  # noqa: F811
    tab = Tab(browser, server, "admin-1")
    page = tab.page
    try:
        page.click("nav .nav-link:has-text('系统管理')")
        page.wait_for_selector("#admin-users tr[data-user='admin-1']")
        drone = page.locator("#admin-drones tr[data-drone='uav-01']")
        drone.wait_for()
        assert "UAS-PD-0001" in drone.inner_text()  # 实名登记号
        assert page.locator("#admin-sites tr[data-site]").count() == 2
        before = len(_audited(server, "admin-1"))
        # a password shorter than the policy is refused, with the server's reason
        page.click("#admin-add-users")
        page.fill("#user-id", "lab-new")
        page.fill("#user-name", "王检验")
        page.select_option("#user-role", "lab")
        page.select_option("#user-site", TOWN)
        page.fill("#user-password", "short")
        page.locator("dialog button[value=ok]").click()
        page.wait_for_selector(".toast-error:has-text('未执行')")
        assert "at least 10 characters" in page.locator(".toast-error").last.inner_text()
        assert page.locator("tr[data-user='lab-new']").count() == 0
        page.click("#admin-add-users")
        page.fill("#user-id", "lab-new")
        page.select_option("#user-role", "lab")
        page.select_option("#user-site", TOWN)
        page.fill("#user-password", "a long passphrase")
        page.locator("dialog button[value=ok]").click()
        row = page.locator("tr[data-user='lab-new'][data-active='true']")
        row.wait_for()
        assert "崔家中心卫生院" in row.inner_text()
        assert httpx.post(f"{server.http.base_url}/api/v1/auth/token", data={
            "username": "lab-new", "password": "a long passphrase"}).status_code == 200
        # deactivated: asked first, then the row says so and the login stops working
        row.locator("[data-action=deactivate]").click()
        page.locator("dialog #deactivate-confirm").wait_for()
        page.locator("dialog button[value=ok]").click()
        page.wait_for_selector("tr[data-user='lab-new'][data-active='false']")
        assert httpx.post(f"{server.http.base_url}/api/v1/auth/token", data={
            "username": "lab-new", "password": "a long passphrase"}).status_code == 401
        # a device token: issued, shown once, works; then revoked on its own
        device = page.locator("#admin-tokens tr[data-device='scanner-cj']")
        device.locator("[data-action=issue]").click()
        page.fill("#token-days", "7")
        page.locator("dialog button[value=ok]").click()
        secret = page.locator("#token-secret").input_value()
        me = httpx.get(f"{server.http.base_url}/api/v1/auth/me",
                       headers={"Authorization": f"Bearer {secret}"})
        assert me.json()["user_id"] == "scanner-cj"
        page.screenshot(path=str(shots / "admin-token.png"))
        page.locator("dialog button[value=ok]").click()
        token_id = hashlib.sha256(secret.encode()).hexdigest()
        issued = device.locator(f"li[data-token='{token_id}']")
        issued.wait_for()
        assert secret not in page.content()  # shown once: gone with its dialog
        assert device.locator("li[data-token]").count() == 2  # the fixture's, and this one
        page.locator("#admin-users").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shots / "admin.png"))
        issued.locator("[data-action=revoke]").click()
        page.locator("dialog button[value=ok]").click()
        issued.wait_for(state="detached")
        assert device.locator("li[data-token]").count() == 1
        assert httpx.get(f"{server.http.base_url}/api/v1/auth/me", headers={
            "Authorization": f"Bearer {secret}"}).status_code == 401
        # a notification route: STAT alerts at the lab to its WeCom group, quiet at night
        page.click("#admin-add-routes")
        page.fill("#route-name", "检验科急诊告警")
        page.select_option("#route-channel", "lab-wecom")
        page.select_option("#route-site_ids", [LAB])
        page.select_option("#route-priorities", ["stat"])
        page.fill("#route-quiet_start", "22:00")
        page.fill("#route-quiet_end", "07:00")
        page.locator("dialog button[value=ok]").click()
        route = page.locator("#admin-routes tr[data-route]")
        route.wait_for()
        assert "平度市人民医院" in route.inner_text() and "22:00–07:00" in route.inner_text()
        assert "secretkey01" not in page.content()
        assert _audited(server, "admin-1")[before:] == [
            ("user.add", "lab-new"), ("user.change", "lab-new"),
            ("token.issue", "scanner-cj"), ("token.revoke", "scanner-cj"),
            ("notification_route.add", route.get_attribute("data-route"))]
    finally:
        tab.close()


@pytest.fixture(scope="module")
def seeded_alerts(server) -> dict[str, list[int]]:
    """The alerts both alert screens' tests read (once per module: the dispatcher's test
    acknowledges some, which the lab's read-only view does not look at)."""
    def excursion(barcode: str) -> Condition:
        return Condition("specimen", barcode, AlertKind.TEMPERATURE_EXCURSION, "warm",
                         {"container_id": "BOX-7", "flight_id": "F-77", "temp_min_c": 9.0,
                          "temp_max_c": 14.2, "seconds_out_of_range": 420,
                          "temperature_class": "refrigerated"},
                         site_id=LAB, drone_id="uav-01", origin_site_id=TOWN)

    def opened(*conditions: Condition) -> list[int]:
        server.clock.advance(30)
        with server.engine.begin() as connection:
            return alert_store.apply(connection, Reconciliation(to_open=list(conditions)),
                                     server.clock.now())

    return {
        "warnings": opened(*(Condition(
            "specimen", f"CJW00{i}", AlertKind.TURNAROUND_WARNING, "late soon",
            {"priority": "urgent", "deadline": server.clock.now().isoformat()},
            site_id=TOWN, origin_site_id=LAB) for i in range(2))),
        "box": opened(*(excursion(f"CJX00{i}") for i in range(3))),
        "lost": opened(Condition("flight", "F-78", AlertKind.LOST_LINK, "silent",
                                 {"last_received_at": server.clock.now().isoformat()},
                                 site_id=LAB, drone_id="uav-02")),
        "battery": opened(Condition("flight", "F-79", AlertKind.LOW_BATTERY,
                                    "uav-03 on F-79: battery 18 %",
                                    {"battery_pct": 18, "remaining_m": 6200}, site_id=LAB,
                                    drone_id="uav-03")),
    }


# The alert filters whose chosen option's text is wider than the select shows (its padding
# and arrow taken off), measured in the select's own font.
CUT_FILTERS = """() => {
    const pen = document.createElement('canvas').getContext('2d');
    return [...document.querySelectorAll('.alert-filters select')].filter((select) => {
        const style = getComputedStyle(select);
        pen.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const text = pen.measureText(select.selectedOptions[0].text).width;
        const room = select.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight) - 16;
        return text > room;
    }).map((select) => `${select.name}: ${select.selectedOptions[0].text}`);
}"""


def test_a_dispatcher_works_through_grouped_alerts(server, browser, shots,  # noqa: F811
                                                  seeded_alerts):
    from playwright.sync_api import expect

    seeded = seeded_alerts
    tab = Tab(browser, server, "disp-1")
    page = tab.page
    bulk_requests = []
    page.on("request", lambda r: r.url.endswith("/api/v1/alerts/acknowledge")
            and bulk_requests.append(json.loads(r.post_data)))
    group_reads = []
    page.on("request", lambda r: "/api/v1/alerts/groups?" in r.url and group_reads.append(r.url))
    try:
        panel = page.locator(".alerts-panel")
        items = panel.locator(".alert-item")
        expect(items).to_have_count(5)
        # critical first, then high by age, then the medium warnings (the oldest of all)
        assert items.evaluate_all("els => els.map(e => e.dataset.kind)") == [
            "temperature_excursion", "lost_link", "low_battery", "turnaround_warning",
            "turnaround_warning"]
        box = items.first
        assert box.get_attribute("data-count") == "3"
        assert sorted(map(int, box.get_attribute("data-alert-ids").split())) == seeded["box"]
        assert "3 管标本" in box.inner_text() and "箱 BOX-7" in box.inner_text()
        # more than two entries in sight at once, inside the panel's own scroll area
        visible = page.evaluate("""() => {
            const list = document.querySelector('.alerts-panel .alert-list')
                .getBoundingClientRect();
            return [...document.querySelectorAll('.alerts-panel .alert-item')].filter((e) => {
                const r = e.getBoundingClientRect();
                return r.top >= list.top - 1 && r.bottom <= list.bottom + 1
                    && r.bottom <= innerHeight;
            }).length;
        }""")
        page.screenshot(path=str(shots / "dispatcher-alerts.png"))
        assert visible >= 3, visible
        box.locator("summary").click()
        assert box.locator(".member-list a").all_inner_texts() == ["CJX000", "CJX001", "CJX002"]
        # filters: severity, kind, site (the API filters; the list follows); the box reaches
        # Cuijia's lab too: its tubes were collected there
        filters = {"severity": ("medium", ["turnaround_warning"] * 2),
                   "kind": ("lost_link", ["lost_link"]),
                   "site": (TOWN, ["temperature_excursion"] + ["turnaround_warning"] * 2)}
        for name, (value, kinds) in filters.items():
            page.select_option(f".alert-filter-{name}", value)
            expect(items).to_have_count(len(kinds))
            assert items.evaluate_all("els => els.map(e => e.dataset.kind)") == kinds
            page.select_option(f".alert-filter-{name}", "")
        expect(items).to_have_count(5)
        # the box's three tubes in one request
        box.locator("[data-action=ack]").click()
        page.wait_for_selector(".alert-item[data-kind=temperature_excursion]"
                               "[data-state=acknowledged]")
        assert bulk_requests == [{"ids": seeded["box"]}]
        # two entries selected, acknowledged together
        for kind in ("lost_link", "low_battery"):
            panel.locator(f".alert-item[data-kind={kind}] .alert-select").check()
        assert "确认所选（2）" in panel.locator("[data-action=ack-selected]").inner_text()
        panel.locator("[data-action=ack-selected]").click()
        page.wait_for_selector(".alert-item[data-kind=low_battery][data-state=acknowledged]")
        assert bulk_requests[1] == {"ids": sorted(seeded["lost"] + seeded["battery"])}
        table = Alert.__table__
        with server.engine.connect() as connection:
            acked = dict(connection.execute(select(table.c.id, table.c.acknowledged_by).where(
                table.c.state == "acknowledged")).all())
        assert acked == {i: "disp-1" for i in seeded["box"] + seeded["lost"] + seeded["battery"]}
        page.select_option(".alert-filter-state", "open")
        expect(items).to_have_count(2)
        page.select_option(".alert-filter-state", "resolved")  # the last 30 days': none
        expect(items).to_have_count(0)
        assert page.locator(".alerts-panel .empty-state").inner_text() == "没有符合筛选条件的告警。"
        # the label's 30 days are the ones asked for
        assert page.locator(".alert-filter-state option[value=resolved]").inner_text() == (
            "近 30 天已解决")
        assert group_reads and all("resolved_days=30" in url for url in group_reads), group_reads
        assert page.evaluate(CUT_FILTERS) == [], "a filter's chosen label is cut"
        page.screenshot(path=str(shots / "dispatcher-alerts-resolved.png"))
        page.click("#lang-switch")  # and in English, whichever state is chosen
        page.wait_for_selector(".alert-filter-state option:has-text('Resolved, 30 days')",
                               state="attached")
        for state in ("active", "open", "acknowledged", "resolved"):
            page.select_option(".alert-filter-state", state)
            assert page.evaluate(CUT_FILTERS) == [], f"a filter's label is cut ({state})"
        expect(items).to_have_count(0)
        page.screenshot(path=str(shots / "dispatcher-alerts-en.png"))
        page.click("#lang-switch")
        # the administration screen is an administrator's: a dispatcher is sent home
        page.goto(str(server.http.base_url) + "/#/admin")
        page.wait_for_url("**/#/dispatch")
        assert page.locator("nav .nav-link:has-text('系统管理')").count() == 0
    finally:
        tab.close()


def test_a_lab_reads_its_sites_grouped_alerts_on_a_phone(server, browser, shots,  # noqa: F811
                                                         seeded_alerts):
    """The lead hospital's lab, at 390×844, sees the alerts that reach it grouped the same
    way as the dispatcher, read only, and nothing wider than the screen."""
    from playwright.sync_api import expect

    tab = Tab(browser, server, "lab-1", viewport={"width": 390, "height": 844})
    page = tab.page
    try:
        items = page.locator(".alerts-panel .alert-item")
        expect(items.first).to_be_visible()
        assert items.first.get_attribute("data-count") == "3"
        assert page.locator(".alerts-panel [data-action], .alert-select").count() == 0
        assert page.locator(".alert-filter-site").count() == 0  # its own site's, always
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        items.first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "lab-alerts-phone.png"))
    finally:
        tab.close()


def test_on_a_phone_each_admin_row_is_a_card_of_labelled_lines(server, browser, shots):  # noqa: F811
    """At 390×844 the administration tables do not scroll sideways: each row is a card, each
    cell under its column's name (the table's header, kept for screen readers)."""
    tab = Tab(browser, server, "admin-1", viewport={"width": 390, "height": 844})
    page = tab.page
    try:
        page.click("nav .nav-link:has-text('系统管理')")
        page.wait_for_selector("#admin-users tr[data-user='admin-1']")
        page.wait_for_selector("#admin-drones tr[data-drone='uav-01']")
        cards = page.evaluate("""() => [...document.querySelectorAll('.admin-table')]
          .map((table) => {
            const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
            const box = table.getBoundingClientRect();
            const rows = [...table.querySelectorAll('tbody tr')];
            return {
              id: table.closest('section').id,
              within: box.right <= window.innerWidth && table.scrollWidth <= table.clientWidth + 1,
              labelled: rows.every((row) => [...row.children].every((cell, i) =>
                cell.dataset.label === names[i]
                && getComputedStyle(cell, '::before').content === JSON.stringify(names[i]))),
              stacked: rows.every((row) => getComputedStyle(row).display === 'block'),
            };
        })""")
        assert {card["id"] for card in cards} >= {"admin-users", "admin-drones", "admin-sites"}
        assert all(card["within"] and card["labelled"] and card["stacked"] for card in cards), cards
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # the user's row reads as 角色 … 管理员, not as a bare value in a column off screen
        role = page.locator("#admin-users tr[data-user='admin-1'] td").nth(1)
        assert role.get_attribute("data-label") == "角色"
        page.locator("#admin-users").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "admin-phone.png"))
        # in English the buttons are longer and wrap: within the value column, never under
        # the column's name
        page.evaluate("localStorage.setItem('dronelog.lang', 'en')")
        page.reload()
        page.wait_for_selector("#admin-users tr[data-user='disp-1'] [data-action=deactivate]")
        lefts = page.evaluate("""() => [...document.querySelectorAll('.admin-table .row-actions')]
          .map((cell) => [...cell.children].map((el) => el.getBoundingClientRect().left))""")
        assert any(len(set(row)) < len(row) for row in lefts), lefts  # some did wrap
        assert all(min(row) >= row[0] - 1 for row in lefts if row), lefts
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        tab.close()
