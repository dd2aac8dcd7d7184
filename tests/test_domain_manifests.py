"""The pure manifest and reconciliation rules (domain/manifests.py)."""

from datetime import UTC, datetime, timedelta

from dronelog.domain.alerts import AlertKind
from dronelog.domain.manifests import (
    Finding,
    Packing,
    Tube,
    check_scan,
    containers_of,
    discrepancy_condition,
    manifest,
    missing,
)

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
TOWN, LAB = "cjzxwsy", "pdrmyy"


def packed(barcode: str, box: str, minute: int, seal: str = "SEAL-1") -> Packing:
    return Packing(barcode, box, seal, TOWN, T0 + timedelta(minutes=minute),
                   f"e-{barcode}-{minute}")


TUBES = {b: Tube(b, "blood_sample", None, "stat", "refrigerated", LAB) for b in ("A", "B", "C")}
PACKINGS = [packed("A", "BOX-1", 1), packed("B", "BOX-1", 2), packed("C", "BOX-1", 3),
            packed("C", "BOX-2", 4, "SEAL-2")]  # C re-packed into BOX-2


def test_a_manifest_holds_the_tubes_whose_newest_packing_put_them_in_the_container():
    box = manifest("BOX-1", PACKINGS, TUBES)
    assert [t.barcode for t in box.tubes] == ["A", "B"]
    assert box.origin_site_id == TOWN and box.seal_id == "SEAL-1"
    assert box.destination_site_id == LAB and box.temperature_classes == {"refrigerated"}
    other = manifest("BOX-2", reversed(PACKINGS), TUBES)  # order of the facts does not matter
    assert [t.barcode for t in other.tubes] == ["C"] and other.seal_id == "SEAL-2"
    assert manifest("BOX-9", PACKINGS, TUBES) is None
    undescribed = manifest("BOX-1", PACKINGS, {})
    assert undescribed.tubes[0].priority is None and undescribed.destination_site_id is None


def test_each_scan_is_judged_at_once_and_the_rest_is_missing_when_the_box_is_empty():
    box = manifest("BOX-1", PACKINGS, TUBES)
    where = containers_of(PACKINGS)
    assert check_scan("A", box, where.get("A")).finding is Finding.EXPECTED
    foreign = check_scan("C", box, where.get("C"))
    assert (foreign.finding, foreign.packed_container_id) == (Finding.FOREIGN, "BOX-2")
    assert check_scan("Z", box, where.get("Z")).finding is Finding.EXTRA
    assert [c.barcode for c in missing(box, ["A", "C", "Z"])] == ["B"]
    assert missing(box, ["A", "B"]) == ()


def test_a_discrepancy_alerts_the_receiving_lab_and_the_packing_site():
    box = manifest("BOX-1", PACKINGS, TUBES)
    assert discrepancy_condition(check_scan("A", box, None), box, LAB) is None
    for check in (missing(box, ["A"])[0], check_scan("C", box, containers_of(PACKINGS)["C"]),
                  check_scan("Z", box, None)):
        condition = discrepancy_condition(check, box, LAB)
        assert condition.kind is AlertKind.MANIFEST_DISCREPANCY
        assert (condition.subject_id, condition.site_id, condition.origin_site_id) == (
            check.barcode, LAB, TOWN)
        assert condition.params["finding"] == check.finding.value
        assert condition.params["container_id"] == "BOX-1"
    foreign = discrepancy_condition(check_scan("C", box, containers_of(PACKINGS)["C"]), box, LAB)
    assert foreign.params["packed_container_id"] == "BOX-2"
