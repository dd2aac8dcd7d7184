"""Receipts on an MQTT connection of their own (DRONELOG_RECEIPTS_MQTT_URL).

On the ingester's own connection, a receipt's PUBLISH and its PUBACK wait behind the
telemetry the broker is still sending the ingester: under a backlog, paho's network thread
waits for room in the delivery queue (it neither writes nor reads meanwhile), and Mosquitto
queues the PUBACKs behind the backlog. Measured on a 2-vCPU machine under a sustained flood,
no PUBACK for a receipt came back until the flood ended, and 13 to 27 % of the receipts were
refused once 50,000 were waiting (docs/benchmarks.md). A device not told its events are
safe sends them again, which adds to the backlog that caused it.

This connection only publishes. It keeps no session (clean start): a receipt lost with it
costs a device one resend, told `duplicate`. It needs a login of its own: under the shipped
Mosquitto (`use_username_as_clientid true`) a second connection with the ingester's login
would take over the ingester's persistent session, and with a clean start wipe the QoS 1
messages queued for it. `Settings` refuses that configuration.
"""

import threading

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from dronelog.ingest.mqtt_source import BrokerAddress, PahoConnection, Qos1Publisher

log = structlog.get_logger("dronelog.ingest.receipts")


class ReceiptConnection(PahoConnection):
    def __init__(self, broker: BrokerAddress, client_id: str, protocol: str = "5",
                 keepalive_s: int = 30, outbox_limit: int = 50_000) -> None:
        self.broker = broker
        self._keepalive_s = keepalive_s
        self._mqtt5 = protocol == "5"
        self._connected = threading.Event()
        self._stopping = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if self._mqtt5 else mqtt.MQTTv311)  # 3.1.1: clean session
        broker.configure(self.client)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.publisher = Qos1Publisher(self.client, outbox_limit)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _connect_options(self) -> dict:
        return {"clean_start": True}

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the receipts' connection", reason=str(reason_code))
            return
        self._connected.set()
        log.info("receipts' connection up", host=self.broker.host, port=self.broker.port)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("receipts' connection lost; paho reconnects with backoff",
                        reason=str(reason_code))
