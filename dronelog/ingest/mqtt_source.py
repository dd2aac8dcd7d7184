"""The MQTT entrance: a paho-mqtt 2.x client with a persistent session and manual acks.

- MQTT 5 with `clean_start=False` and a session expiry (or 3.1.1 with `clean_session=False`):
  while the ingester is away (restart, crash, network), the broker keeps its subscriptions
  and queues its QoS 1 messages.
- `manual_ack=True`: a message is acknowledged only after the transaction that stores it
  commits. Until then the broker holds it and redelivers it after any disconnect.
- Receive Maximum asks the broker to send at most that many unacknowledged messages. With
  Mosquitto 2.0.11 it was measured not to hold once acknowledgements flow
  (docs/benchmarks.md), so the bound on memory is the delivery queue (`queue_limit`): when it
  is full, paho's network thread waits for the batch loop to take the next batch.
- Acks are only sent on the connection a message arrived on. After a reconnect the broker
  resends every unacknowledged message (same packet id, DUP set); acking an old copy could
  acknowledge a different message that now reuses its packet id, so old copies are stored
  (idempotently) but left for their redelivered twins to acknowledge.
- paho reconnects by itself with exponential backoff (`reconnect_delay_set`).
- Receipts (docs/contract.md) go out through a `Qos1Publisher`: on this client unless
  DRONELOG_RECEIPTS_MQTT_URL gives them a connection of their own
  (dronelog/ingest/receipt_connection.py).
- `mqtts://` connects over TLS, verifying the broker's certificate and host name against the
  system's CAs or the `cafile` named in the URL (docs/security.md).
"""

import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dronelog.ingest.delivery import Delivery

log = structlog.get_logger("dronelog.ingest.mqtt")


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in: `mqtt://[user:pass@]host[:1883]`, or over TLS
    `mqtts://[user:pass@]host[:8883][?cafile=PATH][&certfile=PATH][&keyfile=PATH]`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: str | None = None  # trust this CA (else the system's) for the broker's certificate
    certfile: str | None = None  # a client certificate, for brokers that require one
    keyfile: str | None = None

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in {"mqtt", "tcp", "mqtts"}:
            raise ValueError(f"unsupported broker URL scheme {parts.scheme!r} "
                             "(use mqtt:// or mqtts://)")
        tls = parts.scheme == "mqtts"
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        unknown = set(options) - {"cafile", "certfile", "keyfile"}
        if unknown:
            raise ValueError(f"unknown broker URL option(s) {sorted(unknown)} "
                             "(known: cafile, certfile, keyfile)")
        if options and not tls:
            raise ValueError("cafile, certfile and keyfile need an mqtts:// URL")
        files = {name: values[-1] for name, values in options.items()}
        if not all(files.values()):
            raise ValueError("an empty cafile, certfile or keyfile in the broker URL")
        if "keyfile" in files and "certfile" not in files:
            raise ValueError("keyfile without certfile")
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883),
                   parts.username, parts.password, tls, **files)

    def configure(self, client: mqtt.Client) -> None:
        """Give a paho client the credentials and, for mqtts://, TLS 1.2 or newer with the
        broker's certificate and host name verified."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            context = ssl.create_default_context(cafile=self.cafile)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.certfile:
                context.load_cert_chain(self.certfile, self.keyfile)
            client.tls_set_context(context)


class Qos1Publisher:
    """Publishes QoS 1 messages on a paho client without waiting for the broker (receipts).

    paho's publish is thread-safe and only queues the packet. At most `outbox_limit` messages
    wait for the broker's PUBACK (50,000: held receipts of a whole fleet, one per drone, can
    come due together; under paho's 65,535 message ids); beyond that `publish` refuses at once
    rather than grow or wait, and the caller counts the message as failed. They all go out at
    once (no in-flight window): with a window, paho scans its queue from the start at every
    PUBACK, which made 62,000 receipts cost the ingester half its throughput
    (docs/benchmarks.md). The shipped Mosquitto sets no limit on a client's in-flight messages.
    """

    def __init__(self, client: mqtt.Client, outbox_limit: int) -> None:
        self.client = client
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(outbox_limit)
        client.on_publish = self._on_publish
        self.refused = 0  # PUBACKs with a failure reason code (e.g. the ACL's 0x87)
        self._queued = 0  # written by the publishing thread only
        self._answered = 0  # by paho's network thread only

    @property
    def waiting(self) -> int:
        """Messages queued and not yet answered by the broker's PUBACK."""
        return self._queued - self._answered

    def settle(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the broker to answer every queued message; how many
        are still unanswered."""
        deadline = time.monotonic() + timeout_s
        while self.waiting > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.waiting

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue the message; False if paho refused it (its outbox is full). While
        disconnected, paho keeps it and sends it on reconnect."""
        try:
            info = self.client.publish(topic, payload, qos=1)
        except (ValueError, RuntimeError) as error:
            log.warning("publish refused", topic=topic, error=str(error))
            return False
        queued = info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
        self._queued += queued
        return queued

    def _on_publish(self, _client, _userdata, _mid, reason_code, _properties) -> None:
        self._answered += 1
        if reason_code.is_failure:
            self.refused += 1
            log.warning("the broker refused a publish (check its ACL for the receipts)",
                        reason=str(reason_code))


class PahoConnection:
    """A paho client connecting and reconnecting in the background (its network thread),
    and whether it is connected now; subclasses make the client and say how to connect."""

    broker: BrokerAddress
    client: mqtt.Client
    publisher: Qos1Publisher
    _connected: threading.Event
    _stopping: bool
    _keepalive_s: int
    _mqtt5: bool

    def _connect_options(self) -> dict:
        """MQTT 5 options of the CONNECT (clean start, properties)."""
        return {}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        options = self._connect_options() if self._mqtt5 else {}
        self.client.connect_async(self.broker.host, self.broker.port, self._keepalive_s,
                                  **options)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self, settle_s: float = 5.0) -> None:
        """Disconnect once the broker has answered every receipt queued (at most `settle_s`):
        paho writes the DISCONNECT behind what it holds (acks included) and closes the socket
        at once, which can drop what the broker had not read yet; a receipt lost there costs
        its device a resend."""
        unanswered = self.publisher.settle(settle_s)
        if unanswered:
            log.warning("receipts not confirmed by the broker at stop", receipts=unanswered,
                        connected=self.connected)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()


class MqttSource(PahoConnection):
    def __init__(self, broker: BrokerAddress, client_id: str,
                 subscriptions: list[tuple[str, int]], clock: Callable[[], datetime],
                 receive_maximum: int = 2000, session_expiry_s: int = 7 * 86400,
                 keepalive_s: int = 30, queue_limit: int = 20_000, protocol: str = "5",
                 outbox_limit: int = 50_000) -> None:
        self.broker = broker
        self.subscriptions = subscriptions
        self._clock = clock
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=queue_limit)
        self._generation = 0
        self._connected = threading.Event()
        self._stopping = False
        self._keepalive_s = keepalive_s
        self._mqtt5 = protocol == "5"
        if self._mqtt5:
            self._connect_properties = Properties(PacketTypes.CONNECT)
            self._connect_properties.SessionExpiryInterval = session_expiry_s
            self._connect_properties.ReceiveMaximum = receive_maximum
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            self._connect_properties = None
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv311, clean_session=False,
                                      manual_ack=True)
        broker.configure(self.client)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.publisher = Qos1Publisher(self.client, outbox_limit)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _connect_options(self) -> dict:
        return {"clean_start": False, "properties": self._connect_properties}

    def next_batch(self, max_size: int, max_wait_s: float, idle_wait_s: float = 0.2
                   ) -> list[Delivery]:
        """Up to `max_size` deliveries: waits up to `idle_wait_s` for the first one, then at
        most `max_wait_s` for the batch to fill."""
        try:
            first = self._queue.get(timeout=idle_wait_s)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + max_wait_s
        while len(batch) < max_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0
                             else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def drain(self) -> list[Delivery]:
        """Everything received but not yet handed out (used at shutdown)."""
        held = []
        while True:
            try:
                held.append(self._queue.get_nowait())
            except queue.Empty:
                return held

    def acknowledge(self, deliveries: list[Delivery]) -> int:
        """Ack what arrived on the current connection; returns how many were acked."""
        generation = self._generation
        acked = 0
        for delivery in deliveries:
            if delivery.qos > 0 and delivery.generation == generation:
                self.client.ack(delivery.mid, delivery.qos)
                acked += 1
        return acked

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection", reason=str(reason_code))
            return
        self._generation += 1
        client.subscribe(self.subscriptions)
        self._connected.set()
        log.info("connected to broker", host=self.broker.host, port=self.broker.port,
                 session_present=flags.session_present, connection=self._generation)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self._connected.clear()
        if self._stopping:
            log.info("disconnected from broker", reason=str(reason_code))
        else:
            log.warning("disconnected from broker; paho reconnects with backoff",
                        reason=str(reason_code))

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)  # not UTF-8: keep the raw bytes, readably
        self._queue.put(Delivery(topic=topic, payload=message.payload,
                                 received_at=self._clock(), mid=message.mid, qos=message.qos,
                                 generation=self._generation))
