"""The flight lifecycle from its events, whatever their order or duplication."""

import random
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from dronelog.domain.facts import FlightFact
from dronelog.domain.flights import FlightState, flight_status

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fact(event_id: str, kind: str, minute: float, **fields) -> FlightFact:
    return FlightFact(event_id=event_id, flight_id="F1", drone_id="uav-03", kind=kind,
                      event_time=at(minute), **fields)


PLANNED = fact("e1", "planned", 0, origin_site_id="cjzxwsy", destination_site_id="pdrmyy")
TAKEOFF = fact("e2", "takeoff", 5, site_id="cjzxwsy")
DIVERTED = fact("e3", "diverted", 10, new_destination_site_id="pddermyy", reason="pad blocked")
LANDED_ALTERNATE = fact("e4", "landed", 18, site_id="pddermyy")
LANDED = fact("e5", "landed", 17, site_id="pdrmyy")


def test_no_facts_no_status():
    assert flight_status([]) is None


def test_planned_flown_and_landed():
    status = flight_status([PLANNED, TAKEOFF, LANDED])
    assert status.state is FlightState.LANDED
    assert (status.origin_site_id, status.destination_site_id) == ("cjzxwsy", "pdrmyy")
    assert status.planned_destination_site_id == "pdrmyy"
    assert (status.took_off_at, status.landed_at, status.landed_site_id) == (at(5), at(17),
                                                                             "pdrmyy")
    assert not status.diverted and status.ended and not status.in_air
    assert status.last_event_time == at(17)


def test_planned_then_airborne():
    assert flight_status([PLANNED]).state is FlightState.PLANNED
    airborne = flight_status([PLANNED, TAKEOFF])
    assert airborne.state is FlightState.AIRBORNE and airborne.in_air and not airborne.ended
    assert airborne.landed_at is None


def test_takeoff_without_a_plan_knows_its_origin_only():
    status = flight_status([TAKEOFF])
    assert status.state is FlightState.AIRBORNE
    assert status.origin_site_id == "cjzxwsy" and status.destination_site_id is None


def test_plan_arriving_late_still_fills_the_route():
    status = flight_status([TAKEOFF, LANDED, PLANNED])  # the plan was received last
    assert status.state is FlightState.LANDED
    assert status.destination_site_id == "pdrmyy"
    assert status.planned_destination_site_id == "pdrmyy"


def test_diverted_then_landed_at_the_alternate():
    in_air = flight_status([PLANNED, TAKEOFF, DIVERTED])
    assert in_air.state is FlightState.DIVERTED and in_air.in_air
    assert in_air.destination_site_id == "pddermyy"
    assert in_air.planned_destination_site_id == "pdrmyy"

    landed = flight_status([PLANNED, TAKEOFF, DIVERTED, LANDED_ALTERNATE])
    assert landed.state is FlightState.LANDED and landed.diverted
    assert landed.landed_site_id == "pddermyy" and landed.destination_site_id == "pddermyy"
    assert landed.planned_destination_site_id == "pdrmyy"


def test_aborted_before_takeoff_is_final():
    aborted = fact("e6", "aborted", 3, reason="wind", site_id="cjzxwsy")
    status = flight_status([PLANNED, aborted])
    assert status.state is FlightState.ABORTED and status.ended
    assert status.took_off_at is None
    # A take-off timed after the abort does not revive the flight.
    assert flight_status([PLANNED, aborted, TAKEOFF]).state is FlightState.ABORTED


def test_returned_home_lands_at_its_site():
    home = fact("e7", "returned_home", 14, site_id="cjzxwsy", reason="battery")
    status = flight_status([PLANNED, TAKEOFF, home])
    assert status.state is FlightState.RETURNED_HOME and status.ended
    assert (status.landed_site_id, status.landed_at) == ("cjzxwsy", at(14))
    assert status.destination_site_id == "pdrmyy"


def test_the_first_ending_wins():
    late_landing = fact("e8", "landed", 40, site_id="pdrmyy")
    home = fact("e7", "returned_home", 14, site_id="cjzxwsy")
    status = flight_status([PLANNED, TAKEOFF, late_landing, home])
    assert status.state is FlightState.RETURNED_HOME and status.landed_at == at(14)
    assert status.last_event_time == at(40)


def test_equal_times_resolve_in_lifecycle_order():
    planned = fact("a", "planned", 5, origin_site_id="cjzxwsy", destination_site_id="pdrmyy")
    takeoff = fact("b", "takeoff", 5, site_id="cjzxwsy")
    assert flight_status([takeoff, planned]).state is FlightState.AIRBORNE
    diverted = fact("c", "diverted", 9, new_destination_site_id="pddermyy", reason="pad")
    landed = fact("d", "landed", 9, site_id="pddermyy")
    status = flight_status([landed, diverted, takeoff, planned])
    assert status.state is FlightState.LANDED and status.diverted


def test_any_order_and_duplication_gives_the_same_status():
    events = [PLANNED, TAKEOFF, DIVERTED, LANDED_ALTERNATE]
    expected = flight_status(events)
    duplicate_takeoff = fact("e2", "takeoff", 5, site_id="cjzxwsy")  # redelivered
    for order in permutations([*events, duplicate_takeoff]):
        assert flight_status(order) == expected
    assert expected.state is FlightState.LANDED and expected.diverted


def test_random_shuffles_with_duplicates():
    rng = random.Random(7)
    scenarios = [
        [PLANNED, TAKEOFF, LANDED],
        [PLANNED, TAKEOFF, fact("h", "returned_home", 9, site_id="cjzxwsy")],
        [PLANNED, fact("x", "aborted", 1, reason="wind")],
        [PLANNED, TAKEOFF, DIVERTED, LANDED_ALTERNATE, LANDED],
    ]
    for events in scenarios:
        expected = flight_status(events)
        for _ in range(200):
            mixed = events + rng.sample(events, k=rng.randint(0, len(events)))
            rng.shuffle(mixed)
            assert flight_status(mixed) == expected


def test_facts_of_two_flights_are_refused():
    other = FlightFact("z", "F2", "uav-03", "takeoff", at(1), site_id="cjzxwsy")
    with pytest.raises(ValueError, match="more than one flight"):
        flight_status([PLANNED, other])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown flight event kind"):
        flight_status([fact("q", "teleported", 1)])
