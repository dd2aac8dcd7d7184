"""A specimen's chain of custody: state, leg times, custody gaps, in any order."""

import random
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from dronelog.domain.facts import CustodyFact, FlightFact
from dronelog.domain.flights import flight_status
from dronelog.domain.specimens import SpecimenState, specimen_status

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ORIGIN, DEST, ALTERNATE = "cjzxwsy", "pdrmyy", "pddermyy"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def custody(event_id: str, kind: str, minute: float, site: str, **fields) -> CustodyFact:
    return CustodyFact(event_id=event_id, barcode="CJ2611220042", kind=kind, site_id=site,
                       actor_kind="staff", actor_id="nurse-cj-07", event_time=at(minute),
                       **fields)


def flight(flight_id: str, *steps: tuple[str, float, dict]):
    """The status of a flight ORIGIN → DEST from (kind, minute, fields) steps."""
    facts = [FlightFact(f"{flight_id}-plan", flight_id, "uav-03", "planned", at(0),
                        origin_site_id=ORIGIN, destination_site_id=DEST)]
    facts += [FlightFact(f"{flight_id}-{kind}", flight_id, "uav-03", kind, at(minute), **fields)
              for kind, minute, fields in steps]
    return flight_status(facts)


COLLECTED = custody("c1", "collected", 0, ORIGIN)
PACKED = custody("c2", "packed", 5, ORIGIN, container_id="BOX-1", seal_id="SEAL-1")
LOADED = custody("c3", "loaded", 8, ORIGIN, container_id="BOX-1", flight_id="F1",
                 drone_id="uav-03")
UNLOADED = custody("c4", "unloaded", 21, DEST, container_id="BOX-1", flight_id="F1",
                   drone_id="uav-03", seal_id="SEAL-1")
RECEIVED = custody("c5", "received", 25, DEST, container_id="BOX-1", seal_id="SEAL-1")

AIRBORNE_F1 = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}))
LANDED_F1 = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}), ("landed", 20, {"site_id": DEST}))


def test_nothing_known_no_status():
    assert specimen_status([], {}) is None


def test_whole_chain_received_with_every_leg_timed():
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED, RECEIVED], {"F1": LANDED_F1})
    assert status.state is SpecimenState.RECEIVED and status.final
    assert (status.collected_at, status.packed_at, status.loaded_at) == (at(0), at(5), at(8))
    assert (status.took_off_at, status.landed_at) == (at(9), at(20))
    assert (status.unloaded_at, status.received_at) == (at(21), at(25))
    assert status.rejected_at is None and status.rejection_reason is None
    assert (status.container_id, status.seal_packed, status.seal_found) == ("BOX-1", "SEAL-1",
                                                                            "SEAL-1")
    assert (status.flight_id, status.site_id) == ("F1", DEST)
    assert status.custody_gaps == () and not status.has_custody_gap and not status.seal_changed


def test_collected_and_packed_at_the_origin():
    assert specimen_status([COLLECTED], {}).state is SpecimenState.COLLECTED
    packed = specimen_status([COLLECTED, PACKED], {})
    assert packed.state is SpecimenState.PACKED and packed.site_id == ORIGIN


def test_loaded_is_in_transit_until_the_flight_ends():
    for flights in ({}, {"F1": flight("F1")}, {"F1": AIRBORNE_F1}):
        status = specimen_status([COLLECTED, PACKED, LOADED], flights)
        assert status.state is SpecimenState.IN_TRANSIT
        assert (status.flight_id, status.site_id) == ("F1", ORIGIN)
    diverted = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}),
                      ("diverted", 12, {"new_destination_site_id": ALTERNATE}))
    assert (specimen_status([COLLECTED, PACKED, LOADED], {"F1": diverted}).state
            is SpecimenState.IN_TRANSIT)


def test_arrived_when_its_flight_lands_at_the_destination_before_unloading():
    status = specimen_status([COLLECTED, PACKED, LOADED], {"F1": LANDED_F1})
    assert status.state is SpecimenState.ARRIVED
    assert (status.site_id, status.landed_at, status.unloaded_at) == (DEST, at(20), None)


def test_arrived_when_unloaded_at_the_destination():
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED], {"F1": LANDED_F1})
    assert status.state is SpecimenState.ARRIVED and status.unloaded_at == at(21)


def test_set_down_at_an_alternate_it_waits_there_packed_then_follows_its_next_flight():
    diverted = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}),
                      ("diverted", 12, {"new_destination_site_id": ALTERNATE}),
                      ("landed", 19, {"site_id": ALTERNATE}))
    flights = {"F1": diverted}
    landed_elsewhere = specimen_status([COLLECTED, PACKED, LOADED], flights)
    assert landed_elsewhere.state is SpecimenState.PACKED
    assert landed_elsewhere.site_id == ALTERNATE

    unloaded = custody("c6", "unloaded", 20, ALTERNATE, container_id="BOX-1", flight_id="F1",
                       drone_id="uav-03", seal_id="SEAL-1")
    waiting = specimen_status([COLLECTED, PACKED, LOADED, unloaded], flights)
    assert waiting.state is SpecimenState.PACKED and waiting.site_id == ALTERNATE
    assert waiting.unloaded_at == at(20)

    reloaded = custody("c7", "loaded", 30, ALTERNATE, container_id="BOX-1", flight_id="F2",
                       drone_id="uav-04")
    flights["F2"] = flight("F2", ("takeoff", 31, {"site_id": ALTERNATE}))
    onward = specimen_status([COLLECTED, PACKED, LOADED, unloaded, reloaded], flights)
    assert onward.state is SpecimenState.IN_TRANSIT
    assert (onward.flight_id, onward.site_id) == ("F2", ALTERNATE)
    assert (onward.loaded_at, onward.took_off_at) == (at(30), at(31))
    assert onward.unloaded_at is None and onward.landed_at is None
    assert onward.custody_gaps == ()


def test_returned_home_or_aborted_it_is_packed_at_the_origin():
    home = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}),
                  ("returned_home", 15, {"site_id": ORIGIN}))
    status = specimen_status([COLLECTED, PACKED, LOADED], {"F1": home})
    assert status.state is SpecimenState.PACKED and status.site_id == ORIGIN
    aborted = flight("F1", ("aborted", 9, {"reason": "wind"}))
    status = specimen_status([COLLECTED, PACKED, LOADED], {"F1": aborted})
    assert status.state is SpecimenState.PACKED and status.site_id == ORIGIN


def test_the_specimens_own_destination_overrides_the_flights():
    # The flight went to DEST as planned, but the specimen is bound for ALTERNATE.
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED], {"F1": LANDED_F1},
                             destination_site_id=ALTERNATE)
    assert status.state is SpecimenState.PACKED and status.site_id == DEST


def test_unloaded_with_nothing_known_of_the_destination_counts_as_arrived():
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED], {})
    assert status.state is SpecimenState.ARRIVED


def test_a_rejection_after_receipt_rejects_but_a_receipt_never_reopens_a_rejection():
    rejected = custody("c8", "rejected", 30, DEST, reason="hemolysed")
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED, RECEIVED, rejected], {})
    assert status.state is SpecimenState.REJECTED and status.rejection_reason == "hemolysed"
    assert (status.received_at, status.rejected_at) == (at(25), at(30))
    assert status.anomalies == ()

    # Rejected first (by the order dronelog received them), received later: stays rejected,
    # and the receipt is an anomaly, not an update.
    early_rejection = CustodyFact("c8", "CJ2611220042", "rejected", DEST, "staff", "lab-1",
                                  at(24), reason="label_mismatch", received_at=at(24))
    late_receipt = CustodyFact("c5", "CJ2611220042", "received", DEST, "staff", "lab-1",
                               at(25), received_at=at(26))
    status = specimen_status([COLLECTED, PACKED, LOADED, UNLOADED, late_receipt,
                              early_rejection], {})
    assert status.state is SpecimenState.REJECTED and status.received_at is None
    assert status.anomalies == ("received at pdrmyy after its rejection; it stays rejected",)


def test_an_unload_timed_after_receipt_by_a_fast_drone_clock_does_not_undo_it():
    late_unload = custody("c4", "unloaded", 26, DEST, container_id="BOX-1", flight_id="F1",
                          drone_id="uav-03", seal_id="SEAL-1")
    status = specimen_status([COLLECTED, PACKED, LOADED, late_unload, RECEIVED],
                             {"F1": LANDED_F1})
    assert status.state is SpecimenState.RECEIVED and status.unloaded_at == at(26)


def test_an_unload_from_an_earlier_flight_timed_late_does_not_take_it_off_the_next():
    # Unloaded at the alternate from F1 by a drone whose clock runs 2 minutes fast, so it
    # is timed after the staff loaded the specimen onto F2.
    late_unload = custody("u1", "unloaded", 31, ALTERNATE, container_id="BOX-1",
                          flight_id="F1", drone_id="uav-03", seal_id="SEAL-1")
    reloaded = custody("l2", "loaded", 30, ALTERNATE, container_id="BOX-1", flight_id="F2",
                       drone_id="uav-04")
    flights = {"F2": flight("F2", ("takeoff", 32, {"site_id": ALTERNATE}))}
    status = specimen_status([COLLECTED, PACKED, LOADED, late_unload, reloaded], flights)
    assert status.state is SpecimenState.IN_TRANSIT
    assert (status.flight_id, status.loaded_at, status.unloaded_at) == ("F2", at(30), None)


def test_missing_steps_are_custody_gaps():
    status = specimen_status([COLLECTED, PACKED, RECEIVED], {})
    assert status.custody_gaps == ("received without a loaded step",
                                   "received without an unloaded step")
    status = specimen_status([COLLECTED, LOADED, UNLOADED, RECEIVED], {})
    assert status.custody_gaps == ("loaded without a packed step",)
    status = specimen_status([RECEIVED], {})
    assert len(status.custody_gaps) == 4 and status.has_custody_gap


def test_a_changed_seal_is_a_custody_gap_reported_once():
    unloaded = custody("c4", "unloaded", 21, DEST, container_id="BOX-1", flight_id="F1",
                       drone_id="uav-03", seal_id="SEAL-1-X")
    received = custody("c5", "received", 25, DEST, container_id="BOX-1", seal_id="SEAL-1-X")
    status = specimen_status([COLLECTED, PACKED, LOADED, unloaded, received], {})
    assert status.custody_gaps == ("seal changed on BOX-1: packed SEAL-1, found SEAL-1-X",)
    assert status.seal_changed and status.seal_found == "SEAL-1-X"


def test_any_order_and_duplication_gives_the_same_status():
    diverted = flight("F1", ("takeoff", 9, {"site_id": ORIGIN}),
                      ("diverted", 12, {"new_destination_site_id": ALTERNATE}),
                      ("landed", 19, {"site_id": ALTERNATE}))
    flights = {"F1": diverted, "F2": flight("F2", ("takeoff", 31, {"site_id": ALTERNATE}),
                                            ("landed", 40, {"site_id": DEST}))}
    unloaded_alt = custody("u1", "unloaded", 20, ALTERNATE, container_id="BOX-1",
                           flight_id="F1", drone_id="uav-03", seal_id="SEAL-1")
    reloaded = custody("l2", "loaded", 30, ALTERNATE, container_id="BOX-1", flight_id="F2",
                       drone_id="uav-04")
    unloaded_dest = custody("u2", "unloaded", 41, DEST, container_id="BOX-1", flight_id="F2",
                            drone_id="uav-04", seal_id="SEAL-1-X")
    events = [COLLECTED, PACKED, LOADED, unloaded_alt, reloaded, unloaded_dest]
    expected = specimen_status(events, flights)
    assert expected.state is SpecimenState.ARRIVED and expected.flight_id == "F2"
    assert expected.custody_gaps == ("seal changed on BOX-1: packed SEAL-1, found SEAL-1-X",)
    for order in permutations(events):
        assert specimen_status(order, flights) == expected

    rng = random.Random(11)
    full = [*events, RECEIVED, custody("r2", "rejected", 50, DEST, reason="delayed")]
    expected = specimen_status(full, flights)
    assert expected.state is SpecimenState.REJECTED
    for _ in range(500):
        mixed = full + rng.sample(full, k=rng.randint(0, len(full)))
        rng.shuffle(mixed)
        assert specimen_status(mixed, flights) == expected


def test_facts_of_two_specimens_are_refused():
    other = CustodyFact("x", "OTHER-0001", "collected", ORIGIN, "staff", "n", at(0))
    with pytest.raises(ValueError, match="more than one specimen"):
        specimen_status([COLLECTED, other], {})
