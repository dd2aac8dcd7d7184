"""Soak: the whole system under an accelerated simulation for a long time, its resources sampled.

What runs, all on loopback: a private Mosquitto (`dronelog.broker.MosquittoBroker`, on a free
port, data in a temporary folder), and `dronelog ingest`, `dronelog scheduler` and
`dronelog api` as separate processes with production settings, on a fresh SQLite file (or a
scratch PostgreSQL database with `--database postgresql`). This script plays the load with the
simulator's own runner and device clients (`dronelog_sim.runner.play`, `DevicePublisher`).

The load: `--copies` Pingdu networks side by side (default 10: 40 drones, 40 sites, ten times
the specimens and flights; each copy has its own seed, its ids prefixed `cNN`, its sites
0.4 degrees further north), flown `--speed` times faster than real time (default 10), with the
demo's faults (duplicates, late and malformed messages among them), after an hour of
simulated history sent at once (`--history`: the simulator starts with nothing collected and
nothing in the air; the demo starts the same way). One Pingdu network in
real time sends about 1.2 messages a second in the morning (9,651 in a simulated 09:00 to
11:12), so the defaults send about 100 times that, in bursts as flights take off.
`--copies 10 --speed 1` is ten times the network in real time; `--copies 1 --speed 10` is
one network ten times faster.

Every `--sample-s` seconds (default 10) it records, for the ingester, the scheduler, the API
and Mosquitto: resident memory (VmRSS from /proc/<pid>/status), open file descriptors
(/proc/<pid>/fd), threads and CPU; and the lag: valid events published, events stored, how
many are waiting and for how long (the time since the publisher had sent as many valid events
as are stored now), the newest stored telemetry against the newest published, the API's
response time for the active alerts, the ingester's own progress line (received, acked,
storage retries). At the end it waits for the ingester to drain and checks that exactly the
published valid events were stored (none lost, none doubled).

Output: one CSV row per sample (`--csv`), everything with a summary in `--json`, the summary as
markdown on stdout (RSS at start, end and max, drift per minute after the warm-up, file
descriptors min and max, max lag), progress on stderr.

    .venv/bin/python benchmarks/soak.py                      # 30 minutes, the issue's soak
    .venv/bin/python benchmarks/soak.py --duration 3m --csv soak.csv --json soak.json
    .venv/bin/python benchmarks/soak.py --database postgresql --duration 1h
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from bench_databases import ScratchDatabase  # noqa: E402  (beside this script)
from sqlalchemy import text  # noqa: E402

from dronelog.api.accounts import Role, add_user, issue_token  # noqa: E402
from dronelog.broker import MosquittoBroker, free_port  # noqa: E402
from dronelog.cli.demo import DEMO_FAULTS  # noqa: E402
from dronelog.cli.simulate import default_start  # noqa: E402
from dronelog.contract.topics import TopicLayout  # noqa: E402
from dronelog.storage.network import import_network  # noqa: E402
from dronelog.storage.portable import as_utc  # noqa: E402
from dronelog_sim.faults import FaultRates  # noqa: E402
from dronelog_sim.network import Emission, NetworkSimulator  # noqa: E402
from dronelog_sim.publisher import DevicePublisher  # noqa: E402
from dronelog_sim.runner import play  # noqa: E402
from dronelog_sim.scenario import Scenario, load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "pingdu.toml"
DEFAULT_PG_URL = os.environ.get("DRONELOG_TEST_PG_URL",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EVENT_TABLES = ("telemetry", "flight_event", "custody_event", "drone_status_event")
STORED = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in EVENT_TABLES)
PROCESSES = ("ingester", "scheduler", "api", "mosquitto")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_IDS = re.compile(rb'"(flight_id|container_id)":"')


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def duration(value: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value[-1] in units:
            return timedelta(seconds=float(value[:-1]) * units[value[-1]])
        return timedelta(seconds=float(value))
    except (ValueError, IndexError) as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 90s, 30m or 2h"
                                         ) from error


# --- the load -----------------------------------------------------------------------------


def network_copy(scenario: Scenario, number: int) -> Scenario:
    """Copy `number` of the network: every site and drone id prefixed `cNN` (so barcodes,
    which start with the site id, differ too), the sites moved 0.4 degrees north per copy."""
    tag = f"c{number:02d}"
    data = scenario.model_dump()
    data["scenario"]["name"] = f"{data['scenario']['name']}-{tag}"
    for site in data["sites"]:
        site["id"] = f"{tag}{site['id']}"
        site["lat"] += 0.4 * number
    for route in data["routes"]:
        route["id"] = f"{tag}{route['id']}"
        route["origin"], route["destination"] = (f"{tag}{route['origin']}",
                                                 f"{tag}{route['destination']}")
        route["waypoints"] = [(lat + 0.4 * number, lon) for lat, lon in route["waypoints"]]
    for drone in data["drones"]:
        drone["id"], drone["home"] = f"{tag}{drone['id']}", f"{tag}{drone['home']}"
    for item in data["demand"]:
        item["site"], item["destination"] = f"{tag}{item['site']}", f"{tag}{item['destination']}"
    for shift in data["shifts"]:
        shift["site"] = f"{tag}{shift['site']}"
    return Scenario.model_validate(data)


def copy_emissions(emissions: list[Emission], number: int, end: datetime) -> list[Emission]:
    """The copy's messages up to `end` (later ones would lie in the future of the wall clock
    when sent), flight and container ids prefixed like its sites (every copy numbers its
    flights and containers from 1)."""
    prefix = f"c{number:02d}-".encode()
    out = []
    for emission in emissions:
        if emission.at > end:
            break
        payload = _IDS.sub(lambda match: match.group(0) + prefix, emission.payload)
        out.append(Emission(emission.at, emission.topic, payload, emission.kind,
                            emission.event_id, emission.valid, emission.fault,
                            emission.expected_reason, emission.retain, emission.qos))
    return out


class Load(threading.Thread):
    """Plays the merged copies with the simulator's runner, noting when each valid event
    first went out: the history (before `timed_from`) at once, the rest at `speed`."""

    def __init__(self, url: str, emissions: list[Emission], speed: float,
                 timed_from: datetime) -> None:
        super().__init__(name="load", daemon=True)
        self.emissions, self.speed = emissions, speed
        self.history = next((i for i, e in enumerate(emissions) if e.at >= timed_from),
                            len(emissions))
        self.history_valid = len({e.event_id for e in emissions[:self.history] if e.valid})
        self.history_sent_at: float | None = None
        self.publisher = DevicePublisher(url, TopicLayout(), client_prefix="soak")
        # Every device connects first, as devices in the field are connected before the
        # soak is measured: the broker's descriptors then count connections, not arrivals.
        for topic in sorted({e.topic for e in emissions}):
            self.publisher._client_for(topic)
        self.sent = 0
        self.valid_at: list[float] = []  # monotonic time the n-th distinct valid event went
        self.newest_telemetry: datetime | None = None
        self._seen: set[str] = set()
        self.summary = None
        self.error: BaseException | None = None

    def write(self, _line: str) -> None:  # play's ground-truth sink: one call per message
        emission = self.emissions[self.sent]
        self.sent += 1
        if emission.valid and emission.event_id and emission.event_id not in self._seen:
            self._seen.add(emission.event_id)
            self.valid_at.append(time.monotonic())
            if emission.kind == "telemetry":
                self.newest_telemetry = emission.at

    def run(self) -> None:
        try:
            history = play(self.emissions[:self.history], self.publisher, 0, truth=self,
                           stream=io.StringIO())
            self.history_sent_at = time.monotonic()
            self.summary = play(self.emissions[self.history:], self.publisher, self.speed,
                                truth=self, stream=io.StringIO())
            self.summary.sent += history.sent
            self.summary.acked &= history.acked
        except BaseException as error:  # reported by the main thread
            self.error = error

    def close(self) -> None:
        self.publisher.close()


# --- the processes ------------------------------------------------------------------------


class Service:
    def __init__(self, name: str, command: list[str], env: dict, workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "dronelog", *command],
                                            env=env, cwd=workdir, stdout=log, stderr=log,
                                            start_new_session=True)

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.log_path.read_bytes():
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not log {needle!r} in {timeout} s")
            time.sleep(0.1)

    def stop(self, timeout: float = 60) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode


class ProcStats:
    """RSS, descriptors, threads and CPU of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._cpu: tuple[float, float] | None = None

    def sample(self) -> dict:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return {"rss_kb": None, "fds": None, "threads": None, "cpu_pct": None}
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        now = time.monotonic()
        cpu_pct = None
        if self._cpu:
            cpu_pct = round(100 * (cpu_s - self._cpu[1]) / max(now - self._cpu[0], 1e-9), 1)
        self._cpu = (now, cpu_s)
        return {"rss_kb": int(values["VmRSS"].split()[0]), "fds": fds,
                "threads": int(values["Threads"]), "cpu_pct": cpu_pct}


def last_progress(log_path: Path) -> dict:
    """The ingester's newest `ingest progress` line (every 10 s)."""
    try:
        lines = log_path.read_bytes().splitlines()[-200:]
    except FileNotFoundError:
        return {}
    for line in reversed(lines):
        if b'"ingest progress"' in line:
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


# --- the run ------------------------------------------------------------------------------


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) in value per minute."""
    if len(points) < 3:
        return None
    xs, ys = [p[0] / 60 for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def summarize(samples: list[dict], warmup_s: float) -> dict:
    summary: dict = {}
    for name in PROCESSES:
        rss = [(s["t_s"], s[f"{name}_rss_kb"]) for s in samples
               if s[f"{name}_rss_kb"] is not None]
        fds = [s[f"{name}_fds"] for s in samples if s[f"{name}_fds"] is not None]
        threads = [s[f"{name}_threads"] for s in samples if s[f"{name}_threads"] is not None]
        cpu = [s[f"{name}_cpu_pct"] for s in samples if s[f"{name}_cpu_pct"] is not None]
        if not rss:
            continue
        settled = [p for p in rss if p[0] >= warmup_s] or rss
        drift = slope_per_minute(settled)
        summary[name] = {
            "rss_start_kb": rss[0][1], "rss_after_warmup_kb": settled[0][1],
            "rss_end_kb": rss[-1][1], "rss_max_kb": max(v for _, v in rss),
            "rss_drift_kb_per_min": round(drift, 1) if drift is not None else None,
            "fds_min": min(fds), "fds_max": max(fds), "fds_end": fds[-1],
            "threads_max": max(threads),
            "cpu_avg_pct": round(statistics.fmean(cpu), 1) if cpu else None,
        }
    timed = [s for s in samples if s.get("phase") == "timed"]  # after the history
    lags = [s["lag_s"] for s in timed if s["lag_s"] is not None]
    backlog = [s["backlog_events"] for s in timed if s["backlog_events"] is not None]
    latency = [s["api_alerts_ms"] for s in samples if s["api_alerts_ms"] is not None]
    summary["lag"] = {"max_lag_s": max(lags, default=None),
                      "max_backlog_events": max(backlog, default=None),
                      "end_of_load_lag_s": next((s["lag_s"] for s in reversed(timed)
                                                 if s["load_running"]), None)}
    summary["api_alerts_ms"] = {"median": statistics.median(latency) if latency else None,
                                "max": max(latency, default=None)}
    return summary


def markdown(summary: dict, result: dict) -> str:
    lines = ["| process | RSS start | after warm-up | end | max | drift /min | fds min-max "
             "| threads max | CPU avg |", "|---|---|---|---|---|---|---|---|---|"]
    for name in PROCESSES:
        if name not in summary:
            continue
        s = summary[name]
        drift = "n/a" if s["rss_drift_kb_per_min"] is None else f"{s['rss_drift_kb_per_min']} kB"
        lines.append(f"| {name} | {s['rss_start_kb'] / 1024:.1f} MB | "
                     f"{s['rss_after_warmup_kb'] / 1024:.1f} MB | {s['rss_end_kb'] / 1024:.1f} MB"
                     f" | {s['rss_max_kb'] / 1024:.1f} MB | {drift} | {s['fds_min']}-"
                     f"{s['fds_max']} | {s['threads_max']} | {s['cpu_avg_pct']} % |")
    lag, history = summary["lag"], summary["history"]
    lines += ["", f"history: {history['messages']} messages sent at once, stored "
              f"{history['stored_after_s']} s after the start",
              f"lag after the history: max {lag['max_lag_s']} s "
              f"({lag['max_backlog_events']} events waiting), at the end of the load "
              f"{lag['end_of_load_lag_s']} s; API active-alerts list: median "
              f"{summary['api_alerts_ms']['median']} ms, max {summary['api_alerts_ms']['max']} ms",
              f"published {result['messages_sent']} messages, {result['valid_events']} distinct "
              f"valid events; stored {result['stored_events']} "
              f"({'exactly' if result['exact'] else 'NOT exactly'} the published valid events), "
              f"dead letters {result['dead_letters']} (malformed sent: "
              f"{result['malformed_sent']}); drained {result['drain_s']} s after the load"]
    return "\n".join(lines)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release(), "load_avg_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--duration", type=duration, default=timedelta(minutes=30),
                        help="wall-clock time of the load (default 30m)")
    parser.add_argument("--copies", type=int, default=10,
                        help="Pingdu networks side by side (default 10)")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="simulated seconds per wall second (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of copy 0; copy k: seed+k")
    parser.add_argument("--history", type=duration, default=timedelta(hours=1),
                        help="simulated time before the timed part, sent at once at the start "
                        "so that the network is in full swing (default 1h; the simulator "
                        "starts with nothing collected and nothing in the air)")
    parser.add_argument("--faults", default=DEMO_FAULTS, help="fault rates (default: the demo's)")
    parser.add_argument("--sample-s", type=float, default=10.0,
                        help="seconds between samples (default 10)")
    parser.add_argument("--warmup", type=duration, default=timedelta(minutes=1),
                        help="left out of the RSS drift (default 1m)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="loopback PostgreSQL server for a scratch database")
    parser.add_argument("--drain-timeout", type=float, default=300,
                        help="seconds to wait for the ingester to catch up at the end")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    parser.add_argument("--csv", type=Path, default=Path(f"soak-{stamp}.csv"))
    parser.add_argument("--json", type=Path, default=Path(f"soak-{stamp}.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args()
    if not MosquittoBroker.available():
        raise SystemExit("the soak needs the mosquitto binary")

    started_at = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="dronelog-soak-"))
    say(f"soak: {args.copies} Pingdu network(s) at x{args.speed:g} for {args.duration}, "
        f"{args.database}; work folder {workdir}")
    sim_span = args.duration * args.speed
    start = default_start(sim_span, args.speed)  # the timed part ends at the wall clock
    end = start + sim_span
    base = load_scenario(SCENARIO)
    scenarios = [network_copy(base, number) for number in range(args.copies)]
    copies = []
    generated = time.monotonic()
    for number, scenario in enumerate(scenarios):
        simulation = NetworkSimulator(scenario, start - args.history, args.history + sim_span,
                                      args.seed + number,
                                      FaultRates.parse(args.faults)).run()
        copies.append(copy_emissions(simulation.emissions, number, end))
        say(f"  simulated copy {number}: {len(copies[-1])} messages")
    emissions = list(heapq.merge(*copies, key=lambda e: e.at))
    del copies
    malformed = len({(e.topic, e.payload) for e in emissions if not e.valid})
    say(f"  {len(emissions)} messages ({sum(e.valid for e in emissions)} valid, {malformed} "
        f"malformed): {args.history} of history sent at once, then {sim_span} simulated "
        f"from {start:%Y-%m-%d %H:%M} UTC at x{args.speed:g}; made in "
        f"{time.monotonic() - generated:.0f} s")

    broker = MosquittoBroker(workdir / "broker").start()
    database = ScratchDatabase(args.database, workdir, args.pg_url, "soak")
    services: dict[str, Service] = {}
    load = None
    try:
        for scenario in scenarios:
            import_network(database.engine, scenario)
        api_port = free_port()
        now = datetime.now(UTC)
        with database.engine.begin() as connection:
            add_user(connection, "soak-dispatcher", Role.DISPATCHER, now, password="soak-pw-1")
            token = issue_token(connection, "soak-dispatcher", now, args.duration * 2
                                + timedelta(hours=1))
        (workdir / "none.toml").write_text("")
        env = {**os.environ, "DRONELOG_DATABASE_URL": database.url,
               "DRONELOG_MQTT_URL": broker.url, "DRONELOG_LOG_FORMAT": "json",
               "DRONELOG_CONFIG": str(workdir / "none.toml"),
               "DRONELOG_API_PORT": str(api_port), "PYTHONPATH": str(ROOT)}
        services["ingester"] = Service("ingester", ["ingest"], env, workdir)
        services["scheduler"] = Service("scheduler", ["scheduler"], env, workdir)
        services["api"] = Service("api", ["api"], env, workdir)
        services["ingester"].wait_for("connected to broker")
        services["scheduler"].wait_for("scheduler started")
        services["api"].wait_for("Application startup complete")
        stats = {name: ProcStats(service.process.pid) for name, service in services.items()}
        stats["mosquitto"] = ProcStats(broker.process.pid)
        http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

        samples: list[dict] = []
        history_stored_at: float | None = None
        load = Load(broker.url, emissions, args.speed, start)
        began = time.monotonic()
        load.start()

        def sample() -> dict:
            moment = time.monotonic()
            row: dict = {"t_s": round(moment - began, 1), "load_running": load.is_alive(),
                         "messages_sent": load.sent, "valid_published": len(load.valid_at)}
            try:
                with database.engine.connect() as connection:
                    stored = connection.execute(text(STORED)).scalar_one()
                    newest = connection.execute(text(
                        "SELECT event_time FROM telemetry ORDER BY id DESC LIMIT 1")).scalar()
                    row["alerts_active"] = connection.execute(text(
                        "SELECT count(*) FROM alert WHERE state != 'resolved'")).scalar_one()
            except Exception as error:  # reported in the row, the soak goes on
                say(f"  database query failed: {error}")
                stored, newest = None, None
            published = len(load.valid_at)
            nonlocal history_stored_at
            if (history_stored_at is None and load.history_sent_at is not None
                    and stored is not None and stored >= load.history_valid):
                history_stored_at = moment
            row["phase"] = "timed" if history_stored_at is not None else "history"
            row["stored_events"] = stored
            row["backlog_events"] = None if stored is None else published - stored
            row["lag_s"] = (None if stored is None else 0.0 if stored >= published
                            else round(moment - load.valid_at[stored], 2))
            if newest is not None and load.newest_telemetry is not None:
                newest = as_utc(datetime.fromisoformat(newest) if isinstance(newest, str)
                                else newest)
                row["telemetry_behind_sim_s"] = round(
                    (load.newest_telemetry - newest).total_seconds(), 1)
            progress = last_progress(services["ingester"].log_path)
            for key in ("received", "acked", "storage_retries", "duplicates"):
                row[f"ingester_{key}"] = progress.get(key)
            try:
                answered = time.perf_counter()
                response = http.get("/api/v1/alerts", params={"state": "active", "limit": 50})
                row["api_alerts_ms"] = round((time.perf_counter() - answered) * 1000, 1)
                row["api_status"] = response.status_code
            except httpx.HTTPError:
                row["api_alerts_ms"], row["api_status"] = None, None
            for name, proc in stats.items():
                row.update({f"{name}_{key}": value for key, value in proc.sample().items()})
            return row

        def show(row: dict) -> None:
            parts = [f"t={row['t_s']:.0f}s sent={row['messages_sent']} "
                     f"stored={row['stored_events']} lag={row['lag_s']}s"]
            for name in PROCESSES:
                rss = row.get(f"{name}_rss_kb")
                if rss is not None:
                    parts.append(f"{name} {rss / 1024:.0f}MB {row[f'{name}_fds']}fd")
            say("  " + " | ".join(parts))

        next_sample = began
        while load.is_alive():
            if time.monotonic() >= next_sample:
                samples.append(sample())
                show(samples[-1])
                next_sample += args.sample_s
                for name, service in services.items():
                    if service.process.poll() is not None:
                        raise SystemExit(f"{name} exited with {service.process.returncode}")
            load.join(min(1.0, max(0.0, next_sample - time.monotonic())))
        if load.error:
            raise load.error
        load_ended = time.monotonic()
        published = len(load.valid_at)
        say(f"  load done: {load.sent} messages in {load_ended - began:.0f} s; draining")
        while True:
            row = sample()
            samples.append(row)
            if row["stored_events"] is not None and row["stored_events"] >= published:
                break
            if time.monotonic() - load_ended > args.drain_timeout:
                say("  the ingester did not catch up in time")
                break
            time.sleep(min(args.sample_s, 2.0))
        drain_s = round(time.monotonic() - load_ended, 1)
        time.sleep(2)  # anything doubled would show now
        with database.engine.connect() as connection:
            stored_ids = [row[0] for table in EVENT_TABLES for row in
                          connection.execute(text(f"SELECT event_id FROM {table}"))]
            dead_letters = connection.execute(text(
                "SELECT count(*) FROM dead_letter")).scalar_one()
        valid_ids = {uuid.UUID(e.event_id) for e in emissions if e.valid}
        stored_set = {uuid.UUID(str(i)) for i in stored_ids}  # SQLite keeps them as hex
        result = {"messages_sent": load.sent, "valid_events": len(valid_ids),
                  "stored_events": len(stored_ids),
                  "exact": len(stored_ids) == len(stored_set) and stored_set == valid_ids,
                  "lost": len(valid_ids - stored_set), "foreign": len(stored_set - valid_ids),
                  "doubled": len(stored_ids) - len(stored_set), "dead_letters": dead_letters,
                  "malformed_sent": malformed, "drain_s": drain_s,
                  "load_wall_s": round(load_ended - began, 1),
                  "broker_acked_every_message": bool(load.summary and load.summary.acked)}
        http.close()
        exits = {name: service.stop() for name, service in services.items()}
        result["exit_codes"] = exits
        summary = summarize(samples, args.warmup.total_seconds())
        summary["history"] = {
            "messages": load.history, "valid_events": load.history_valid,
            "stored_after_s": (round(history_stored_at - began, 1)
                               if history_stored_at is not None else None)}

        fields = sorted({key for row in samples for key in row},
                        key=lambda k: (k not in ("t_s", "load_running"), k))
        with args.csv.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(samples)
        args.json.write_text(json.dumps({
            "config": {"copies": args.copies, "speed": args.speed, "duration_s":
                       args.duration.total_seconds(), "seed": args.seed, "faults": args.faults,
                       "database": args.database, "sample_s": args.sample_s,
                       "history_s": args.history.total_seconds(),
                       "timed_start": start.isoformat(), "timed_span_s":
                       sim_span.total_seconds()},
            "machine": machine(), "started_at": started_at.isoformat(),
            "ended_at": datetime.now(UTC).isoformat(),
            "result": result, "summary": summary, "samples": samples}, indent=1, default=str))
        print(markdown(summary, result))
        say(f"samples: {args.csv}, everything: {args.json}")
    finally:
        if load is not None:
            load.close()
        for service in services.values():
            service.stop(10)
        broker.stop()
        database.drop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
