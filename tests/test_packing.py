"""Packing checks (domain/packing.py, applied by the sweep): a container mixing temperature
classes raises an alert on each of its specimens at `packed`, for the origin's lab and the
destination's; two of the same class do not. The engine tests run on SQLite and PostgreSQL."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dronelog.contract import messages as m
from dronelog.domain.packing import MixedContainer, PackedSpecimen, mixed_containers
from dronelog.domain.temperature import TEMPERATURE_RANGES
from dronelog.storage.tables import Alert
from tests.test_turnaround import LAB, TOWN, Network, collected, packed
from tests.test_turnaround import net as turnaround_net

net = turnaround_net  # the fixture: the Pingdu network on a manual clock
A = Alert.__table__
MIXED = "mixed_temperature_classes"


def test_two_classes_in_a_box_are_a_mix_and_two_of_one_class_are_not():
    assert mixed_containers([
        PackedSpecimen("PLT-1", "BOX-1", "platelets"),
        PackedSpecimen("RBC-1", "BOX-1", "red_cells"),
        PackedSpecimen("RBC-2", "BOX-2", "red_cells"),
        PackedSpecimen("RBC-3", "BOX-2", "red_cells"),
    ]) == [MixedContainer("BOX-1", ("platelets", "red_cells"), ("PLT-1", "RBC-1"))]


def test_an_undescribed_specimen_neither_makes_nor_hides_a_mix():
    assert mixed_containers([PackedSpecimen("SP-1", "BOX-1", "ambient"),
                             PackedSpecimen("SP-2", "BOX-1", "unknown")]) == []
    mixed = mixed_containers([PackedSpecimen("SP-1", "BOX-1", "ambient"),
                              PackedSpecimen("SP-2", "BOX-1", "unknown"),
                              PackedSpecimen("SP-3", "BOX-1", "frozen")])
    assert [(c.temperature_classes, c.barcodes) for c in mixed] == [
        (("ambient", "frozen"), ("SP-1", "SP-2", "SP-3"))]


@given(st.lists(st.tuples(st.sampled_from(["BOX-1", "BOX-2", "BOX-3"]),
                          st.sampled_from(sorted(TEMPERATURE_RANGES))), max_size=12))
def test_a_box_is_mixed_exactly_when_it_holds_two_known_classes(contents):
    packed_now = [PackedSpecimen(f"SP-{i}", box, tclass)
                  for i, (box, tclass) in enumerate(contents)]
    mixed = {c.container_id: c for c in mixed_containers(packed_now)}
    for box in {box for box, _ in contents}:
        classes = {tclass for b, tclass in contents if b == box}
        assert (box in mixed) == (len(classes) > 1)
        if box in mixed:
            assert set(mixed[box].temperature_classes) == classes
            assert len(mixed[box].barcodes) == sum(b == box for b, _ in contents)


def _unit(barcode: str, product: str, temperature_class: str, at) -> m.Collected:
    return m.Collected(
        schema_version=1, event_id=uuid.uuid4(), kind="collected", event_time=at,
        barcode=barcode, site_id=TOWN, actor={"kind": "staff", "id": "nurse-1"},
        specimen={"kind": "blood_unit", "blood_product": product, "priority": "urgent",
                  "temperature_class": temperature_class, "origin_site_id": TOWN,
                  "destination_site_id": LAB, "order_ref": "ORD-UNIT"})


def _mixed_alerts(net: Network) -> dict[str, tuple]:
    with net.engine.connect() as connection:
        return {row.subject_id: (row.state, row.site_id, row.origin_site_id)
                for row in connection.execute(select(A).where(A.c.kind == MIXED))}


def test_platelets_packed_beside_red_cells_raise_an_alert_at_packed(net):
    net.store(_unit("PLT-0001", "platelets", "platelets", net.at(0)),
              _unit("RBC-0001", "red_cells", "red_cells", net.at(0)),
              _unit("RBC-0002", "red_cells", "red_cells", net.at(0)),
              collected("AMB-0001", net.at(0)))
    net.sweep_at(1)
    assert _mixed_alerts(net) == {}  # collected, not yet packed together
    net.store(packed("PLT-0001", net.at(2), box="BOX-MIX"),
              packed("RBC-0001", net.at(2), box="BOX-MIX"),
              packed("RBC-0002", net.at(2), box="BOX-RBC", seal="SEAL-2"),
              packed("AMB-0001", net.at(2), box="BOX-RBC", seal="SEAL-2"))
    net.sweep_at(3)
    # both specimens of the mixed box, for the destination's lab and the origin's; the red
    # cells beside an ambient specimen are a mix too
    assert _mixed_alerts(net) == {
        "PLT-0001": ("open", LAB, TOWN), "RBC-0001": ("open", LAB, TOWN),
        "RBC-0002": ("open", LAB, TOWN), "AMB-0001": ("open", LAB, TOWN)}
    with net.engine.connect() as connection:
        details = connection.execute(select(A.c.details, A.c.message).where(
            A.c.kind == MIXED, A.c.subject_id == "PLT-0001")).one()
    assert '"container_id": "BOX-MIX"' in details.details
    assert details.message.startswith("箱 BOX-MIX 混装了不同温度要求的标本")


@pytest.mark.parametrize("second_class", ["red_cells", "platelets"])
def test_two_units_of_one_class_in_a_box_raise_nothing(net, second_class):
    net.store(_unit("UNIT-0001", second_class, second_class, net.at(0)),
              _unit("UNIT-0002", second_class, second_class, net.at(0)))
    net.store(packed("UNIT-0001", net.at(2)), packed("UNIT-0002", net.at(2)))
    net.sweep_at(3)
    assert _mixed_alerts(net) == {}


def test_the_alert_stays_after_the_box_is_repacked_until_a_person_resolves_it(net):
    net.store(_unit("PLT-0001", "platelets", "platelets", net.at(0)),
              _unit("RBC-0001", "red_cells", "red_cells", net.at(0)))
    net.store(packed("PLT-0001", net.at(2), box="BOX-MIX"),
              packed("RBC-0001", net.at(2), box="BOX-MIX"))
    net.sweep_at(3)
    net.store(packed("RBC-0001", net.at(4), box="BOX-RBC", seal="SEAL-2"))  # repacked apart
    net.sweep_at(5)
    assert {subject: state for subject, (state, _, _) in _mixed_alerts(net).items()} == {
        "PLT-0001": "open", "RBC-0001": "open"}  # latched: someone checks the repacking
