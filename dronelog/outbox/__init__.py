"""A device's outbox for end-to-end receipts (docs/contract.md, "What the ingester
guarantees"): `Outbox` keeps each event until its receipt names it and decides what to send
again (outbox.py), in memory or in SQLite (stores.py); `OutboxSender` is its MQTT edge
(mqtt.py). Used by the simulator's device clients and by the MAVLink and DJI bridges."""

from dronelog.outbox.mqtt import OutboxSender, receipts_topic
from dronelog.outbox.outbox import Outbox, OutboxFull, OutboxReport, event_id_of
from dronelog.outbox.stores import Held, MemoryStore, SqliteStore

__all__ = ["Held", "MemoryStore", "Outbox", "OutboxFull", "OutboxReport", "OutboxSender",
           "SqliteStore", "event_id_of", "receipts_topic"]
