"""Devices on MQTT: each drone and each site's scanner is its own paho client, as in the
field (a drone's client registers its last will); in load mode a small pool of clients
shares the traffic. Counts every PUBACK so a run can wait until the broker has it all.

With an outbox (dronelog/outbox), each device reads its receipts and keeps every event until
a receipt names it, sending it again when it is late and after every reconnect; a run then
waits until every event has its receipt. Not in load mode: pooled clients are no device."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dronelog.contract.topics import Channel, TopicLayout
from dronelog.ingest.mqtt_source import BrokerAddress
from dronelog.outbox import Outbox, OutboxSender


class DevicePublisher:
    def __init__(self, url: str, layout: TopicLayout, protocol: str = "5",
                 pool_size: int | None = None, client_prefix: str = "sim",
                 outbox: Outbox | None = None) -> None:
        if outbox is not None and pool_size:
            raise ValueError("an outbox needs one client per device, not a pool")
        self.broker = BrokerAddress.parse(url)
        self.layout = layout
        self.protocol = protocol
        self.pool_size = pool_size
        self.client_prefix = f"{client_prefix}-{uuid.uuid4().hex[:6]}"
        self._clients: dict[str, mqtt.Client] = {}
        self._lock = threading.Lock()
        self._clients_lock = threading.RLock()
        self.published = 0
        self.acked = 0
        self.outbox = outbox
        # Waits for room when the outbox is full: the run slows down, nothing is dropped.
        self._sender = (OutboxSender(outbox, layout, self._client_for, full_wait_s=120)
                        if outbox is not None else None)
        if self._sender is not None:
            self._sender.start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        if self._sender is not None and qos == 1:
            self._sender.send(topic, payload, retain)
            self.published += 1
            return
        client = self._client_for(topic)
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"publish refused: {mqtt.error_string(info.rc)}")
        if qos == 0:
            with self._lock:
                self.acked += 1
        self.published += 1

    def wait_acked(self, timeout: float = 120) -> bool:
        """Until the broker acknowledged every message and, with an outbox, every event has
        its receipt."""
        deadline = time.monotonic() + timeout
        while self.acked < self.published:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return self.outbox is None or self.outbox.wait_empty(deadline - time.monotonic())

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
        self._clients.clear()

    def _client_for(self, topic: str) -> mqtt.Client:
        with self._clients_lock:
            return self._client_for_locked(topic)

    def _client_for_locked(self, topic: str) -> mqtt.Client:
        address = self.layout.parse(topic)
        device = address.subject_id if address else "misc"
        if self.pool_size:
            device = f"pool{hash(device) % self.pool_size}"
        client = self._clients.get(device)
        if client is None:
            is_drone = bool(address) and address.channel is not Channel.SITE_CUSTODY
            client = self._connect(device, topic, is_drone and not self.pool_size)
            self._clients[device] = client
        return client

    def _connect(self, device: str, topic: str, with_will: bool) -> mqtt.Client:
        client_id = f"{self.client_prefix}-{device}"
        if self.protocol == "5":
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                 protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                 protocol=mqtt.MQTTv311, clean_session=False)
        if with_will:
            will = {"schema_version": 1, "event_id": str(uuid.uuid4()),
                    "event_time": datetime.now(UTC).isoformat(), "drone_id": device,
                    "online": False, "reason": "will"}
            client.will_set(self.layout.status(device), json.dumps(will), qos=1, retain=True)
        self.broker.configure(client)
        client.max_inflight_messages_set(200)
        client.reconnect_delay_set(0.1, 5)
        client.on_publish = self._on_publish
        if self._sender is not None:
            self._sender.attach(client, topic)
        if self.protocol == "5":
            client.connect(self.broker.host, self.broker.port, clean_start=False)
        else:
            client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        return client

    def _on_publish(self, _client, _userdata, _mid, _reason, _properties) -> None:
        with self._lock:
            self.acked += 1
