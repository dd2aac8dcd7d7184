"""The simulator without a broker: scenarios, the flight model, determinism, faults."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from dronelog.contract.messages import CustodyEvent, DroneStatus, FlightEvent, Telemetry
from dronelog.contract.topics import Channel, TopicLayout
from dronelog_sim.faults import FAULT_KINDS, FaultRates
from dronelog_sim.flight_model import FlightProfile, ground_speed, payload_temperature
from dronelog_sim.load import load_stream
from dronelog_sim.network import NetworkSimulator
from dronelog_sim.runner import read_recording, recording_line
from dronelog_sim.scenario import ScenarioError, Weather, load_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
ADAPTERS = {Channel.TELEMETRY: TypeAdapter(Telemetry), Channel.FLIGHT: TypeAdapter(FlightEvent),
            Channel.DRONE_CUSTODY: TypeAdapter(CustodyEvent),
            Channel.SITE_CUSTODY: TypeAdapter(CustodyEvent),
            Channel.STATUS: TypeAdapter(DroneStatus)}


@pytest.fixture(scope="module")
def pingdu():
    return load_scenario(SCENARIOS / "pingdu.toml")


def simulate(scenario, hours=12, seed=5, faults=""):
    return NetworkSimulator(scenario, START, timedelta(hours=hours), seed,
                            FaultRates.parse(faults)).run()


@pytest.mark.parametrize("name", ["pingdu.toml", "county.toml"])
def test_shipped_scenarios_load(name):
    scenario = load_scenario(SCENARIOS / name)
    assert len(scenario.sites) >= 4 and scenario.drones


def test_county_scenario_has_a_lab_twenty_townships_and_ten_drones():
    scenario = load_scenario(SCENARIOS / "county.toml")
    kinds = Counter(site.kind for site in scenario.sites)
    assert kinds["lab_hospital"] == 1 and kinds["health_centre"] >= 19
    assert len(scenario.drones) == 10


def test_pingdu_coordinates_are_labelled_approximate(pingdu):
    assert all(site.approximate for site in pingdu.sites)
    assert {site.name_zh for site in pingdu.sites} >= {"平度市人民医院", "崔家中心卫生院",
                                                        "万家卫生院"}


def test_a_bad_field_is_reported_with_its_line(tmp_path, pingdu):
    text = (SCENARIOS / "pingdu.toml").read_text(encoding="utf-8")
    broken = text.replace("lat = 36.6890", "lat = 136.6890")
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("lat = 136.6890") + 1
    with pytest.raises(ScenarioError, match=rf"line {line}: sites\.2\.lat"):
        load_scenario(path)


def test_a_toml_syntax_error_names_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[scenario]\nname = \n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="line 2"):
        load_scenario(path)


def test_an_unknown_site_reference_is_refused(tmp_path):
    text = (SCENARIOS / "pingdu.toml").read_text(encoding="utf-8")
    path = tmp_path / "bad.toml"
    path.write_text(text.replace('home = "wjwsy"', 'home = "nowhere"'), encoding="utf-8")
    with pytest.raises(ScenarioError, match="unknown site 'nowhere'"):
        load_scenario(path)


def test_headwind_slows_and_tailwind_speeds_the_aircraft():
    wind = Weather(wind_speed_mps=5, wind_from_deg=0)  # from the north
    assert ground_speed(18, 0, wind) == pytest.approx(13, abs=0.01)
    assert ground_speed(18, 180, wind) == pytest.approx(23, abs=0.01)
    assert 16 < ground_speed(18, 90, wind) < 18


def test_a_flight_climbs_cruises_and_lands_where_it_should(pingdu):
    drone = pingdu.drones[0]
    origin, destination = pingdu.site("pddermyy"), pingdu.site("pdrmyy")
    profile = FlightProfile(drone, [(origin.lat, origin.lon), (destination.lat,
                            destination.lon)], 120, Weather(wind_speed_mps=0))
    assert profile.distance_m == pytest.approx(17_900, rel=0.05)
    assert profile.cruise_s == pytest.approx(profile.distance_m / drone.cruise_speed_mps)
    top = profile.at(profile.climb_s + 10)
    assert (top.phase, top.height_m) == ("cruise", 120)
    end = profile.at(profile.duration_s)
    assert (end.phase, end.height_m) == ("landed", 0)
    assert (end.lat, end.lon) == pytest.approx((destination.lat, destination.lon), abs=1e-6)
    used = [profile.at(t).battery_used_wh for t in range(0, int(profile.duration_s), 60)]
    assert used == sorted(used) and used[-1] > 0
    assert 0 < profile.battery_needed_pct() < 80


def test_payload_drifts_toward_ambient_through_insulation():
    assert payload_temperature(5, 25, 0, 90) == 5
    warmer = payload_temperature(5, 25, 30, 90)
    assert 5 < warmer < payload_temperature(5, 25, 60, 90) < 25
    assert payload_temperature(5, 25, 30, 6) > warmer  # worse insulation, faster drift


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not(pingdu):
    first, again = simulate(pingdu, seed=9, faults="all=0.1"), simulate(pingdu, seed=9,
                                                                         faults="all=0.1")
    assert [(e.at, e.topic, e.payload) for e in first.emissions] == \
        [(e.at, e.topic, e.payload) for e in again.emissions]
    assert first.outcomes == again.outcomes
    other = simulate(pingdu, seed=10, faults="all=0.1")
    assert [e.payload for e in other.emissions] != [e.payload for e in first.emissions]


def test_every_valid_message_speaks_the_contract_on_its_topic(pingdu):
    layout = TopicLayout()
    run = simulate(pingdu, hours=6, faults="all=0.1")
    for emission in run.emissions:
        if not emission.valid:
            continue
        address = layout.parse(emission.topic)
        event = ADAPTERS[address.channel].validate_json(emission.payload)
        assert str(event.event_id) == emission.event_id


def test_the_custody_story_is_complete_and_in_order(pingdu):
    run = simulate(pingdu, hours=12)
    steps: dict[str, list[str]] = {}
    for emission in run.emissions:
        if emission.kind.startswith("custody."):
            payload = json.loads(emission.payload)
            steps.setdefault(payload["barcode"], []).append(payload["kind"])
    received = [b for b, kinds in steps.items() if kinds[-1] == "received"]
    assert len(received) >= 10
    for barcode in received:
        assert steps[barcode] == ["collected", "packed", "loaded", "unloaded", "received"]


def test_every_fault_kind_appears_in_the_ground_truth_when_switched_on(pingdu):
    run = simulate(pingdu, hours=24, faults="all=0.25")
    seen = {o["fault"] for o in run.outcomes if o["type"] == "fault"}
    seen |= {e.fault.split(":")[0] for e in run.emissions if e.fault}
    assert seen == set(FAULT_KINDS)


def test_a_tube_left_behind_is_on_its_boxs_manifest_but_never_flies(pingdu):
    run = simulate(pingdu, hours=24, faults="tube_left_behind=0.5")
    left = {o["subject"]: o["container_id"] for o in run.outcomes
            if o["type"] == "fault" and o["fault"] == "tube_left_behind"}
    steps: dict[str, list[tuple[str, str | None]]] = {}
    for emission in run.emissions:
        if emission.kind.startswith("custody."):
            payload = json.loads(emission.payload)
            steps.setdefault(payload["barcode"], []).append(
                (payload["kind"], payload.get("container_id")))
    assert left
    for barcode, container in left.items():
        assert steps[barcode] == [("collected", None), ("packed", container)]
        flown = [b for b, kinds in steps.items() if ("loaded", container) in kinds]
        assert flown  # the rest of its box flew without it


def test_faults_switched_off_leave_no_trace(pingdu):
    run = simulate(pingdu, hours=12)
    assert not [o for o in run.outcomes if o["type"] == "fault"]
    assert all(e.valid and e.fault is None for e in run.emissions)


def test_a_temperature_excursion_is_expected_on_the_specimens_it_touches(pingdu):
    run = simulate(pingdu, hours=24, faults="temperature_excursion=1")
    specimens = [o for o in run.outcomes if o["type"] == "specimen" and o["flights"]]
    assert specimens and all(o["excursion"] for o in specimens)
    calm = simulate(pingdu, hours=24)
    assert not any(o["excursion"] for o in calm.outcomes if o["type"] == "specimen")


def test_delays_cause_the_breaches_the_truth_expects(pingdu):
    delayed = simulate(pingdu, hours=24, faults="delayed_receipt=1")
    breaches = [o for o in delayed.outcomes if o["type"] == "specimen" and o["received_at"]]
    assert breaches and all(o["breach"] for o in breaches if o["priority"] != "routine")


def test_malformed_messages_carry_the_reason_they_should_get(pingdu):
    run = simulate(pingdu, hours=6, faults="malformed=0.2")
    broken = [e for e in run.emissions if not e.valid]
    assert broken and all(e.expected_reason for e in broken)
    assert len({e.payload for e in broken}) == len(broken)


def test_load_mode_sends_exactly_drones_times_rate_times_duration():
    stream = list(load_stream(50, 2.0, timedelta(seconds=3), START, seed=1))
    assert len(stream) == 50 * 2 * 3
    assert len({e.event_id for e in stream}) == len(stream)
    assert len({e.topic for e in stream}) == 50


def test_a_recording_reads_back_as_the_same_messages(pingdu, tmp_path):
    run = simulate(pingdu, hours=2, faults="malformed=0.3")
    path = tmp_path / "run.jsonl"
    path.write_text("".join(recording_line(e) + "\n" for e in run.emissions), encoding="utf-8")
    replayed = read_recording(path)
    assert [(e.at, e.topic, e.payload) for e in replayed] == \
        [(e.at, e.topic, e.payload) for e in sorted(run.emissions, key=lambda e: e.at)]


def test_the_same_seed_gives_the_same_run_in_another_process():
    """String hashing differs between processes: nothing may depend on set order."""
    import os
    import subprocess
    import sys

    script = ("import hashlib, sys; from datetime import datetime, timedelta, UTC; "
              "from pathlib import Path; from dronelog_sim.scenario import load_scenario; "
              "from dronelog_sim.network import NetworkSimulator; "
              "from dronelog_sim.faults import FaultRates; "
              f"run = NetworkSimulator(load_scenario(Path({str(SCENARIOS / 'pingdu.toml')!r})), "
              "datetime(2026, 11, 20, tzinfo=UTC), timedelta(hours=6), 4, "
              "FaultRates.parse('all=0.1')).run(); "
              "print(hashlib.sha256(b''.join(e.payload for e in run.emissions)).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1



@pytest.mark.parametrize("bad, where", [
    ("pad_radius_m = 500.5", "pad_radius_m"),
    ('timezone = "Mars/Olympus"', "timezone"),
])
def test_a_site_is_bounded_in_a_network_file_as_through_the_admin_api(tmp_path, bad, where):
    """The file and the admin API (tests/test_admin.py) take a site with the same bounds: a
    pad of up to 500 m and a time zone this machine knows. Before, a file's unknown zone was
    taken and failed later, wherever a time was shown in it."""
    text = (SCENARIOS / "pingdu.toml").read_text(encoding="utf-8")
    at_edge = text.replace("pad_radius_m = 30", "pad_radius_m = 500", 1)
    (tmp_path / "edge.toml").write_text(at_edge, encoding="utf-8")
    assert load_scenario(tmp_path / "edge.toml").sites[0].pad_radius_m == 500
    broken = text.replace("pad_radius_m = 30", f"{bad}\npad_radius_m = 30"
                          if where == "timezone" else bad, 1)
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index(bad) + 1
    with pytest.raises(ScenarioError, match=rf"line {line}: sites\.0\.{where}"):
        load_scenario(path)
