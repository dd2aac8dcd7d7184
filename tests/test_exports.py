"""The FHIR R5 and EPCIS 2.0 exports of a specimen's journey, on SQLite and PostgreSQL.

Journeys are built through the real storage path (custody scans over HTTP, flight events,
telemetry and the drone's own unload scan through the ingester's batch writer, then the
turnaround engine's projections), exported over HTTP and checked with the standards' own
validators: fhir.resources' R5 models, and GS1's EPCIS 2.0 JSON Schema (a copy in
tests/data/epcis-2.0, under GS1's terms in LICENSE-GS1.txt)."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean

import pytest
from fhir.resources.bundle import Bundle
from jsonschema import Draft7Validator, FormatChecker
from pydantic import ValidationError

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.exports.journey import Handover, split_into_legs
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.network import import_network
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.service import TurnaroundJobs
from dronelog_sim.scenario import load_scenario
from tests.support import LAYOUT
from tests.test_api import LAB, TOWN, Api, scan

BARCODE, FLIGHT, DRONE, ORDER_REF = "CJ2611220042", "F20261122-0007", "uav-03", "ORD-7F3K-22"
ROOT = Path(__file__).parent
FORMATS = FormatChecker()  # jsonschema checks uri and date-time only with extra packages


@FORMATS.checks("uri")
def _uri(value) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", value)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:  # RFC 3339: a date, a time and an offset
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


EPCIS = Draft7Validator(json.loads((ROOT / "data" / "epcis-2.0" / "EPCIS-JSON-Schema.json")
                                   .read_text()), format_checker=FORMATS)
TRANSPORT_STATUS = {"in-progress", "completed", "abandoned", "cancelled", "planned",
                    "entered-in-error"}


@pytest.fixture
def api(engine):
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    import_network(engine, load_scenario(ROOT.parent / "scenarios" / "pingdu.toml"))
    running = Api(engine, Settings(database_url=str(engine.url),
                                   mqtt_url="mqtt://127.0.0.1:1"), clock)
    yield running
    running.close()


class Trip:
    """Puts a specimen's events where the real system puts them, minutes after `start`."""

    def __init__(self, api: Api) -> None:
        self.api, self.start = api, api.clock.now() - timedelta(minutes=60)
        self.writer = BatchWriter(api.engine, api.clock)
        self.jobs = TurnaroundJobs(api.engine, Settings(database_url=str(api.engine.url),
                                                        mqtt_url="mqtt://127.0.0.1:1"),
                                   clock=api.clock)  # one holder of the job's lease

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def scan(self, role: Role, name: str, minutes: float, **changes) -> None:
        if role is Role.LAB:  # lab staff record their own scans (custody rules)
            changes.setdefault("actor", {"kind": "staff", "id": "lab-1"})
        response = self.api.http.post("/api/v1/custody", headers=self.api.as_role(role),
                                      json=scan(name, event_time=self.at(minutes).isoformat(),
                                                **changes))
        assert response.status_code == 201, response.text

    def store(self, *events) -> None:
        accepted = []
        for event in events:
            topic = (LAYOUT.telemetry(DRONE) if isinstance(event, m.Telemetry)
                     else LAYOUT.flight(DRONE) if isinstance(event, m.FlightEventBase)
                     else LAYOUT.drone_custody(DRONE))
            accepted.append(Accepted(Delivery(topic, b"", self.api.clock.now()),
                                     LAYOUT.parse(topic), event))
        self.writer.write(accepted, [])

    def ids(self, minutes: float) -> dict:
        return {"schema_version": 1, "event_id": uuid.uuid4(), "event_time": self.at(minutes)}

    def telemetry(self, minutes: float, seq: int, temp_c: float) -> m.Telemetry:
        return m.Telemetry(**self.ids(minutes), drone_id=DRONE, seq=seq, flight_id=FLIGHT,
                           lat=36.70 + 0.01 * seq, lon=119.80 + 0.01 * seq, alt_m=170,
                           ground_speed_mps=17, heading_deg=60, battery_pct=90 - seq,
                           payload_temp_c=temp_c, link_quality_pct=90)

    def project(self) -> None:
        assert self.jobs.turnaround() is not None

    def export(self, kind: str) -> dict:
        response = self.api.http.get(f"/api/v1/specimens/{BARCODE}/{kind}",
                                     headers=self.api.as_role(Role.LAB))
        assert response.status_code == 200, response.text
        media = {"fhir": "application/fhir+json", "epcis": "application/ld+json"}[kind]
        assert response.headers["content-type"] == media
        return response.json()

    def looked_up(self) -> dict:
        return self.api.http.get(f"/api/v1/specimens/{BARCODE}",
                                 headers=self.api.as_role(Role.LAB)).json()


def resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == resource_type]


def valid_fhir(bundle: dict) -> dict:
    """Validated by the R5 models; then what they leave out: each reference names an entry of
    the bundle, of the type it says."""
    Bundle.model_validate(bundle)
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    for reference in _references(bundle):
        assert types.get(reference["reference"]) == reference["type"], reference
    return bundle


def _references(node):
    if isinstance(node, dict):
        if "reference" in node:
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def valid_epcis(document: dict) -> dict:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in EPCIS.iter_errors(document)]
    assert not errors, errors
    return document


def test_a_flown_journey_exports_as_fhir_and_epcis(api):
    journey = Trip(api)
    journey.scan(Role.DEVICE, "custody.collected", 0)
    journey.scan(Role.DEVICE, "custody.packed", 10)
    journey.store(m.FlightPlanned(**journey.ids(14), kind="planned", drone_id=DRONE,
                                  flight_id=FLIGHT, origin_site_id=TOWN, destination_site_id=LAB))
    journey.scan(Role.DEVICE, "custody.loaded", 15)
    temps = [20.4, 21.0, 23.6, 19.2, 22.1]
    journey.store(m.FlightTakeoff(**journey.ids(16), kind="takeoff", drone_id=DRONE,
                                  flight_id=FLIGHT, site_id=TOWN),
                  *[journey.telemetry(17 + i, i, t) for i, t in enumerate(temps)])
    journey.project()

    airborne = valid_fhir(journey.export("fhir"))
    [leg] = resources(airborne, "Transport")
    assert leg["status"] == "in-progress"
    here = next(e["resource"] for e in airborne["entry"]
                if e["fullUrl"] == leg["currentLocation"]["reference"])
    assert here["form"]["coding"][0]["code"] == "ve" and here["name"] == f"drone {DRONE}"
    steps = [e["bizStep"] for e in valid_epcis(journey.export("epcis"))["epcisBody"]
             ["eventList"]]
    assert steps == ["commissioning", "packing", "loading", "departing", "transporting"]

    journey.store(journey.telemetry(27, 5, 18.7),
                  m.FlightLanded(**journey.ids(28), kind="landed", drone_id=DRONE,
                                 flight_id=FLIGHT, site_id=LAB),
                  m.Unloaded(**journey.ids(29), kind="unloaded", barcode=BARCODE, site_id=LAB,
                             actor={"kind": "drone", "id": DRONE}, container_id="BOX-0193",
                             flight_id=FLIGHT, drone_id=DRONE, seal_id="SEAL-558201"))
    journey.scan(Role.LAB, "custody.received", 33)
    journey.project()
    stored = journey.looked_up()
    assert stored["state"] == "received"

    bundle = valid_fhir(journey.export("fhir"))
    assert bundle["type"] == "collection"
    [specimen] = resources(bundle, "Specimen")
    assert specimen["identifier"] == [{"system": "urn:dronelog:specimen", "value": BARCODE}]
    assert specimen["status"] == "available"
    assert specimen["type"]["coding"][0]["code"] == "BLD"
    assert datetime.fromisoformat(specimen["receivedTime"]) == journey.at(33)
    assert datetime.fromisoformat(specimen["collection"]["collectedDateTime"]) == journey.at(0)
    [leg] = resources(bundle, "Transport")
    assert (leg["status"], leg["intent"]) == ("completed", "order")
    assert [o["type"]["coding"][0]["code"] for o in leg["output"]] == ["takeoff", "landed"]
    sites = {e["fullUrl"]: e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Location"}
    assert sites[leg["currentLocation"]["reference"]]["name"] == "平度市人民医院"
    assert sites[leg["requestedLocation"]["reference"]]["identifier"][0]["value"] == LAB
    provenance = resources(bundle, "Provenance")
    assert [p["id"] for p in provenance] == [step["event_id"] for step in stored["timeline"]]
    assert [p["activity"]["coding"][0]["code"] for p in provenance] == [
        "collected", "packed", "loaded", "unloaded", "received"]
    assert [len(p["target"]) for p in provenance] == [1, 1, 2, 2, 1]  # the leg's ends
    # No patient: no subject anywhere, and the order reference only as the Specimen's request.
    assert not {"subject", "patient", "for"} & _keys(bundle)
    assert json.dumps(bundle, ensure_ascii=False).count(ORDER_REF) == 1
    assert specimen["request"][0]["identifier"]["value"] == ORDER_REF

    document = valid_epcis(journey.export("epcis"))
    events = document["epcisBody"]["eventList"]
    assert [(e["type"], e["action"], e["bizStep"]) for e in events] == [
        ("ObjectEvent", "ADD", "commissioning"), ("AggregationEvent", "ADD", "packing"),
        ("ObjectEvent", "OBSERVE", "loading"), ("ObjectEvent", "OBSERVE", "departing"),
        ("ObjectEvent", "OBSERVE", "transporting"), ("ObjectEvent", "OBSERVE", "arriving"),
        ("ObjectEvent", "OBSERVE", "unloading"), ("AggregationEvent", "DELETE", "unpacking"),
        ("ObjectEvent", "OBSERVE", "receiving")]
    assert {e["eventTimeZoneOffset"] for e in events} == {"+08:00"}
    assert events[2]["readPoint"] == {"id": f"urn:dronelog:site:{TOWN}"}
    assert "bizLocation" not in events[3]  # departed: in transit, at no business location
    [report] = events[4]["sensorElementList"][0]["sensorReport"]
    assert (report["type"], report["uom"]) == ("Temperature", "CEL")
    assert (report["minValue"], report["maxValue"]) == (stored["temp_min_c"],
                                                        stored["temp_max_c"]) == (18.7, 23.6)
    assert report["meanValue"] == pytest.approx(fmean([*temps, 18.7]), abs=1e-3)
    assert events[1]["parentID"] == events[7]["parentID"] == "urn:dronelog:container:BOX-0193"
    assert ORDER_REF not in json.dumps(document)
    assert journey.export("epcis") == document and journey.export("fhir") == bundle  # stable


def test_a_rejection_after_a_move_on_the_ground(api):
    journey = Trip(api)
    journey.scan(Role.DEVICE, "custody.collected", 0)
    journey.scan(Role.DEVICE, "custody.packed", 10)
    journey.scan(Role.LAB, "custody.rejected", 50, barcode=BARCODE)
    journey.project()
    bundle = valid_fhir(journey.export("fhir"))
    [specimen] = resources(bundle, "Specimen")
    assert specimen["status"] == "unsatisfactory"
    assert specimen["condition"][0]["coding"][0]["code"] == "HEM"
    [leg] = resources(bundle, "Transport")
    assert (leg["status"], leg["intent"]) == ("completed", "unknown")
    assert len(resources(bundle, "Provenance")) == 3
    events = valid_epcis(journey.export("epcis"))["epcisBody"]["eventList"]
    assert [(e["bizStep"], e.get("disposition")) for e in events] == [
        ("commissioning", "active"), ("packing", "container_closed"), ("unpacking", None),
        ("inspecting", "non_conformant")]
    assert events[-1]["dronelog:rejectionReason"] == "hemolysed"


def test_the_validators_refuse_a_broken_document(api):
    journey = Trip(api)
    journey.scan(Role.DEVICE, "custody.collected", 0)
    journey.scan(Role.LAB, "custody.received", 40)
    journey.project()
    bundle, document = journey.export("fhir"), journey.export("epcis")
    [leg] = resources(bundle, "Transport")
    del leg["intent"]
    with pytest.raises(ValidationError, match="intent"):
        Bundle.model_validate(bundle)
    event = document["epcisBody"]["eventList"][0]
    event["bizStep"], event["readPoint"] = "teleporting", {"id": "not a uri"}
    messages = " ".join(e.message for e in EPCIS.iter_errors(document))
    assert "'teleporting' is not valid" in messages and "'not a uri' is not a 'uri'" in messages


def test_who_may_export_and_what_is_not_there(api):
    for kind in ("fhir", "epcis"):
        path = f"/api/v1/specimens/NOPE1234/{kind}"
        missing = api.http.get(path, headers=api.as_role(Role.DISPATCHER))
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert api.http.get(path, headers=api.as_role(Role.DEVICE)).status_code == 403
        not_a_barcode = api.http.get(f"/api/v1/specimens/AB CD/{kind}",
                                     headers=api.as_role(Role.LAB))
        assert not_a_barcode.status_code == 422  # the contract's barcodes have no spaces


def _handover(kind: str, site: str, minutes: int, flight: str | None = None) -> Handover:
    return Handover(event_id=f"e{minutes}", barcode=BARCODE, kind=kind, site_id=site,
                    actor_kind="staff", actor_id="s", event_time=datetime(2026, 11, 22, 8,
                                                                          minutes),
                    flight_id=flight)


def test_legs_follow_flights_and_changes_of_site():
    legs = split_into_legs((
        _handover("collected", "village", 0), _handover("packed", TOWN, 10),  # ground
        _handover("loaded", TOWN, 15, "F1"), _handover("unloaded", "hub", 30, "F1"),
        _handover("loaded", "hub", 35, "F2"),  # F2 lands, no unload scan...
        _handover("received", LAB, 50)))  # ...and the lab receives it: no ground leg
    assert [(leg.flight_id, leg.start and leg.start.site_id, leg.end and leg.end.site_id)
            for leg in legs] == [(None, "village", TOWN), ("F1", TOWN, "hub"),
                                 ("F2", "hub", LAB)]
    only_unloaded = split_into_legs((_handover("packed", TOWN, 0),
                                     _handover("unloaded", LAB, 20, "F3")))
    assert [(leg.flight_id, leg.start) for leg in only_unloaded] == [("F3", None)]
