"""Runs the stages before storage over one batch: decode, validate, deduplicate."""

from dataclasses import dataclass, field
from datetime import timedelta

from dronelog.clock import Clock
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.decode import decode
from dronelog.ingest.deduplicate import drop_repeats
from dronelog.ingest.delivery import Accepted, Delivery, Rejected
from dronelog.ingest.validate import check_event_time, check_identity


@dataclass(frozen=True)
class TriageRules:
    layout: TopicLayout
    max_payload_bytes: int = 65536
    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


@dataclass
class Triage:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    repeats: int = 0


def triage(deliveries: list[Delivery], rules: TriageRules, clock: Clock) -> Triage:
    result = Triage()
    now = clock.now()
    for delivery in deliveries:
        outcome = decode(delivery, rules.layout, rules.max_payload_bytes)
        if isinstance(outcome, Accepted):
            outcome = (check_identity(outcome)
                       or check_event_time(outcome, now, rules.max_future_skew, rules.max_age)
                       or outcome)
        if isinstance(outcome, Accepted):
            result.accepted.append(outcome)
        else:
            result.rejected.append(outcome)
    result.accepted, result.repeats = drop_repeats(result.accepted)
    return result
