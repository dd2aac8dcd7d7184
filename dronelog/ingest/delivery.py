"""What flows between the pipeline's stages."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from dronelog.contract.topics import Channel, TopicAddress
from dronelog.domain.custody_rules import Sender


@dataclass(slots=True)
class Delivery:
    """One message as the broker (or the HTTP entrance) handed it to us."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    generation: int = 0  # which broker connection it arrived on (acks are only valid there)
    sender: Sender | None = None  # who the API authenticated; over MQTT the topic says it


class RejectReason(StrEnum):
    OVERSIZED = "oversized"
    UNKNOWN_TOPIC = "unknown_topic"
    NOT_JSON = "not_json"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    SCHEMA_INVALID = "schema_invalid"
    IMPOSSIBLE_VALUE = "impossible_value"
    IDENTITY_MISMATCH = "identity_mismatch"
    STEP_NOT_ALLOWED = "step_not_allowed"
    ACTOR_MISMATCH = "actor_mismatch"
    EVENT_TIME_OUT_OF_RANGE = "event_time_out_of_range"
    STORAGE_REJECTED = "storage_rejected"


@dataclass(slots=True)
class Accepted:
    delivery: Delivery
    address: TopicAddress
    event: Any  # one of the contract's message models

    @property
    def sender(self) -> Sender:
        """Who sent it: the API's authenticated user, or the device the broker's ACL lets
        publish on this topic (a drone on its own topics, a site's scanner on its site's)."""
        return self.delivery.sender or sender_for(self.address)


@dataclass(slots=True)
class Rejected:
    delivery: Delivery
    reason_code: RejectReason
    reason: str
    event_id: str | None = None


def sender_for(address: TopicAddress) -> Sender:
    """The sender a contract topic belongs to under the shipped broker ACL."""
    return _device(address.channel is Channel.SITE_CUSTODY, address.subject_id)


@lru_cache(maxsize=65_536)
def _device(site: bool, subject_id: str) -> Sender:
    """One `Sender` per device, shared: senders are immutable, and building one per event (a
    frozen dataclass) was a third of the receipts' sorting at full rate (docs/benchmarks.md)."""
    return Sender.site(subject_id) if site else Sender.drone(subject_id)
