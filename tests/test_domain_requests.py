"""Transport requests in the domain (dronelog/domain/requests.py, dispatch.py): the state
machine, property-tested against a small model of it; the queue; the service level; fixed
departures at their cut-off, to the second; the suggested drone."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronelog.domain.dispatch import Consumption, DispatchRules, DroneState, candidates, suggest
from dronelog.domain.requests import (
    FINAL,
    Action,
    Departure,
    Refused,
    RequestState,
    Step,
    TransportRequest,
    catches,
    due_departures,
    queue_order,
    service_level,
    transition,
    waiting,
)

T0 = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
S = RequestState


def request(**changes) -> TransportRequest:
    values = dict(id="TR-1", origin_site_id="cjzxwsy", destination_site_id="pdrmyy",
                  priority="urgent", requested_at=T0, ready_at=T0)
    values.update(changes)
    return TransportRequest(**values)


def step(action: Action, minutes: float = 1, n: int = 1) -> Step:
    return Step(action, T0 + timedelta(minutes=minutes), drone_id=f"uav-{n}",
                flight_id=f"F-{n}", courier_id=f"courier-{n}")


# --- the state machine, step by step ----------------------------------------------------------


def test_the_drone_path_requested_assigned_picked_up_delivered():
    current = request()
    for minutes, action, state in ((1, Action.ASSIGN, S.ASSIGNED), (5, Action.PICK_UP,
                                   S.PICKED_UP), (20, Action.DELIVER, S.DELIVERED)):
        current, change = transition(current, step(action, minutes))
        assert current.state is state and change.to_state is state
    assert (current.carrier, current.drone_id, current.flight_id) == ("drone", "uav-1", "F-1")
    assert current.picked_up_at == T0 + timedelta(minutes=5)
    assert current.delivered_at == T0 + timedelta(minutes=20)


def test_reassign_after_pickup_is_refused_and_before_it_names_the_new_flight():
    assigned, _ = transition(request(), step(Action.ASSIGN))
    reassigned, change = transition(assigned, step(Action.REASSIGN, n=2))
    assert (reassigned.drone_id, reassigned.flight_id, change.from_state) == (
        "uav-2", "F-2", S.ASSIGNED)
    assert isinstance(transition(reassigned, step(Action.REASSIGN, n=2)), Refused)  # same one
    picked, _ = transition(reassigned, step(Action.PICK_UP))
    for action in (Action.REASSIGN, Action.CANCEL, Action.TO_COURIER):
        refused = transition(picked, step(action, n=3))
        assert isinstance(refused, Refused) and "picked_up" in refused.reason


def test_a_courier_takes_over_from_the_drone_and_carries_it_to_delivery():
    assigned, _ = transition(request(), step(Action.ASSIGN))
    courier, change = transition(assigned, step(Action.TO_COURIER))
    assert (courier.state, courier.carrier, courier.courier_id) == (S.COURIER, "courier",
                                                                     "courier-1")
    assert courier.drone_id is None and courier.flight_id is None  # the drone is free again
    assert change.from_state is S.ASSIGNED
    assert isinstance(transition(courier, step(Action.ASSIGN)), Refused)
    picked, _ = transition(courier, step(Action.PICK_UP))
    delivered, _ = transition(picked, step(Action.DELIVER))
    assert delivered.state is S.DELIVERED and delivered.carrier == "courier"


def test_a_step_without_what_it_names_is_refused():
    bare = Step(Action.ASSIGN, T0)
    assert isinstance(transition(request(), bare), Refused)
    assert isinstance(transition(request(), Step(Action.TO_COURIER, T0)), Refused)


# --- the state machine, property-tested -------------------------------------------------------

# The model: which actions each state allows, written out apart from the implementation's
# table, so a change to one is caught by the other.
MODEL = {
    S.REQUESTED: {Action.ASSIGN: S.ASSIGNED, Action.TO_COURIER: S.COURIER,
                  Action.CANCEL: S.CANCELLED},
    S.ASSIGNED: {Action.REASSIGN: S.ASSIGNED, Action.TO_COURIER: S.COURIER,
                 Action.PICK_UP: S.PICKED_UP, Action.CANCEL: S.CANCELLED},
    S.COURIER: {Action.PICK_UP: S.PICKED_UP, Action.CANCEL: S.CANCELLED},
    S.PICKED_UP: {Action.DELIVER: S.DELIVERED},
    S.DELIVERED: {},
    S.CANCELLED: {},
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Action)), st.integers(1, 3),
                          st.integers(0, 600)), max_size=12))
def test_any_sequence_of_steps_follows_the_model(steps):
    current, at, history = request(), T0, []
    for action, n, seconds in steps:
        at += timedelta(seconds=seconds)
        outcome = transition(current, Step(action, at, f"uav-{n}", f"F-{n}", f"c-{n}"))
        expected = MODEL[current.state].get(action)
        same_flight = action is Action.REASSIGN and (f"uav-{n}", f"F-{n}") == (
            current.drone_id, current.flight_id)
        if expected is None or same_flight:
            assert isinstance(outcome, Refused)
            continue
        after, change = outcome
        assert after.state is expected and change.to_state is expected
        assert change.from_state is current.state and change.at == at
        history.append(change)
        current = after
    # what every run keeps: the changes chain, a final state is final, times hold
    for earlier, later in zip(history, history[1:], strict=False):
        assert later.from_state is earlier.to_state
    assert all(c.from_state not in FINAL for c in history)
    if current.state is S.DELIVERED:
        assert current.picked_up_at is not None and current.picked_up_at <= current.delivered_at
    if current.picked_up_at is not None:
        assert service_level(current) >= timedelta(0)
    if current.carrier == "drone" and current.state in (S.ASSIGNED, S.PICKED_UP):
        assert current.drone_id and current.flight_id


# --- the queue, waiting and service level -----------------------------------------------------


def test_the_queue_is_by_priority_then_longest_waiting_and_leaves_out_what_moved_on():
    now = T0 + timedelta(hours=1)
    stat_new = request(id="a", priority="stat", ready_at=now - timedelta(minutes=1))
    urgent_old = request(id="b", priority="urgent", ready_at=now - timedelta(minutes=40))
    urgent_older = request(id="c", priority="urgent", ready_at=now - timedelta(minutes=50))
    routine = request(id="d", priority="routine", ready_at=now - timedelta(hours=3))
    gone = request(id="e", priority="stat", state=S.PICKED_UP)
    order = queue_order([routine, urgent_old, gone, stat_new, urgent_older], now)
    assert [r.id for r in order] == ["a", "c", "b", "d"]


def test_waiting_counts_from_the_ready_time_never_before_it():
    now = T0 + timedelta(minutes=10)
    assert waiting(request(ready_at=T0), now) == timedelta(minutes=10)
    assert waiting(request(ready_at=now + timedelta(minutes=5)), now) == timedelta(0)  # future
    assert waiting(request(ready_at=now), now) == timedelta(0)


def test_service_level_is_request_to_pickup_from_the_later_of_request_and_ready_time():
    asked_ahead = request(requested_at=T0, ready_at=T0 + timedelta(minutes=30),
                          picked_up_at=T0 + timedelta(minutes=42))
    assert service_level(asked_ahead) == timedelta(minutes=12)
    ready_before = request(requested_at=T0, ready_at=T0 - timedelta(minutes=30),
                           picked_up_at=T0 + timedelta(minutes=7))
    assert service_level(ready_before) == timedelta(minutes=7)
    assert service_level(request()) is None


# --- fixed departures and their cut-off -------------------------------------------------------

NOON = Departure("pddermyy", "pdrmyy", time(12, 30), cutoff_min=30)  # cut-off 12:00 local


def _local(hh: int, mm: int, ss: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 12, day, hh, mm, ss, tzinfo=SHANGHAI)


def test_a_departure_is_due_at_its_cut_off_exactly_not_a_second_before():
    assert due_departures([NOON], _local(11, 59, 59), SHANGHAI) == []
    assert due_departures([NOON], _local(12, 0, 0), SHANGHAI) == [(NOON, _local(12, 30))]
    assert due_departures([NOON], _local(12, 29, 59), SHANGHAI) == [(NOON, _local(12, 30))]
    assert due_departures([NOON], _local(12, 30, 0), SHANGHAI) == []  # it has left


def test_a_late_evening_departure_is_still_due_after_midnight_utc_and_local():
    late = Departure("a", "b", time(0, 10), cutoff_min=30)  # cut-off 23:40 the day before
    due = due_departures([late], _local(23, 45), SHANGHAI)
    assert due == [(late, _local(0, 10, day=6))]
    assert due_departures([late], _local(0, 5, day=6), SHANGHAI) == [(late, _local(0, 10, day=6))]
    assert late.key(date(2026, 12, 6)) == "a-b-20261206-0010"


def test_a_box_ready_at_the_cut_off_minute_catches_the_departure():
    day = date(2026, 12, 5)
    assert catches(_local(12, 0, 0), NOON, day, SHANGHAI)
    assert not catches(_local(12, 0, 1), NOON, day, SHANGHAI)


def test_the_dispatch_rules_file_reads_departures_approvals_and_consumption(tmp_path):
    path = tmp_path / "dispatch.toml"
    path.write_text('cruise_speed_mps = 12\n[consumption]\npct_per_km = 4\n'
                    '[[route]]\norigin = "a"\ndestination = "b"\ndepartures = ["09:00", "14:30"]\n'
                    'cutoff_min = 15\napproval_required = true\n', encoding="utf-8")
    rules = DispatchRules.load(path)
    assert rules.consumption.pct_per_km == 4 and rules.cruise_speed_mps == 12
    assert [d.departs for d in rules.departures] == [time(9), time(14, 30)]
    assert rules.needs_approval("a", "b") and not rules.needs_approval("b", "a")
    with pytest.raises(ValueError):
        DispatchRules.parse({"routes": []})


def test_the_shipped_dispatch_file_loads():
    from pathlib import Path
    rules = DispatchRules.load(Path(__file__).parents[1] / "config" / "dispatch.toml")
    assert rules.departures and rules.consumption == Consumption()


# --- the suggested drone ----------------------------------------------------------------------

ORIGIN, DESTINATION = (36.6890, 119.7610), (36.7790, 119.9560)  # about 20 km
ROUTE = [ORIGIN, DESTINATION]


def drone(drone_id: str, at=ORIGIN, battery=100.0, **changes) -> DroneState:
    values = dict(drone_id=drone_id, position=at, battery_pct=battery, online=True, busy=False)
    values.update(changes)
    return DroneState(**values)


def test_the_suggestion_is_the_nearest_free_drone_with_battery_for_the_trip_and_reserve():
    consumption = Consumption(pct_per_km=2.7, takeoff_pct=3, reserve_pct=20)
    far = drone("far", at=(36.70, 119.78))  # about 2 km away
    near_weak = drone("near-weak", battery=70)  # 20 km: 54 % + 3 % leaves 13 %, under 20 %
    busy = drone("busy", busy=True)
    offline = drone("offline", online=None)
    retired = drone("retired", retired=True)
    unknown = drone("unknown", battery=None)
    enough = drone("enough", at=(36.6895, 119.7615), battery=80)  # 60 m away: on the pad
    found = candidates([far, near_weak, busy, offline, retired, unknown, enough], ROUTE,
                       consumption)
    assert [s.drone_id for s in found] == ["enough", "far"]
    assert suggest([near_weak], ROUTE, consumption) is None


def test_battery_enough_is_decided_at_the_reserve_exactly():
    consumption = Consumption(pct_per_km=2.5, takeoff_pct=0, reserve_pct=20)
    needed = candidates([drone("x")], ROUTE, consumption)[0].needed_pct
    assert suggest([drone("x", battery=20 + needed)], ROUTE, consumption) is not None
    assert suggest([drone("x", battery=20 + needed - 0.01)], ROUTE, consumption) is None


# --- following the assigned flight ------------------------------------------------------------


def test_the_flight_picks_up_at_take_off_and_delivers_only_at_the_destination():
    from dronelog.domain.requests import FlightProgress, follow_flight

    assigned, _ = transition(request(), step(Action.ASSIGN))
    up = T0 + timedelta(minutes=3)
    down = T0 + timedelta(minutes=20)
    planned = FlightProgress("F-1", None, None, None)
    flying = FlightProgress("F-1", up, None, None)
    landed = FlightProgress("F-1", up, down, "pdrmyy")
    elsewhere = FlightProgress("F-1", up, down, "cjzxwsy")
    assert follow_flight(assigned, planned) is None
    assert follow_flight(assigned, flying) == Step(Action.PICK_UP, up)
    picked, _ = transition(assigned, Step(Action.PICK_UP, up))
    assert follow_flight(picked, flying) is None
    assert follow_flight(picked, elsewhere) is None  # returned home: the dispatcher decides
    assert follow_flight(picked, landed) == Step(Action.DELIVER, down)
    assert follow_flight(assigned, FlightProgress("F-old", up, down, "pdrmyy")) is None
    courier, _ = transition(assigned, step(Action.TO_COURIER))
    assert follow_flight(courier, FlightProgress(None, up, down, "pdrmyy")) is None
