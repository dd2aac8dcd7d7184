"""Live stream benchmark (issue 18): many SSE clients on GET /api/v1/stream, old and new
implementation in the same run.

Per database (SQLite: a temp file; PostgreSQL: a `bench_live_<random>` database created on
--pg-url and dropped at the end), seeded through dronelog's `BatchWriter` with --drones
drones and a few positions each (so the fleet view has content), with a dispatcher token.
Then, for each source tree (--old, e.g. a `git worktree` of the commit before the change feed,
and --new, by default this repository), in turn on the same database, each with a private
Mosquitto of its own (Nagle's algorithm off as dronelog ships it, on with --old-broker-nagle
or --new-broker-nagle):

- the tree's real ingester (`python -m dronelog ingest`) and its API (`benchmarks/api.py`'s
  SERVE: the app as `dronelog api` builds it, --api-processes uvicorn processes on ports of
  their own, the streams alternating between them; CPU is their sum), system clock, both
  with the tree's settings (--old-env / --new-env DRONELOG_NAME=VALUE, e.g. another
  DRONELOG_BATCH_INTERVAL_S) over this process's environment;
- the API process's CPU (utime + stime from /proc, in % of one core) over --idle-s with no
  stream attached;
- a load client in its own process (asyncio, raw sockets) attaches --streams (1,000) streams
  `?types=telemetry` with the dispatcher's token; the time to attach them all; the API's CPU
  over --idle-s with them attached and nothing published;
- the load client closes streams down to --publish-streams (500); --fleet-requests GET
  /api/v1/drones one at a time from this process to the first API process (client time
  around each request; at most --fleet-max-s);
- a publisher process (`benchmarks/api.py`'s, paho, MQTT 5, QoS 1) sends --rate (1,000)
  telemetry messages a second for --publish-s, each stamped with the wall-clock time of its
  publish; meanwhile this process keeps timing GET /api/v1/drones. --probes of the attached
  streams parse their frames (the others only drain their sockets and count resets); a
  message is visible on a probe when the bytes carrying its event id were read. Latency =
  read time - publish time, on the wall clock shared by the processes, for every message on
  every probe (the wait for the last ones ends 30 s after the publisher is done; pairs never
  seen are reported as missed); the API's CPU over the publishing window.

The machine's 1-minute load average is recorded before and after each figure: other
people's work on a shared machine shows there. Results: markdown on stdout, JSON in --json.

    git worktree add --detach /tmp/live-old <commit before the feed>
    .venv/bin/python benchmarks/live.py --old /tmp/live-old --json /tmp/live.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import (  # noqa: E402  (beside this script)
    ApiServer,
    load_average,
    make_token,
    publisher_main,
    say,
    summary,
)
from bench_databases import ScratchDatabase  # noqa: E402
from bench_databases import environment as machine_environment  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IDLE_TARGET_PCT = 10.0
VISIBLE_TARGET_MS = 100.0
FLEET_TARGET_MS = 50.0
EVENT_ID = re.compile(rb'"event_id": "([0-9a-f-]{36})"')
TICKS = os.sysconf("SC_CLK_TCK")


# --- the load client (its own process) -------------------------------------------------------


def client_main(ports: list[int], token: str, probes: int, commands, replies) -> None:
    """Child process: holds SSE streams and answers the commands sent on `commands`:
    ("attach", n), ("keep", n), ("frames",), ("stop",)."""
    asyncio.run(_client(ports, token, probes, commands, replies))


async def _client(ports: list[int], token: str, probes: int, commands, replies) -> None:
    request = (f"GET /api/v1/stream?types=telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode()
    streams: list[asyncio.Task] = []
    frames: list[tuple[int, int, bytes]] = []  # (probe, read time in µs, event id)
    counts = {"open": 0, "refused": 0, "resets": 0, "ended": 0, "probes": 0}
    gate = asyncio.Semaphore(50)  # connections being opened at once

    async def one(number: int, probe: int | None) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1",
                                                              ports[number % len(ports)])
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 300)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                counts["refused"] += 1
                return
        if not head.startswith(b"HTTP/1.1 200"):
            counts["refused"] += 1
            writer.close()
            return
        counts["open"] += 1
        counts["probes"] += probe is not None
        tail = b""
        try:
            while data := await reader.read(1 << 16):
                if probe is not None:
                    now = time.time_ns() // 1000
                    data, tail = tail + data, b""
                    cut = data.rfind(b"\n") + 1  # whole lines: an event id is in one
                    data, tail = data[:cut], data[cut:]
                    frames.extend((probe, now, m) for m in EVENT_ID.findall(data))
                counts["resets"] += data.count(b"event: reset")
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            counts["open"] -= 1
            counts["ended"] += 1
            writer.close()

    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, commands.recv)
        if command[0] == "attach":
            start = time.monotonic()
            target = len(streams) + command[1]
            while len(streams) < target:
                number = len(streams)
                streams.append(asyncio.create_task(
                    one(number, number if number < probes else None)))
            while counts["open"] + counts["refused"] < target \
                    and time.monotonic() - start < command[2]:
                await asyncio.sleep(0.05)
            replies.send({**counts, "attach_s": round(time.monotonic() - start, 2)})
        elif command[0] == "keep":
            for task in streams[command[1]:]:
                task.cancel()
            del streams[command[1]:]
            await asyncio.sleep(1.0)
            replies.send(dict(counts))
        elif command[0] == "frames":
            replies.send({"frames": [(p, t, m.decode()) for p, t, m in frames], **counts})
            frames.clear()
        else:
            for task in streams:
                task.cancel()
            replies.send(dict(counts))
            return


# --- measuring -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _cpu_or_none(pids: list[int]) -> float | None:
    """As cpu_seconds, summed; None once a process has gone (the publisher, when done)."""
    try:
        return sum(map(cpu_seconds, pids))
    except (OSError, IndexError, ValueError):
        return None


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_over(pids: list[int], seconds: float) -> dict:
    """The CPU the processes `pids` used together over `seconds`, in % of one core."""
    load = [load_average()]
    before, start = sum(map(cpu_seconds, pids)), time.monotonic()
    time.sleep(seconds)
    used, spent = sum(map(cpu_seconds, pids)) - before, time.monotonic() - start
    load.append(load_average())
    return {"cpu_pct": round(100 * used / spent, 1), "seconds": round(spent, 1),
            "load_1min": load}


def fleet_requests(base: str, headers: dict, count: int | None, stop=None,
                   seconds: float | None = None) -> list[float]:
    """GET /api/v1/drones one at a time: `count` of them (at most for `seconds`), or until
    `stop` is set (a pause of 50 ms between them)."""
    import httpx

    times, end = [], time.monotonic() + (seconds or 1e9)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        while time.monotonic() < end and (len(times) < count if count is not None
                                          else not stop.is_set()):
            start = time.perf_counter()
            response = http.get("/api/v1/drones")
            times.append(1000 * (time.perf_counter() - start))
            response.raise_for_status()
            if count is None:
                time.sleep(0.05)
    return times


def seed(db: ScratchDatabase, drones: list[str]) -> None:
    """A few positions per drone, stored by the real writer, so the fleet view has content."""
    from dronelog.contract.messages import Telemetry
    from dronelog.contract.topics import TopicLayout
    from dronelog.ingest.delivery import Accepted, Delivery
    from dronelog.storage.writer import BatchWriter

    layout, writer, now = TopicLayout(), BatchWriter(db.engine), datetime.now(UTC)
    for drone in drones:
        topic = layout.telemetry(drone)
        events = [Telemetry(schema_version=1, event_id=uuid.uuid4(),
                            event_time=now - timedelta(seconds=60 - i), drone_id=drone, seq=i,
                            lat=36.78, lon=119.95, alt_m=100.0, ground_speed_mps=10.0,
                            heading_deg=90.0, battery_pct=80.0, payload_temp_c=5.0,
                            link_quality_pct=90.0) for i in range(20)]
        writer.write([Accepted(Delivery(topic, b"", now), layout.parse(topic), e)
                      for e in events], [])


def run_tree(name: str, tree: Path, db: ScratchDatabase, broker, token: str,
             drones: list[str], args: argparse.Namespace, workdir: Path) -> dict:
    out: dict = {"tree": name, "source": str(tree), "commit": _commit(tree),
                 "api_processes": args.api_processes,
                 "uvicorn_loop_http": getattr(args, f"{name}_server"),
                 "settings": getattr(args, f"{name}_env")}
    log_path = workdir / f"ingester-{db.kind}-{name}.log"
    settings = getattr(args, f"{name}_env")
    env = {**os.environ, **settings, "DRONELOG_DATABASE_URL": db.url,
           "DRONELOG_MQTT_URL": broker.url, "DRONELOG_LOG_FORMAT": "json",
           "PYTHONPATH": str(tree)}
    with open(log_path, "ab") as log:
        ingester = subprocess.Popen([sys.executable, "-m", "dronelog", "ingest"], env=env,
                                    cwd=tree, stdout=log, stderr=log)
    servers, client, publisher = [], None, None
    context = mp.get_context("spawn")
    try:
        deadline = time.monotonic() + 60
        while b"connected to broker" not in log_path.read_bytes():
            if ingester.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingester did not connect: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        for _ in range(args.api_processes):
            servers.append(ApiServer(db.url, broker.url, None, source=tree,
                                     server=getattr(args, f"{name}_server"), env=settings))
        server, pids = servers[0], [s.process.pid for s in servers]
        headers = {"Authorization": f"Bearer {token}"}
        out["no_streams"] = cpu_over(pids, args.idle_s)
        say(f"{db.kind}/{name}: no streams, API CPU {out['no_streams']}")
        commands, child_commands = context.Pipe()
        child_replies, replies = context.Pipe()
        client = context.Process(target=client_main, args=(
            [s.port for s in servers], token, args.probes, child_commands, child_replies),
            daemon=True)
        client.start()
        commands.send(("attach", args.streams, args.attach_timeout_s))
        out["attach"] = replies.recv()
        say(f"{db.kind}/{name}: attached {out['attach']}")
        time.sleep(2.0)  # the last streams' first reads
        out["idle"] = cpu_over(pids, args.idle_s)
        out["idle"]["streams"] = out["attach"]["open"]
        say(f"{db.kind}/{name}: {out['attach']['open']} streams idle, API CPU {out['idle']}")
        commands.send(("keep", args.publish_streams))
        kept = replies.recv()
        load = [load_average()]
        fleet = fleet_requests(server.base, headers, args.fleet_requests,
                               seconds=args.fleet_max_s)
        load.append(load_average())
        out["fleet_idle"] = {**summary(fleet), "streams": kept["open"], "load_1min": load}
        say(f"{db.kind}/{name}: fleet with {kept['open']} streams {out['fleet_idle']}")
        ready, go, results = context.Event(), context.Event(), context.Queue()
        publisher = context.Process(target=publisher_main, args=(
            broker.port, drones, args.rate, args.publish_s, ready, go, results), daemon=True)
        publisher.start()
        if not ready.wait(30):
            raise RuntimeError("the publisher did not connect")
        commands.send(("frames",))
        replies.recv()  # forget what came before
        stop, fleet_busy = threading.Event(), []
        poller = threading.Thread(target=lambda: fleet_busy.extend(
            fleet_requests(server.base, headers, None, stop)), daemon=True)
        load = [load_average()]
        others = {"ingester": [ingester.pid], "load_client": [client.pid],
                  "publisher": [publisher.pid], "broker": [broker.process.pid]}
        before, start = sum(map(cpu_seconds, pids)), time.monotonic()
        others_before = {k: _cpu_or_none(v) for k, v in others.items()}
        machine_before = machine_busy()
        go.set()
        poller.start()
        report = results.get(timeout=args.publish_s + 120)
        spent = time.monotonic() - start
        busy_cpu = 100 * (sum(map(cpu_seconds, pids)) - before) / spent
        others_cpu = {k: None if None in (now := _cpu_or_none(v), others_before[k])
                      else round(100 * (now - others_before[k]) / spent, 1)
                      for k, v in others.items()}
        machine_after = machine_busy()
        machine_pct = round(100 * (machine_after[0] - machine_before[0])
                            / max(1, machine_after[1] - machine_before[1]), 1)
        ids = {event_id for _, _, event_id in report["records"]}
        published_at = {event_id: at for _, at, event_id in report["records"]}
        seen: dict[tuple, int] = {}
        deadline = time.monotonic() + 30
        wanted = len(ids) * kept["probes"]  # the probes that opened
        while True:  # until every probe saw every message, or 30 s after the last publish
            commands.send(("frames",))
            got = replies.recv()
            for probe, at, event_id in got["frames"]:
                seen.setdefault((probe, event_id), at)
            if sum(e in ids for _, e in seen) == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        stop.set()
        poller.join(60)
        load.append(load_average())
        first: dict[str, list[int]] = {}
        for (_, event_id), at in seen.items():
            first.setdefault(event_id, []).append(at)
        latencies = [(at - published_at[e]) / 1000 for e, times in first.items() if e in ids
                     for at in times]
        out["publish"] = {
            "rate": args.rate, "seconds": args.publish_s, "streams": kept["open"],
            "probes": kept["probes"], "published": report["published"],
            "acked_by_broker": report["acked"],
            "publisher_max_behind_schedule_ms": report["max_behind_schedule_ms"],
            "visible_on_probes": len({e for e in first if e in ids}),
            "missed_on_probes": wanted - len(latencies),  # (probe, message) pairs never seen
            "latency": summary(latencies), "resets": got["resets"],
            "api_cpu_pct": round(busy_cpu, 1), "other_cpu_pct": others_cpu,
            "machine_busy_pct": machine_pct, "load_1min": load}
        out["fleet_publishing"] = {**summary(fleet_busy), "streams": kept["open"]}
        say(f"{db.kind}/{name}: publish to visible {out['publish']}")
        say(f"{db.kind}/{name}: fleet while publishing {out['fleet_publishing']}")
        commands.send(("stop",))
        replies.recv()
    finally:
        for process in (publisher, client):
            if process is not None and process.is_alive():
                process.terminate()
        for server in servers:
            server.stop()
        ingester.send_signal(signal.SIGTERM)
        try:
            ingester.wait(30)
        except subprocess.TimeoutExpired:
            ingester.kill()
    return out


def _commit(tree: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def markdown(results: list[dict], env: dict, started: str) -> str:
    def ms(d: dict, key: str) -> str:
        return f"{d[key]:.1f}" if d.get(key) is not None else "—"

    lines = [f"Run {started}; {env.get('cpu')} ({env.get('nproc')} cores), load at the end "
             f"{env.get('load_average_at_end')}.", "",
             "| database | tree | no streams CPU % | streams attached (s) | idle CPU % (load) "
             "| fleet p50 / p99 ms, idle | visible p50 / p99 ms (load) | resets | API CPU % "
             "publishing | fleet p50 / p99 ms, publishing |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for t in r["trees"]:
            if "error" in t:
                lines.append(f"| {r['database']} | {t['tree']} | error: {t['error']} |")
                continue
            p, idle = t["publish"], t["idle"]
            settings = "".join(f" {k}={v}" for k, v in t.get("settings", {}).items())
            missed = f", {p['missed_on_probes']} missed" if p.get("missed_on_probes") else ""
            lines.append(
                f"| {r['database']} | {t['tree']} {t['commit']}{settings} "
                f"| {t['no_streams']['cpu_pct']} "
                f"| {idle['streams']} ({t['attach']['attach_s']}) "
                f"| {idle['cpu_pct']} ({idle['load_1min'][0]}→{idle['load_1min'][1]}) "
                f"| {ms(t['fleet_idle'], 'p50_ms')} / {ms(t['fleet_idle'], 'p99_ms')} "
                f"| {ms(p['latency'], 'p50_ms')} / {ms(p['latency'], 'p99_ms')} "
                f"({p['load_1min'][0]}→{p['load_1min'][1]}{missed}) | {p['resets']} "
                f"| {p['api_cpu_pct']} | {ms(t['fleet_publishing'], 'p50_ms')} / "
                f"{ms(t['fleet_publishing'], 'p99_ms')} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="the source tree before the change feed")
    parser.add_argument("--new", type=Path, default=ROOT)
    for tree in ("old", "new"):
        parser.add_argument(f"--{tree}-server", default="auto,auto", metavar="LOOP,HTTP",
                            help=f"uvicorn's event loop and HTTP implementation for --{tree}, "
                            "e.g. asyncio,h11 (default auto,auto: uvloop when installed; an "
                            "HTTP of auto or h11 is `dronelog api`'s own h11 protocol in a "
                            "tree that has it)")
        parser.add_argument(f"--{tree}-env", action="append", default=[], metavar="NAME=VALUE",
                            help=f"a setting for --{tree}'s ingester and API (repeatable), e.g. "
                            "DRONELOG_BATCH_INTERVAL_S=0.03")
        parser.add_argument(f"--{tree}-broker-nagle", action="store_true",
                            help=f"--{tree}'s broker with Nagle's algorithm on (Mosquitto's "
                            "default; dronelog's brokers set set_tcp_nodelay)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--api-processes", type=int, default=1,
                        help="API processes per tree; the streams alternate between them")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--publish-streams", type=int, default=500)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--drones", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--publish-s", type=float, default=10.0)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--fleet-requests", type=int, default=200)
    parser.add_argument("--fleet-max-s", type=float, default=30.0,
                        help="stop the idle fleet requests after this long")
    parser.add_argument("--attach-timeout-s", type=float, default=180.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    for tree in ("old", "new"):
        pairs = [item.partition("=") for item in getattr(args, f"{tree}_env")]
        if any(not name.startswith("DRONELOG_") or not sep for name, sep, _ in pairs):
            parser.error(f"--{tree}-env takes DRONELOG_NAME=VALUE")
        setattr(args, f"{tree}_env", {name: value for name, _, value in pairs})
    return args


def main(argv: list[str] | None = None) -> None:
    from dronelog.broker import MosquittoBroker

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the processes started
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    trees = ([("old", args.old)] if args.old else []) + [("new", args.new)]
    drones = [f"uav-{i:03d}" for i in range(args.drones)]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        workdir = Path(tmp)
        for kind in args.databases:
            db = ScratchDatabase(kind, workdir, args.pg_url, "bench_live")
            entry = {"database": kind, "trees": []}
            try:
                seed(db, drones)
                token = make_token(db, datetime.now(UTC))
                for name, tree in trees:
                    nagle = getattr(args, f"{name}_broker_nagle")
                    broker = MosquittoBroker(workdir / f"broker-{kind}-{name}",
                                             tcp_nodelay=not nagle).start()
                    try:
                        entry["trees"].append({**run_tree(name, tree, db, broker, token,
                                                          drones, args, workdir),
                                               "broker_nagle": nagle})
                    except (RuntimeError, OSError, EOFError) as error:
                        say(f"{kind}/{name}: {error!r}")
                        entry["trees"].append({"tree": name, "error": repr(error)[:300]})
                    finally:
                        broker.stop()
            finally:
                db.drop()
            results.append(entry)
    env = machine_environment(args.pg_url, args.databases)
    print(markdown(results, env, started))
    if args.json:
        args.json.write_text(json.dumps({"started": started, "environment": env,
                                         "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
