"""Alerts as a code with parameters: the texts in Chinese and English, times in the site's
time zone (never UTC), and, on SQLite and PostgreSQL, every alert the engine raises stored
with the parameters its text needs, its text in the network's language, and the sites whose
labs it reaches (the destination, the origin, where a misrouted specimen is)."""

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.domain.alert_text import (
    KINDS,
    MissingParameter,
    SiteLabel,
    format_time,
    render,
    render_or,
)
from dronelog.domain.alerts import AlertKind, Condition
from dronelog.storage.network import import_network
from dronelog.storage.tables import Alert
from dronelog.turnaround import alert_store
from dronelog.turnaround.service import TurnaroundJobs
from dronelog_sim.scenario import load_scenario
from tests.test_turnaround import (
    LAB,
    T0,
    TOWN,
    TOWN_POINT,
    WAYPOINT,
    Network,
    _ids,
    airborne,
    between,
    collected,
    flight,
    loaded,
    packed,
    position,
    received,
    rejected,
)

SITES = {LAB: SiteLabel("平度市人民医院", "Pingdu People's Hospital", "Asia/Shanghai"),
         TOWN: SiteLabel("崔家集镇中心卫生院", "Cuijiaji Health Centre", "Asia/Shanghai"),
         "abroad": SiteLabel("伦敦", "London", "Europe/London")}
ROOT = Path(__file__).parent.parent
DEADLINE = "2026-11-20T02:45:00+00:00"  # 10:45 in Pingdu

EXAMPLES: dict[AlertKind, dict] = {
    AlertKind.TURNAROUND_WARNING: {"priority": "stat", "deadline": DEADLINE},
    AlertKind.PREDICTED_BREACH: {"priority": "stat", "deadline": DEADLINE,
                                 "eta": "2026-11-20T03:10:00+00:00"},
    AlertKind.BREACH: {"priority": "stat", "deadline": DEADLINE},
    AlertKind.CUSTODY_GAP: {"gaps": ["received without a loaded step"]},
    AlertKind.REJECTED_SPECIMEN: {"reason": "hemolysed", "at_site_id": LAB},
    AlertKind.TEMPERATURE_EXCURSION: {"temperature_class": "refrigerated", "temp_min_c": 5.0,
                                      "temp_max_c": 12.5, "seconds_out_of_range": 300.0},
    AlertKind.LOST_LINK: {"last_received_at": "2026-11-20T02:06:00+00:00"},
    AlertKind.LOW_BATTERY: {"battery_pct": 29.0, "remaining_m": 15200.0},
    AlertKind.OFF_ROUTE: {"off_route_m": 1110.4},
    AlertKind.MISROUTED: {"priority": "urgent", "at_site_id": "pddermyy",
                          "destination_site_id": LAB},
    AlertKind.LOCATION_UNKNOWN: {"priority": "stat"},
    AlertKind.CUSTODY_ANOMALY: {"anomalies": ["second receipt at pdrmyy"]},
    AlertKind.DESCRIPTION_CONFLICT: {"conflicts": ["packed at cjzxwsy described it otherwise"]},
    AlertKind.CARGO_DIVERTED: {"priority": "stat", "destination_site_id": LAB,
                               "new_destination_site_id": "pddermyy", "deadline": DEADLINE},
    AlertKind.MANIFEST_DISCREPANCY: {"container_id": "BOX-7", "finding": "missing",
                                     "at_site_id": LAB},
    AlertKind.MIXED_TEMPERATURE_CLASSES: {"container_id": "BOX-3",
                                          "temperature_class": "platelets",
                                          "temperature_classes": ["platelets", "red_cells"]},
}
SPECIMEN = {"barcode": "SP-1", "site_id": LAB, "origin_site_id": TOWN, "flight_id": "F1",
            "drone_id": "uav-02"}


def test_every_kind_has_a_text_in_both_languages():
    assert KINDS == {kind.value for kind in AlertKind} == {kind.value for kind in EXAMPLES}
    for kind, params in EXAMPLES.items():
        for language in ("zh", "en"):
            text = render(kind, SPECIMEN | params, language, SITES)
            assert "{" not in text and "UTC" not in text and "+00:00" not in text, text
            assert (SPECIMEN["barcode"] in text or SPECIMEN["drone_id"] in text), text


def test_times_are_the_sites_wall_clock_not_utc():
    params = SPECIMEN | EXAMPLES[AlertKind.BREACH]
    assert render("breach", params, "zh", SITES) == \
        "标本 SP-1（急诊）未在截止时间 11月20日 10:45 前签收"
    assert render("breach", params, "en", SITES) == \
        "SP-1 (STAT) not received by its deadline 20 Nov 10:45"
    # the zone is the alert's site's: a site in London reads 02:45, one unknown Pingdu's
    assert "02:45" in render("breach", params | {"site_id": "abroad"}, "en", SITES)
    assert "10:45" in render("breach", params | {"site_id": "nowhere"}, "en", SITES)
    assert "10:45" in render("breach", params, "en", {})  # no sites known: Asia/Shanghai
    # the date is the local one: 23:30 UTC is the next morning in Pingdu
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    assert format_time(late, ZoneInfo("Asia/Shanghai"), "zh") == "11月21日 07:30"
    with pytest.raises(ValueError):
        format_time("2026-11-20T02:45:00", ZoneInfo("Asia/Shanghai"), "zh")  # no offset: refused


def test_sites_by_name_priorities_lists_and_variants_in_each_language():
    misrouted = SPECIMEN | EXAMPLES[AlertKind.MISROUTED]
    assert render("misrouted", misrouted, "zh", SITES).startswith(
        "标本 SP-1（加急）在pddermyy，不在目的地平度市人民医院")  # an unknown site: its id
    assert "not at its destination Pingdu People's Hospital" in render(
        "misrouted", misrouted, "en", SITES)
    late = SPECIMEN | EXAMPLES[AlertKind.BREACH] | {"received_at": "2026-11-20T03:02:00+00:00",
                                                    "minutes_late": 17}
    assert render("breach", late, "zh", SITES) == \
        "标本 SP-1（急诊）于 11月20日 11:02 签收，晚于截止时间 11月20日 10:45 17 分钟"
    gaps = SPECIMEN | {"gaps": ["a", "b"]}
    assert render("custody_gap", gaps, "zh", SITES).endswith("a；b")
    assert render("custody_gap", gaps, "en", SITES).endswith("a; b")
    assert "15.2 km" in render("low_battery", SPECIMEN | EXAMPLES[AlertKind.LOW_BATTERY],
                               "en", SITES)
    assert render("lost_link", SPECIMEN, "zh", SITES) == "无人机 uav-02（航班 F1）近期未收到遥测"
    assert "10:06" in render("lost_link", SPECIMEN | EXAMPLES[AlertKind.LOST_LINK], "en", SITES)


def test_a_missing_parameter_is_refused_and_the_fallback_is_the_stored_text():
    with pytest.raises(MissingParameter):
        render("breach", {"barcode": "SP-1", "priority": "stat"}, "zh", SITES)
    assert render_or("stored", "breach", {"barcode": "SP-1"}, "zh", SITES) == "stored"
    assert render_or("stored", "no_such_kind", SPECIMEN, "zh", SITES) == "stored"
    with pytest.raises(KeyError):
        render("breach", SPECIMEN | EXAMPLES[AlertKind.BREACH], "fr", SITES)


def test_a_conditions_parameters_are_its_details_its_subject_and_its_sites():
    condition = Condition("specimen", "SP-1", AlertKind.MISROUTED, "…", {"priority": "stat"},
                          site_id=LAB, drone_id="uav-02", origin_site_id=TOWN,
                          at_site_id="pddermyy")
    assert condition.params == {"barcode": "SP-1", "site_id": LAB, "drone_id": "uav-02",
                                "origin_site_id": TOWN, "at_site_id": "pddermyy",
                                "priority": "stat"}
    flight_condition = Condition("flight", "F1", AlertKind.OFF_ROUTE, "…", {"off_route_m": 1.0},
                                 site_id=LAB, drone_id="uav-02")
    assert flight_condition.params == {"flight_id": "F1", "site_id": LAB, "drone_id": "uav-02",
                                       "off_route_m": 1.0}


# --- the engine on SQLite and PostgreSQL ---------------------------------------------------

@pytest.fixture
def net(engine):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    return Network(engine, ManualClock(T0))


def _stored(engine) -> dict[tuple[str, str], dict]:
    table = Alert.__table__
    with engine.connect() as connection:
        sites = alert_store.site_labels(connection)
        rows = connection.execute(select(table)).all()
    return {(row.kind, row.subject_id): dict(row._mapping) | {
        "params": json.loads(row.details), "sites": sites} for row in rows}


def _every_text_renders(stored: dict) -> None:
    """Each stored alert's text is its parameters rendered in Chinese (never the English
    fallback): its details carry everything its text needs."""
    for (kind, _), row in stored.items():
        assert row["message"] == render(kind, row["params"], "zh", row["sites"]), kind
        render(kind, row["params"], "en", row["sites"])


def test_specimen_alerts_reach_the_origin_and_the_destination_with_their_texts(net):
    net.store(collected("SP-1", net.at(0)), received("SP-1", net.at(50)))
    net.store(collected("SP-2", net.at(0)))
    net.store(collected("SP-3", net.at(0)), rejected("SP-3", net.at(30)))
    net.sweep_at(52)
    stored = _stored(net.engine)
    wanted = {("breach", "SP-1"), ("breach", "SP-2"), ("rejected_specimen", "SP-3")}
    assert set(stored) >= wanted
    for key in wanted:
        row = stored[key]
        assert (row["site_id"], row["origin_site_id"], row["at_site_id"]) == (LAB, TOWN, None)
        assert row["params"]["barcode"] == key[1] and row["params"]["origin_site_id"] == TOWN
    assert stored[("breach", "SP-2")]["message"] == \
        "标本 SP-2（急诊）未在截止时间 11月20日 10:45 前签收"
    assert stored[("breach", "SP-1")]["message"] == (
        "标本 SP-1（急诊）于 11月20日 10:50 签收，晚于截止时间 11月20日 10:45 5 分钟")
    assert stored[("rejected_specimen", "SP-3")]["message"] == \
        "标本 SP-3 在平度市人民医院被拒收：hemolysed"
    _every_text_renders(stored)


def test_a_misrouted_specimen_reaches_the_lab_where_it_is(net):
    net.store(collected("SP-1", net.at(0)),
              m.Received(**_ids(), kind="received", event_time=net.at(20), barcode="SP-1",
                         site_id="pddermyy", actor={"kind": "staff", "id": "lab-2"}))
    net.sweep_at(21)
    row = _stored(net.engine)[("misrouted", "SP-1")]
    assert (row["site_id"], row["origin_site_id"], row["at_site_id"]) == (LAB, TOWN, "pddermyy")
    assert "不在目的地平度市人民医院" in row["message"]
    _every_text_renders(_stored(net.engine))


def test_flight_alerts_and_their_cargo_carry_their_parameters(net):
    airborne(net)
    here = between(TOWN_POINT, WAYPOINT, 0.5)
    off = (here[0] + 0.01, here[1])
    net.store(*[position(net.at(19 + s / 60), off, seq=s, speed=3.0, temp=30.0,
                         battery=40 - s * 0.1) for s in range(0, 60, 5)])
    net.sweep_at(20)
    net.sweep_at(21.5)  # silent for 85 s
    stored = _stored(net.engine)
    assert {("predicted_breach", "SP-1"), ("off_route", "F1"), ("lost_link", "F1")} <= set(
        stored)
    prediction = stored[("predicted_breach", "SP-1")]
    assert (prediction["site_id"], prediction["origin_site_id"]) == (LAB, TOWN)
    assert prediction["params"]["priority"] == "stat"
    assert stored[("lost_link", "F1")]["message"] == \
        "无人机 uav-02（航班 F1）自 11月20日 10:19 起未收到遥测"
    _every_text_renders(stored)


def test_the_stored_text_is_in_the_networks_language(engine):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    english = Network(engine, ManualClock(T0))
    english.settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1",
                                language="en")
    english.jobs = TurnaroundJobs(engine, english.settings, clock=english.clock)
    english.store(collected("SP-9", english.at(0)), packed("SP-9", english.at(2)),
                  loaded("SP-9", english.at(4)), flight("planned", english.at(1)))
    english.sweep_at(46)
    message = _stored(engine)[("breach", "SP-9")]["message"]
    assert message.startswith("SP-9 (STAT) not received by its deadline 20 Nov 10:45"), message
    with pytest.raises(ValueError):
        Settings(language="fr")


# --- the dashboards render the same texts ---------------------------------------------------

NODE_SCRIPT = r"""
globalThis.localStorage = {getItem: () => null, setItem: () => {}};
globalThis.window = {dispatchEvent: () => {}};
globalThis.document = {documentElement: {}};
globalThis.CustomEvent = class {};
const {setLanguage, language} = await import(process.argv[1] + '/i18n.js');
const {alertText} = await import(process.argv[1] + '/alert_text.js');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const sites = new Map(Object.entries(input.sites));
const siteName = (id) => {
  const site = sites.get(id);
  if (!site) return id;
  return language() === 'zh' ? site.name_zh : site.name_en;
};
const out = input.cases.map(({alert, language: lang}) => {
  setLanguage(lang);
  return alertText(alert, {sites, siteName});
});
process.stdout.write(JSON.stringify(out));
"""


def _dashboard_texts(cases: list[dict]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        import conftest  # pytest's own instance, whose summary lists what was missing

        conftest.missing_component("node (Debian: apt-get install nodejs), to compare the "
                                   "dashboards' alert texts with the server's")
    sites = {site_id: {"name_zh": s.name_zh, "name_en": s.name_en, "timezone": s.timezone}
             for site_id, s in SITES.items()}
    done = subprocess.run(
        [node, "--input-type=commonjs", "-e",
         f"(async () => {{ {NODE_SCRIPT} }})()", str(ROOT / "dashboards" / "js")],
        input=json.dumps({"sites": sites, "cases": cases}), capture_output=True, text=True,
        timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_dashboards_render_the_same_text_from_the_code_and_parameters():
    cases, expected = [], []
    flight_kinds = {AlertKind.LOST_LINK, AlertKind.LOW_BATTERY, AlertKind.OFF_ROUTE}
    examples = [(kind, params) for kind, params in EXAMPLES.items()]
    examples += [(AlertKind.BREACH, {"priority": "stat", "deadline": DEADLINE,
                                     "received_at": "2026-11-20T03:02:00+00:00",
                                     "minutes_late": 17}),
                 (AlertKind.BREACH, {"priority": "routine", "deadline": DEADLINE,
                                     "site_id": "abroad"}),
                 (AlertKind.LOST_LINK, {}),
                 (AlertKind.MANIFEST_DISCREPANCY, {"container_id": "BOX-7", "finding": "extra"}),
                 (AlertKind.MANIFEST_DISCREPANCY, {"container_id": "BOX-7", "finding": "foreign",
                                                   "packed_container_id": "BOX-9"}),
                 (AlertKind.MANIFEST_DISCREPANCY, {"container_id": "BOX-7"})]
    for kind, params in examples:
        subject_kind, subject_id = (("flight", "F1") if kind in flight_kinds
                                    else ("specimen", "SP-1"))
        details = SPECIMEN | params  # as stored: the parameters, subject included
        for language in ("zh", "en"):
            cases.append({"language": language, "alert": {
                "kind": kind.value, "subject_kind": subject_kind, "subject_id": subject_id,
                "site_id": details.get("site_id"), "drone_id": "uav-02", "details": details,
                "message": "FALLBACK"}})
            expected.append(render(kind.value, SPECIMEN | params, language, SITES))
    assert _dashboard_texts(cases) == expected
    # a parameter missing: the stored message, as on the server
    broken = {"kind": "breach", "subject_kind": "specimen", "subject_id": "SP-1",
              "site_id": LAB, "drone_id": None, "details": {}, "message": "FALLBACK"}
    assert _dashboard_texts([{"language": "zh", "alert": broken}]) == ["FALLBACK"]
