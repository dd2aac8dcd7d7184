"""The outbox's MQTT edge (paho-mqtt 2.x): publishing through an outbox, reading receipts,
sending again.

A publisher that owns one paho client per device (the simulator's devices, the bridges' drones)
`attach`es each client before connecting it, naming a topic of its device. Then:

- `send` keeps the event in the outbox, then publishes it at QoS 1 (a message without an
  event id, or on a topic outside the contract, is published without being kept: no receipt
  can name it);
- at every connect the client subscribes to its receipts (QoS 1) and sends again every event
  it holds: a broker that crashed may have lost what it had acknowledged;
- a receipt settles the events it names (`Outbox.settle`);
- a background thread sends again, every `check_every_s`, what a connected client has held
  longer than the outbox's `resend_after_s`, and logs the outbox's report every
  `report_every_s`.
"""

import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
import structlog
from pydantic import ValidationError

from dronelog.contract.messages import Receipt
from dronelog.contract.topics import Channel, TopicLayout
from dronelog.outbox.outbox import Outbox, event_id_of
from dronelog.outbox.stores import Held

log = structlog.get_logger("dronelog.outbox")


def receipts_topic(layout: TopicLayout, topic: str) -> str | None:
    """Where the receipts for events sent on `topic` come: the drone's, or the site's for a
    site's scanners; None for a topic outside the contract."""
    address = layout.parse(topic)
    if address is None:
        return None
    if address.channel is Channel.SITE_CUSTODY:
        return layout.site_receipts(address.subject_id)
    return layout.drone_receipts(address.subject_id)


class OutboxSender:
    def __init__(self, outbox: Outbox, layout: TopicLayout,
                 client_for: Callable[[str], mqtt.Client],
                 check_every_s: float = 1.0, report_every_s: float = 60.0,
                 full_wait_s: float = 0.0) -> None:
        self.outbox = outbox
        self.layout = layout
        self._client_for = client_for
        self._check_every_s = check_every_s
        self._report_every_s = report_every_s
        self._full_wait_s = full_wait_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._resend_late, name="outbox", daemon=True)

    def attach(self, client: mqtt.Client, topic: str) -> None:
        """Make `client`, the client of the device `topic` belongs to, read the device's
        receipts and send again what it holds at each connect. Call before connecting it."""
        receipts = receipts_topic(self.layout, topic)
        if receipts is None:
            return

        def owns(held_topic: str) -> bool:
            return receipts_topic(self.layout, held_topic) == receipts

        def on_connect(client, _userdata, _flags, reason_code, _properties) -> None:
            if reason_code.is_failure:
                log.error("broker refused the connection", reason=str(reason_code))
                return
            client.subscribe(receipts, qos=1)
            again = self.outbox.held_for(owns)
            for held in again:
                self._publish(client, held.topic, held.payload, held.retain)
            if again:
                log.info("reconnected: sent again what has no receipt", receipts=receipts,
                         events=len(again))

        client.message_callback_add(receipts, self._on_receipt)
        client.on_connect = on_connect

    def start(self) -> "OutboxSender":
        """Connect a client for every topic held from before (a restart), and start sending
        again what is late."""
        for topic in sorted(self.outbox.topics()):
            self._client_for(topic)
        self._thread.start()
        return self

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Keep, then publish at QoS 1. Raises OutboxFull if no room came within
        `full_wait_s` (the event is then neither kept nor published)."""
        client = self._client_for(topic)
        event_id = event_id_of(payload) if receipts_topic(self.layout, topic) else None
        if event_id is not None:
            self.outbox.add(event_id, topic, payload, retain, wait_s=self._full_wait_s)
        self._publish(client, topic, payload, retain)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        log.info("outbox", **self.outbox.report().fields())

    def _publish(self, client: mqtt.Client, topic: str, payload: bytes, retain: bool) -> None:
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # kept in the outbox: sent again when late
            log.warning("publish refused by the client", topic=topic,
                        reason=mqtt.error_string(info.rc))

    def _on_receipt(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        try:
            receipt = Receipt.model_validate_json(message.payload)
        except ValidationError as error:
            log.warning("not a receipt", topic=message.topic, error=str(error)[:300])
            return
        self.outbox.settle(receipt)

    def _resend_late(self) -> None:
        next_report = self._report_every_s
        waited = 0.0
        while not self._stop.wait(self._check_every_s):
            for held in self.outbox.due(self._connected):
                self._publish(self._client_for(held.topic), held.topic, held.payload,
                              held.retain)
            waited += self._check_every_s
            if waited >= next_report:
                next_report += self._report_every_s
                log.info("outbox", **self.outbox.report().fields())

    def _connected(self, held: Held) -> bool:
        return self._client_for(held.topic).is_connected()
