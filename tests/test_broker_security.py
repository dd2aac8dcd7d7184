"""Broker security: the shipped Mosquitto configuration (deploy/mosquitto/) with real logins,
the shipped ACL and TLS, real paho clients and the real ingester behind the broker.

Each test starts a private Mosquitto from deploy/mosquitto/mosquitto.conf with only its ports
(free loopback ports) and file paths replaced, a password file made with `mosquitto_passwd -b`
and, for TLS, a throwaway CA and broker certificate made with `openssl`. Without those tools
the tests are skipped (failed with DRONELOG_REQUIRE_REAL=1), as in tests/conftest.py.
"""

import getpass
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import text

from dronelog.broker import MosquittoBroker, free_port, port_open
from dronelog.ingest.mqtt_source import BrokerAddress
from dronelog.storage.database import create_db_engine, migrate
from dronelog_sim.publisher import DevicePublisher
from tests.conftest import missing_component
from tests.support import LAYOUT, IngesterProcess, count, scan, telemetry, wait_for_count

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
# MQTT 5 reason codes: in a CONNACK and a PUBACK (0x10: accepted, but nobody subscribes)
SUCCESS, NO_SUBSCRIBERS, NOT_AUTHORIZED = 0x00, 0x10, 0x87
USERS = ("uav-01", "uav-02", "scanner-pdrmyy-01", "scanner-wjwsy-01", "dronelog-ingester-1",
         "dronelog-ingester-2", "dronelog-receipts-1", "dronelog-notifier")
TELEMETRY_ROWS = "SELECT count(*) FROM telemetry"
CUSTODY_ROWS = "SELECT count(*) FROM custody_event"
STATUS_ROWS = "SELECT count(*) FROM drone_status_event"
DEAD_LETTERS = "SELECT count(*) FROM dead_letter"
LISTENER_OPTIONS = {"protocol", "use_username_as_clientid", "certfile", "keyfile", "cafile",
                    "capath", "require_certificate", "tls_version", "ciphers", "port",
                    "bind_address", "bind_interface", "max_connections", "mount_point",
                    "socket_domain", "use_identity_as_username", "use_subject_as_username"}


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    found = {"mosquitto": MosquittoBroker.find(),
             "mosquitto_passwd": shutil.which("mosquitto_passwd"),
             "openssl": shutil.which("openssl")}
    for name, path in found.items():
        if path is None:
            missing_component(f"the {name} binary")
    return found


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path  # the broker's
    key: Path
    client_cert: Path  # uav-01's, for a broker that requires client certificates
    client_key: Path


@pytest.fixture(scope="module")
def pki(tools, tmp_path_factory) -> Pki:
    """A throwaway CA, a broker certificate for 127.0.0.1 and localhost and a client
    certificate for uav-01, made with the commands docs/security.md gives (shorter lives)."""
    folder = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run([tools["openssl"], *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=dronelog test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "dronelog-ca.key", "-out", "dronelog-ca.crt")
    openssl("req", "-new", *ec, "-subj", "/CN=localhost", "-keyout", "broker.key",
            "-out", "broker.csr")
    (folder / "broker.ext").write_text(
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "dronelog-ca.crt",
            "-CAkey", "dronelog-ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "broker.ext", "-out", "broker.crt")
    openssl("req", "-new", *ec, "-subj", "/CN=uav-01", "-keyout", "uav-01.key",
            "-out", "uav-01.csr")
    (folder / "client.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = clientAuth\n")
    openssl("x509", "-req", "-in", "uav-01.csr", "-CA", "dronelog-ca.crt",
            "-CAkey", "dronelog-ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "client.ext", "-out", "uav-01.crt")
    return Pki(folder / "dronelog-ca.crt", folder / "broker.crt", folder / "broker.key",
               folder / "uav-01.crt", folder / "uav-01.key")


class SecureBroker:
    """Mosquitto started from the shipped mosquitto.conf: its TLS and loopback listeners on free
    loopback ports, its files in `folder`, one password per user made by mosquitto_passwd."""

    def __init__(self, folder: Path, tools: dict[str, str], pki: Pki, acl: str | None = None,
                 without: tuple[str, ...] = (), require_certificate: bool = False) -> None:
        folder.mkdir()
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.passwords = {user: secrets.token_hex(12) for user in USERS}
        for user, password in self.passwords.items():
            create = ["-c"] if user == USERS[0] else []
            subprocess.run([tools["mosquitto_passwd"], *create, "-b", str(folder / "passwd"),
                            user, password], check=True, capture_output=True)
        (folder / "acl").write_text(acl or (DEPLOY / "acl").read_text())
        conf = folder / "mosquitto.conf"
        conf.write_text(self._config(pki, without, require_certificate))
        with open(folder / "mosquitto.log", "ab") as log:
            self.process = subprocess.Popen([tools["mosquitto"], "-c", str(conf)],
                                            stdout=subprocess.DEVNULL, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + 10
        while not (port_open("127.0.0.1", self.port) and port_open("127.0.0.1", self.tls_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self.log()}")
            time.sleep(0.05)

    def _config(self, pki: Pki, without: tuple[str, ...], require_certificate: bool) -> str:
        """The shipped file, line by line, with each of these directives replaced; a directive
        missing from the shipped file fails the test, so the two cannot drift apart."""
        replace = {
            "listener 8883": f"listener {self.tls_port} 127.0.0.1",
            "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1",
            "password_file ": f"password_file {self.folder / 'passwd'}",
            "acl_file ": f"acl_file {self.folder / 'acl'}",
            "certfile ": f"certfile {pki.cert}",
            "keyfile ": f"keyfile {pki.key}",
            "cafile ": f"cafile {pki.ca}",
            "require_certificate false": f"require_certificate {str(require_certificate).lower()}",
            "persistence_location ": f"persistence_location {self.folder}/",
            "log_dest ": "log_dest stderr",
        }
        used, lines = set(), []
        shipped = (DEPLOY / "mosquitto.conf").read_text().splitlines()
        first_listener = next(i for i, line in enumerate(shipped) if line.startswith("listener"))
        # Above the first listener, a listener option makes Mosquitto open its implicit default
        # listener: plain MQTT on port 1883 on every interface.
        assert not [line for line in shipped[:first_listener]
                    if line.split(" ")[0] in LISTENER_OPTIONS]
        for line in shipped:
            if line.startswith(without):
                used.update(w for w in without if line.startswith(w))
                continue
            key = next((k for k in replace if line == k or line.startswith(k)
                        and k.endswith(" ")), None)
            if key:
                used.add(key)
                line = replace[key]
            lines.append(line)
        assert used == set(replace) | set(without), (set(replace) | set(without)) - used
        # Started as root, Mosquitto would switch to the `mosquitto` user, which cannot read
        # the files in our folder (dronelog/broker.py does the same).
        lines.append(f"user {getpass.getuser()}")
        return "\n".join(lines) + "\n"

    def url(self, user: str | None, password: str | None = None, tls: bool = False,
            **files: Path) -> str:
        """A broker URL as dronelog takes it; `files`: cafile, certfile, keyfile."""
        login = f"{user}:{password or self.passwords[user]}@" if user else ""
        if not tls:
            return f"mqtt://{login}127.0.0.1:{self.port}"
        query = f"?{urlencode(files)}" if files else ""
        return f"mqtts://{login}127.0.0.1:{self.tls_port}{query}"

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads the password file and the ACL again."""
        self.process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return (self.folder / "mosquitto.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def secure_broker(tools, pki, tmp_path):
    broker = SecureBroker(tmp_path / "broker", tools, pki)
    yield broker
    broker.stop()


class Device:
    """One login, connected as a device would be: a paho client set up by dronelog's own
    BrokerAddress code, remembering its CONNACK and the reason code of each PUBACK. The test
    drives paho's loop itself (no network thread), so each step is over when it returns."""

    def __init__(self, url: str, protocol: str = "5", client_id: str | None = None,
                 will: tuple[str, str] | None = None) -> None:
        self.address = BrokerAddress.parse(url)
        self.mqtt5 = protocol == "5"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"dev-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5 if self.mqtt5 else mqtt.MQTTv311)
        self.address.configure(self.client)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.connack: ReasonCode | None = None
        self.session_present: bool | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[int]] = {}
        self.received: list[str] = []
        self.closed = False
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, mid, reasons, _p: self.subacks.update(
            {mid: [reason.value for reason in reasons]})
        self.client.on_message = lambda _c, _u, message: self.received.append(message.topic)
        self.client.on_disconnect = lambda *_args: setattr(self, "closed", True)
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self.pubacks.update({mid: reason})

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties) -> None:
        self.session_present = flags.session_present
        self.connack = reason_code

    def _loop_until(self, done, what: str, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.closed:
                raise ConnectionError(f"the broker closed the connection; waiting for {what}")
            assert time.monotonic() < deadline, f"no {what}"
            self.client.loop(timeout=0.05)

    def connect(self, clean_start: bool = True) -> ReasonCode:
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
            self.client.connect(self.address.host, self.address.port, clean_start=clean_start,
                                properties=properties)
        else:
            self.client.connect(self.address.host, self.address.port)
        self._loop_until(lambda: self.connack is not None, "CONNACK")
        return self.connack

    def publish(self, topic: str, payload: str | bytes) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code. After a refusal, Mosquitto
        2.0 with `max_queued_messages 0` also closes the connection (docs/security.md), so a
        refused publish is the last one on a connection."""
        info = self.client.publish(topic, payload, qos=1)
        self._loop_until(lambda: info.mid in self.pubacks, f"PUBACK for {topic}")
        return self.pubacks[info.mid].value

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe at QoS 1 and return the SUBACK's reason codes."""
        _, mid = self.client.subscribe([(topic_filter, 1) for topic_filter in filters])
        self._loop_until(lambda: mid in self.subacks, "SUBACK")
        return self.subacks[mid]

    def wait_closed(self, timeout: float = 5) -> bool:
        """Whether the broker closes the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.client.loop(timeout=0.05)
        return self.closed

    def listen(self, seconds: float) -> list[str]:
        """The topics of the messages received within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.client.loop(timeout=0.05)
        return self.received

    def drop(self) -> None:
        """Lose the connection without a DISCONNECT, so that the broker publishes the will."""
        self.client.socket().close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop(timeout=0.05)


def start_ingester(mqtt_url: str, workdir: Path, **settings):
    """`dronelog ingest` as a process, connected with the given URL, and its database."""
    workdir.mkdir(exist_ok=True)
    database_url = f"sqlite:///{workdir / 'dronelog.db'}"
    engine = create_db_engine(database_url)
    migrate(engine)
    ingester = IngesterProcess(database_url, mqtt_url, workdir, **settings).start()
    ingester.wait_connected()
    return ingester, engine


def status(drone_id: str) -> str:
    return json.dumps({"schema_version": 1, "event_id": str(uuid.uuid4()),
                       "event_time": datetime.now(UTC).isoformat(), "drone_id": drone_id,
                       "online": False, "reason": "will"})


def test_broker_url_carries_the_tls_options():
    plain = BrokerAddress.parse("mqtt://ingester:pw@broker.example:1884")
    assert (plain.port, plain.tls, plain.cafile) == (1884, False, None)
    tls = BrokerAddress.parse("mqtts://ingester:pw@broker.example?cafile=/etc/dl/ca%20x.crt"
                              "&certfile=/etc/dl/me.crt&keyfile=/etc/dl/me.key")
    assert (tls.host, tls.port, tls.username, tls.password) == ("broker.example", 8883,
                                                                 "ingester", "pw")
    assert (tls.tls, tls.cafile, tls.certfile, tls.keyfile) == (
        True, "/etc/dl/ca x.crt", "/etc/dl/me.crt", "/etc/dl/me.key")
    for wrong in ("mqtt://h?cafile=/ca.crt", "mqtts://h?ca=/ca.crt", "mqtts://h?cafile=",
                  "mqtts://h?keyfile=/me.key", "ws://h"):
        with pytest.raises(ValueError):
            BrokerAddress.parse(wrong)


def _settings(conf: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in conf.splitlines()
                if line and not line.startswith("#"))


def test_the_shipped_and_the_private_broker_agree_on_what_the_ingester_relies_on(tmp_path):
    """The demo's and tests' Mosquitto (dronelog/broker.py) and the shipped one keep the same
    settings for the guarantees (docs/contract.md) and for latency (Nagle off, issue 18)."""
    relied_on = {"persistence": "true", "autosave_interval": "10",
                 "max_queued_messages": "0", "max_inflight_messages": "0",
                 "max_keepalive": "120", "set_tcp_nodelay": "true"}
    shipped = _settings((DEPLOY / "mosquitto.conf").read_text())
    private = _settings(MosquittoBroker(tmp_path, port=1883).config_text())
    assert {key: shipped.get(key) for key in relied_on} == relied_on
    assert {key: private.get(key) for key in relied_on} == relied_on


@pytest.mark.parametrize("kernel_range, expected", [
    ("32768\t60999\n", range(20768, 32768)),  # Linux's default
    ("40000 60999\n", range(28000, 40000)),
    ("2048 60999\n", None),  # no room below: the kernel's choice
])
def test_a_servers_port_is_one_no_outgoing_connection_can_take_first(
        tmp_path, monkeypatch, kernel_range, expected):
    """A private broker's, database's or API's port is chosen before the server binds it.
    A port from the kernel's ephemeral range can meanwhile become the local end of any
    outgoing connection (the server then fails to start), so it is drawn below that range,
    afresh each time (test workers seed `random` alike), and free to bind."""
    kernel = tmp_path / "ip_local_port_range"
    kernel.write_text(kernel_range)
    monkeypatch.setattr("dronelog.broker.EPHEMERAL_PORTS", kernel)
    ports = [free_port() for _ in range(20)]
    if expected is not None:
        assert all(port in expected for port in ports), ports
    assert len(set(ports)) > 10
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_with_no_port_free_below_the_range_the_kernel_chooses(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr("dronelog.broker._chooser",
                            SimpleNamespace(randrange=lambda low, high: taken))
        port = free_port()
    assert port not in (0, taken)


@pytest.mark.mosquitto
def test_only_known_logins_connect(secure_broker):
    broker = secure_broker
    known = Device(broker.url("uav-01"))
    assert known.connect().value == SUCCESS
    known.close()
    for url, protocol in [(broker.url(None), "5"),
                          (broker.url("uav-01", password="wrong"), "5"),
                          (broker.url("uav-99", password="guess"), "5"),
                          (broker.url(None), "3.1.1"),
                          (broker.url("uav-01", password="wrong"), "3.1.1")]:
        refused = Device(url, protocol).connect()
        assert refused.is_failure, (url, protocol)
        # 0x86 bad user name or password, 0x87 not authorized: Mosquitto 2.0.11 says 0x87
        # to both (for 3.1.1, paho maps the CONNACK's 5 "not authorised" to the same code)
        assert refused.value in (0x86, NOT_AUTHORIZED), (url, protocol, refused)


@pytest.mark.mosquitto
def test_a_new_password_or_a_deleted_login_takes_effect_on_reload(tools, secure_broker):
    """Rotating a device's password (docs/security.md): mosquitto_passwd, then SIGHUP. The
    old password no longer logs in, and a connection made with it is closed at once (so is
    one of a deleted login); other devices stay connected."""
    broker = secure_broker
    passwd = str(broker.folder / "passwd")
    device, bystander = Device(broker.url("uav-01")), Device(broker.url("uav-02"))
    assert device.connect().value == SUCCESS
    assert bystander.connect().value == SUCCESS
    old_url, new_password = broker.url("uav-01"), secrets.token_hex(12)
    subprocess.run([tools["mosquitto_passwd"], "-b", passwd, "uav-01", new_password], check=True)
    broker.reload()
    assert device.wait_closed()
    assert Device(old_url).connect().value == NOT_AUTHORIZED
    rotated = Device(broker.url("uav-01", password=new_password))
    assert rotated.connect().value == SUCCESS

    subprocess.run([tools["mosquitto_passwd"], "-D", passwd, "uav-01"], check=True)
    broker.reload()
    assert rotated.wait_closed()
    assert Device(broker.url("uav-01", password=new_password)).connect().value == NOT_AUTHORIZED
    assert not bystander.wait_closed(0.2)
    assert bystander.publish(LAYOUT.telemetry("uav-02"), b"{}") == NO_SUBSCRIBERS


@pytest.mark.mosquitto
def test_the_acl_refuses_what_a_login_may_not_publish(secure_broker):
    """MQTT 5: the broker answers a refused QoS 1 PUBLISH with PUBACK 0x87 Not authorized (and
    an allowed one here with 0x10 No matching subscribers: nobody listens in this test)."""
    prefix = LAYOUT.prefix
    expected = {
        "uav-01": [(LAYOUT.telemetry("uav-01"), NO_SUBSCRIBERS),
                   (LAYOUT.flight("uav-01"), NO_SUBSCRIBERS),
                   (LAYOUT.drone_custody("uav-01"), NO_SUBSCRIBERS),
                   (LAYOUT.status("uav-01"), NO_SUBSCRIBERS),
                   (LAYOUT.telemetry("uav-02"), NOT_AUTHORIZED),
                   (LAYOUT.flight("uav-02"), NOT_AUTHORIZED),
                   (LAYOUT.drone_custody("uav-02"), NOT_AUTHORIZED),
                   (LAYOUT.status("uav-02"), NOT_AUTHORIZED),
                   (f"{prefix}/drones/uav-01/selfie", NOT_AUTHORIZED),
                   (LAYOUT.site_custody("pdrmyy"), NOT_AUTHORIZED),
                   (f"{prefix}/alerts/low_battery/drone/uav-01", NOT_AUTHORIZED),
                   # a forged receipt could make a device drop an event never stored
                   (LAYOUT.drone_receipts("uav-01"), NOT_AUTHORIZED),
                   (LAYOUT.drone_receipts("uav-02"), NOT_AUTHORIZED)],
        "scanner-pdrmyy-01": [(LAYOUT.site_custody("pdrmyy"), NO_SUBSCRIBERS),
                              (LAYOUT.site_custody("cjzxwsy"), NOT_AUTHORIZED),
                              (LAYOUT.drone_custody("uav-01"), NOT_AUTHORIZED),
                              # the drones' pattern would allow this but for the deny line
                              (LAYOUT.telemetry("scanner-pdrmyy-01"), NOT_AUTHORIZED),
                              (LAYOUT.site_receipts("pdrmyy"), NOT_AUTHORIZED)],
        "dronelog-ingester-1": [(LAYOUT.telemetry("uav-01"), NOT_AUTHORIZED),
                                (LAYOUT.site_custody("pdrmyy"), NOT_AUTHORIZED),
                                (LAYOUT.telemetry("dronelog-ingester-1"), NOT_AUTHORIZED),
                                (f"{prefix}/alerts/low_battery/drone/uav-01", NOT_AUTHORIZED),
                                (LAYOUT.drone_receipts("uav-01"), NO_SUBSCRIBERS),
                                (LAYOUT.site_receipts("pdrmyy"), NO_SUBSCRIBERS)],
        # receipts on a connection of their own (DRONELOG_RECEIPTS_MQTT_URL): receipts only
        "dronelog-receipts-1": [(LAYOUT.drone_receipts("uav-01"), NO_SUBSCRIBERS),
                                (LAYOUT.site_receipts("pdrmyy"), NO_SUBSCRIBERS),
                                (LAYOUT.telemetry("uav-01"), NOT_AUTHORIZED),
                                (LAYOUT.telemetry("dronelog-receipts-1"), NOT_AUTHORIZED),
                                (LAYOUT.site_custody("pdrmyy"), NOT_AUTHORIZED),
                                (f"{prefix}/alerts/low_battery/drone/uav-01", NOT_AUTHORIZED)],
        "dronelog-notifier": [(f"{prefix}/alerts/low_battery/drone/uav-01", NO_SUBSCRIBERS),
                              (LAYOUT.telemetry("uav-01"), NOT_AUTHORIZED),
                              (LAYOUT.telemetry("dronelog-notifier"), NOT_AUTHORIZED),
                              (LAYOUT.drone_receipts("uav-01"), NOT_AUTHORIZED)],
    }
    for user, attempts in expected.items():
        answers = []
        for topic, _ in attempts:
            device = Device(secure_broker.url(user))  # a refusal ends the connection
            assert device.connect().value == SUCCESS
            answers.append((topic, device.publish(topic, b"{}")))
            device.close()
        assert answers == attempts, user


@pytest.mark.mosquitto
def test_only_the_ingester_logins_read_device_topics(secure_broker):
    """The ingesters' logins read every drone and site topic, also through the shared
    subscription that ingesters sharing the stream use (DRONELOG_SHARED_GROUP); other logins
    read none."""
    prefix = LAYOUT.prefix
    ingesters = [Device(secure_broker.url(user))
                 for user in ("dronelog-ingester-1", "dronelog-ingester-2")]
    for ingester in ingesters:
        assert ingester.connect().value == SUCCESS
        assert ingester.subscribe(f"$share/ingesters/{prefix}/drones/#",
                                  f"$share/ingesters/{prefix}/sites/#") == [1, 1]
    nosy = [Device(secure_broker.url(user))
            for user in ("uav-02", "scanner-wjwsy-01", "dronelog-receipts-1", "dronelog-notifier")]
    for device in nosy:
        assert device.connect().value == SUCCESS
        # Mosquitto 2.0 grants the subscription, then checks each message against the ACL
        device.subscribe(f"{prefix}/#")

    drone = Device(secure_broker.url("uav-01"))
    assert drone.connect().value == SUCCESS
    scanner = Device(secure_broker.url("scanner-pdrmyy-01"))
    assert scanner.connect().value == SUCCESS
    for _ in range(2):
        assert drone.publish(LAYOUT.telemetry("uav-01"), b"{}") == SUCCESS
        assert scanner.publish(LAYOUT.site_custody("pdrmyy"), b"{}") == SUCCESS
    received = ingesters[0].listen(0.5) + ingesters[1].listen(0.1)
    assert sorted(received) == [LAYOUT.telemetry("uav-01")] * 2 + [
        LAYOUT.site_custody("pdrmyy")] * 2  # each message to one member of the group
    assert [device.listen(0.1) for device in nosy] == [[], [], [], []]


@pytest.mark.mosquitto
def test_each_device_reads_its_own_receipts_only(secure_broker):
    """Receipts (docs/contract.md): a drone reads receipts/drones/<itself>, a site's scanner
    receipts/sites/<its site>; nobody reads another's, and the ingesters, which write them,
    read none (they would otherwise come back into the stream)."""
    prefix = LAYOUT.prefix
    readers = {user: Device(secure_broker.url(user))
               for user in ("uav-01", "uav-02", "scanner-pdrmyy-01", "scanner-wjwsy-01",
                            "dronelog-ingester-2", "dronelog-receipts-1", "dronelog-notifier")}
    for device in readers.values():
        assert device.connect().value == SUCCESS
        # Mosquitto 2.0 grants the subscription, then checks each message against the ACL
        device.subscribe(f"{prefix}/receipts/#")
    ingester = Device(secure_broker.url("dronelog-ingester-1"))
    assert ingester.connect().value == SUCCESS
    sent = [LAYOUT.drone_receipts("uav-01"), LAYOUT.drone_receipts("uav-02"),
            LAYOUT.drone_receipts("uav-03"), LAYOUT.site_receipts("pdrmyy"),
            LAYOUT.site_receipts("wjwsy"), LAYOUT.site_receipts("cjzxwsy")]
    for topic in sent:
        assert ingester.publish(topic, b"{}") in (SUCCESS, NO_SUBSCRIBERS)
    received = {user: device.listen(0.5 if user == "uav-01" else 0.1)
                for user, device in readers.items()}
    assert received == {"uav-01": [LAYOUT.drone_receipts("uav-01")],
                        "uav-02": [LAYOUT.drone_receipts("uav-02")],
                        "scanner-pdrmyy-01": [LAYOUT.site_receipts("pdrmyy")],
                        "scanner-wjwsy-01": [LAYOUT.site_receipts("wjwsy")],
                        "dronelog-ingester-2": [], "dronelog-receipts-1": [],
                        "dronelog-notifier": []}


@pytest.mark.mosquitto
@pytest.mark.parametrize("receipts_login", [None, "dronelog-receipts-1"])
def test_the_real_ingester_sends_a_drone_its_receipt_through_the_shipped_acl(secure_broker,
                                                                             tmp_path,
                                                                             receipts_login):
    """The shipped ACL lets the ingester publish receipts, on its own connection or on the
    receipts' (a refused one would also cost it its connection), and the drone read its own."""
    broker = secure_broker
    receipts = {"receipts_mqtt_url": broker.url(receipts_login)} if receipts_login else {}
    ingester, db = start_ingester(broker.url("dronelog-ingester-1"), tmp_path / "ingester",
                                  **receipts)
    drone = Device(broker.url("uav-01"))
    payloads: list[tuple[str, dict]] = []
    drone.client.on_message = lambda _c, _u, message: payloads.append(
        (message.topic, json.loads(message.payload)))
    assert drone.connect().value == SUCCESS
    drone.subscribe(LAYOUT.drone_receipts("uav-01"))
    own = telemetry("uav-01", seq=1)
    assert drone.publish(LAYOUT.telemetry("uav-01"), own.model_dump_json()) == SUCCESS
    deadline = time.monotonic() + 15
    while not payloads and time.monotonic() < deadline:
        drone.client.loop(timeout=0.05)
    assert [(topic, [(e["event_id"], e["outcome"]) for e in receipt["events"]])
            for topic, receipt in payloads] == [
        (LAYOUT.drone_receipts("uav-01"), [(str(own.event_id), "stored")])]
    assert count(db, TELEMETRY_ROWS) == 1
    drone.close()
    assert ingester.terminate() == 0
    log = ingester.log_path.read_text()
    assert "disconnected from broker; paho reconnects" not in log
    assert '"receipts_failed": 0' in log and '"receipts_refused_by_broker": 0' in log
    # Mosquitto names each login that connected (connection_messages true)
    assert ("u'dronelog-receipts-1'" in broker.log()) == bool(receipts_login)


@pytest.mark.mosquitto
def test_the_ingester_stores_what_the_broker_lets_through_and_nothing_else(secure_broker,
                                                                          tmp_path):
    """Every refused message below is a valid event whose payload agrees with its topic: only
    the broker can stop it, so the database proves the broker did."""
    broker = secure_broker
    ingester, db = start_ingester(broker.url("dronelog-ingester-1"), tmp_path / "ingester")

    uav01 = Device(broker.url("uav-01"))
    assert uav01.connect().value == SUCCESS
    own = telemetry("uav-01", seq=1)
    assert uav01.publish(LAYOUT.telemetry("uav-01"), own.model_dump_json()) == SUCCESS
    assert uav01.publish(LAYOUT.telemetry("uav-02"),
                         telemetry("uav-02", seq=1).model_dump_json()) == NOT_AUTHORIZED
    uav01.close()  # one connection per login: the next uav-01 client would replace it

    # MQTT 3.1.1 has no reason codes: the broker acknowledges the message and drops it (and
    # Mosquitto 2.0 with max_queued_messages 0 then closes the connection)
    old = Device(broker.url("uav-01"), protocol="3.1.1")
    assert old.connect().value == SUCCESS
    assert old.publish(LAYOUT.telemetry("uav-02"),
                       telemetry("uav-02", seq=2).model_dump_json()) == SUCCESS
    old.close()

    # A last will is published by the broker on the client's behalf, checked against the ACL
    # when it is published (Mosquitto 2.0 accepts the connection)
    rogue = Device(broker.url("uav-01"), will=(LAYOUT.status("uav-02"), status("uav-02")))
    assert rogue.connect().value == SUCCESS
    rogue.drop()
    honest = Device(broker.url("uav-01"), will=(LAYOUT.status("uav-01"), status("uav-01")))
    assert honest.connect().value == SUCCESS
    honest.drop()

    scanner = Device(broker.url("scanner-pdrmyy-01"))
    assert scanner.connect().value == SUCCESS
    received = scan("custody.received")  # at pdrmyy, this scanner's site
    assert scanner.publish(LAYOUT.site_custody("pdrmyy"), json.dumps(received)) == SUCCESS
    assert scanner.publish(LAYOUT.site_custody("cjzxwsy"),
                           json.dumps(scan("custody.collected"))) == NOT_AUTHORIZED
    scanner.close()

    assert wait_for_count(db, TELEMETRY_ROWS, 1, timeout=15) == 1
    assert wait_for_count(db, CUSTODY_ROWS, 1, timeout=15) == 1
    assert wait_for_count(db, STATUS_ROWS, 1, timeout=15, settle=1.0) == 1
    assert count(db, TELEMETRY_ROWS) == 1
    assert count(db, CUSTODY_ROWS) == 1
    assert count(db, DEAD_LETTERS) == 0
    with db.connect() as connection:
        assert connection.execute(text("SELECT event_id FROM telemetry")).scalar_one() \
            .replace("-", "") == own.event_id.hex
        assert connection.execute(text(
            "SELECT drone_id FROM drone_status_event")).scalar_one() == "uav-01"
        assert connection.execute(text("SELECT event_id FROM custody_event")).scalar_one() \
            .replace("-", "") == uuid.UUID(received["event_id"]).hex
    assert ingester.terminate() == 0


@pytest.mark.mosquitto
@pytest.mark.parametrize("guarded", [True, False], ids=["shipped", "without_username_as_id"])
def test_a_device_cannot_take_over_the_ingesters_session(tools, pki, tmp_path, guarded):
    """The ingester's persistent session holds what arrives while it is away. Without
    `use_username_as_clientid`, any login that sends the ingester's client id takes that
    session over, and the messages queued in it are lost; with it, the client id is the
    username. A paho client with the ingester's login, client id and session stands in for
    the ingester (the other tests run the real one)."""
    client_id = "dronelog-ingester-1"  # as docker-compose.yml sets DRONELOG_MQTT_CLIENT_ID
    broker = SecureBroker(tmp_path / "broker", tools, pki,
                          without=() if guarded else ("use_username_as_clientid",))
    try:
        ingester = Device(broker.url("dronelog-ingester-1"), client_id=client_id)
        assert ingester.connect(clean_start=False).value == SUCCESS
        ingester.subscribe(*(topic_filter for topic_filter, _ in LAYOUT.subscriptions()))
        ingester.close()  # away: the broker keeps its session and queues for it
        uav01 = Device(broker.url("uav-01"))
        assert uav01.connect().value == SUCCESS
        for seq in range(3):
            event = telemetry("uav-01", seq=seq).model_dump_json()
            assert uav01.publish(LAYOUT.telemetry("uav-01"), event) == SUCCESS
        uav01.close()

        thief = Device(broker.url("uav-02"), client_id=client_id)
        assert thief.connect(clean_start=False).value == SUCCESS
        assert thief.session_present is not guarded
        assert thief.listen(0.3) == []  # the ACL still keeps the messages from the thief
        thief.close()

        ingester = Device(broker.url("dronelog-ingester-1"), client_id=client_id)
        assert ingester.connect(clean_start=False).value == SUCCESS
        assert ingester.session_present
        assert len(ingester.listen(0.5)) == (3 if guarded else 0)
        ingester.close()
    finally:
        broker.stop()


@pytest.mark.mosquitto
def test_a_misconfigured_broker_is_caught_by_the_ingesters_identity_check(tools, pki, tmp_path):
    """With a careless grant in the ACL the broker lets a device write where it should not.
    The ingester still dead-letters every message whose payload speaks for another drone or
    site than its topic (`identity_mismatch`). What it cannot catch is a payload that lies
    as well as its topic: against that, only the broker's ACL protects."""
    careless = ("\n# careless grants, as when someone 'just makes it work'\n"
                "user uav-01\ntopic write dronelog/v1/#\n"
                "user scanner-wjwsy-01\ntopic write dronelog/v1/sites/#\n")
    broker = SecureBroker(tmp_path / "broker", tools, pki,
                          acl=(DEPLOY / "acl").read_text() + careless)
    try:
        ingester, db = start_ingester(broker.url("dronelog-ingester-1"), tmp_path / "ingester")
        uav01 = Device(broker.url("uav-01"))
        assert uav01.connect().value == SUCCESS
        # uav-01 misconfigured (or confused) sends its own report on uav-02's topic
        assert uav01.publish(LAYOUT.telemetry("uav-02"),
                             telemetry("uav-01").model_dump_json()) == SUCCESS
        # ... and on uav-02's custody topic, a handover with itself as the actor
        unloaded = scan("custody.unloaded", actor={"kind": "drone", "id": "uav-01"})
        assert uav01.publish(LAYOUT.drone_custody("uav-02"), json.dumps(unloaded)) == SUCCESS
        uav01.close()
        scanner = Device(broker.url("scanner-wjwsy-01"))
        assert scanner.connect().value == SUCCESS
        collected = scan("custody.collected", site_id="wjwsy")
        assert scanner.publish(LAYOUT.site_custody("pdrmyy"), json.dumps(collected)) == SUCCESS
        scanner.close()

        assert wait_for_count(db, DEAD_LETTERS, 3, timeout=15, settle=0.5) == 3
        with db.connect() as connection:
            letters = connection.execute(text(
                "SELECT reason_code, topic FROM dead_letter ORDER BY topic")).all()
        assert [tuple(letter) for letter in letters] == sorted([
            ("identity_mismatch", LAYOUT.drone_custody("uav-02")),
            ("identity_mismatch", LAYOUT.telemetry("uav-02")),
            ("identity_mismatch", LAYOUT.site_custody("pdrmyy"))], key=lambda x: x[1])
        assert count(db, TELEMETRY_ROWS) == 0
        assert count(db, CUSTODY_ROWS) == 0

        # The limit: a payload that impersonates uav-02 as fully as its topic is stored
        uav01 = Device(broker.url("uav-01"))
        assert uav01.connect().value == SUCCESS
        assert uav01.publish(LAYOUT.telemetry("uav-02"),
                             telemetry("uav-02").model_dump_json()) == SUCCESS
        uav01.close()
        assert wait_for_count(db, TELEMETRY_ROWS, 1, timeout=15) == 1
        assert ingester.terminate() == 0
    finally:
        broker.stop()


@pytest.mark.mosquitto
def test_tls_with_a_private_ca(secure_broker, pki, tmp_path):
    """The ingester and the simulator connect to the TLS listener trusting the test CA; a
    client that trusts only the system's CAs refuses the broker's certificate."""
    broker = secure_broker
    ingester, db = start_ingester(broker.url("dronelog-ingester-1", tls=True, cafile=pki.ca),
                                  tmp_path / "ingester")
    simulator = DevicePublisher(broker.url("uav-01", tls=True, cafile=pki.ca), LAYOUT)
    event = telemetry("uav-01")
    simulator.publish(LAYOUT.telemetry("uav-01"), event.model_dump_json().encode())
    assert simulator.wait_acked(10)
    simulator.close()
    assert wait_for_count(db, TELEMETRY_ROWS, 1, timeout=15, settle=0.5) == 1
    assert ingester.terminate() == 0

    stranger = Device(broker.url("uav-01", tls=True))  # verification on, without our CA
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.connect()
    # plain MQTT is not spoken on the TLS port
    plain = Device(f"mqtt://uav-01:{broker.passwords['uav-01']}@127.0.0.1:{broker.tls_port}")
    with pytest.raises(ConnectionError):
        plain.connect()


@pytest.mark.mosquitto
def test_tls_with_client_certificates_when_the_broker_requires_them(tools, pki, tmp_path):
    """With `require_certificate true` a device also needs a certificate from the CA; dronelog
    gives its own from the URL's certfile and keyfile."""
    broker = SecureBroker(tmp_path / "broker", tools, pki, require_certificate=True)
    try:
        with_certificate = Device(broker.url("uav-01", tls=True, cafile=pki.ca,
                                             certfile=pki.client_cert, keyfile=pki.client_key))
        assert with_certificate.connect().value == SUCCESS
        assert with_certificate.publish(LAYOUT.telemetry("uav-01"), b"{}") == NO_SUBSCRIBERS
        with_certificate.close()
        # the password alone is not enough: the handshake fails, at once or (TLS 1.3) on the
        # client's first read
        with pytest.raises((ssl.SSLError, ConnectionError)):
            Device(broker.url("uav-01", tls=True, cafile=pki.ca)).connect()
    finally:
        broker.stop()
