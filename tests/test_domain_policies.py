"""Turnaround policies: defaults by priority, overrides by specificity, ceilings, the file."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.policies import PolicyBook, PolicyError, TurnaroundPolicy

CONFIG = Path(__file__).resolve().parent.parent / "config" / "turnaround.toml"
DEFAULTS = {"stat": {"target_min": 45}, "urgent": {"target_min": 90},
            "routine": {"target_min": 240}}


def specimen(priority: str = "routine", kind: str = "blood_sample", origin: str = "wjwsy",
             destination: str = "pdrmyy") -> SpecimenFacts:
    return SpecimenFacts("CJ2611220042", kind, priority, "ambient", origin, destination)


def book(*overrides: dict, defaults: dict = DEFAULTS) -> PolicyBook:
    return PolicyBook({"defaults": defaults, "overrides": list(overrides)})


def test_deadline_and_warning_from_collection():
    policy = TurnaroundPolicy(target_min=45)
    collected = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert policy.deadline(collected) == collected + timedelta(minutes=45)
    assert policy.warning_at(collected) == collected + timedelta(minutes=33, seconds=45)


def test_built_in_defaults_by_priority():
    policies = PolicyBook.default()
    assert policies.for_specimen(specimen("stat")) == TurnaroundPolicy(45, 0.75)
    assert policies.for_specimen(specimen("urgent")) == TurnaroundPolicy(90, 0.75)
    assert policies.for_specimen(specimen("routine")) == TurnaroundPolicy(240, 0.75)


def test_a_blood_gas_is_held_to_30_minutes_whatever_its_priority():
    policies = PolicyBook.default()
    for priority in ("stat", "urgent", "routine"):
        assert policies.for_specimen(specimen(priority, kind="blood_gas")).target_min == 30


def test_a_ceiling_never_lengthens_a_shorter_target():
    policies = book({"kind": "blood_gas", "target_min": 30, "ceiling": True},
                    defaults={**DEFAULTS, "stat": {"target_min": 20}})
    assert policies.for_specimen(specimen("stat", kind="blood_gas")).target_min == 20
    assert policies.for_specimen(specimen("urgent", kind="blood_gas")).target_min == 30


def test_a_ceiling_holds_against_a_more_specific_override():
    policies = book({"kind": "blood_gas", "target_min": 30, "ceiling": True},
                    {"kind": "blood_gas", "origin": "wjwsy", "target_min": 60,
                     "landed_to_received_min": 5})
    policy = policies.for_specimen(specimen("routine", kind="blood_gas"))
    assert (policy.target_min, policy.landed_to_received_min) == (30, 5)


def test_the_more_specific_override_wins_whatever_its_place_in_the_file():
    policies = book({"priority": "routine", "origin": "wjwsy", "target_min": 360},
                    {"priority": "routine", "target_min": 300},
                    {"origin": "wjwsy", "target_min": 200})
    assert policies.for_specimen(specimen("routine", origin="wjwsy")).target_min == 360
    assert policies.for_specimen(specimen("routine", origin="cjzxwsy")).target_min == 300
    assert policies.for_specimen(specimen("urgent", origin="wjwsy")).target_min == 200
    assert policies.for_specimen(specimen("urgent", origin="cjzxwsy")).target_min == 90


def test_among_equally_specific_overrides_the_later_in_the_file_wins():
    policies = book({"priority": "routine", "target_min": 300},
                    {"origin": "wjwsy", "target_min": 200})
    assert policies.for_specimen(specimen("routine", origin="wjwsy")).target_min == 200
    swapped = book({"origin": "wjwsy", "target_min": 200},
                   {"priority": "routine", "target_min": 300})
    assert swapped.for_specimen(specimen("routine", origin="wjwsy")).target_min == 300


def test_overrides_apply_field_by_field():
    policies = book({"destination": "pdrmyy", "flight_min": 20, "warning_fraction": 0.5},
                    {"priority": "stat", "destination": "pdrmyy", "flight_min": 15})
    stat = policies.for_specimen(specimen("stat"))
    assert stat == TurnaroundPolicy(45, 0.5, flight_min=15)
    other = policies.for_specimen(specimen("stat", destination="pddermyy"))
    assert other == TurnaroundPolicy(45, 0.75)


def test_the_shipped_file_is_the_built_in_book():
    assert PolicyBook.load(CONFIG) == PolicyBook.default()
    assert PolicyBook.load(CONFIG) != book()


def test_errors_name_the_source_and_the_field():
    with pytest.raises(PolicyError) as error:
        PolicyBook({"defaults": {**DEFAULTS, "stat": {"target_min": -5}},
                    "overrides": [{"kind": "bloodgas", "target_min": 30},
                                  {"priority": "stat", "target_mins": 30},
                                  {"target_min": 30},
                                  {"kind": "urine"}]},
                   source="turnaround.toml")
    message = str(error.value)
    assert message.startswith("turnaround.toml: ")
    assert "defaults.stat.target_min: Input should be greater than 0" in message
    assert "overrides[0].kind:" in message
    assert "overrides[1].target_mins: Extra inputs are not permitted" in message
    assert "overrides[2]: Value error, an override needs at least one of" in message
    assert "overrides[3]: Value error, an override must set at least one of" in message


def test_every_priority_needs_its_defaults():
    with pytest.raises(PolicyError, match="defaults.urgent: Field required"):
        PolicyBook({"defaults": {"stat": {"target_min": 45}, "routine": {"target_min": 240}}})


def test_a_file_that_is_not_toml_is_refused_with_its_path(tmp_path):
    path = tmp_path / "turnaround.toml"
    path.write_text("[defaults.stat\ntarget_min = 45\n")
    with pytest.raises(PolicyError, match=f"{path}: not valid TOML"):
        PolicyBook.load(path)
