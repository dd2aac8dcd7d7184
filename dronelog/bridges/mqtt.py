"""The bridges' MQTT edges (paho-mqtt 2.x), as a real drone would use them.

- `ContractPublisher`: one client per drone, as in the field and in the simulator
  (dronelog_sim/publisher.py): each registers its drone's `online: false, reason: "will"`
  status as its last will, so a bridge that dies is announced as a lost link of the drones
  it carried. Everything is published at QoS 1 to the contract's topics; statuses retained.
  Client ids are stable (`<prefix>-<drone>`): two bridges side by side need two prefixes.
  With an outbox (dronelog/outbox, on disk), each drone's client reads the drone's receipts,
  and every event is kept until its receipt comes and sent again when late or after a
  reconnect. A full outbox holds the bridge back for up to `full_wait_s`, then refuses the
  event: logged as an error with its id, and counted in the outbox's report.
- `Subscriber`: a persistent session (MQTT 5 `clean_start=False` with a session expiry, or
  3.1.1 `clean_session=False`) that subscribes again at every connect and hands each message
  to a callback on paho's network thread. Used for dronelog's `planned` events and for DJI
  Cloud API topics.
"""

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import TypeAdapter, ValidationError

from dronelog.contract.messages import (
    DroneStatus,
    FlightAborted,
    FlightDiverted,
    FlightEvent,
    FlightEventBase,
    FlightPlanned,
    Telemetry,
)
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.mqtt_source import BrokerAddress
from dronelog.outbox import Outbox, OutboxFull, OutboxSender

log = structlog.get_logger("dronelog.bridges.mqtt")

SESSION_EXPIRY_S = 86400


def new_client(broker: BrokerAddress, client_id: str, protocol: str) -> mqtt.Client:
    if protocol == "5":
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=False)
    broker.configure(client)
    client.reconnect_delay_set(0.5, 30)
    return client


def connect(client: mqtt.Client, broker: BrokerAddress, protocol: str) -> None:
    """Connect in the background (paho retries until the broker is there) and start the loop."""
    if protocol == "5":
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(broker.host, broker.port, 30, clean_start=False,
                             properties=properties)
    else:
        client.connect_async(broker.host, broker.port, 30)
    client.loop_start()


class ContractPublisher:
    def __init__(self, url: str, layout: TopicLayout, protocol: str = "5",
                 client_prefix: str = "dronelog-bridge", outbox: Outbox | None = None,
                 full_wait_s: float = 5.0) -> None:
        self.broker = BrokerAddress.parse(url)
        self.layout = layout
        self.protocol = protocol
        self.client_prefix = client_prefix
        self._clients: dict[str, mqtt.Client] = {}
        self._lock = threading.Lock()
        self._clients_lock = threading.RLock()
        self.published = 0
        self.acked = 0
        self.outbox = outbox
        self._sender = (OutboxSender(outbox, layout, self._client_for_topic,
                                     full_wait_s=full_wait_s) if outbox is not None else None)
        if self._sender is not None:
            self._sender.start()  # clients for the drones with events held from before

    def publish(self, event: Telemetry | DroneStatus | FlightEventBase) -> None:
        drone_id = event.drone_id
        if isinstance(event, Telemetry):
            topic, retain = self.layout.telemetry(drone_id), False
        elif isinstance(event, DroneStatus):
            topic, retain = self.layout.status(drone_id), True
        else:
            topic, retain = self.layout.flight(drone_id), False
        payload = event.model_dump_json(exclude_none=True).encode()
        if self._sender is not None:
            try:
                self._sender.send(topic, payload, retain)
            except OutboxFull as error:
                log.error("event refused: the outbox is full (no receipts for a while: is "
                          "the ingester running with receipts on?)", topic=topic,
                          event_id=str(event.event_id), error=str(error))
                return
        else:
            info = self._client_for(drone_id).publish(topic, payload, qos=1, retain=retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.error("publish refused", topic=topic, reason=mqtt.error_string(info.rc))
                return
        self.published += 1
        level = log.debug if isinstance(event, Telemetry) else log.info
        level("published", topic=topic, kind=getattr(event, "kind", None),
              online=getattr(event, "online", None), flight_id=getattr(event, "flight_id", None))

    def wait_acked(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < self.published:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float = 10) -> None:
        if not self.wait_acked(timeout):
            log.warning("closing with messages the broker has not acknowledged",
                        unacked=self.published - self.acked)
        if self._sender is not None:
            self._sender.close()  # what has no receipt stays on disk for the next start
            self.outbox.close()
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
        self._clients.clear()

    def _client_for_topic(self, topic: str) -> mqtt.Client:
        return self._client_for(self.layout.parse(topic).subject_id)

    def _client_for(self, drone_id: str) -> mqtt.Client:
        with self._clients_lock:
            client = self._clients.get(drone_id)
            if client is None:
                client = self._connect(drone_id)
                self._clients[drone_id] = client
            return client

    def _connect(self, drone_id: str) -> mqtt.Client:
        client = new_client(self.broker, f"{self.client_prefix}-{drone_id}", self.protocol)
        will = {"schema_version": 1, "event_id": str(uuid.uuid4()),
                "event_time": datetime.now(UTC).isoformat(), "drone_id": drone_id,
                "online": False, "reason": "will"}
        client.will_set(self.layout.status(drone_id), json.dumps(will), qos=1, retain=True)
        client.max_inflight_messages_set(100)
        client.on_publish = self._on_publish
        if self._sender is not None:
            self._sender.attach(client, self.layout.status(drone_id))
        connect(client, self.broker, self.protocol)
        return client

    def _on_publish(self, _client, _userdata, _mid, _reason, _properties) -> None:
        with self._lock:
            self.acked += 1


class Subscriber:
    """A persistent-session subscriber calling `on_message(topic, payload)`."""

    def __init__(self, url: str, client_id: str, subscriptions: list[tuple[str, int]],
                 on_message: Callable[[str, bytes], None], protocol: str = "5",
                 name: str = "broker") -> None:
        self.broker = BrokerAddress.parse(url)
        self.protocol = protocol
        self.subscriptions = subscriptions
        self.name = name
        self._on_message_callback = on_message
        self.subscribed = threading.Event()
        self.client = new_client(self.broker, client_id, protocol)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> "Subscriber":
        connect(self.client, self.broker, self.protocol)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection", broker=self.name,
                      reason=str(reason_code))
            return
        client.subscribe(self.subscriptions)
        log.info("connected", broker=self.name, host=self.broker.host, port=self.broker.port,
                 session_present=flags.session_present)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("subscription refused", broker=self.name, reasons=refused)
            return
        self.subscribed.set()
        log.info("subscribed", broker=self.name,
                 topics=[topic for topic, _qos in self.subscriptions])

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.subscribed.clear()
        log.warning("disconnected; paho reconnects", broker=self.name, reason=str(reason_code))

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_callback(message.topic, message.payload)
        except Exception:  # noqa: BLE001 - never let one message end paho's network thread
            log.exception("message not handled", broker=self.name)


_FLIGHT_EVENT = TypeAdapter(FlightEvent)


def plan_from(payload: bytes) -> FlightPlanned | FlightDiverted | FlightAborted | None:
    """A `planned`, `diverted` or `aborted` event from dronelog's flight topic; None for
    anything else (take-offs and landings, this bridge's own included, and anything invalid:
    the ingester dead-letters that, the bridge just does not use it)."""
    try:
        event = _FLIGHT_EVENT.validate_json(payload)
    except ValidationError:
        return None
    return event if isinstance(event, FlightPlanned | FlightDiverted | FlightAborted) else None


def plan_subscriptions(layout: TopicLayout) -> list[tuple[str, int]]:
    return [(f"{layout.prefix}/drones/+/flight", 1)]
