"""HTTP API benchmark: specimen lookup and the fleet view over a filled database, and the
time from an MQTT publish to the moment the message is visible through the API.

Set-up per database (SQLite: a temp file; PostgreSQL: a `bench_api_<random>` database created
on --pg-url and dropped at the end), all written through dronelog's own storage path:

- the Pingdu network (sites, routes) from scenarios/pingdu.toml;
- --drones drones (500) and --specimens specimens (100,000): 95 % of them carried on flights
  of --per-flight (20) specimens, one flight per drone and hour, from the three township and
  district sites to the central lab. A flight's story is planned, takeoff, landed; its
  specimens' is collected, packed, loaded, unloaded, received. The last --airborne (25)
  flights are still in the air at T0 (their specimens are in transit); the other 5 % of the
  specimens were collected (half of them packed too) in the last half hour and wait at
  their site. Priorities 5 % stat / 15 % urgent / 80 % routine; one temperature class per
  flight (ambient or refrigerated) and the box's temperature in its range;
- --telemetry (1,000,000) position reports spread over the flights (about 210 each),
  along the routes;
- contract events (`dronelog.contract.messages`) wrapped as the ingester's `Accepted`
  objects and stored by the real `BatchWriter` (COPY for telemetry on PostgreSQL) in batches
  of --batch events, in event-time order; then one `TurnaroundJobs.turnaround()` derives
  every projection (specimen_tracking, flight_tracking) as the scheduler would, and
  PostgreSQL is ANALYZEd (what autovacuum would do);
- a dispatcher made with `dronelog.api.accounts.add_user` and its token with `issue_token`.

Part 1, lookups: the real app (`dronelog.api.app.create_app`) under uvicorn in its own
process (`python -c SERVE`, built as `dronelog api` builds it) on a free loopback port, with
a ManualClock at T0 (the moment the data describes, so the airborne flights' tracks are
minutes old, as in a live system), log level warning (no access log). One httpx client in
this process sends one request at a time; each figure is the time around `client.get`
(client overhead included). After --warmup unmeasured requests: --lookups GET
/api/v1/specimens/{barcode} for barcodes drawn at random from all specimens,
--in-transit-lookups for in-transit ones only (the slowest path: track and ETA), and
--fleet-requests GET /api/v1/drones. Targets: lookup p99 < 20 ms, fleet p99 < 50 ms.
With --compare-with DIR (another source tree, e.g. an older commit from `git archive`), a
second server runs that tree's app on the same database, and each request goes to both in
turn: a before/after comparison that a busy machine affects alike.

Part 2, publish to visible: a private Mosquitto (`dronelog.broker.MosquittoBroker`), the
real ingester as a process (`python -m dronelog ingest`, default settings) writing into the
same filled database, and a second API process with the system clock. A publisher process
(paho, MQTT 5, QoS 1) sends --rate (1,000) telemetry messages a second for --latency-s,
round-robin over the drones, each stamped with the wall-clock time of its publish as its
event_time. The API is watched through the SSE stream GET /api/v1/stream?types=telemetry
when the app has one (one client; a message is visible when its frame has been read),
else by polling GET /api/v1/drones every --poll-interval s (a message is visible at the end
of the first poll whose response shows that drone at that event time or later: the poll
interval bounds the resolution). Latency = visible time - publish time, on the wall clock
shared by the processes. Target p99 < 500 ms.

Results: a markdown table on stdout, progress on stderr, everything in --json.

    .venv/bin/python benchmarks/api.py --json api.json
    .venv/bin/python benchmarks/api.py --databases sqlite --telemetry 100000 --specimens 10000
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_databases import ScratchDatabase  # noqa: E402  (beside this script)
from bench_databases import environment as machine_environment  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgresql")
LAB = "pdrmyy"
ORIGINS = ("pddermyy", "cjzxwsy", "wjwsy")
SLOT_S = 3600.0  # one flight per drone per slot
SPEED_MPS = 18.0
LOOKUP_TARGET_MS = 20.0
FLEET_TARGET_MS = 50.0
VISIBLE_TARGET_MS = 500.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# temperature class of a flight's box -> (box temperature, [(priority, kind, share)])
CARGO = {
    "ambient": (20.0, (("blood_sample", 0.6), ("blood_gas", 0.25), ("microbiology", 0.15))),
    "refrigerated": (5.0, (("urine", 0.5), ("pathology", 0.5))),
}
PRIORITIES = (("stat", 0.05), ("urgent", 0.15), ("routine", 0.80))


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(percentile(values, 50), 2),
            "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2),
            "max_ms": round(max(values), 2), "mean_ms": round(statistics.fmean(values), 2)}


def epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _pick(rng: random.Random, table) -> str:
    x = rng.random()
    for name, share in table:
        if x < share:
            return name
        x -= share
    return table[-1][0]


# --- the population --------------------------------------------------------------------------


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return math.hypot((b[0] - a[0]) * 111_320.0, (b[1] - a[1]) * 111_320.0 * math.cos(lat))


class Route:
    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        self.legs = [_distance_m(a, b) for a, b in zip(points, points[1:], strict=False)]
        self.length_m = sum(self.legs)

    def at(self, fraction: float) -> tuple[float, float, float]:
        """(lat, lon, heading) at `fraction` of the length."""
        remaining = max(0.0, min(1.0, fraction)) * self.length_m
        last = len(self.legs) - 1
        for k, leg in enumerate(self.legs):
            a, b = self.points[k], self.points[k + 1]
            if remaining <= leg or k == last:
                f = min(1.0, remaining / leg) if leg else 0.0
                heading = math.degrees(math.atan2(
                    (b[1] - a[1]) * math.cos(math.radians(a[0])), b[0] - a[0])) % 360
                return (round(a[0] + (b[0] - a[0]) * f, 6), round(a[1] + (b[1] - a[1]) * f, 6),
                        round(heading, 1) % 360)
            remaining -= leg
        return (*self.points[-1], 0.0)


class Population:
    """Generates the stored history as contract events, one slot (an hour of flights) at a
    time, so a million events never sit in memory at once."""

    def __init__(self, args: argparse.Namespace, t0: datetime) -> None:
        from dronelog.contract.topics import TopicLayout
        from dronelog_sim.scenario import load_scenario

        self.args, self.t0 = args, t0
        self.rng = random.Random(args.seed)
        self.layout = TopicLayout()
        self._addresses: dict[str, object] = {}
        self.scenario = load_scenario(ROOT / "scenarios" / "pingdu.toml")
        sites = {s.id: (s.lat, s.lon) for s in self.scenario.sites}
        self.elevation = {s.id: getattr(s, "elevation_m", 50.0) or 50.0
                          for s in self.scenario.sites}
        self.routes = {r.origin: Route([sites[r.origin], *[tuple(p) for p in r.waypoints],
                                        sites[LAB]])
                       for r in self.scenario.routes if r.destination == LAB
                       and r.origin in ORIGINS}
        self.drones = [f"uav-{d:03d}" for d in range(args.drones)]
        self.waiting = round(args.specimens * args.waiting_share)
        on_flights = args.specimens - self.waiting
        self.flights = math.ceil(on_flights / args.per_flight)
        self.slots = math.ceil(self.flights / args.drones)
        self.airborne = min(args.airborne, self.flights)
        base, extra = divmod(args.telemetry, self.flights)
        self.points = [base + (1 if f < extra else 0) for f in range(self.flights)]
        self.cargo = [args.per_flight] * self.flights
        self.cargo[-1] = on_flights - args.per_flight * (self.flights - 1)
        self.barcodes: list[str] = []
        self.in_transit: list[str] = []
        self.counts: dict[str, int] = defaultdict(int)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def accepted(self, event, received_at: datetime):
        from dronelog.contract import messages as m
        from dronelog.ingest.delivery import Accepted, Delivery

        if isinstance(event, m.Telemetry):
            topic = self.layout.telemetry(event.drone_id)
        elif isinstance(event, m.FlightEventBase):
            topic = self.layout.flight(event.drone_id)
        else:
            topic = self.layout.site_custody(event.site_id)
        address = self._addresses.get(topic)
        if address is None:
            address = self._addresses[topic] = self.layout.parse(topic)
        return Accepted(Delivery(topic, b"", received_at), address, event)

    def slot_events(self, slot: int) -> list[tuple[datetime, object]]:
        """Every event of the flights of this slot (and, in the last one, of the waiting
        specimens), in event-time order."""
        out: list[tuple[datetime, object]] = []
        first = slot * self.args.drones
        for f in range(first, min(first + self.args.drones, self.flights)):
            out.extend(self._flight(f, slot))
        if slot == self.slots - 1:
            out.extend(self._waiting())
        out.sort(key=lambda item: item[0])
        return out

    def _flight(self, f: int, slot: int) -> list[tuple[datetime, object]]:
        from dronelog.contract import messages as m

        rng, t0 = self.rng, self.t0
        drone, flight_id = self.drones[f % self.args.drones], f"FL-{f:05d}"
        origin = ORIGINS[f % len(ORIGINS)]
        route = self.routes[origin]
        duration = route.length_m / SPEED_MPS
        airborne = f >= self.flights - self.airborne
        if airborne:
            took_off = t0 - timedelta(seconds=rng.uniform(120, min(600, duration - 60)))
            last_point = t0 - timedelta(seconds=1)
            landed = None
        else:
            slot_start = t0 - timedelta(seconds=(self.slots - slot) * SLOT_S)
            took_off = slot_start + timedelta(seconds=rng.uniform(
                0, SLOT_S - duration - 30 * 60))
            landed = took_off + timedelta(seconds=duration)
            last_point = landed - timedelta(seconds=1)
        ids = {"schema_version": 1}
        events = [
            (took_off - timedelta(minutes=6), m.FlightPlanned(
                **ids, event_id=self.uuid(), kind="planned",
                event_time=took_off - timedelta(minutes=6), drone_id=drone,
                flight_id=flight_id, origin_site_id=origin, destination_site_id=LAB)),
            (took_off, m.FlightTakeoff(**ids, event_id=self.uuid(), kind="takeoff",
                                       event_time=took_off, drone_id=drone,
                                       flight_id=flight_id, site_id=origin)),
        ]
        if landed is not None:
            events.append((landed, m.FlightLanded(**ids, event_id=self.uuid(), kind="landed",
                                                  event_time=landed, drone_id=drone,
                                                  flight_id=flight_id, site_id=LAB)))
        temperature_class = "ambient" if rng.random() < 0.7 else "refrigerated"
        box_c, kinds = CARGO[temperature_class]
        points = self.points[f]
        span = (last_point - took_off).total_seconds()
        alt = 120.0 + self.elevation[LAB]
        flown_share = span / duration
        for i in range(points):
            share = (i + 1) / points
            at = took_off + timedelta(seconds=span * share)
            lat, lon, heading = route.at(flown_share * share)
            events.append((at, m.Telemetry(
                **ids, event_id=self.uuid(), event_time=at, drone_id=drone,
                seq=slot * 10_000 + i, flight_id=flight_id, lat=lat, lon=lon, alt_m=alt,
                ground_speed_mps=SPEED_MPS, heading_deg=heading,
                battery_pct=round(max(25.0, 95.0 - 50.0 * flown_share * share), 1),
                payload_temp_c=round(box_c + rng.uniform(-0.8, 0.8), 2),
                link_quality_pct=round(rng.uniform(70, 99), 1))))
        self.counts["telemetry"] += points
        self.counts["flight_event"] += len(events) - points
        box, seal = f"BOX-{f:05d}", f"SEAL-{f:05d}"
        loaded_at = took_off - timedelta(minutes=3)
        for _ in range(self.cargo[f]):
            barcode = self._barcode()
            collected_at = took_off - timedelta(seconds=rng.uniform(15 * 60, 40 * 60))
            packed_at = took_off - timedelta(seconds=rng.uniform(6 * 60, 12 * 60))
            story = [
                self._collected(barcode, collected_at, origin, temperature_class, kinds),
                self._step(m.Packed, barcode, packed_at, origin, container_id=box,
                           seal_id=seal),
                self._step(m.Loaded, barcode, loaded_at, origin, container_id=box,
                           flight_id=flight_id, drone_id=drone),
            ]
            if landed is None:
                self.in_transit.append(barcode)
            else:
                unloaded_at = landed + timedelta(seconds=rng.uniform(60, 180))
                received_at = unloaded_at + timedelta(seconds=rng.uniform(5 * 60, 20 * 60))
                story += [
                    self._step(m.Unloaded, barcode, unloaded_at, LAB, container_id=box,
                               flight_id=flight_id, drone_id=drone, seal_id=seal),
                    self._step(m.Received, barcode, received_at, LAB, container_id=box,
                               seal_id=seal),
                ]
            events.extend((e.event_time, e) for e in story)
            self.counts["custody_event"] += len(story)
        return events

    def _waiting(self) -> list[tuple[datetime, object]]:
        from dronelog.contract import messages as m

        rng, events = self.rng, []
        for i in range(self.waiting):
            origin = ORIGINS[i % len(ORIGINS)]
            temperature_class = "ambient" if rng.random() < 0.7 else "refrigerated"
            barcode = self._barcode()
            collected_at = self.t0 - timedelta(seconds=rng.uniform(2 * 60, 30 * 60))
            story = [self._collected(barcode, collected_at, origin, temperature_class,
                                     CARGO[temperature_class][1])]
            if i % 2:
                packed_at = collected_at + timedelta(seconds=60)
                story.append(self._step(m.Packed, barcode, packed_at, origin,
                                        container_id=f"BOX-W{i:05d}", seal_id=f"SEAL-W{i:05d}"))
            events.extend((e.event_time, e) for e in story)
            self.counts["custody_event"] += len(story)
        return events

    def _barcode(self) -> str:
        barcode = f"BA{len(self.barcodes) + 1:08d}"
        self.barcodes.append(barcode)
        return barcode

    def _collected(self, barcode: str, at: datetime, origin: str, temperature_class: str,
                   kinds) -> object:
        from dronelog.contract import messages as m

        priority = _pick(self.rng, PRIORITIES)
        return m.Collected(
            schema_version=1, event_id=self.uuid(), kind="collected", event_time=at,
            barcode=barcode, site_id=origin, actor={"kind": "staff", "id": f"nurse-{origin}"},
            specimen={"kind": _pick(self.rng, kinds), "priority": priority,
                      "temperature_class": temperature_class, "origin_site_id": origin,
                      "destination_site_id": LAB, "order_ref": f"ORD-{barcode}"})

    def _step(self, model, barcode: str, at: datetime, site: str, **fields) -> object:
        kind = model.__name__.lower()  # Packed -> "packed", as the contract names the kinds
        return model(schema_version=1, event_id=self.uuid(), kind=kind, event_time=at,
                     barcode=barcode, site_id=site, actor={"kind": "staff", "id": f"staff-{site}"},
                     **fields)


def load(db: ScratchDatabase, args: argparse.Namespace, t0: datetime) -> tuple[dict, Population]:
    from sqlalchemy import text

    from dronelog.clock import ManualClock
    from dronelog.config import Settings
    from dronelog.storage.network import import_network
    from dronelog.storage.writer import BatchWriter
    from dronelog.turnaround.service import TurnaroundJobs

    population = Population(args, t0)
    import_network(db.engine, population.scenario)
    clock = ManualClock(t0)
    writer = BatchWriter(db.engine, clock)
    result: dict = {"flights": population.flights, "slots": population.slots,
                    "airborne_flights": population.airborne}
    generate_s = store_s = 0.0
    stored = 0
    for slot in range(population.slots):
        t = time.perf_counter()
        events = population.slot_events(slot)
        generate_s += time.perf_counter() - t
        t = time.perf_counter()
        for start in range(0, len(events), args.batch):
            chunk = events[start:start + args.batch]
            clock._now = min(t0, chunk[-1][0] + timedelta(seconds=2))
            writer.write([population.accepted(e, clock.now()) for _, e in chunk], [])
        store_s += time.perf_counter() - t
        stored += len(events)
        say(f"{db.kind}: slot {slot + 1}/{population.slots}: {stored:,} events stored "
            f"(generate {generate_s:.1f} s, store {store_s:.1f} s)")
    result.update(events=stored, generate_s=round(generate_s, 1), store_s=round(store_s, 1),
                  generated=dict(population.counts))
    db.analyze()
    clock._now = t0
    settings = Settings(database_url=db.url, mqtt_url="mqtt://127.0.0.1:1")
    t = time.perf_counter()
    run = TurnaroundJobs(db.engine, settings, clock=clock, holder="bench").turnaround()
    result["turnaround_s"] = round(time.perf_counter() - t, 1)
    result["alerts_opened"] = run.opened if run else None
    db.analyze()
    with db.engine.connect() as c:
        counts = {name: c.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                  for name in ("telemetry", "drone", "specimen", "custody_event",
                               "flight_event", "specimen_tracking", "flight_tracking")}
        counts["in_transit"] = c.execute(text(
            "SELECT count(*) FROM specimen_tracking WHERE state = 'in_transit'")).scalar_one()
    result["rows"] = counts
    say(f"{db.kind}: stored {stored:,} events in {result['store_s']} s, turnaround (cold) "
        f"{result['turnaround_s']} s; rows {counts}")
    return result, population


def make_token(db: ScratchDatabase, t0: datetime) -> str:
    from dronelog.api.accounts import Role, add_user, issue_token

    with db.engine.begin() as connection:
        add_user(connection, "bench-dispatcher", Role.DISPATCHER, t0)
        return issue_token(connection, "bench-dispatcher", t0, timedelta(hours=12))


# --- the API server --------------------------------------------------------------------------


# The server process: the app as `dronelog api` builds it, from the source tree given first
# (this repository, or another checkout for --compare-with), on a loopback port.
SERVE = """
import gc
import sys
source, url, mqtt_url, port, clock_iso, loop, http = sys.argv[1:]
sys.path.insert(0, source)
import logging
from datetime import datetime

import structlog
import uvicorn

from dronelog.api.app import create_app
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.storage.database import create_db_engine

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
settings = Settings(database_url=url, mqtt_url=mqtt_url)
engine = create_db_engine(url, settings.sqlite_synchronous)
clock = ManualClock(datetime.fromisoformat(clock_iso)) if clock_iso else None
app = create_app(settings, engine, clock)
try:  # `dronelog api` serves with its own h11 protocol (the live streams' direct writes)
    from dronelog.api.server import StreamingH11Protocol
    if http in ("auto", "h11"):
        http = StreamingH11Protocol
except ImportError:  # a tree from before it
    pass
gc.freeze()  # as `dronelog api` does
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", loop=loop, http=http)
"""


class ApiServer:
    def __init__(self, url: str, mqtt_url: str, clock: datetime | None,
                 source: Path = ROOT, server: str = "auto,auto",
                 env: dict[str, str] | None = None) -> None:
        """`server`: uvicorn's event loop and HTTP implementation, "LOOP,HTTP" (an HTTP of
        "auto" or "h11" is `dronelog api`'s own h11 protocol, dronelog/api/server.py, in a
        tree that has it; "auto" loop: uvloop when installed); `env`: settings (DRONELOG_*)
        over this process's environment."""
        import httpx

        from dronelog.broker import free_port

        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(source), url, mqtt_url, str(self.port),
             clock.isoformat() if clock else "", *server.split(",")], cwd=source,
            env={**os.environ, **(env or {})})
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def timed_gets(clients: dict, paths: list[str], headers: dict, check) -> dict:
    """Each path from every client in turn (the order alternating, so that neither client
    always goes first); per client, the times in ms and the failed checks."""
    out = {name: ([], 0) for name in clients}
    names = list(clients)
    for i, path in enumerate(paths):
        for name in names if i % 2 == 0 else reversed(names):
            start = time.perf_counter()
            response = clients[name].get(path, headers=headers)
            body = response.content
            out[name][0].append(1000 * (time.perf_counter() - start))
            if response.status_code != 200 or not check(body):
                out[name] = (out[name][0], out[name][1] + 1)
    return out


def measure_lookups(db: ScratchDatabase, args: argparse.Namespace, t0: datetime, token: str,
                    population: Population) -> dict:
    """Lookups and the fleet on this tree's API, and on --compare-with's in alternation."""
    import httpx

    rng = random.Random(args.seed + 1)
    sources = {"this": ROOT}
    if args.compare_with:
        sources["compare"] = args.compare_with
    servers, clients = {}, {}
    headers = {"Authorization": f"Bearer {token}"}
    drones = min(len(population.drones), population.flights)  # the drones that have flown
    results: dict = {name: {} for name in sources}

    def specimen_ok(body: bytes) -> bool:
        return b'"timeline"' in body

    def in_transit_ok(body: bytes) -> bool:
        return b'"eta"' in body and b'"position":{' in body

    def fleet_ok(body: bytes) -> bool:
        fleet = json.loads(body)
        return len(fleet) == drones and all(d["position"] for d in fleet)

    def phase(key: str, paths: list[str], check) -> None:
        load = load_average()
        timed = timed_gets(clients, paths, headers, check)
        for name, (times, errors) in timed.items():
            results[name][key] = {**summary(times), "errors": errors,
                                  "load_1min": [load, load_average()]}
            say(f"{db.kind}: {key} ({name}) {results[name][key]}")

    try:
        for name, source in sources.items():
            servers[name] = ApiServer(db.url, "mqtt://127.0.0.1:1", t0, Path(source))
            clients[name] = httpx.Client(base_url=servers[name].base, timeout=30)
        warm = rng.choices(population.barcodes, k=args.warmup)
        timed_gets(clients, [f"/api/v1/specimens/{b}" for b in warm], headers, specimen_ok)
        timed_gets(clients, ["/api/v1/drones"] * max(1, args.warmup // 10), headers, fleet_ok)
        picked = rng.choices(population.barcodes, k=args.lookups)
        phase("lookup", [f"/api/v1/specimens/{b}" for b in picked], specimen_ok)
        results["this"]["lookup"]["in_transit_drawn"] = len(set(picked) &
                                                            set(population.in_transit))
        picked = rng.choices(population.in_transit, k=args.in_transit_lookups)
        phase("lookup_in_transit", [f"/api/v1/specimens/{b}" for b in picked], in_transit_ok)
        phase("fleet", ["/api/v1/drones"] * args.fleet_requests, fleet_ok)
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()
    out = results["this"]
    if args.compare_with:
        out["compare"] = {"source": str(args.compare_with), **results["compare"]}
    return out


# --- publish to visible ----------------------------------------------------------------------


def publisher_main(port: int, drones: list[str], rate: float, seconds: float, ready, go,
                   results) -> None:
    """Child process: QoS 1 telemetry at a fixed rate; each message's event_time is the
    wall-clock time of its publish."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from dronelog.contract.messages import Telemetry
    from dronelog.contract.topics import TopicLayout

    layout = TopicLayout()
    topics = [layout.telemetry(d) for d in drones]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    acked = [0]

    def on_publish(_client, _userdata, _mid, _reason, _properties) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    go.wait()
    total = int(rate * seconds)
    records, behind = [], 0.0
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        lag = time.monotonic() - due
        if lag < 0:
            time.sleep(-lag)
        else:
            behind = max(behind, lag)
        d = i % len(drones)
        now = datetime.now(UTC)
        event_id = uuid.uuid4()
        payload = Telemetry(
            schema_version=1, event_id=event_id, event_time=now, drone_id=drones[d],
            seq=1_000_000 + i // len(drones), lat=36.779, lon=119.956, alt_m=45.0,
            ground_speed_mps=0.0, heading_deg=0.0, battery_pct=90.0, payload_temp_c=20.0,
            link_quality_pct=95.0).model_dump_json(exclude_none=True)
        client.publish(topics[d], payload, qos=1)
        records.append((d, epoch_us(now), str(event_id)))
    sent_s = time.monotonic() - start
    deadline = time.monotonic() + 30
    while acked[0] < total and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    results.put({"records": records, "published": total, "acked": acked[0],
                 "send_s": round(sent_s, 3), "max_behind_schedule_ms": round(1000 * behind, 1)})


def serves_stream(http) -> bool:
    """Whether the running app has GET /api/v1/stream (the SSE route), by its OpenAPI."""
    response = http.get("/openapi.json")
    return response.status_code == 200 and "/api/v1/stream" in response.json()["paths"]


def watch_by_stream(http, headers: dict, go, finished, timeout_s: float
                    ) -> tuple[list[tuple[int, str]], dict]:
    """Read GET /api/v1/stream?types=telemetry in a thread; (time read in µs, event_id) of
    every telemetry frame, until every published event id was seen or `timeout_s` after the
    publisher finished."""
    frames: list[tuple[int, str]] = []
    info = {"reset": 0, "frames": 0}
    stop = threading.Event()
    connected = threading.Event()

    def read() -> None:
        try:
            _read()
        except Exception as error:  # noqa: BLE001  (the server going away at the end)
            if not stop.is_set():
                info["error"] = repr(error)

    def _read() -> None:
        with http.stream("GET", "/api/v1/stream", params={"types": "telemetry"},
                         headers={**headers, "Accept": "text/event-stream"},
                         timeout=httpx_timeout()) as response:
            info["status"] = response.status_code
            connected.set()
            kind = None
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "telemetry":
                    frames.append((time.time_ns() // 1000,
                                   json.loads(line[5:])["event_id"]))
                elif line.startswith("data:") and kind == "reset":
                    info["reset"] += 1
                elif not line:
                    kind = None

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not connected.wait(30) or info.get("status") != 200:
        raise RuntimeError(f"the stream did not open: {info}")
    time.sleep(1.0)  # the stream takes its cursor before the first publish
    ready = False
    end_at = None
    go()
    while True:
        ids = finished()
        if ids is not None and end_at is None:
            end_at = time.monotonic() + timeout_s
        if ids is not None:
            seen = {event_id for _, event_id in frames}
            ready = ids <= seen
        if ready or (end_at is not None and time.monotonic() > end_at) \
                or not reader.is_alive():
            stop.set()
            info["frames"] = len(frames)
            return frames, info
        time.sleep(0.1)


def httpx_timeout():
    import httpx

    return httpx.Timeout(30, read=None)


def watch_by_polling(http, headers: dict, drones: list[str], poll_s: float, finished,
                     timeout_s: float) -> tuple[list[tuple[float, int, int]], list[float]]:
    """Poll the fleet; (response time in µs, drone index, newest event time in µs) whenever a
    drone's newest position changes, and the time of every poll."""
    index = {d: i for i, d in enumerate(drones)}
    seen: dict[int, int] = {}
    observations, polls = [], []
    end_at = None
    while True:
        tick = time.monotonic()
        start = time.perf_counter()
        response = http.get("/api/v1/drones", headers=headers)
        done_us = time.time_ns() // 1000
        polls.append(1000 * (time.perf_counter() - start))
        for d in response.json():
            i = index.get(d["drone_id"])
            if i is None or not d["position"]:
                continue
            at = epoch_us(datetime.fromisoformat(d["position"]["at"]))
            if seen.get(i) != at:
                seen[i] = at
                observations.append((done_us, i, at))
        if end_at is None and finished():
            end_at = time.monotonic() + timeout_s
        if end_at is not None:
            last = finished()
            if (last and all(seen.get(i, 0) >= t for i, t in last.items())) \
                    or time.monotonic() > end_at:
                return observations, polls
        time.sleep(max(0.0, poll_s - (time.monotonic() - tick)))


def visible_latencies(records, observations) -> tuple[list[float], int]:
    """Per message: first observation of its drone at its event time or later."""
    by_drone: dict[int, list[int]] = defaultdict(list)
    for d, at, _ in records:
        by_drone[d].append(at)
    pending = {d: sorted(times) for d, times in by_drone.items()}
    cursor = dict.fromkeys(pending, 0)
    latencies = []
    for done_us, d, at in sorted(observations):
        times = pending.get(d)
        if not times:
            continue
        k = cursor[d]
        while k < len(times) and times[k] <= at:
            latencies.append((done_us - times[k]) / 1000)
            k += 1
        cursor[d] = k
    missing = sum(len(times) - cursor[d] for d, times in pending.items())
    return latencies, missing


def stream_latencies(records, frames) -> tuple[list[float], int, int]:
    """Per message: the first frame with its event id."""
    first: dict[str, int] = {}
    for read_us, event_id in frames:
        first.setdefault(event_id, read_us)
    latencies = [(first[event_id] - at) / 1000 for _, at, event_id in records
                 if event_id in first]
    return latencies, len(records) - len(latencies), len(frames) - len(first)


def measure_visible(db: ScratchDatabase, args: argparse.Namespace, token: str,
                    population: Population, workdir: Path, watch: str) -> dict:
    """Publish at a fixed rate through broker and ingester; watch the API by `watch`:
    "stream" (SSE) or "poll" (GET /api/v1/drones)."""
    import httpx

    from dronelog.broker import MosquittoBroker

    if not MosquittoBroker.available():
        raise SystemExit("mosquitto is needed for the publish-to-visible part (--watch none)")
    broker = MosquittoBroker(workdir / f"broker-{db.kind}-{watch}").start()
    log_path = workdir / f"ingester-{db.kind}-{watch}.log"
    env = {**os.environ, "DRONELOG_DATABASE_URL": db.url, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_LOG_FORMAT": "json"}
    with open(log_path, "ab") as log:
        ingester = subprocess.Popen([sys.executable, "-m", "dronelog", "ingest"], env=env,
                                    cwd=workdir, stdout=log, stderr=log)
    server = publisher = None
    out: dict = {"rate": args.rate, "seconds": args.latency_s, "load_1min": [load_average()]}
    try:
        deadline = time.monotonic() + 30
        while b"connected to broker" not in log_path.read_bytes():
            if ingester.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingester did not connect: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        server = ApiServer(db.url, broker.url, None)
        context = mp.get_context("spawn")
        ready, go, results = context.Event(), context.Event(), context.Queue()
        publisher = context.Process(target=publisher_main, args=(
            broker.port, population.drones, args.rate, args.latency_s, ready, go, results),
            daemon=True)
        publisher.start()
        if not ready.wait(30):
            raise RuntimeError("the publisher did not connect")
        headers = {"Authorization": f"Bearer {token}"}
        report: dict = {}

        def take_report() -> bool:
            if not report:
                try:
                    report.update(results.get(timeout=0.001))
                except queue.Empty:
                    return False
            return True

        def last_per_drone():
            if not take_report():
                return None
            if "last" not in report:
                last: dict[int, int] = {}
                for d, at, _ in report["records"]:
                    last[d] = max(at, last.get(d, 0))
                report["last"] = last
            return report["last"]

        def event_ids():
            if not take_report():
                return None
            if "ids" not in report:
                report["ids"] = {event_id for _, _, event_id in report["records"]}
            return report["ids"]

        with httpx.Client(base_url=server.base, timeout=30) as http:
            if watch == "stream":
                if not serves_stream(http):
                    raise SystemExit("the app has no GET /api/v1/stream: use --watch poll")
                out["via"] = "SSE GET /api/v1/stream?types=telemetry"
                say(f"{db.kind}: publishing {args.rate:g} msg/s for {args.latency_s:g} s; "
                    f"watching {out['via']}")
                frames, info = watch_by_stream(http, headers, go.set, event_ids, 30.0)
                latencies, missing, repeats = stream_latencies(report["records"], frames)
                out.update(frames=info["frames"], repeated_frames=repeats,
                           resets=info["reset"])
            else:
                out["via"] = f"polling GET /api/v1/drones every {args.poll_interval:g} s"
                say(f"{db.kind}: publishing {args.rate:g} msg/s for {args.latency_s:g} s; "
                    f"watching by {out['via']}")
                go.set()
                observations, polls = watch_by_polling(http, headers, population.drones,
                                                       args.poll_interval, last_per_drone,
                                                       30.0)
                latencies, missing = visible_latencies(report["records"], observations)
                out.update(polls=len(polls), poll_request=summary(polls))
        out.update(published=report["published"], acked_by_broker=report["acked"],
                   publisher_send_s=report["send_s"],
                   publisher_max_behind_schedule_ms=report["max_behind_schedule_ms"],
                   visible=len(latencies), not_visible=missing, latency=summary(latencies))
        out["load_1min"].append(load_average())
        say(f"{db.kind}: publish to visible ({watch}) {out['latency']}; {missing} not visible")
    finally:
        if publisher is not None and publisher.is_alive():
            publisher.terminate()
        if server is not None:
            server.stop()
        ingester.send_signal(signal.SIGTERM)
        try:
            ingester.wait(30)
        except subprocess.TimeoutExpired:
            ingester.kill()
        broker.stop()
    return out


# --- fleet query variants --------------------------------------------------------------------


def fleet_queries(db: ScratchDatabase, repeat: int) -> dict:
    """The latest telemetry row of every drone, by several queries, timed on the database
    directly (execute + fetch all rows): the evidence for the one fleet() uses."""
    from sqlalchemy import and_, func, select, true

    from dronelog.storage.tables import Drone, TelemetryPoint

    D, TEL = Drone.__table__, TelemetryPoint.__table__

    def per_drone(c):
        return [c.execute(select(TEL).where(TEL.c.drone_id == d).order_by(
            TEL.c.event_time.desc()).limit(1)).first()
            for d in c.execute(select(D.c.id).order_by(D.c.id)).scalars()]

    def window(c):
        ranked = select(TEL, func.row_number().over(
            partition_by=TEL.c.drone_id, order_by=TEL.c.event_time.desc()).label("rn")
        ).subquery()
        return c.execute(select(ranked).where(ranked.c.rn == 1)).all()

    def max_join(c):
        latest = select(TEL.c.drone_id, func.max(TEL.c.event_time).label("at")).group_by(
            TEL.c.drone_id).subquery()
        return c.execute(select(TEL).join(latest, and_(
            TEL.c.drone_id == latest.c.drone_id, TEL.c.event_time == latest.c.at))).all()

    inner = TEL.alias("newest")

    def correlated_max(c):
        newest = (select(func.max(inner.c.event_time)).where(inner.c.drone_id == D.c.id)
                  .scalar_subquery())
        return c.execute(select(D.c.id, TEL).select_from(D).outerjoin(TEL, and_(
            TEL.c.drone_id == D.c.id, TEL.c.event_time == newest)).order_by(D.c.id)).all()

    def correlated_id(c):
        newest = (select(inner.c.id).where(inner.c.drone_id == D.c.id)
                  .order_by(inner.c.event_time.desc(), inner.c.id.desc()).limit(1)
                  .scalar_subquery())  # as fleet() has it on SQLite since the fix
        return c.execute(select(D.c.id, TEL).select_from(D).outerjoin(
            TEL, TEL.c.id == newest).order_by(D.c.id)).all()

    def lateral(c):  # as fleet() has it on PostgreSQL since the fix
        newest = (select(TEL).where(TEL.c.drone_id == D.c.id)
                  .order_by(TEL.c.event_time.desc(), TEL.c.id.desc()).limit(1).lateral())
        return c.execute(select(D.c.id, newest).select_from(D).outerjoin(newest, true())
                         .order_by(D.c.id)).all()

    variants = {"per_drone": per_drone, "window": window, "max_join": max_join,
                "correlated_max": correlated_max, "correlated_id": correlated_id}
    if db.kind == "postgresql":
        variants["lateral"] = lateral
    times: dict[str, list[float]] = {name: [] for name in variants}
    rows: dict[str, int] = {}
    with db.engine.connect() as c:
        slow = set()
        for name, run in variants.items():  # warm, and the row count
            start = time.perf_counter()
            rows[name] = len(run(c))
            if time.perf_counter() - start > 1.0:
                slow.add(name)  # a scan of every row: 3 runs are enough
        for i in range(repeat):  # interleaved, so a busy moment hits every variant alike
            for name, run in variants.items():
                if name in slow and i >= 3:
                    continue
                start = time.perf_counter()
                run(c)
                times[name].append(1000 * (time.perf_counter() - start))
        c.rollback()
    out = {name: {**summary(times[name]), "rows": rows[name]} for name in variants}
    for name, result in out.items():
        say(f"{db.kind}: fleet query {name}: {result}")
    return out


# --- report ----------------------------------------------------------------------------------


def environment(pg_url: str, databases: list[str]) -> dict:
    import fastapi
    import httpx
    import uvicorn

    return machine_environment(pg_url, databases, fastapi=fastapi.__version__,
                               uvicorn=uvicorn.__version__, httpx=httpx.__version__)


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    return "met" if value < target else "MISSED"


def markdown(results: list[dict], env: dict, started: str) -> str:
    pg = env.get("postgresql")
    lines = [
        "# API benchmark", "",
        f"- date: {started} (UTC)",
        f"- machine: {env.get('cpu')}, {env.get('nproc')} CPUs, {env.get('memory_gib')} GiB; "
        f"{env.get('platform')}; load average at start {env.get('load_average_at_start')}, "
        f"at end {env.get('load_average_at_end')}",
        f"- versions: Python {env['python']}, FastAPI {env['fastapi']}, uvicorn "
        f"{env['uvicorn']}, SQLAlchemy {env['sqlalchemy']}, psycopg {env['psycopg']}, "
        f"SQLite {env['sqlite']}" + (f", PostgreSQL {pg}" if pg else ""), "",
        "| database | telemetry rows | specimens | drones | load s (generate + store + "
        "turnaround) | request | n | p50 ms | p90 ms | p99 ms | max ms | errors | load (1 min) "
        "before, after | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows, load_ = r["load"]["rows"], r["load"]
        head = (f"| {r['database']} | {rows['telemetry']:,} | {rows['specimen_tracking']:,} | "
                f"{rows['drone']:,} | {load_['generate_s']} + {load_['store_s']} + "
                f"{load_['turnaround_s']} ")
        for key, label, target in (
                ("lookup", "GET /specimens/{barcode} (random)", LOOKUP_TARGET_MS),
                ("lookup_in_transit", "GET /specimens/{barcode} (in transit)",
                 LOOKUP_TARGET_MS),
                ("fleet", "GET /drones", FLEET_TARGET_MS)):
            for tree, api in (("", r["api"]), (" (--compare-with)", r["api"].get("compare"))):
                if not api:
                    continue
                s = api[key]
                lines.append(f"{head}| {label}{tree} | {s['n']} | {s['p50_ms']} | "
                             f"{s['p90_ms']} | {s['p99_ms']} | {s['max_ms']} | {s['errors']} | "
                             f"{', '.join(map(str, s.get('load_1min', [])))} | "
                             f"{_verdict(s['p99_ms'], target)} (p99 < {target:g}) |")
    visible = [(r, v) for r in results for v in r.get("visible", [])]
    if visible:
        lines += ["", "Publish to visible through the API:", "",
                  "| database | via | rate msg/s | published | acked | visible | not visible "
                  "| p50 ms | p90 ms | p99 ms | max ms | load (1 min) before, after | target |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r, v in visible:
            s = v["latency"]
            lines.append(
                f"| {r['database']} | {v['via']} | {v['rate']:g} | {v['published']:,} | "
                f"{v['acked_by_broker']:,} | {v['visible']:,} | {v['not_visible']:,} | "
                f"{s.get('p50_ms')} | {s.get('p90_ms')} | {s.get('p99_ms')} | "
                f"{s.get('max_ms')} | {', '.join(map(str, v.get('load_1min', [])))} | "
                f"{_verdict(s.get('p99_ms'), VISIBLE_TARGET_MS)} "
                f"(p99 < {VISIBLE_TARGET_MS:g}) |")
    queries = [r for r in results if r.get("fleet_queries")]
    if queries:
        lines += ["", "Latest telemetry row per drone, query variants (on the database, "
                  "execute + fetch):", "", "| database | query | rows | p50 ms | p99 ms |",
                  "|---|---|---|---|---|"]
        for r in queries:
            for name, s in r["fleet_queries"].items():
                lines.append(f"| {r['database']} | {name} | {s['rows']} | {s['p50_ms']} | "
                             f"{s['p99_ms']} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Latency of the HTTP API over a filled database (specimen lookup, the "
                    "fleet) and from an MQTT publish to visibility through the API, on SQLite "
                    "and PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help=f"comma-separated subset of {', '.join(DATABASES)}")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL admin URL (loopback only); bench_api_* databases are "
                             "created and dropped on this server")
    parser.add_argument("--drones", type=int, default=500)
    parser.add_argument("--telemetry", type=int, default=1_000_000, help="telemetry rows")
    parser.add_argument("--specimens", type=int, default=100_000)
    parser.add_argument("--per-flight", type=int, default=20, help="specimens per flight")
    parser.add_argument("--waiting-share", type=float, default=0.05,
                        help="share of specimens collected but not flown yet")
    parser.add_argument("--airborne", type=int, default=25, help="flights in the air at T0")
    parser.add_argument("--batch", type=int, default=5000, help="events per BatchWriter.write")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured lookups first")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--in-transit-lookups", type=int, default=300)
    parser.add_argument("--fleet-requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="publish-to-visible: telemetry messages per second")
    parser.add_argument("--latency-s", type=float, default=60.0,
                        help="publish-to-visible: how long to publish")
    parser.add_argument("--poll-interval", type=float, default=0.1,
                        help="publish-to-visible without SSE: seconds between fleet polls")
    parser.add_argument("--watch", default="stream",
                        help="publish-to-visible: comma-separated stream (the SSE route), "
                             "poll (GET /api/v1/drones), or none to skip it")
    parser.add_argument("--fleet-queries", type=int, default=0, metavar="REPEAT",
                        help="also time variants of the latest-row-per-drone query directly "
                             "on the database, REPEAT times each")
    parser.add_argument("--compare-with", default=None, metavar="DIR", type=Path,
                        help="a second source tree (e.g. `git archive` of an older commit "
                             "unpacked in DIR): its API runs beside this one on the same "
                             "database, and every lookup and fleet request goes to both in "
                             "turn, so that a busy machine affects both alike")
    parser.add_argument("--sqlite-synchronous", default="FULL")
    parser.add_argument("--workdir", default=None,
                        help="where the temp dir for SQLite files goes (default: system temp)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if args.drones < 1 or args.specimens < 10 or args.per_flight < 1:
        parser.error("need at least 1 drone, 10 specimens and 1 specimen per flight")
    args.watch = [w.strip() for w in args.watch.split(",") if w.strip() not in ("", "none")]
    if set(args.watch) - {"stream", "poll"}:
        parser.error("--watch takes stream, poll or none")
    if not 0 <= args.waiting_share < 1:
        parser.error("--waiting-share is a share in [0, 1)")
    return args


def _terminate(_signum, _frame) -> None:
    raise SystemExit(143)  # runs the cleanup in main()'s finally


def run_case(kind: str, args: argparse.Namespace, workdir: Path, t0: datetime) -> dict:
    result: dict = {"database": kind, "t0": t0.isoformat()}
    say(f"{kind}: creating the database")
    db = ScratchDatabase(kind, workdir, args.pg_url, "bench-api", args.sqlite_synchronous)
    try:
        result["load"], population = load(db, args, t0)
        token = make_token(db, t0)
        result["api"] = measure_lookups(db, args, t0, token, population)
        if args.fleet_queries:
            result["fleet_queries"] = fleet_queries(db, args.fleet_queries)
        result["visible"] = [measure_visible(db, args, token, population, workdir, watch)
                             for watch in args.watch]
    finally:
        db.drop()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="dronelog-bench-api-", dir=args.workdir))
    os.environ["DRONELOG_CONFIG"] = str(workdir / "none.toml")  # no dronelog.toml from cwd
    results = []
    try:
        for kind in args.databases:
            t0 = datetime.now(UTC).replace(microsecond=0)
            results.append(run_case(kind, args, workdir, t0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    env = environment(args.pg_url, args.databases)
    env["load_average_at_start"] = load_at_start
    table = markdown(results, env, started)
    print(table)
    if args.json:
        report = {"started_at": started,
                  "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "argv": sys.argv, "options": vars(args), "environment": env,
                  "results": results, "markdown": table}
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
