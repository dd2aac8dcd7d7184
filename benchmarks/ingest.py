"""End-to-end telemetry ingest benchmark: MQTT QoS 1 -> dronelog Ingester -> SQLite / PostgreSQL.

What is measured, for the same pre-generated stream of N contract `Telemetry` messages:

- bare:             one paho MQTT 5 client subscribed at QoS 1 that only counts (auto-ack): the
                    receive rate a Python consumer can reach on this machine and broker;
- ingester-sqlite:  the real `dronelog.ingest.service.Ingester` on a fresh, migrated SQLite file;
- ingester-pg:      the same on a fresh PostgreSQL database (created, then dropped);
- naive-sqlite / naive-pg: a consumer as one would first write it: paho on_message ->
                    json.loads -> one INSERT + commit per message (auto-ack).

Every consumer runs in its own process, and so does the publisher (MQTT 5, QoS 1), so that
none of them shares a GIL with another. The broker is a private Mosquitto started with
`dronelog.broker.MosquittoBroker` on a free loopback port. Throughput is N divided by the
time from the first publish to the moment the telemetry row count in the database reaches N
(for `bare`: the moment the N-th message was counted).

Ingester scenarios run with receipts (docs/contract.md) off and on, one after the other in each
run (`--receipts both`, the default), so that their cost is measured in the same conditions.
Nobody subscribes to the receipts here: the broker drops them, so the figure is the ingester's
own cost (building and publishing one receipt per drone per batch), not the broker's cost of
delivering them to devices.

`--duration-min` adds a soak: the publisher sends at a fixed rate for that long and the
ingester process's RSS (VmRSS), the broker's RSS and the lag (broker-acknowledged publishes
minus stored rows) are sampled every `--sample-s` seconds.

Results: a markdown table on stdout, progress on stderr, everything in `--json`.

    .venv/bin/python benchmarks/ingest.py --json bench.json
    .venv/bin/python benchmarks/ingest.py --soak-only --duration-min 10 --soak-rate 10000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_databases import ScratchDatabase, conninfo  # beside this script

SCENARIOS = ("bare", "ingester-sqlite", "ingester-pg", "naive-sqlite", "naive-pg")
# Two ingester processes sharing the stream ($share/bench/...): run on request only.
SHARED = ("ingester-sqlite-x2", "ingester-pg-x2")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PREFIX = "dronelog/v1"
RECEIPT_MODES = {"both": (False, True), "on": (True,), "off": (False,)}
MAX_UNACKED = 20_000  # publisher: stay well below paho's 65535 message ids


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- payloads --------------------------------------------------------------------------------


def _telemetry(drone: int, seq: int, event_time: datetime, event_id: uuid.UUID,
               rng: random.Random, full: bool) -> str:
    """One Telemetry message as JSON. `full`: every optional field too (~350 bytes); else the
    contract's required fields only (~255 bytes), optional fields left out."""
    from dronelog.contract.messages import Telemetry

    optional = {}
    if full:
        optional = {"flight_id": f"FLT-{drone:05d}-{seq // 3600:04d}",
                    "height_m": round(60 + rng.random() * 60, 1),
                    "payload_temp_c": round(2 + rng.random() * 6, 2),
                    "link_quality_pct": round(50 + rng.random() * 50, 1)}
    event = Telemetry(
        schema_version=1, event_id=event_id, event_time=event_time,
        drone_id=f"drone-{drone:05d}", seq=seq,
        lat=round(31.0 + rng.random() * 0.5, 6), lon=round(121.2 + rng.random() * 0.6, 6),
        alt_m=round(80 + rng.random() * 60, 1), ground_speed_mps=round(rng.random() * 25, 2),
        heading_deg=round(rng.random() * 359, 1), battery_pct=round(20 + rng.random() * 80, 1),
        **optional,
    )
    return event.model_dump_json(exclude_none=True)


def make_payloads(count: int, drones: int, seed: int, full: bool) -> list[tuple[str, bytes]]:
    """`count` Telemetry messages round-robin over `drones` drone ids; seq +1 per drone."""
    from dronelog.contract.topics import TopicLayout

    layout = TopicLayout(PREFIX)
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(seconds=count / 1000)
    topics = [layout.telemetry(f"drone-{d:05d}") for d in range(min(drones, count))]
    out = []
    for i in range(count):
        drone, seq = i % drones, i // drones
        payload = _telemetry(drone, seq, start + timedelta(milliseconds=i),
                             uuid.UUID(int=rng.getrandbits(128), version=4), rng, full)
        out.append((topics[drone], payload.encode()))
    return out


class TemplateStream:
    """Endless Telemetry stream for the soak: one model_dump_json template per drone, with the
    event id, event time and seq filled in at send time (cheap enough for 10,000+ msg/s)."""

    def __init__(self, drones: int, seed: int, full: bool) -> None:
        from dronelog.contract.messages import Telemetry
        from dronelog.contract.topics import TopicLayout

        layout = TopicLayout(PREFIX)
        rng = random.Random(seed)
        self.run_id = rng.getrandbits(48)
        marker_id = uuid.UUID("11111111-2222-4333-8444-555555555555")
        marker_time = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
        marker_seq = 987654321987
        self.templates = []
        for d in range(drones):
            dump = _telemetry(d, marker_seq, marker_time, marker_id, rng, full)
            marker_time_text = json.loads(dump)["event_time"]
            assert "%" not in dump
            template = (dump.replace(str(marker_id), "%(e)s")
                        .replace(marker_time_text, "%(t)s")
                        .replace(f'"seq":{marker_seq}', '"seq":%(s)d'))
            assert template.count("%(") == 3, template
            self.templates.append((layout.telemetry(f"drone-{d:05d}"), template))
        self.drones = drones
        self.i = 0
        # one sample through the contract model, to be sure the template stays valid
        topic, payload = self.next(datetime.now(UTC).isoformat())
        Telemetry.model_validate_json(payload)
        self.i = 0

    def next(self, event_time: str) -> tuple[str, bytes]:
        i = self.i
        self.i += 1
        topic, template = self.templates[i % self.drones]
        h = f"{self.run_id:012x}{i:020x}"
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        return topic, (template % {"e": event_id, "t": event_time,
                                   "s": i // self.drones}).encode()


# --- child processes -------------------------------------------------------------------------


def _mqtt5_client(client_id: str, **kwargs):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                       **kwargs)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class RawPublisher:
    """A minimal MQTT 5 QoS 1 publisher on a plain socket: frames PUBLISH packets itself and
    writes them in large chunks; a reader thread counts PUBACKs. It spends far less CPU per
    message than paho, so on a small machine the publisher does not starve the consumer."""

    def __init__(self, port: int, client_id: str, on_ack) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = (b"\x00\x04MQTT\x05\x02" + (120).to_bytes(2, "big") + b"\x00"
                + len(cid).to_bytes(2, "big") + cid)
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        head = self._recv_exact(2)
        if head[0] != 0x20:
            raise RuntimeError(f"expected CONNACK, got packet type {head[0] >> 4}")
        length = head[1]  # CONNACK is short; a longer one has properties, read them all
        if length & 0x80:
            raise RuntimeError("unexpectedly long CONNACK")
        rest = self._recv_exact(length)
        if rest[1] != 0:
            raise RuntimeError(f"broker refused the connection: reason {rest[1]}")
        self.on_ack = on_ack
        self.next_id = 0
        self.last_ping = time.monotonic()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            pos, acks, size = 0, 0, len(buffer)
            while pos + 2 <= size:
                kind = buffer[pos] >> 4
                length, shift, i = 0, 0, pos + 1
                while i < size:
                    byte = buffer[i]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if i + length > size:
                    break
                if kind == 4:  # PUBACK
                    acks += 1
                pos = i + length
            buffer = buffer[pos:]
            if acks:
                self.on_ack(acks)

    def send(self, messages) -> None:
        parts = []
        for topic, payload in messages:
            self.next_id = self.next_id % 65535 + 1
            t = topic.encode()
            body = (len(t).to_bytes(2, "big") + t + self.next_id.to_bytes(2, "big") + b"\x00"
                    + payload)
            parts.append(b"\x32" + _varint(len(body)) + body)
        if time.monotonic() - self.last_ping > 30:
            parts.append(b"\xc0\x00")  # PINGREQ: keep the 120 s keepalive happy
            self.last_ping = time.monotonic()
        self.sock.sendall(b"".join(parts))

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


class PahoPublisher:
    def __init__(self, port: int, client_id: str, on_ack, inflight: int) -> None:
        connected = threading.Event()
        self.client = _mqtt5_client(client_id)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = lambda *_args: on_ack(1)
        self.client.on_connect = lambda *_args: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=120)
        self.client.loop_start()
        if not connected.wait(15):
            raise RuntimeError("publisher could not connect")

    def send(self, messages) -> None:
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher_main(port: int, payloads, soak: dict | None, kind: str, inflight: int, ready, go,
                   published, results) -> None:
    """Publish `payloads` (or a rate-limited TemplateStream when `soak`) at QoS 1.

    At most MAX_UNACKED messages are outstanding (sent, not yet PUBACKed by the broker): paho
    numbers messages 1..65535 and keys its pending QoS 1 messages by that number, so more
    would overwrite each other and never complete; the raw publisher reuses ids the same way.
    """
    acked = 0
    lock = threading.Lock()
    total = [len(payloads) if payloads is not None else None]
    all_acked = threading.Event()

    def on_ack(n: int) -> None:
        nonlocal acked
        with lock:
            acked += n
            published.value = acked
            if total[0] is not None and acked >= total[0]:
                all_acked.set()

    client_id = f"bench-pub-{uuid.uuid4().hex[:8]}"
    client = (RawPublisher(port, client_id, on_ack) if kind == "raw"
              else PahoPublisher(port, client_id, on_ack, inflight))
    stream = TemplateStream(soak["drones"], soak["seed"], soak["full"]) if soak else None
    ready.set()
    go.wait()
    out: dict = {"publisher": kind}
    chunk = 500
    if payloads is not None:
        t_first = time.monotonic()
        for start in range(0, len(payloads), chunk):
            while start - acked > MAX_UNACKED:
                time.sleep(0.0005)
            client.send(payloads[start:start + chunk])
        t_sent = time.monotonic()
        all_acked.wait(3600)
        out.update(t_first=t_first, t_sent=t_sent, t_acked=time.monotonic(), sent=len(payloads),
                   acked=acked)
    else:
        rate, duration = soak["rate"], soak["duration_s"]
        sent = 0
        throttled = 0.0
        t_first = time.monotonic()
        while True:
            now = time.monotonic()
            elapsed = now - t_first
            if elapsed >= duration:
                break
            if sent - acked > MAX_UNACKED:  # the broker stopped keeping up: back off
                throttled += 0.005
                time.sleep(0.005)
                continue
            target = min(int(rate * elapsed), sent + chunk)
            if sent >= target:
                time.sleep(0.002)
                continue
            stamp = datetime.now(UTC).isoformat()
            client.send([stream.next(stamp) for _ in range(target - sent)])
            sent = target
        t_sent = time.monotonic()
        with lock:
            total[0] = sent
            if acked >= sent:
                all_acked.set()
        all_acked.wait(600)
        out.update(t_first=t_first, t_sent=t_sent, t_acked=time.monotonic(), sent=sent,
                   acked=acked, throttled_s=round(throttled, 3))
    client.close()
    results.put(("publisher", out))


def bare_main(port: int, expected: int, ready, stop, counter, done_at, results) -> None:
    """Count messages, nothing else; paho acknowledges each after on_message returns."""
    count = 0

    def on_connect(client, _userdata, _flags, _reason_code, _properties) -> None:
        client.subscribe(f"{PREFIX}/drones/#", qos=1)

    def on_message(_client, _userdata, _message) -> None:
        nonlocal count
        count += 1
        if count % 500 == 0:
            counter.value = count
        if count == expected:
            done_at.value = time.monotonic()
            counter.value = count

    client = _mqtt5_client(f"bench-bare-{uuid.uuid4().hex[:8]}")
    client.on_connect = on_connect
    client.on_subscribe = lambda *_args: ready.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=120, clean_start=True)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    counter.value = count
    results.put(("consumer", {"received": count}))


def ingester_main(settings_kwargs: dict, ready, stop, status, results) -> None:
    """The real Ingester, in this process's main thread; `status` mirrors its stats."""
    from dronelog.config import Settings
    from dronelog.ingest.service import Ingester
    from dronelog.logs import configure_logging
    from dronelog.storage.database import create_db_engine

    configure_logging("WARNING", "console")
    settings = Settings(**settings_kwargs)
    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    ingester = Ingester(settings, engine, progress_every_s=3600)
    client = ingester.source.client
    client.on_subscribe = lambda *_args: ready.set()  # MqttSource sets no on_subscribe itself
    finished = threading.Event()

    def mirror() -> None:
        while not finished.is_set():
            stats = ingester.stats
            status[0] = stats.received
            status[1] = stats.acked
            status[2] = stats.batches
            status[3] = ingester.source._queue.qsize()  # noqa: SLF001 - observation only
            status[4] = stats.storage_retries
            if stop.wait(0.5):
                ingester.request_stop()

    watcher = threading.Thread(target=mirror, daemon=True)
    watcher.start()
    stats = ingester.run()
    finished.set()
    engine.dispose()
    results.put(("consumer", {
        "received": stats.received, "acked": stats.acked, "batches": stats.batches,
        "stored": dict(stats.stored), "duplicates": stats.duplicates,
        "dead_lettered": dict(stats.dead_lettered), "storage_retries": stats.storage_retries,
        "receipts_published": stats.receipts_published, "receipts_failed": stats.receipts_failed,
        "effective_settings": {name: getattr(settings, name) for name in (
            "batch_size", "batch_interval_s", "receive_maximum", "sqlite_synchronous",
            "mqtt_protocol", "receipts", "receipt_hold_s", "receipts_mqtt_url")},
    }))


NAIVE_COLUMNS = ("event_id", "drone_id", "seq", "flight_id", "event_time", "received_at", "lat",
                 "lon", "alt_m", "height_m", "ground_speed_mps", "heading_deg", "battery_pct",
                 "payload_temp_c", "link_quality_pct")


def naive_main(kind: str, target: str, port: int, ready, stop, counter, results) -> None:
    """What one writes first: json.loads, one INSERT and one COMMIT per message, auto-ack."""
    if kind == "sqlite":
        connection = sqlite3.connect(target, check_same_thread=False)
        marks = ", ".join("?" for _ in NAIVE_COLUMNS)
    else:
        import psycopg

        connection = psycopg.connect(target)
        marks = ", ".join("%s" for _ in NAIVE_COLUMNS)
    sql = f"INSERT INTO telemetry ({', '.join(NAIVE_COLUMNS)}) VALUES ({marks})"
    cursor = connection.cursor()
    count = 0
    errors = 0

    def on_connect(client, _userdata, _flags, _reason_code, _properties) -> None:
        client.subscribe(f"{PREFIX}/drones/#", qos=1)

    def on_message(_client, _userdata, message) -> None:
        nonlocal count, errors
        try:
            d = json.loads(message.payload)
            event_id = uuid.UUID(d["event_id"]).hex if kind == "sqlite" else d["event_id"]
            cursor.execute(sql, (
                event_id, d["drone_id"], d["seq"], d.get("flight_id"), d["event_time"],
                datetime.now(UTC).isoformat(), d["lat"], d["lon"], d["alt_m"], d.get("height_m"),
                d["ground_speed_mps"], d["heading_deg"], d["battery_pct"], d.get("payload_temp_c"),
                d.get("link_quality_pct")))
            connection.commit()
            count += 1
            if count % 100 == 0:
                counter.value = count
        except Exception:  # noqa: BLE001 - the naive version just carries on
            errors += 1
            connection.rollback()

    client = _mqtt5_client(f"bench-naive-{uuid.uuid4().hex[:8]}")
    client.on_connect = on_connect
    client.on_subscribe = lambda *_args: ready.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=120, clean_start=True)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    connection.close()
    counter.value = count
    results.put(("consumer", {"received": count, "errors": errors}))


# --- databases -------------------------------------------------------------------------------


class Database(ScratchDatabase):
    """A bench_* database; `count()` reads the telemetry row count."""

    def __init__(self, kind: str, workdir: Path, pg_url: str) -> None:
        super().__init__(kind, workdir, pg_url, "bench")
        self._reader = None

    def count(self) -> int:
        if self._reader is None:
            if self.kind == "sqlite":
                self._reader = sqlite3.connect(self.raw_target, timeout=30)
            else:
                import psycopg

                self._reader = psycopg.connect(self.raw_target, autocommit=True)
        return self._reader.execute("SELECT count(*) FROM telemetry").fetchone()[0]

    def drop(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().drop()


# --- orchestration ---------------------------------------------------------------------------


def rss_kib(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def probe_redelivery(port: int, client_id: str, wait_s: float = 2.0) -> int:
    """Reconnect with the ingester's client id and persistent session: what the broker still
    holds unacknowledged arrives again. Disconnecting without a session expiry ends the session,
    so it does not keep queueing the next scenario's messages."""
    received = 0
    connected = threading.Event()

    def on_message(_client, _userdata, _message) -> None:
        nonlocal received
        received += 1

    client = _mqtt5_client(client_id, manual_ack=True)
    client.on_connect = lambda *_args: connected.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60, clean_start=False)
    client.loop_start()
    connected.wait(10)
    time.sleep(wait_s)
    client.disconnect()
    client.loop_stop()
    return received


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.ctx = mp.get_context("spawn")
        self.broker = None

    def start_broker(self) -> None:
        from dronelog.broker import MosquittoBroker

        self.broker = MosquittoBroker(self.workdir / "broker",
                                      tcp_nodelay=not self.args.broker_nagle).start()
        say(f"mosquitto pid {self.broker.process.pid} on 127.0.0.1:{self.broker.port}")

    def stop_broker(self) -> None:
        if self.broker:
            self.broker.stop()
            self.broker = None

    def settings_kwargs(self, database_url: str, client_id: str, receipts: bool = True) -> dict:
        kwargs = {"database_url": database_url, "mqtt_url": self.broker.url,
                  "mqtt_client_id": client_id, "mqtt_protocol": "5", "receipts": receipts}
        for name in ("batch_size", "batch_interval_s", "receive_maximum", "sqlite_synchronous",
                     "receipt_hold_s"):
            value = getattr(self.args, name)
            if value is not None:
                kwargs[name] = value
        if self.args.receipts_connection == "own":  # the benchmark's broker takes anyone
            kwargs["receipts_mqtt_url"] = self.broker.url
        return kwargs

    def _start_consumer(self, scenario: str, expected: int, db: Database | None,
                        shared_group: str | None = None, receipts: bool = True):
        ctx = self.ctx
        ready, stop = ctx.Event(), ctx.Event()
        results = ctx.Queue()
        info: dict = {"ready": ready, "stop": stop, "results": results}
        if scenario == "bare":
            info["counter"] = ctx.Value("q", 0, lock=False)
            info["done_at"] = ctx.Value("d", 0.0, lock=False)
            target, args = bare_main, (self.broker.port, expected, ready, stop, info["counter"],
                                       info["done_at"], results)
        elif scenario.startswith("ingester"):
            info["client_id"] = f"bench-ingester-{uuid.uuid4().hex[:8]}"
            info["status"] = ctx.Array("q", 5, lock=False)
            kwargs = self.settings_kwargs(db.url, info["client_id"], receipts)
            if shared_group:
                kwargs["shared_group"] = shared_group
            info["settings"] = {k: v for k, v in kwargs.items() if k != "database_url"}
            target, args = ingester_main, (kwargs, ready, stop, info["status"], results)
        else:
            info["counter"] = ctx.Value("q", 0, lock=False)
            target, args = naive_main, (db.kind, db.raw_target, self.broker.port, ready, stop,
                                        info["counter"], results)
        process = ctx.Process(target=target, args=args, name=f"bench-{scenario}", daemon=True)
        process.start()
        info["process"] = process
        if not ready.wait(60):
            process.terminate()
            raise RuntimeError(f"{scenario}: consumer did not subscribe within 60 s")
        return info

    def _start_publisher(self, payloads, soak: dict | None):
        ctx = self.ctx
        ready, go = ctx.Event(), ctx.Event()
        results = ctx.Queue()
        published = ctx.Value("q", 0, lock=False)
        process = ctx.Process(target=publisher_main, name="bench-publisher", daemon=True,
                              args=(self.broker.port, payloads, soak, self.args.publisher,
                                    self.args.pub_inflight,
                                    ready, go, published, results))
        process.start()
        if not ready.wait(120):
            process.terminate()
            raise RuntimeError("publisher did not connect within 120 s")
        return {"process": process, "go": go, "results": results, "published": published}

    @staticmethod
    def _result(info: dict, timeout: float) -> dict:
        try:
            return info["results"].get(timeout=timeout)[1]
        except queue.Empty:
            return {}

    @staticmethod
    def _finish(process, timeout: float = 60) -> None:
        process.join(timeout)
        if process.is_alive():
            say(f"{process.name} still alive after {timeout} s: terminating it")
            process.terminate()
            process.join(10)

    def run_scenario(self, scenario: str, payloads, run: int, receipts: bool | None = None
                     ) -> dict:
        n = len(payloads)
        db = None
        if scenario != "bare":
            db = Database("sqlite" if "sqlite" in scenario else "postgresql",
                          self.workdir, self.args.pg_url)
        consumer = publisher = None
        extra_consumers = []
        try:
            shared = "bench" if scenario in SHARED else None
            consumer = self._start_consumer(scenario, n, db, shared, bool(receipts))
            if shared:
                extra_consumers.append(self._start_consumer(scenario, n, db, shared,
                                                            bool(receipts)))
            publisher = self._start_publisher(payloads, None)
            say(f"{scenario}{_receipts_label(receipts)} (run {run}): consumer pid "
                f"{consumer['process'].pid} subscribed, publisher pid "
                f"{publisher['process'].pid} ready; publishing {n} messages")
            timeout = self.args.timeout_s
            publisher["go"].set()
            t_go = time.monotonic()
            done_at = None
            stored = 0
            next_report = t_go + 5
            peak_rss = 0
            last_stored, last_change = -1, t_go
            while time.monotonic() - t_go < timeout:
                if scenario == "bare":
                    stored = consumer["counter"].value
                    if consumer["done_at"].value:
                        done_at = consumer["done_at"].value
                        stored = n
                        break
                    time.sleep(0.02)
                else:
                    stored = db.count()
                    if stored >= n:
                        done_at = time.monotonic()
                        break
                    time.sleep(0.02 if stored >= 0.95 * n else 0.25)
                peak_rss = max(peak_rss, sum(rss_kib(c["process"].pid) or 0
                                             for c in [consumer, *extra_consumers]))
                if time.monotonic() >= next_report:
                    extra = ""
                    if "status" in consumer:
                        s = consumer["status"]
                        extra = f", ingester received {s[0]} acked {s[1]} queue {s[3]}"
                    say(f"  {time.monotonic() - t_go:6.1f} s: published(acked by broker) "
                        f"{publisher['published'].value}, stored {stored}{extra}")
                    next_report = time.monotonic() + 5
                if stored != last_stored:
                    last_stored, last_change = stored, time.monotonic()
                elif time.monotonic() - last_change > self.args.stall_s:
                    say(f"{scenario}: no progress for {self.args.stall_s} s; giving up")
                    break
                if not consumer["process"].is_alive():
                    say(f"{scenario}: the consumer process died (exit code "
                        f"{consumer['process'].exitcode})")
                    break
            pub = self._result(publisher, 120)
            self._finish(publisher["process"])
            for info in (consumer, *extra_consumers):
                info["stop"].set()
            cons = self._result(consumer, 120)
            if extra_consumers:
                cons = {"members": [cons, *[self._result(c, 120) for c in extra_consumers]]}
            for info in (consumer, *extra_consumers):
                self._finish(info["process"])
            redelivered = None
            if "client_id" in consumer:
                redelivered = sum(probe_redelivery(self.broker.port, c["client_id"])
                                  for c in (consumer, *extra_consumers))
            final = n if scenario == "bare" else db.count()
            if scenario == "bare":
                final = cons.get("received", stored)
        finally:
            for info in (publisher, consumer, *extra_consumers):
                if info and info["process"].is_alive():
                    info["process"].terminate()
                    info["process"].join(10)
            if db:
                db.drop()
        t_first = pub.get("t_first", t_go)
        result = {
            "scenario": scenario, "run": run, "database": db.kind if db else None,
            "receipts": receipts,
            "messages": n, "finished": done_at is not None,
            "seconds": round(done_at - t_first, 3) if done_at else None,
            "msg_per_s": round(n / (done_at - t_first), 1) if done_at else None,
            "stored_at_end": final,
            "publish_seconds_to_last_puback": round(pub["t_acked"] - t_first, 3) if pub else None,
            "publish_msg_per_s": round(n / (pub["t_acked"] - t_first), 1) if pub else None,
            "consumer": cons, "consumer_peak_rss_kib": peak_rss or None,
            "redelivered_after_stop": redelivered,
        }
        if "settings" in consumer:
            result["settings"] = consumer["settings"]
        if not result["finished"]:
            say(f"{scenario}: NOT finished within {timeout} s (stored {stored} of {n})")
            if result["stored_at_end"]:
                result["partial_msg_per_s"] = round(stored / (time.monotonic() - t_first), 1)
        else:
            say(f"{scenario} (run {run}): {n} messages in {result['seconds']} s = "
                f"{result['msg_per_s']} msg/s; consumer {cons}")
        return result

    def run_soak(self) -> dict:
        args = self.args
        db = Database(args.soak_db, self.workdir, args.pg_url)
        duration_s = args.duration_min * 60
        samples = []
        consumer = publisher = None
        try:
            consumer = self._start_consumer(f"ingester-{args.soak_db}", 0, db)
            soak = {"rate": args.soak_rate, "duration_s": duration_s, "drones": args.drones,
                    "seed": args.seed, "max_unacked": MAX_UNACKED,
                    "full": args.payload == "full"}
            publisher = self._start_publisher(None, soak)
            pid = consumer["process"].pid
            say(f"soak: {args.soak_rate} msg/s for {args.duration_min} min on {args.soak_db}; "
                f"ingester pid {pid}, sampling every {args.sample_s} s")
            publisher["go"].set()
            t0 = time.monotonic()
            next_sample = t0
            status = consumer["status"]

            def sample() -> dict:
                started = time.monotonic()
                stored = db.count()
                published = publisher["published"].value
                row = {"t_s": round(started - t0, 1), "ingester_rss_kib": rss_kib(pid),
                       "broker_rss_kib": rss_kib(self.broker.process.pid),
                       "publisher_rss_kib": rss_kib(publisher["process"].pid),
                       "published": published, "stored": stored, "lag": published - stored,
                       "ingester_received": status[0], "ingester_acked": status[1],
                       "ingester_queue": status[3], "storage_retries": status[4],
                       "count_query_ms": round((time.monotonic() - started) * 1000, 1)}
                samples.append(row)
                say(f"  soak t={row['t_s']:6.1f}s rss={row['ingester_rss_kib']} KiB "
                    f"broker_rss={row['broker_rss_kib']} KiB published={published} "
                    f"stored={stored} lag={row['lag']} queue={row['ingester_queue']}")
                return row

            while publisher["process"].is_alive() and time.monotonic() - t0 < duration_s + 660:
                if time.monotonic() >= next_sample:
                    sample()
                    next_sample += args.sample_s
                time.sleep(0.2)
            pub = self._result(publisher, 60)
            self._finish(publisher["process"])
            sent = pub.get("acked", publisher["published"].value)
            drain_started = time.monotonic()
            while db.count() < sent and time.monotonic() - drain_started < 300:
                time.sleep(0.5)
            drained_s = time.monotonic() - drain_started
            last = sample()
            consumer["stop"].set()
            cons = self._result(consumer, 120)
            self._finish(consumer["process"])
            redelivered = probe_redelivery(self.broker.port, consumer["client_id"])
        finally:
            for info in (publisher, consumer):
                if info and info["process"].is_alive():
                    info["process"].terminate()
                    info["process"].join(10)
            db.drop()
        rss = [s["ingester_rss_kib"] for s in samples if s["ingester_rss_kib"]]
        after_first_minute = [s for s in samples if s["t_s"] >= 60 and s["ingester_rss_kib"]]
        slope = None
        if len(after_first_minute) >= 3:
            xs = [s["t_s"] for s in after_first_minute]
            ys = [s["ingester_rss_kib"] for s in after_first_minute]
            slope = statistics.linear_regression(xs, ys).slope * 60  # KiB per minute
        publish_s = pub["t_sent"] - pub["t_first"] if pub else None
        return {
            "database": args.soak_db, "target_rate": args.soak_rate, "duration_s": duration_s,
            "published_acked": sent, "stored_at_end": last["stored"],
            "achieved_publish_rate": round(sent / publish_s, 1) if publish_s else None,
            "publisher_throttled_s": pub.get("throttled_s") if pub else None,
            "drain_seconds_after_publish_end": round(drained_s, 1),
            "max_lag": max(s["lag"] for s in samples), "final_lag": last["lag"],
            "rss_kib_first": rss[0] if rss else None, "rss_kib_min": min(rss) if rss else None,
            "rss_kib_max": max(rss) if rss else None, "rss_kib_last": rss[-1] if rss else None,
            "rss_slope_kib_per_min_after_1min": round(slope, 1) if slope is not None else None,
            "consumer": cons, "redelivered_after_stop": redelivered, "samples": samples,
            "settings": consumer["settings"] if consumer else None,
        }


# --- reporting -------------------------------------------------------------------------------


def environment(pg_url: str) -> dict:
    import paho.mqtt
    import psycopg
    import pydantic
    import sqlalchemy

    env = {"python": platform.python_version(), "paho_mqtt": paho.mqtt.__version__,
           "sqlalchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__,
           "pydantic": pydantic.__version__, "sqlite": sqlite3.sqlite_version,
           "nproc": os.cpu_count(), "platform": platform.platform()}
    try:
        out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5)
        env["mosquitto"] = (out.stdout or out.stderr).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        env["mosquitto"] = None
    try:
        from sqlalchemy.engine import make_url

        with psycopg.connect(conninfo(make_url(pg_url)), autocommit=True) as c:
            env["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
            env["postgresql_settings"] = {
                name: c.execute(f"SHOW {name}").fetchone()[0]
                for name in ("synchronous_commit", "fsync", "shared_buffers", "wal_level")}
    except Exception as error:  # noqa: BLE001
        env["postgresql"] = f"unavailable: {error}"
    return env


def _receipts_label(receipts: bool | None) -> str:
    return "" if receipts is None else f" (receipts {'on' if receipts else 'off'})"


def receipts_cost(results: list[dict]) -> list[str]:
    """Per ingester scenario: median msg/s with receipts on and off, and their ratio."""
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in results if r["receipts"] is not None):
        rates = {mode: [r["msg_per_s"] for r in results if r["scenario"] == scenario
                        and r["receipts"] is mode and r["msg_per_s"]] for mode in (False, True)}
        if rates[False] and rates[True]:
            off, on = statistics.median(rates[False]), statistics.median(rates[True])
            lines.append(f"| {scenario} | {len(rates[False])} | {off:.1f} | {on:.1f} "
                         f"| {100 * on / off:.1f} % |")
    if lines:
        lines = ["", "| scenario | runs | msg/s receipts off (median) | msg/s receipts on "
                 "(median) | on / off |", "|---|---|---|---|---|", *lines]
    return lines


def markdown(results: list[dict], soak: dict | None) -> str:
    lines = []
    if results:
        bare = [r["msg_per_s"] for r in results if r["scenario"] == "bare" and r["msg_per_s"]]
        bare_median = statistics.median(bare) if bare else None
        lines += ["| scenario | database | run | messages | seconds | msg/s | % of bare (median) "
                  "| publisher msg/s | stored | acked | redelivered after stop |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results:
            share = (f"{100 * r['msg_per_s'] / bare_median:.1f} %"
                     if r["msg_per_s"] and bare_median else "-")
            acked = r["consumer"].get("acked", "auto") if r["consumer"] else "?"
            seconds = r["seconds"] if r["finished"] else f"not finished ({r['stored_at_end']})"
            lines.append(
                f"| {r['scenario']}{_receipts_label(r['receipts'])} | {r['database'] or '-'} "
                f"| {r['run']} | {r['messages']} "
                f"| {seconds} | {r['msg_per_s'] or '-'} | {share} | {r['publish_msg_per_s']} "
                f"| {r['stored_at_end']} | {acked} | "
                f"{'-' if r['redelivered_after_stop'] is None else r['redelivered_after_stop']} |")
        lines += receipts_cost(results)
    if soak:
        lines += ["", f"Soak: {soak['database']}, target {soak['target_rate']} msg/s for "
                  f"{soak['duration_s'] / 60:g} min; achieved publish rate "
                  f"{soak['achieved_publish_rate']} msg/s; stored {soak['stored_at_end']} of "
                  f"{soak['published_acked']}; max lag {soak['max_lag']}, final lag "
                  f"{soak['final_lag']}; drain after publishing ended "
                  f"{soak['drain_seconds_after_publish_end']} s; ingester RSS first/min/max/last "
                  f"{soak['rss_kib_first']}/{soak['rss_kib_min']}/{soak['rss_kib_max']}/"
                  f"{soak['rss_kib_last']} KiB, slope after the first minute "
                  f"{soak['rss_slope_kib_per_min_after_1min']} KiB/min; acked "
                  f"{soak['consumer'].get('acked')}; redelivered after stop "
                  f"{soak['redelivered_after_stop']}", "",
                  "| t (s) | ingester RSS (KiB) | broker RSS (KiB) | published | stored | lag "
                  "| ingester queue |", "|---|---|---|---|---|---|---|"]
        for s in soak["samples"]:
            lines.append(f"| {s['t_s']} | {s['ingester_rss_kib']} | {s['broker_rss_kib']} "
                         f"| {s['published']} | {s['stored']} | {s['lag']} "
                         f"| {s['ingester_queue']} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="End-to-end MQTT -> dronelog Ingester -> database telemetry throughput, "
                    "with a bare-receive and a naive-ingester reference, and an optional soak.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000,
                        help="messages per run for bare and ingester scenarios")
    parser.add_argument("--naive-count", type=int, default=10_000,
                        help="messages per run for the naive scenarios (one commit each)")
    parser.add_argument("--drones", type=int, default=10_000, help="distinct drone ids")
    parser.add_argument("--payload", choices=("minimal", "full"), default="minimal",
                        help="minimal: the contract's required Telemetry fields (~255 bytes); "
                             "full: every optional field too (~350 bytes)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {', '.join(SCENARIOS + SHARED)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario")
    parser.add_argument("--broker-nagle", action="store_true",
                        help="the broker with Nagle's algorithm on (Mosquitto's default; "
                        "dronelog's brokers set set_tcp_nodelay)")
    parser.add_argument("--receipts", choices=("both", "on", "off"), default="both",
                        help="ingester scenarios: receipts off then on in each run, or one")
    parser.add_argument("--receipts-connection", choices=("shared", "own"), default="shared",
                        help="ingester receipts on the ingester's connection (the default when "
                        "DRONELOG_RECEIPTS_MQTT_URL is unset) or on one of their own (as the "
                        "shipped compose file sets)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL admin URL; bench_* databases are created and dropped "
                             "on this server")
    parser.add_argument("--workdir", default=None,
                        help="where the temp dir (SQLite files, broker data) goes "
                             "(default: the system temp dir)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="Ingester batch_size (default: Settings default)")
    parser.add_argument("--batch-interval-s", type=float, default=None,
                        help="Ingester batch_interval_s (default: Settings default)")
    parser.add_argument("--receive-maximum", type=int, default=None,
                        help="Ingester receive_maximum (default: Settings default)")
    parser.add_argument("--sqlite-synchronous", default=None,
                        help="Ingester sqlite_synchronous (default: Settings default)")
    parser.add_argument("--receipt-hold-s", type=float, default=None,
                        help="Ingester receipt_hold_s: how long a sender's receipt may wait "
                        "(default: Settings default). The throughput is timed until the last event "
                        "is stored; receipts still held then go out after it, so a run not much "
                        "longer than the hold pays for few receipts: give --count enough "
                        "messages for several holds")
    parser.add_argument("--publisher", choices=("raw", "paho"), default="raw",
                        help="raw: pre-framed MQTT 5 PUBLISH packets on a socket (little CPU); "
                             "paho: a paho-mqtt client (costs about as much CPU as a consumer)")
    parser.add_argument("--pub-inflight", type=int, default=1000,
                        help="paho publisher's max in-flight QoS 1 messages")
    parser.add_argument("--timeout-s", type=float, default=300,
                        help="give up on a run after this long")
    parser.add_argument("--stall-s", type=float, default=60,
                        help="give up on a run when the stored count stays still this long")
    parser.add_argument("--duration-min", type=float, default=0,
                        help="also run a soak of this many minutes (0: no soak)")
    parser.add_argument("--soak-rate", type=int, default=10_000, help="soak publish rate, msg/s")
    parser.add_argument("--soak-db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sample-s", type=float, default=10, help="soak sampling interval")
    parser.add_argument("--soak-only", action="store_true", help="skip the throughput runs")
    parser.add_argument("--seed", type=int, default=20260509)
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS + SHARED)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.soak_only and not args.duration_min:
        parser.error("--soak-only needs --duration-min")
    return args


def _terminate(_signum, _frame) -> None:
    raise SystemExit(143)  # runs the cleanup in main()'s finally


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    from dronelog.broker import MosquittoBroker

    if not MosquittoBroker.available():
        say("mosquitto is not installed: this benchmark needs the real broker")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="dronelog-bench-", dir=args.workdir))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    bench = Bench(args, workdir)
    results: list[dict] = []
    soak = None
    try:
        bench.start_broker()
        if not args.soak_only and args.scenarios:
            say(f"pre-generating {args.count} telemetry payloads over {args.drones} drones")
            payloads = make_payloads(args.count, args.drones, args.seed, args.payload == "full")
            sizes = [len(p) for _, p in payloads]
            say(f"payload bytes: min {min(sizes)}, mean {statistics.fmean(sizes):.1f}, "
                f"max {max(sizes)}")
            naive_payloads = payloads[:args.naive_count]
            for run in range(1, args.repeat + 1):
                for scenario in args.scenarios:
                    stream = naive_payloads if scenario.startswith("naive") else payloads
                    if not scenario.startswith("ingester"):
                        results.append(bench.run_scenario(scenario, stream, run))
                        continue
                    for receipts in RECEIPT_MODES[args.receipts]:
                        results.append(bench.run_scenario(scenario, stream, run, receipts))
        if args.duration_min:
            soak = bench.run_soak()
    finally:
        bench.stop_broker()
        shutil.rmtree(workdir, ignore_errors=True)
    table = markdown(results, soak)
    print(table)
    if args.json:
        report = {"started_at": started_at,
                  "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "argv": sys.argv, "options": {k: v for k, v in vars(args).items()},
                  "environment": environment(args.pg_url), "results": results, "soak": soak,
                  "markdown": table}
        if results:
            report["payload_bytes_mean"] = round(statistics.fmean(sizes), 1)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
