"""Stability per specimen type (domain/stability.py): the catalogue and its file, the stricter
of it and the turnaround policy, and, through the engine and the API on SQLite and
PostgreSQL, deadlines, excursion bands and "stability exceeded" at the boundaries; the
catalogue as FHIR R5 SpecimenDefinition."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fhir.resources.bundle import Bundle
from fhir.resources.specimendefinition import SpecimenDefinition

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.policies import PolicyBook
from dronelog.domain.stability import (
    SpecimenLimits,
    StabilityCatalogue,
    StabilityError,
    stability_exceeded,
)
from dronelog.storage.network import import_network
from dronelog_sim.scenario import load_scenario
from tests.support import Api
from tests.test_turnaround import (
    LAB,
    T0,
    TOWN,
    TOWN_POINT,
    Network,
    collected,
    flight,
    loaded,
    packed,
    position,
    received,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "stability.toml"
LIMITS = SpecimenLimits(PolicyBook.default(), StabilityCatalogue.default())


def facts(kind="blood_sample", priority="routine", temperature_class="ambient",
          blood_product=None) -> SpecimenFacts:
    return SpecimenFacts("CJ2611220042", kind, priority, temperature_class, TOWN, LAB,
                         blood_product=blood_product)


def catalogue(*entries: dict) -> StabilityCatalogue:
    return StabilityCatalogue({"specimen_type": [
        {"name": e["id"], "name_zh": e["id"], "max_transport_min": 60} | e for e in entries]})


# --- the domain ------------------------------------------------------------------------------


def test_the_shipped_file_is_the_built_in_catalogue():
    assert StabilityCatalogue.load(SHIPPED) == StabilityCatalogue.default()


@pytest.mark.parametrize(("kind", "priority", "target"), [
    ("blood_gas", "stat", 15), ("blood_gas", "routine", 15),  # 15 min beats 45 and 30
    ("urine", "routine", 120), ("urine", "urgent", 90), ("urine", "stat", 45),
    ("microbiology", "routine", 120),
    ("blood_sample", "routine", 240),  # no type without its tests: the policy alone
])
def test_the_stricter_of_stability_and_priority_sets_the_deadline(kind, priority, target):
    assert LIMITS.for_specimen(facts(kind, priority)).target_min == target


def test_a_red_cell_unit_is_held_to_2_to_10_degrees_and_24_hours():
    unit = facts("blood_unit", temperature_class="red_cells", blood_product="red_cells")
    band = LIMITS.temperature_range(unit)
    assert (band.low_c, band.high_c) == (2.0, 10.0)  # the class alone allows 1-10
    assert LIMITS.stability_until(unit, T0) == T0 + timedelta(hours=24)
    platelets = facts("blood_unit", temperature_class="platelets", blood_product="platelets")
    assert LIMITS.stability_until(platelets, T0) is None
    assert (LIMITS.temperature_range(platelets).low_c,
            LIMITS.temperature_range(platelets).high_c) == (20.0, 24.0)


def test_do_not_refrigerate_raises_the_floor_and_all_matching_types_hold():
    limits = SpecimenLimits(PolicyBook.default(), catalogue(
        {"id": "blood-culture", "kinds": ["microbiology"], "do_not_refrigerate": True,
         "max_transport_min": 120},
        {"id": "small-volume", "kinds": ["microbiology"], "max_transport_min": 30,
         "high_c": 22}))
    ambient = limits.temperature_range(facts("microbiology"))
    assert (ambient.low_c, ambient.high_c) == (15.0, 22.0)
    assert limits.for_specimen(facts("microbiology")).target_min == 30
    # refrigerated: no temperature fits (15 above 8), so every reading is an excursion
    cold = limits.temperature_range(facts("microbiology", temperature_class="refrigerated"))
    assert not any(cold.contains(c / 2) for c in range(-10, 60))


@pytest.mark.parametrize(("received_after", "exceeded"), [
    (timedelta(minutes=15), False),  # exactly at the limit: still within it
    (timedelta(minutes=15, seconds=1), True),
    (timedelta(minutes=14, seconds=59), False),
])
def test_stability_exceeded_at_receipt_at_the_boundary(received_after, exceeded):
    until = LIMITS.stability_until(facts("blood_gas"), T0)
    assert until == T0 + timedelta(minutes=15)
    assert stability_exceeded(until, T0 + received_after, now=T0 + timedelta(hours=5)) \
        is exceeded
    assert stability_exceeded(until, None, now=T0 + received_after) is exceeded  # still open
    assert stability_exceeded(None, None, now=T0 + timedelta(days=9)) is False


@pytest.mark.parametrize(("entries", "message"), [
    ([{"id": "x", "low_c": 10, "high_c": 2}], "low_c must not be above high_c"),
    ([{"id": "x"}, {"id": "x"}], "duplicate ids"),
    ([{"id": "x", "kinds": ["urine"], "blood_products": ["red_cells"]}], "blood_unit"),
    ([{"id": "x", "max_transport_min": 0}], "greater than 0"),
    ([{"id": "x", "kinds": ["saliva"]}], "kinds"),
])
def test_a_broken_catalogue_is_refused_with_where_and_why(entries, message):
    with pytest.raises(StabilityError, match=message):
        catalogue(*entries)


def test_the_settings_name_the_catalogue_file(tmp_path):
    stricter = tmp_path / "stability.toml"
    stricter.write_text(SHIPPED.read_text(encoding="utf-8").replace(
        'kinds = ["urine"]\nmax_transport_min = 120', 'kinds = ["urine"]\nmax_transport_min = 50'),
        encoding="utf-8")
    limits = SpecimenLimits.from_files(None, str(stricter))
    assert limits.for_specimen(facts("urine")).target_min == 50
    broken = tmp_path / "broken.toml"
    broken.write_text("[[specimen_type]]\nid = 'x'\n", encoding="utf-8")
    with pytest.raises(StabilityError, match=r"broken.toml: invalid stability catalogue"):
        SpecimenLimits.from_files(None, str(broken))


# --- through the engine and the API ------------------------------------------------------


@pytest.fixture
def site(engine):
    """The Pingdu network, the engine and the API on one manual clock (tokens issued 40 min
    after T0, when the lab looks)."""
    import_network(engine, load_scenario(ROOT / "scenarios" / "pingdu.toml"))
    clock = ManualClock(T0 + timedelta(minutes=40))
    api = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1"),
              clock)
    yield Network(engine, clock), api
    api.close()


def _look_up(api: Api, barcode: str) -> dict:
    response = api.http.get(f"/api/v1/specimens/{barcode}", headers=api.as_role(Role.LAB))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_blood_gas_received_at_its_limit_passes_and_one_second_later_does_not(site):
    net, api = site
    net.store(collected("GAS-EXACT", net.at(0), priority="routine", kind="blood_gas"),
              collected("GAS-OVER", net.at(0), priority="routine", kind="blood_gas"),
              collected("GAS-OPEN", net.at(0), priority="routine", kind="blood_gas"),
              collected("URINE-1", net.at(0), priority="routine", kind="urine"))
    net.store(received("GAS-EXACT", net.at(15)),
              received("GAS-OVER", net.at(15) + timedelta(seconds=1)),
              received("URINE-1", net.at(100)))
    net.sweep_at(41)

    exact, over, still_open = (_look_up(api, b) for b in ("GAS-EXACT", "GAS-OVER", "GAS-OPEN"))
    for story in (exact, over, still_open):
        assert story["stability_until"] == story["deadline"] == "2026-11-20T02:15:00Z"
    assert "stability_exceeded" not in exact["problems"] and exact["turnaround"] == "met"
    assert over["problems"][:1] == ["stability_exceeded"] and over["turnaround"] == "missed"
    assert "stability_exceeded" in still_open["problems"]
    urine = _look_up(api, "URINE-1")
    assert urine["deadline"] == "2026-11-20T04:00:00Z"  # 120 min, not routine 240
    assert "stability_exceeded" not in urine["problems"]
    listed = api.http.get("/api/v1/specimens?site=pdrmyy&limit=10",
                          headers=api.as_role(Role.LAB)).json()["items"]
    assert {s["barcode"] for s in listed if "stability_exceeded" in s["problems"]} == {
        "GAS-OVER", "GAS-OPEN"}
    assert {subject for kind, subject in net.active() if kind == "breach"} == {
        "GAS-OVER", "GAS-OPEN"}


def _unit(barcode: str, at: datetime) -> m.Collected:
    return m.Collected(
        schema_version=1, event_id=uuid.uuid4(), kind="collected", event_time=at,
        barcode=barcode, site_id=TOWN, actor={"kind": "staff", "id": "nurse-1"},
        specimen={"kind": "blood_unit", "blood_product": "red_cells", "priority": "urgent",
                  "temperature_class": "red_cells", "origin_site_id": TOWN,
                  "destination_site_id": LAB, "order_ref": "ORD-RBC"})


@pytest.mark.parametrize(("box_c", "excursion"), [(2.0, False), (1.5, True)])
def test_a_red_cell_unit_at_1_5_degrees_is_an_excursion_the_class_alone_would_allow(
        site, box_c, excursion):
    net, api = site
    net.store(_unit("RBC-0001", net.at(0)), packed("RBC-0001", net.at(2)),
              loaded("RBC-0001", net.at(4)), flight("planned", net.at(1)),
              flight("takeoff", net.at(5)))
    net.store(*[position(net.at(5 + s / 60), TOWN_POINT, seq=s, temp=box_c)
                for s in range(0, 301, 10)])  # five minutes, more than the 120 s grace
    net.sweep_at(10.5)
    story = _look_up(api, "RBC-0001")
    assert (story["allowed_min_c"], story["allowed_max_c"]) == (2.0, 10.0)
    assert story["excursion"] is excursion
    assert (("temperature_excursion", "RBC-0001") in net.active()) is excursion


def test_the_catalogue_as_fhir_specimen_definitions(site):
    _net, api = site
    response = api.http.get("/api/v1/specimen-definitions", headers=api.as_role(Role.DEVICE))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    Bundle.model_validate(bundle)
    by_id = {e["resource"]["id"]: SpecimenDefinition.model_validate(e["resource"])
             for e in bundle["entry"]}
    assert bundle["total"] == len(by_id) == len(StabilityCatalogue.default().entries)
    cells = by_id["red-cells-unit"].typeTested[0].handling[0]
    assert (float(cells.temperatureRange.low.value), float(cells.temperatureRange.high.value),
            float(cells.maxDuration.value), cells.maxDuration.code) == (2, 10, 1440, "min")
    culture = by_id["blood-culture"].typeTested[0].handling[0]
    assert culture.temperatureQualifier.coding[0].code == "room"
    assert float(culture.temperatureRange.low.value) == 15 and culture.temperatureRange.high \
        is None
    gas = api.http.get("/api/v1/specimen-definitions/whole-blood-gas",
                       headers=api.as_role(Role.LAB)).json()
    assert SpecimenDefinition.model_validate(gas).typeCollected.coding[0].code == "blood_gas"
    assert gas["_title"]["extension"][0]["extension"][1]["valueString"] == "全血：血氨、血气、乳酸"
    missing = api.http.get("/api/v1/specimen-definitions/saliva", headers=api.as_role(Role.LAB))
    assert missing.status_code == 404
    assert api.http.get("/api/v1/specimen-definitions").status_code == 401
