"""Decode, validate and deduplicate stages, without I/O, on a controllable clock."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from dronelog.clock import ManualClock
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.triage import TriageRules, triage

CLOCK = ManualClock(datetime(2026, 11, 22, 0, 30, tzinfo=UTC))  # examples are 08:xx +08:00
RULES = TriageRules(layout=TopicLayout(), max_payload_bytes=4096,
                    max_future_skew=timedelta(minutes=5), max_age=timedelta(days=30))
LAYOUT = RULES.layout


def delivery(topic: str, payload) -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery(topic=topic, payload=body, received_at=CLOCK.now())


def example(name, **changes):
    payload = dict(EXAMPLES[name])
    payload.update(changes)
    return payload


def only_rejection(*deliveries):
    result = triage(list(deliveries), RULES, CLOCK)
    assert result.accepted == []
    assert len(result.rejected) == 1
    return result.rejected[0]


def test_each_example_is_accepted_on_its_topic():
    deliveries = [
        delivery(LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"]),
        delivery(LAYOUT.status("uav-03"), EXAMPLES["status"]),
        *[delivery(LAYOUT.flight("uav-03"), EXAMPLES[n]) for n in EXAMPLES
          if n.startswith("flight.")],
        *[delivery(LAYOUT.site_custody(EXAMPLES[n]["site_id"]), EXAMPLES[n]) for n in EXAMPLES
          if n.startswith("custody.") and EXAMPLES[n]["actor"]["kind"] == "staff"],
        delivery(LAYOUT.drone_custody("uav-03"), EXAMPLES["custody.unloaded"]),
    ]
    result = triage(deliveries, RULES, CLOCK)
    assert result.rejected == []
    assert len(result.accepted) == len(deliveries)


@pytest.mark.parametrize("topic, payload, reason, words", [
    ("dronelog/v1/drones/uav-03/telemetry", b"{not json", RejectReason.NOT_JSON, "JSON"),
    ("dronelog/v1/drones/uav-03/telemetry", b"[1, 2]", RejectReason.SCHEMA_INVALID, "payload"),
    ("dronelog/v1/drones/uav-03/telemetry", b"\xff\xfe", RejectReason.NOT_JSON, "JSON"),
    ("dronelog/v1/drones/uav-03/telemetry", example("telemetry", schema_version=2),
     RejectReason.UNKNOWN_SCHEMA_VERSION, "schema_version 2"),
    ("dronelog/v1/drones/uav-03/telemetry", example("telemetry", lat=200),
     RejectReason.IMPOSSIBLE_VALUE, "lat"),
    ("dronelog/v1/drones/uav-03/telemetry", example("telemetry", seq="many"),
     RejectReason.SCHEMA_INVALID, "seq"),
    ("dronelog/v1/drones/uav-04/telemetry", EXAMPLES["telemetry"],
     RejectReason.IDENTITY_MISMATCH, "uav-04"),
    ("dronelog/v1/drones/uav-03/flight", EXAMPLES["flight.takeoff"] | {"drone_id": "uav-09"},
     RejectReason.IDENTITY_MISMATCH, "uav-09"),
    ("dronelog/v1/sites/pdrmyy/custody", EXAMPLES["custody.collected"],
     RejectReason.IDENTITY_MISMATCH, "cjzxwsy"),
    ("dronelog/v1/drones/uav-07/custody", EXAMPLES["custody.unloaded"],
     RejectReason.IDENTITY_MISMATCH, "uav-07"),
    ("dronelog/v1/drones/uav-03/custody", EXAMPLES["custody.received"],
     RejectReason.STEP_NOT_ALLOWED, "received"),
    ("dronelog/v1/drones/uav-03/custody", EXAMPLES["custody.received"]
     | {"actor": {"kind": "drone", "id": "uav-03"}}, RejectReason.STEP_NOT_ALLOWED, "received"),
    ("dronelog/v1/drones/uav-03/custody", EXAMPLES["custody.unloaded"] | {"drone_id": "uav-01"},
     RejectReason.IDENTITY_MISMATCH, "drone_id 'uav-01'"),
    ("dronelog/v1/sites/pdrmyy/custody", EXAMPLES["custody.unloaded"],
     RejectReason.ACTOR_MISMATCH, "drone"),
    ("dronelog/v1/drones/uav-03/position", EXAMPLES["telemetry"],
     RejectReason.UNKNOWN_TOPIC, "position"),
    ("dronelog/v1/drones/uav-03/telemetry", example("telemetry",
     event_time="2026-11-25T08:00:00+08:00"), RejectReason.EVENT_TIME_OUT_OF_RANGE, "ahead"),
    ("dronelog/v1/drones/uav-03/telemetry", example("telemetry",
     event_time="2026-09-01T08:00:00+08:00"), RejectReason.EVENT_TIME_OUT_OF_RANGE, "older"),
    ("dronelog/v1/drones/uav-03/telemetry", b"{" + b" " * 5000 + b"}",
     RejectReason.OVERSIZED, "5002 bytes"),
])
def test_bad_input_is_rejected_with_its_reason(topic, payload, reason, words):
    rejected = only_rejection(delivery(topic, payload))
    assert rejected.reason_code is reason
    assert words in rejected.reason


def test_rejection_keeps_the_event_id_when_there_is_one():
    rejected = only_rejection(delivery(LAYOUT.telemetry("uav-03"),
                                       example("telemetry", battery_pct=140)))
    assert rejected.event_id == EXAMPLES["telemetry"]["event_id"]


def test_a_bad_message_does_not_take_its_batch_down():
    good = delivery(LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"])
    bad = delivery(LAYOUT.telemetry("uav-03"), b"garbage")
    result = triage([bad, good, bad], RULES, CLOCK)
    assert [a.delivery for a in result.accepted] == [good]
    assert len(result.rejected) == 2


def test_repeats_within_a_batch_are_dropped_keeping_the_first():
    first = delivery(LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"])
    second = delivery(LAYOUT.telemetry("uav-03"), EXAMPLES["telemetry"])
    other = delivery(LAYOUT.status("uav-03"), EXAMPLES["status"])
    result = triage([first, second, other], RULES, CLOCK)
    assert [a.delivery for a in result.accepted] == [first, other]
    assert result.repeats == 1


def test_late_events_inside_the_window_are_accepted():
    late = example("telemetry", event_time="2026-11-01T08:00:00+08:00")
    result = triage([delivery(LAYOUT.telemetry("uav-03"), late)], RULES, CLOCK)
    assert len(result.accepted) == 1


def test_the_time_window_follows_the_clock():
    clock = ManualClock(datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    ahead = example("telemetry", event_time="2026-11-22T08:10:00+08:00")  # 00:10 UTC
    assert triage([delivery(LAYOUT.telemetry("uav-03"), ahead)], RULES, clock).rejected
    clock.advance(6 * 60)
    assert triage([delivery(LAYOUT.telemetry("uav-03"), ahead)], RULES, clock).accepted
