"""The demo's clinics and dispatcher (dronelog_sim/dispatcher.py) against the real API: clinics
request at the scenario's demand rate; the demo dispatcher leaves a request alone while a
person may still act (the grace period, to the second), assigns the suggested drone after it,
never touches what a person assigned, and hands a request to a courier when no drone can fly
it."""

import random
from datetime import UTC, datetime, timedelta

from dronelog.api.accounts import Role, add_user
from dronelog_sim.dispatcher import Arrival, DemoDispatch, arrivals
from dronelog_sim.scenario import Demand
from tests.support import LAB, TOWN
from tests.test_requests_api import _act, _network


def test_arrivals_follow_the_demand_rate_reproducibly():
    demand = Demand(site=TOWN, destination=LAB, kind="blood_sample", priority="stat",
                    temperature_class="ambient", per_hour=8)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    made = arrivals([demand], start, start + timedelta(hours=50), random.Random(3))
    assert made == arrivals([demand], start, start + timedelta(hours=50), random.Random(3))
    assert 70 <= len(made) <= 130  # 2 boxes an hour (8 tubes, 4 a box) over 50 h: about 100
    assert all(start <= a.at < start + timedelta(hours=50) for a in made)


def test_the_demo_dispatcher_waits_for_people_then_assigns_or_hands_to_a_courier(api):
    _network(api)
    with api.engine.begin() as connection:
        add_user(connection, "lab-cj", Role.LAB, api.clock.now(), password="pw-lab-cj-1234",
                 site_id=TOWN)
    base = str(api.http.base_url)
    demo = DemoDispatch(base, {TOWN: ("lab-cj", "pw-lab-cj-1234")},
                        ("disp-1", "pw-disp-1"), grace_s=60)
    try:
        now = api.clock.now()
        first = demo.request(Arrival(now, TOWN, LAB, "stat"))
        by_person = demo.request(Arrival(now, TOWN, LAB, "routine"))
        assert demo.dispatch(now + timedelta(seconds=59)) == []  # a person may still act
        assert _act(api, by_person, api.as_role(Role.DISPATCHER), action="assign",
                    drone_id="uav-far").status_code == 200
        assert demo.dispatch(now + timedelta(seconds=60)) == [(first, "assign")]
        taken = api.http.get(f"/api/v1/requests/{first}", headers=api.as_role(Role.LAB)).json()
        assert taken["drone_id"] == "uav-near"  # the suggested one
        assert taken["history"][-1]["by"] == "user:disp-1"
        person = api.http.get(f"/api/v1/requests/{by_person}",
                              headers=api.as_role(Role.LAB)).json()
        assert person["drone_id"] == "uav-far" and len(person["history"]) == 2  # untouched
        # every drone is taken now: the next request goes by courier
        third = demo.request(Arrival(now, TOWN, LAB, "urgent"))
        assert demo.dispatch(now + timedelta(seconds=120)) == [(third, "to_courier")]
    finally:
        demo.close()
