"""Topic layout under a configurable prefix (default `dronelog/v1`).

    <prefix>/drones/<drone_id>/telemetry   Telemetry      QoS 1 (0 allowed: then loss is accepted)
    <prefix>/drones/<drone_id>/flight      FlightEvent    QoS 1
    <prefix>/drones/<drone_id>/custody     CustodyEvent   QoS 1 (handovers a drone itself records)
    <prefix>/drones/<drone_id>/status      DroneStatus    QoS 1, retained, also the last will
    <prefix>/sites/<site_id>/custody       CustodyEvent   QoS 1 (scanners at a site)

The id in the topic is the sender's identity (the broker's ACL ties it to credentials); the
ingester checks that the payload says the same thing.

The other way, from the ingester to each sender (docs/contract.md, "Receipts"):

    <prefix>/receipts/drones/<drone_id>    Receipt        QoS 1, what became of its events
    <prefix>/receipts/sites/<site_id>      Receipt        QoS 1, the same for a site's scanners

Receipts live under their own `receipts/` tree, not under `drones/<id>/`: the ingester reads
all of `drones/#` and `sites/#` (unknown topics are dead-lettered), so receipts there would
come back to it (and, shared between ingesters, could not be filtered with No Local).
"""

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    FLIGHT = "flight"
    DRONE_CUSTODY = "drone_custody"
    STATUS = "status"
    SITE_CUSTODY = "site_custody"


QOS: dict[Channel, int] = {
    Channel.TELEMETRY: 1,
    Channel.FLIGHT: 1,
    Channel.DRONE_CUSTODY: 1,
    Channel.STATUS: 1,
    Channel.SITE_CUSTODY: 1,
}

_DRONE_LEAVES = {
    "telemetry": Channel.TELEMETRY,
    "flight": Channel.FLIGHT,
    "custody": Channel.DRONE_CUSTODY,
    "status": Channel.STATUS,
}


@dataclass(frozen=True, slots=True)
class TopicAddress:
    channel: Channel
    subject_id: str  # the drone id or site id named in the topic


class TopicLayout:
    def __init__(self, prefix: str = "dronelog/v1") -> None:
        prefix = prefix.strip("/")
        if not prefix or any(c in prefix for c in "+#"):
            raise ValueError(f"invalid topic prefix {prefix!r}")
        self.prefix = prefix
        self._depth = prefix.count("/") + 1

    def subscriptions(self, shared_group: str | None = None) -> list[tuple[str, int]]:
        """What the ingester subscribes to: all of `drones/` and `sites/`, so that an unknown
        topic under them is seen and dead-lettered rather than silently ignored. With a
        `shared_group`, as an MQTT shared subscription: the broker hands each message to one
        member of the group, so several ingesters share the stream."""
        share = f"$share/{shared_group}/" if shared_group else ""
        return [(f"{share}{self.prefix}/drones/#", 1), (f"{share}{self.prefix}/sites/#", 1)]

    def telemetry(self, drone_id: str) -> str:
        return f"{self.prefix}/drones/{drone_id}/telemetry"

    def flight(self, drone_id: str) -> str:
        return f"{self.prefix}/drones/{drone_id}/flight"

    def drone_custody(self, drone_id: str) -> str:
        return f"{self.prefix}/drones/{drone_id}/custody"

    def status(self, drone_id: str) -> str:
        return f"{self.prefix}/drones/{drone_id}/status"

    def site_custody(self, site_id: str) -> str:
        return f"{self.prefix}/sites/{site_id}/custody"

    def drone_receipts(self, drone_id: str) -> str:
        return f"{self.prefix}/receipts/drones/{drone_id}"

    def site_receipts(self, site_id: str) -> str:
        return f"{self.prefix}/receipts/sites/{site_id}"

    def parse(self, topic: str) -> TopicAddress | None:
        """The channel and subject a topic addresses, or None if it is not a contract topic."""
        parts = topic.split("/")
        if len(parts) != self._depth + 3 or "/".join(parts[: self._depth]) != self.prefix:
            return None
        group, subject, leaf = parts[self._depth :]
        if not subject:
            return None
        if group == "drones" and leaf in _DRONE_LEAVES:
            return TopicAddress(_DRONE_LEAVES[leaf], subject)
        if group == "sites" and leaf == "custody":
            return TopicAddress(Channel.SITE_CUSTODY, subject)
        return None
