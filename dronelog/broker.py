"""A local MQTT broker for the demo and the tests: Mosquitto when installed, else amqtt.

Mosquitto is the real thing: persistence on disk, MQTT 5, Receive Maximum, queues for
persistent sessions. The pure-Python amqtt broker is a fallback so the demo runs anywhere; it
speaks only MQTT 3.1.1, keeps sessions in memory and may drop QoS 1 messages it already
acknowledged when a publisher disconnects at once. Never run production on it.
"""

import asyncio
import getpass
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import structlog

log = structlog.get_logger("dronelog.broker")

# Settings the ingester's guarantees rely on (see docs/contract.md): queue every QoS 1
# message for a persistent session that is away, however many, and keep them on disk.
# Mosquitto writes its whole in-memory state at each autosave (and at a clean stop); every
# second was measured to bog it down under a backlog of hundreds of thousands of messages
# (docs/benchmarks.md), so it saves every 10 s: a broker that crashes (not one that is
# stopped or restarted) can lose up to 10 s of messages it had acknowledged.
# set_tcp_nodelay: Mosquitto's default leaves Nagle's algorithm on for its client sockets, and
# a message to the ingester waited 9 ms at the median (18 ms at p99) for the previous one's
# TCP acknowledgement; with Nagle off, 0.3 ms (docs/benchmarks.md, issue 18).
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
user {user}
allow_anonymous true
persistence true
persistence_location {data_dir}/
autosave_interval 10
max_queued_messages 0
max_inflight_messages 0
max_keepalive 120
set_tcp_nodelay {tcp_nodelay}
log_dest stderr
log_type error
log_type warning
"""


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_chooser = random.SystemRandom()  # not the `random` a test run seeds alike in every worker


def free_port() -> int:
    """A loopback port free now, for a server started next (a private broker, database or
    API). Where the kernel says which ports it hands to outgoing connections, the port is
    chosen below them: one from that range can be taken as the local end of any connection
    made between this choice and the server's bind, and the server then fails to start."""
    try:
        low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    candidates = ([_chooser.randrange(max(1024, low - 12000), low) for _ in range(50)]
                  if low > 2048 else [])
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # none free or allowed
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for_port(port: int, timeout: float, is_alive) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        if not is_alive():
            raise RuntimeError("the broker exited before it accepted connections")
        time.sleep(0.05)
    raise TimeoutError(f"no broker listening on 127.0.0.1:{port} after {timeout} s")


class MosquittoBroker:
    """A private Mosquitto process on 127.0.0.1, with its own config and data folder."""

    protocol = "5"

    def __init__(self, data_dir: Path, port: int | None = None,
                 binary: str | None = None, preexec_fn=None, tcp_nodelay: bool = True) -> None:
        """`tcp_nodelay=False` only to measure what it saves (benchmarks/live.py, ingest.py)."""
        self.binary = binary or self.find()
        self.tcp_nodelay = tcp_nodelay
        self.preexec_fn = preexec_fn
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @staticmethod
    def find() -> str | None:
        """The mosquitto binary: DRONELOG_MOSQUITTO_BIN if set, else from PATH or /usr/sbin."""
        if "DRONELOG_MOSQUITTO_BIN" in os.environ:
            configured = os.environ["DRONELOG_MOSQUITTO_BIN"]
            return configured if Path(configured).is_file() else None
        found = shutil.which("mosquitto")
        return found or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)

    @classmethod
    def available(cls) -> bool:
        return cls.find() is not None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        # Run as the invoking user: started as root, Mosquitto would otherwise switch to the
        # `mosquitto` user, which cannot write its persistence file into our folder.
        return MOSQUITTO_CONF.format(port=self.port, data_dir=self.data_dir,
                                     user=getpass.getuser(),
                                     tcp_nodelay=str(self.tcp_nodelay).lower())

    def start(self) -> "MosquittoBroker":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        with open(self.data_dir / "mosquitto.log", "ab") as log_file:
            # Its own session: Ctrl-C on the demo must not stop the broker before the
            # ingester has stored and acknowledged what it holds.
            self.process = subprocess.Popen([self.binary, "-c", str(conf)],
                                            stdout=subprocess.DEVNULL, stderr=log_file,
                                            start_new_session=True,
                                            preexec_fn=self.preexec_fn)
        _wait_for_port(self.port, 10, lambda: self.process.poll() is None)
        log.info("mosquitto started", port=self.port, data_dir=str(self.data_dir))
        return self

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class AmqttBroker:
    """The in-process fallback broker, on its own event loop thread."""

    protocol = "3.1.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "AmqttBroker":
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._broker = Broker(config)
                await self._broker.start()
                started.set()

            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the amqtt broker did not start")
        log.warning("Mosquitto not found: using the embedded amqtt broker (MQTT 3.1.1, no "
                    "persistence across restarts); install mosquitto for real use",
                    port=self.port)
        return self

    def stop(self) -> None:
        if self._loop and self._broker:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._broker = None


def start_local_broker(data_dir: Path, port: int | None = None,
                       preexec_fn=None) -> MosquittoBroker | AmqttBroker:
    """Mosquitto (run with `preexec_fn` between fork and exec, if given), else amqtt."""
    if MosquittoBroker.available():
        return MosquittoBroker(data_dir, port, preexec_fn=preexec_fn).start()
    return AmqttBroker(port).start()
