"""The public contract: message models, topic layout and the JSON Schema generated from them."""

from dronelog.contract.messages import (
    SCHEMA_VERSION,
    CustodyEvent,
    DroneStatus,
    FlightEvent,
    Telemetry,
)
from dronelog.contract.topics import QOS, Channel, TopicAddress, TopicLayout

__all__ = [
    "QOS",
    "SCHEMA_VERSION",
    "Channel",
    "CustodyEvent",
    "DroneStatus",
    "FlightEvent",
    "Telemetry",
    "TopicAddress",
    "TopicLayout",
]
