"""Containers over real HTTP on SQLite and PostgreSQL (issue 16): a clinic packs and loads
through the custody entrance; the manifest as JSON with its QR code, as HL7 v2.7 OSM^R26
(parsed back and validated by hl7apy) and as PDF; the lab's reconciliation with expected,
missing, extra and foreign tubes, each discrepancy an alert that reaches both sites."""

from datetime import timedelta

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlalchemy import text

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.config import Settings
from dronelog.contract.messages import FlightPlanned
from dronelog.exports.manifest_pdf import cjk_font
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.service import TurnaroundJobs
from tests.conftest import REQUIRE_REAL
from tests.support import LAB, LAYOUT, TOWN, scan
from tests.test_exports import valid_epcis

NURSE = "lab-cj"
BOX, OTHER_BOX = "BOX-A1", "BOX-B1"
TUBES = ["CJA00001", "CJA00002", "CJA00003"]
FOREIGN, EXTRA = "CJB00001", "ZZZ00009"


def _token(api, user_id: str, site: str) -> dict:
    with api.engine.begin() as connection:
        add_user(connection, user_id, Role.LAB, api.clock.now(), site_id=site)
        token = issue_token(connection, user_id, api.clock.now(), timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def _plan_flight(api, flight_id: str = "F-PLAN-1") -> None:
    """A flight planned from the clinic, stored as the ingester stores it, then tracked."""
    event = FlightPlanned.model_validate(scan("flight.planned", 1, flight_id=flight_id,
                                              planned_departure=None))
    topic = LAYOUT.flight(event.drone_id)
    BatchWriter(api.engine, api.clock).write(
        [Accepted(Delivery(topic, b"", api.clock.now()), LAYOUT.parse(topic), event)], [])
    settings = Settings(database_url=str(api.engine.url), mqtt_url="mqtt://127.0.0.1:1")
    TurnaroundJobs(api.engine, settings, clock=api.clock).turnaround()


@pytest.fixture
def packed(api):
    """The clinic's nurse collects four tubes, packs three into BOX and one into OTHER_BOX,
    and loads BOX onto the planned flight it is offered."""
    nurse = _token(api, NURSE, TOWN)
    _plan_flight(api)
    offered = api.http.get("/api/v1/departures", headers=nurse).json()
    assert [(f["flight_id"], f["destination_site_id"]) for f in offered] == [("F-PLAN-1", LAB)]
    me = {"kind": "staff", "id": NURSE}
    temperature = {"temperature_class": "refrigerated"}
    for i, barcode in enumerate([*TUBES, FOREIGN]):
        specimen = {**scan("custody.collected")["specimen"], **temperature,
                    "priority": "stat" if i == 0 else "routine"}
        box = BOX if barcode in TUBES else OTHER_BOX
        for step in (scan("custody.collected", 30, barcode=barcode, actor=me, specimen=specimen),
                     scan("custody.packed", 20, barcode=barcode, actor=me, container_id=box,
                          seal_id=f"SEAL-{box}")):
            assert api.http.post("/api/v1/custody", headers=nurse, json=step).status_code == 201
    for barcode in TUBES:
        loaded = scan("custody.loaded", 10, barcode=barcode, actor=me, container_id=BOX,
                      flight_id=offered[0]["flight_id"], drone_id=offered[0]["drone_id"])
        assert api.http.post("/api/v1/custody", headers=nurse, json=loaded).status_code == 201
    return nurse


def test_the_manifest_as_json_hl7_and_pdf(api, packed):
    lab = api.as_role(Role.LAB)
    body = api.http.get(f"/api/v1/containers/{BOX}", headers=lab).json()
    assert [t["barcode"] for t in body["tubes"]] == TUBES
    assert (body["origin_site_id"], body["destination_site_id"], body["seal_id"]) == (
        TOWN, LAB, f"SEAL-{BOX}")
    assert (body["flight_id"], body["drone_id"]) == ("F-PLAN-1", "uav-03")
    assert body["temperature_classes"] == ["refrigerated"]
    assert len(body["qr"]) == len(body["qr"][0]) >= 21 and set("".join(body["qr"])) == {"0", "1"}
    incoming = api.http.get("/api/v1/containers", headers=lab).json()
    assert [c["container_id"] for c in incoming] == [BOX, OTHER_BOX]
    outgoing = api.http.get("/api/v1/containers", params={"direction": "outgoing"},
                            headers=packed).json()
    assert [c["container_id"] for c in outgoing] == [BOX, OTHER_BOX]
    hl7 = api.http.get(f"/api/v1/containers/{BOX}/manifest.hl7", headers=lab)
    assert hl7.status_code == 200
    message = parse_message(hl7.text, validation_level=VALIDATION_LEVEL.STRICT,
                            find_groups=True)
    assert message.validate() is True
    assert message.msh.msh_9.to_er7() == "OSM^R26^OSM_R26" and message.version == "2.7"
    shipment = message.osm_r26_shipment
    assert shipment.shp.shp_1.to_er7() == f"{BOX}^DRONELOG"
    assert shipment.shp.shp_3.to_er7().startswith("TRN^")  # loaded: in transit
    package = shipment.osm_r26_package
    assert package.pac.pac_2.to_er7() == BOX
    spms = [group.spm for group in package.osm_r26_specimen]
    assert [spm.spm_2.to_er7() for spm in spms] == [f"{b}&DRONELOG" for b in TUBES]
    assert {spm.spm_15.to_er7().split("^")[0] for spm in spms} == {"REF"}
    priorities = [group.osm_r26_specimen_observation.obx.obx_5.to_er7().split("^")[0]
                  for group in package.osm_r26_specimen]
    assert priorities == ["S", "R", "R"]
    pdf = api.http.get(f"/api/v1/containers/{BOX}/manifest.pdf", headers=lab)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and pdf.content.rstrip().endswith(b"%%EOF")
    # Chinese where the machine has a CJK font (Debian's fonts-noto-cjk), embedded as a subset;
    # CI (.ci/run installs the font) must test the Chinese manifest, not only the fallback
    if cjk_font() is None and REQUIRE_REAL:
        pytest.fail("a CJK font is required (DRONELOG_REQUIRE_REAL=1): apt-get install "
                    "fonts-noto-cjk")
    assert (b"NotoSansCJK" in pdf.content) == (cjk_font() is not None)
    # in EPCIS 2.0: the tubes aggregated into the box, then the box loaded (GS1's schema)
    epcis = api.http.get(f"/api/v1/containers/{BOX}/epcis", headers=lab)
    assert epcis.headers["content-type"] == "application/ld+json"
    packing, loading = valid_epcis(epcis.json())["epcisBody"]["eventList"]
    assert (packing["type"], packing["action"], packing["bizStep"]) == (
        "AggregationEvent", "ADD", "packing")
    assert packing["parentID"] == f"urn:dronelog:container:{BOX}"
    assert packing["childEPCs"] == [f"urn:dronelog:specimen:{b}" for b in TUBES]
    assert (loading["bizStep"], loading["dronelog:flight"]) == ("loading",
                                                                "urn:dronelog:flight:F-PLAN-1")
    # a third site sees neither box; a dispatcher sees any
    elsewhere = _token(api, "lab-wj", "wjwsy")
    assert api.http.get(f"/api/v1/containers/{BOX}", headers=elsewhere).status_code == 404
    assert api.http.get(f"/api/v1/containers/{BOX}/manifest.hl7",
                        headers=elsewhere).status_code == 404
    assert api.http.get(f"/api/v1/containers/{BOX}",
                        headers=api.as_role(Role.DISPATCHER)).status_code == 200
    assert api.http.get(f"/api/v1/containers/{BOX}",
                        headers=api.as_role(Role.DEVICE)).status_code == 403


def _alerts(api, headers) -> dict[str, str]:
    items = api.http.get("/api/v1/alerts", params={"kind": "manifest_discrepancy"},
                         headers=headers).json()["items"]
    return {a["subject_id"]: a["details"]["finding"] for a in items}


def test_the_lab_reconciles_a_box_missing_extra_and_foreign_tubes_alert_both_sites(api, packed):
    lab = api.as_role(Role.LAB)
    checks = f"/api/v1/containers/{BOX}/checks"
    found = {b: api.http.post(checks, headers=lab, json={"barcode": b}).json()
             for b in (TUBES[0], FOREIGN, EXTRA)}
    assert found[TUBES[0]] == {"barcode": TUBES[0], "finding": "expected",
                               "packed_container_id": None, "alerted": False}
    assert found[FOREIGN] == {"barcode": FOREIGN, "finding": "foreign",
                              "packed_container_id": OTHER_BOX, "alerted": True}
    assert found[EXTRA]["finding"] == "extra" and found[EXTRA]["alerted"] is True
    # the expected tube is received on the one custody path; another scanned but not yet sent
    receipt = scan("custody.received", 1, barcode=TUBES[0], actor={"kind": "staff",
                                                                   "id": "lab-1"},
                   container_id=BOX, seal_id=f"SEAL-{BOX}")
    assert api.http.post("/api/v1/custody", headers=lab, json=receipt).status_code == 201
    closed = api.http.post(f"/api/v1/containers/{BOX}/close", headers=lab,
                           json={"scanned": [TUBES[1], FOREIGN, EXTRA]}).json()
    assert closed == [{"barcode": TUBES[2], "finding": "missing", "packed_container_id": None,
                       "alerted": True}]
    expected = {FOREIGN: "foreign", EXTRA: "extra", TUBES[2]: "missing"}
    assert _alerts(api, lab) == expected  # the receiving lab
    assert _alerts(api, packed) == expected  # and the clinic that packed the box
    assert _alerts(api, _token(api, "lab-wj", "wjwsy")) == {}  # nobody else
    # closing again raises nothing new (latched: once per tube)
    again = api.http.post(f"/api/v1/containers/{BOX}/close", headers=lab,
                          json={"scanned": [TUBES[1]]}).json()
    assert [c["alerted"] for c in again] == [False]
    with api.engine.connect() as connection:
        audited = connection.execute(text(
            "SELECT action FROM audit_log WHERE action LIKE 'container.%' ORDER BY id")
        ).scalars().all()
        stored = connection.execute(text(
            "SELECT count(*) FROM alert WHERE kind = 'manifest_discrepancy'")).scalar()
    assert audited == ["container.expected", "container.foreign", "container.extra",
                       "container.missing", "container.missing"]
    assert stored == 3
    # the receipt took that tube off the list; the box stays listed until all are in
    listed = {c["container_id"]: c for c in api.http.get("/api/v1/containers",
                                                         headers=lab).json()}
    assert [t["received"] for t in listed[BOX]["tubes"]] == [True, False, False]


def test_only_the_destination_lab_checks_a_box(api, packed):
    body = {"barcode": TUBES[0]}
    assert api.http.post(f"/api/v1/containers/{BOX}/checks", headers=packed,
                         json=body).status_code == 403  # the clinic that packed it
    for role in (Role.DISPATCHER, Role.ADMIN, Role.DEVICE):
        assert api.http.post(f"/api/v1/containers/{BOX}/checks", headers=api.as_role(role),
                             json=body).status_code == 403, role
    assert api.http.post("/api/v1/containers/NOBOX/checks", headers=api.as_role(Role.LAB),
                         json=body).status_code == 404
