"""Turnaround sweep benchmark: one `TurnaroundJobs.turnaround()` (lease, tracker.refresh and
sweep.sweep in one transaction) over N open specimens, on SQLite and PostgreSQL.

Set-up per database and size N: a fresh, migrated database (SQLite: a temp file; PostgreSQL:
a `bench_turn_<random>` database created on --pg-url, dropped at the end), the Pingdu network
imported from scenarios/pingdu.toml, then N specimens stored through the real `BatchWriter`
as contract events (`Accepted` objects, as tests/test_turnaround.py does), sorted by event
time, in batches of --batch events, with the ManualClock set to each batch's newest event
time (so `stored_at` looks like a live feed that ended two minutes before T0):

- priorities 5 % stat, 15 % urgent, 80 % routine, kinds and temperature classes mixed, from
  the three township / district sites to the central lab;
- each specimen collected between 2 min and (its warning time - a margin) before T0, so none
  is past its warning time during the steady-state sweeps;
- about 1 % in flight: collected, packed and loaded on one of ~50 airborne flights (planned +
  takeoff, a few telemetry points each, on the route, payload in range).

Then, on the ManualClock:

(a) cold:    all N projections derived from nothing at T0, twice: in one transaction
             (tracker.refresh from an empty watermark, as before turnaround/rebuild.py) and,
             after emptying them, in chunks that each renew the lease (rebuild.rebuild, the
             scheduler's way now): total and longest chunk; then the first sweep;
(b) steady:  one unmeasured warm-up step, then --repeat steps of: clock +10 s, a trickle of
             20 custody events (10 new specimens collected, 10 packed) and one telemetry
             point per airborne flight, then turnaround(); p50 / p90 / max reported;
(c) crossing: the clock jumps to the 10th percentile of the open specimens' warning_at, with
             the same trickle, so ~10 % of them cross it and their alerts are opened; the
             time of that sweep and of the next one (+10 s) are reported.

The time of each sweep is split by phase (tracker.refresh, specimen conditions, flight
conditions, known_alerts, alert apply, the rest = lease + commit) by thin timing wrappers put
around those module functions for the run; they add well under 1 ms per sweep.
On PostgreSQL the tables are ANALYZEd after loading and after the cold sweep (what
autovacuum would have done in a live system; --no-analyze to skip).

`--profile DIR` adds --profile-sweeps steady-state sweeps (after the measured ones) under
cProfile, with the time of every SQL statement; the .prof files go to DIR and the top
functions and statements to stderr and --json.

Results: a markdown table on stdout, progress on stderr, everything in --json.

    .venv/bin/python benchmarks/turnaround.py --json turnaround.json
    .venv/bin/python benchmarks/turnaround.py --sizes 10000 --databases sqlite --profile /tmp/p
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_databases import ScratchDatabase, environment  # noqa: E402  (beside this script)

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgresql")
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Pingdu
LAB = "pdrmyy"
ORIGINS = ("pddermyy", "cjzxwsy", "wjwsy")
STEP_S = 10.0  # the scheduler's sweep interval
MIN_AGE_S = 120.0  # the youngest specimen at T0 was collected this long before
TARGET_MS = 200.0
TARGET_N = 10_000

# (priority, share, [(kind, temperature_class, share)])
MIX = (
    ("stat", 0.05, (("blood_sample", "ambient", 0.7), ("blood_gas", "ambient", 0.3))),
    ("urgent", 0.15, (("pathology", "refrigerated", 0.5), ("blood_sample", "ambient", 0.4),
                      ("blood_gas", "ambient", 0.1))),
    ("routine", 0.80, (("blood_sample", "ambient", 0.6), ("urine", "refrigerated", 0.25),
                       ("microbiology", "ambient", 0.15))),
)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- events ----------------------------------------------------------------------------------


class Events:
    """Builds contract events and wraps them as the ingester's `Accepted` objects."""

    def __init__(self, seed: int) -> None:
        from dronelog.contract.topics import TopicLayout
        from dronelog.domain.facts import SpecimenFacts
        from dronelog.domain.policies import PolicyBook
        from dronelog.domain.stability import SpecimenLimits, StabilityCatalogue
        from dronelog_sim.scenario import load_scenario

        self.rng = random.Random(seed)
        self.layout = TopicLayout()
        self._addresses: dict[str, object] = {}
        self.scenario = load_scenario(ROOT / "scenarios" / "pingdu.toml")
        sites = {s.id: (s.lat, s.lon) for s in self.scenario.sites}
        self.routes = {}
        for r in self.scenario.routes:
            if r.destination == LAB and r.origin in ORIGINS:
                self.routes[r.origin] = [sites[r.origin], *[tuple(p) for p in r.waypoints],
                                         sites[LAB]]
        policies = SpecimenLimits(PolicyBook.default(), StabilityCatalogue.default())
        self.warning_s = {}  # (priority, kind) -> seconds from collection to warning
        for priority, _share, kinds in MIX:
            for kind, temperature_class, _ in kinds:
                policy = policies.for_specimen(SpecimenFacts(
                    barcode="X", kind=kind, priority=priority,
                    temperature_class=temperature_class, origin_site_id=ORIGINS[0],
                    destination_site_id=LAB, blood_product=None))
                self.warning_s[(priority, kind)] = policy.target_min * policy.warning_fraction * 60
        self.counter = 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick_kind(self) -> tuple[str, str, str]:
        x = self.rng.random()
        for priority, share, kinds in MIX:
            if x < share:
                y = self.rng.random()
                for kind, temperature_class, kind_share in kinds:
                    if y < kind_share:
                        return priority, kind, temperature_class
                    y -= kind_share
                return priority, kinds[-1][0], kinds[-1][1]
            x -= share
        return "routine", "blood_sample", "ambient"

    def collected(self, barcode: str, at: datetime, origin: str, priority: str, kind: str,
                  temperature_class: str):
        from dronelog.contract import messages as m

        return m.Collected(
            schema_version=1, event_id=self.uuid(), kind="collected", event_time=at,
            barcode=barcode, site_id=origin, actor={"kind": "staff", "id": f"nurse-{origin}"},
            specimen={"kind": kind, "priority": priority, "temperature_class": temperature_class,
                      "origin_site_id": origin, "destination_site_id": LAB,
                      "order_ref": f"ORD-{barcode}"})

    def packed(self, barcode: str, at: datetime, origin: str, box: str, seal: str):
        from dronelog.contract import messages as m

        return m.Packed(schema_version=1, event_id=self.uuid(), kind="packed", event_time=at,
                        barcode=barcode, site_id=origin,
                        actor={"kind": "staff", "id": f"nurse-{origin}"}, container_id=box,
                        seal_id=seal)

    def loaded(self, barcode: str, at: datetime, origin: str, box: str, flight_id: str,
               drone_id: str):
        from dronelog.contract import messages as m

        return m.Loaded(schema_version=1, event_id=self.uuid(), kind="loaded", event_time=at,
                        barcode=barcode, site_id=origin,
                        actor={"kind": "staff", "id": f"crew-{origin}"}, container_id=box,
                        flight_id=flight_id, drone_id=drone_id)

    def flight(self, kind: str, at: datetime, flight_id: str, drone_id: str, origin: str):
        from dronelog.contract import messages as m

        if kind == "planned":
            return m.FlightPlanned(schema_version=1, event_id=self.uuid(), kind="planned",
                                   event_time=at, drone_id=drone_id, flight_id=flight_id,
                                   origin_site_id=origin, destination_site_id=LAB)
        return m.FlightTakeoff(schema_version=1, event_id=self.uuid(), kind="takeoff",
                               event_time=at, drone_id=drone_id, flight_id=flight_id,
                               site_id=origin)

    def telemetry(self, flight: dict, at: datetime):
        from dronelog.contract import messages as m

        flown_s = (at - flight["took_off_at"]).total_seconds()
        fraction = min(0.97, max(0.0, 18.0 * flown_s / flight["length_m"]))
        lat, lon = _along(flight["route"], fraction)
        flight["seq"] += 1
        return m.Telemetry(schema_version=1, event_id=self.uuid(), event_time=at,
                           drone_id=flight["drone_id"], seq=flight["seq"],
                           flight_id=flight["flight_id"], lat=lat, lon=lon, alt_m=170.0,
                           ground_speed_mps=18.0, heading_deg=60.0,
                           battery_pct=max(30.0, 85.0 - flown_s / 60),
                           payload_temp_c=20.0 + self.rng.uniform(-0.5, 0.5))

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


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    dy = (b[0] - a[0]) * 111_320.0
    dx = (b[1] - a[1]) * 111_320.0 * math.cos(lat)
    return math.hypot(dx, dy)


def _length_m(route: list[tuple[float, float]]) -> float:
    return sum(_distance_m(a, b) for a, b in zip(route, route[1:], strict=False))


def _along(route: list[tuple[float, float]], fraction: float) -> tuple[float, float]:
    """The point at `fraction` of the route's length."""
    remaining = fraction * _length_m(route)
    for a, b in zip(route, route[1:], strict=False):
        leg = _distance_m(a, b)
        if remaining <= leg:
            f = remaining / leg if leg else 0.0
            return (round(a[0] + (b[0] - a[0]) * f, 6), round(a[1] + (b[1] - a[1]) * f, 6))
        remaining -= leg
    return route[-1]


class Workload:
    """The generated population and the trickle that follows it."""

    def __init__(self, n: int, events: Events, margin_s: float, flights: int,
                 telemetry_points: int, in_flight_share: float) -> None:
        self.events = events
        self.n = n
        rng = events.rng
        self.flights: list[dict] = []
        self.waiting: list[tuple[str, str]] = []  # (barcode, origin): collected, not packed
        self.next_barcode = 0
        self.trickle_count = 0
        bulk = []  # (event_time, event)
        n_in_flight = max(1, round(n * in_flight_share))
        n_flights = max(1, min(flights, n_in_flight))
        for f in range(n_flights):
            origin = ORIGINS[f % len(ORIGINS)]
            took_off_at = T0 - timedelta(seconds=rng.uniform(180, 600))
            route = events.routes[origin]
            flight = {"flight_id": f"BF-{f:04d}", "drone_id": f"uav-b{f:03d}", "origin": origin,
                      "took_off_at": took_off_at, "route": route, "length_m": _length_m(route),
                      "seq": 0, "box": f"BOX-F{f:04d}", "seal": f"SEAL-F{f:04d}"}
            self.flights.append(flight)
            bulk.append((took_off_at - timedelta(minutes=3), events.flight(
                "planned", took_off_at - timedelta(minutes=3), flight["flight_id"],
                flight["drone_id"], origin)))
            bulk.append((took_off_at, events.flight("takeoff", took_off_at, flight["flight_id"],
                                                    flight["drone_id"], origin)))
            for i in range(telemetry_points):
                at = T0 - timedelta(seconds=5 + STEP_S * (telemetry_points - 1 - i))
                if at > took_off_at:
                    bulk.append((at, events.telemetry(flight, at)))
        for i in range(n):
            barcode = self.new_barcode()
            if i < n_in_flight:
                flight = self.flights[i % n_flights]
                origin = flight["origin"]
                priority, _, _ = events.pick_kind()
                kind, temperature_class = "blood_sample", "ambient"  # the box is at 20 °C
                loaded_at = flight["took_off_at"] - timedelta(minutes=2)
                packed_at = flight["took_off_at"] - timedelta(minutes=4)
                low = (T0 - packed_at).total_seconds() + 120
            else:
                flight = None
                origin = ORIGINS[rng.randrange(len(ORIGINS))]
                priority, kind, temperature_class = events.pick_kind()
                low = MIN_AGE_S
            high = max(low + 60, events.warning_s[(priority, kind)] - margin_s)
            collected_at = T0 - timedelta(seconds=rng.uniform(low, high))
            bulk.append((collected_at, events.collected(barcode, collected_at, origin, priority,
                                                        kind, temperature_class)))
            if flight is None:
                self.waiting.append((barcode, origin))
                continue
            bulk.append((packed_at, events.packed(barcode, packed_at, origin, flight["box"],
                                                  flight["seal"])))
            bulk.append((loaded_at, events.loaded(barcode, loaded_at, origin, flight["box"],
                                                  flight["flight_id"], flight["drone_id"])))
        bulk.sort(key=lambda item: item[0])
        self.bulk = bulk
        rng.shuffle(self.waiting)
        self.n_in_flight = n_in_flight

    def new_barcode(self) -> str:
        self.next_barcode += 1
        return f"BT{self.next_barcode:08d}"

    def trickle(self, now: datetime, custody: int = 20) -> list:
        """Events arriving in the last sweep interval: half new collections, half packing
        of waiting specimens, and one position report per airborne flight."""
        ev = self.events
        out = []
        for i in range(custody // 2):
            priority, kind, temperature_class = ev.pick_kind()
            origin = ORIGINS[i % len(ORIGINS)]
            out.append(ev.collected(self.new_barcode(), now - timedelta(seconds=5 + i * 0.2),
                                    origin, priority, kind, temperature_class))
        for i in range(custody - custody // 2):
            barcode, origin = self.waiting.pop()
            self.trickle_count += 1
            out.append(ev.packed(barcode, now - timedelta(seconds=4 + i * 0.2), origin,
                                 f"BOX-T{self.trickle_count:06d}",
                                 f"SEAL-T{self.trickle_count:06d}"))
        for flight in self.flights:
            out.append(ev.telemetry(flight, now - timedelta(seconds=1)))
        return out


# --- databases -------------------------------------------------------------------------------


class Database(ScratchDatabase):
    """A bench_turn_* database."""

    def __init__(self, kind: str, workdir: Path, pg_url: str, sqlite_synchronous: str) -> None:
        super().__init__(kind, workdir, pg_url, "bench-turn", sqlite_synchronous)


# --- measurement -----------------------------------------------------------------------------


class Phases:
    """Timing wrappers around the sweep's module functions (patched for the run, restored
    after). Only the outermost call of a name is counted while it is running."""

    TOP = (("tracker", "refresh"), ("sweep", "_specimen_conditions"),
           ("sweep", "_flight_conditions"), ("alert_store", "known_alerts"),
           ("alert_store", "apply"))
    DETAIL = (("repo", "changed_since"), ("repo", "barcodes_on_flights"), ("repo", "flights_of"),
              ("repo", "flight_facts"), ("repo", "specimen_details"), ("repo", "custody_facts"),
              ("repo", "upsert"), ("repo", "flight_track"), ("repo", "last_seen"),
              ("repo", "recent_tracks"), ("repo", "routes"), ("sweep", "_cargo_in_transit"),
              ("sweep", "_predicted_breaches"))

    def __init__(self) -> None:
        from dronelog.turnaround import alert_store, sweep, tracker
        from dronelog.turnaround import repository as repo

        self.modules = {"tracker": tracker, "sweep": sweep, "alert_store": alert_store,
                        "repo": repo}
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._saved = []

    def install(self) -> None:
        for module_name, name in self.TOP + self.DETAIL:
            module = self.modules[module_name]
            original = getattr(module, name, None)
            if original is None:
                continue  # a phase the code no longer has
            self._saved.append((module, name, original))
            setattr(module, name, self._wrap(f"{module_name}.{name}", original))

    def uninstall(self) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()

    def _wrap(self, key: str, original):
        active = [0]

        def wrapper(*args, **kwargs):
            if active[0]:
                return original(*args, **kwargs)
            active[0] += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[key] += time.perf_counter() - start
                self.calls[key] += 1
                active[0] -= 1

        return wrapper

    def take(self) -> dict:
        """ms per function since the last take, and the calls."""
        out = {key: {"ms": round(1000 * value, 2), "calls": self.calls[key]}
               for key, value in self.totals.items()}
        self.totals.clear()
        self.calls.clear()
        return out


class SqlTimer:
    """Time of every SQL statement (by its text) while attached to the engine: the DBAPI
    cursor.execute call. psycopg returns after the server has run the statement; sqlite3
    runs most of a SELECT while the rows are fetched, which this does not include."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])

    def _before(self, conn, _cursor, _statement, _parameters, _context, _executemany):
        conn.info.setdefault("_bench_t", []).append(time.perf_counter())

    def _after(self, conn, _cursor, statement, parameters, _context, executemany):
        elapsed = time.perf_counter() - conn.info["_bench_t"].pop()
        key = " ".join(statement.split())
        if len(key) > 220:
            key = key[:220] + " ..."
        entry = self.stats[key]
        entry[0] += 1
        entry[1] += elapsed
        entry[2] += len(parameters) if executemany and isinstance(parameters, list) else 1

    def __enter__(self) -> SqlTimer:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def top(self, count: int = 15, sweeps: int = 1) -> list[dict]:
        rows = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:count]
        return [{"statement": key, "executions_per_sweep": round(v[0] / sweeps, 1),
                 "param_sets_per_sweep": round(v[2] / sweeps, 1),
                 "ms_per_sweep": round(1000 * v[1] / sweeps, 2)} for key, v in rows]


def _store(writer, events: Events, clock, batch: list, at: datetime) -> None:
    clock._now = at
    writer.write([events.accepted(e, at) for e in batch], [])


def _sweep(jobs, phases: Phases) -> tuple[float, object, dict]:
    phases.take()
    start = time.perf_counter()
    result = jobs.turnaround()
    elapsed = 1000 * (time.perf_counter() - start)
    if result is None:
        raise RuntimeError("the sweep did not get its lease")
    return elapsed, result, phases.take()


def _phase_summary(phase_runs: list[dict], totals: list[float]) -> dict:
    """Median ms per top-level phase over the runs, plus the rest (lease, commit)."""
    out = {}
    keys = [f"{m}.{n}" for m, n in Phases.TOP] + [f"{m}.{n}" for m, n in Phases.DETAIL]
    for key in keys:
        values = [run.get(key, {}).get("ms", 0.0) for run in phase_runs]
        calls = [run.get(key, {}).get("calls", 0) for run in phase_runs]
        out[key] = {"median_ms": round(statistics.median(values), 2),
                    "calls_median": statistics.median(calls)}
    rest = [total - sum(run.get(f"{m}.{n}", {}).get("ms", 0.0) for m, n in Phases.TOP)
            for run, total in zip(phase_runs, totals, strict=True)]
    out["rest (lease, commit, publish)"] = {"median_ms": round(statistics.median(rest), 2)}
    return out


def run_case(kind: str, n: int, args: argparse.Namespace, workdir: Path,
             phases: Phases) -> dict:
    from sqlalchemy import select

    from dronelog.clock import ManualClock
    from dronelog.config import Settings
    from dronelog.storage.network import import_network
    from dronelog.storage.portable import as_utc
    from dronelog.storage.writer import BatchWriter
    from dronelog.turnaround import repository as repo
    from dronelog.turnaround.service import TurnaroundJobs

    result: dict = {"database": kind, "n": n}
    say(f"{kind} N={n}: creating the database")
    db = Database(kind, workdir, args.pg_url, args.sqlite_synchronous)
    try:
        events = Events(args.seed + n)
        import_network(db.engine, events.scenario)
        margin_s = (2 + args.repeat + (args.profile_sweeps if args.profile else 0)) * STEP_S + 120
        t = time.perf_counter()
        work = Workload(n, events, margin_s, args.flights, args.telemetry_points,
                        args.in_flight_share)
        result["generate_s"] = round(time.perf_counter() - t, 2)
        result["events"] = len(work.bulk)
        result["in_flight"] = work.n_in_flight
        result["flights"] = len(work.flights)
        say(f"{kind} N={n}: generated {len(work.bulk)} events in {result['generate_s']} s "
            f"({work.n_in_flight} specimens on {len(work.flights)} flights); storing")

        clock = ManualClock(T0)
        writer = BatchWriter(db.engine, clock)
        t = time.perf_counter()
        next_report = 0
        for start in range(0, len(work.bulk), args.batch):
            chunk = work.bulk[start:start + args.batch]
            at = chunk[-1][0] + timedelta(seconds=2)
            _store(writer, events, clock, [e for _, e in chunk], at)
            if start >= next_report:
                say(f"{kind} N={n}: stored {start + len(chunk)}/{len(work.bulk)} events "
                    f"({time.perf_counter() - t:.1f} s)")
                next_report = start + 20_000
        result["store_s"] = round(time.perf_counter() - t, 2)
        work.bulk = []
        db.analyze()
        say(f"{kind} N={n}: stored in {result['store_s']} s")

        settings = Settings(database_url=db.url, mqtt_url="mqtt://127.0.0.1:1")
        jobs = TurnaroundJobs(db.engine, settings, clock=clock, holder="bench")

        # (a) cold: every projection derived for the first time, in one transaction (as
        # before rebuild.py) and in chunks (the scheduler's way now), then the first sweep
        clock._now = T0
        result["rebuild"] = cold_rebuild(kind, n, db, jobs, clock)
        db.analyze()
        ms, run, split = _sweep(jobs, phases)
        with db.engine.connect() as c:
            tracked = c.execute(select(repo.SPECIMEN_TRACKING.c.barcode)).all()
        result["cold"] = {"ms": round(ms, 1), "conditions": run.conditions, "opened": run.opened,
                          "specimens_tracked": len(tracked), "phases": split}
        say(f"{kind} N={n}: first sweep after the rebuild {ms:.0f} ms, {len(tracked)} "
            f"specimens tracked, {run.opened} alerts opened")
        db.analyze()
        if args.cold_only:
            return result

        # (b) steady state
        def step(seconds: float = STEP_S, now: datetime | None = None, watch=None):
            """Clock forward, the trickle stored, one sweep (under `watch`, a context
            manager, when given: the trickle is not profiled)."""
            clock._now = now if now is not None else clock.now() + timedelta(seconds=seconds)
            writer.write([events.accepted(e, clock.now()) for e in work.trickle(clock.now())],
                         [])
            if watch is None:
                return _sweep(jobs, phases)
            with watch:
                return _sweep(jobs, phases)

        warm_ms, warm, warm_split = step()
        result["warmup"] = {"ms": round(warm_ms, 1), "conditions": warm.conditions,
                            "opened": warm.opened, "phases": warm_split}
        steady, splits, runs = [], [], []
        for _ in range(args.repeat):
            ms, run, split = step()
            steady.append(ms)
            splits.append(split)
            runs.append({"conditions": run.conditions, "opened": run.opened,
                         "resolved": run.resolved})
        result["steady"] = {
            "runs_ms": [round(v, 1) for v in steady],
            "p50_ms": round(percentile(steady, 50), 1), "p90_ms": round(percentile(steady, 90), 1),
            "max_ms": round(max(steady), 1), "runs": runs,
            "phases": _phase_summary(splits, steady)}
        say(f"{kind} N={n}: steady p50 {result['steady']['p50_ms']} ms, p90 "
            f"{result['steady']['p90_ms']} ms, max {result['steady']['max_ms']} ms "
            f"(warm-up {warm_ms:.0f} ms)")

        if args.profile:
            result["profile"] = profile_sweeps(kind, n, args, db, step)

        # (c) ~10 % of the open specimens cross their warning time
        with db.engine.connect() as c:
            T = repo.SPECIMEN_TRACKING
            warnings = sorted(as_utc(w) for w in c.execute(
                select(T.c.warning_at).where(T.c.is_open.is_(True))).scalars())
        target = warnings[max(0, int(0.10 * len(warnings)) - 1)] + timedelta(seconds=1)
        target = max(target, clock.now() + timedelta(seconds=STEP_S))
        jump_s = (target - clock.now()).total_seconds()
        ms, run, split = step(now=target)
        with db.engine.connect() as c:
            T = repo.SPECIMEN_TRACKING
            crossed = len(c.execute(select(T.c.barcode).where(
                T.c.is_open.is_(True), T.c.warning_at <= target)).all())
            open_now = len(c.execute(select(T.c.barcode).where(T.c.is_open.is_(True))).all())
        next_ms, next_run, next_split = step()
        result["crossing"] = {
            "clock_jump_s": round(jump_s), "open": open_now, "past_warning": crossed,
            "opening_sweep": {"ms": round(ms, 1), "conditions": run.conditions,
                              "opened": run.opened, "resolved": run.resolved, "phases": split},
            "next_sweep": {"ms": round(next_ms, 1), "conditions": next_run.conditions,
                           "opened": next_run.opened, "resolved": next_run.resolved,
                           "phases": next_split}}
        say(f"{kind} N={n}: clock +{jump_s / 60:.1f} min, {crossed} of {open_now} open past "
            f"warning: sweep {ms:.0f} ms opened {run.opened}; next sweep {next_ms:.0f} ms "
            f"({next_run.conditions} conditions)")
    finally:
        db.drop()
    return result


def cold_rebuild(kind: str, n: int, db: Database, jobs, clock) -> dict:
    """The projections derived from nothing twice: first in one transaction (tracker.refresh
    from an empty watermark, what the scheduler did before rebuild.py), then, after the
    projections are emptied again, in chunks (rebuild.rebuild, each chunk its own
    transaction renewing the lease). The longest transaction is what the lease must cover."""
    from sqlalchemy import delete

    from dronelog.turnaround import rebuild, tracker
    from dronelog.turnaround import repository as repo
    from dronelog.turnaround.lease import take_lease

    def renew(connection, now) -> bool:
        return take_lease(connection, "turnaround", jobs.holder, now, jobs.lease_ttl)

    t = time.perf_counter()
    with db.engine.begin() as connection:
        renew(connection, clock.now())
        tracked = tracker.refresh(connection, jobs.limits, clock.now())
    one_s = time.perf_counter() - t
    say(f"{kind} N={n}: one-transaction rebuild {one_s:.1f} s ({tracked.specimens} specimens)")

    with db.engine.begin() as connection:
        for table in (repo.SPECIMEN_TRACKING, repo.FLIGHT_TRACKING, repo.PAD_EVENT,
                      repo.JOB_STATE):
            connection.execute(delete(table))
    db.analyze()

    chunks: list[float] = []
    last = [time.perf_counter()]

    def on_chunk(_run) -> None:
        now = time.perf_counter()
        chunks.append(now - last[0])
        last[0] = now

    t = time.perf_counter()
    run = rebuild.rebuild(db.engine, jobs.limits, clock, renew, on_chunk=on_chunk)
    chunked_s = time.perf_counter() - t
    if not run.finished:
        raise RuntimeError("the chunked rebuild lost its lease")
    say(f"{kind} N={n}: chunked rebuild {chunked_s:.1f} s in {run.chunks} chunks "
        f"(longest {max(chunks):.2f} s; {run.flights} flights, {run.specimens} specimens)")
    return {"one_transaction_s": round(one_s, 2), "chunked_s": round(chunked_s, 2),
            "chunks": run.chunks, "longest_chunk_s": round(max(chunks), 3),
            "median_chunk_s": round(statistics.median(chunks), 3),
            "specimen_chunk": rebuild.SPECIMEN_CHUNK, "flight_chunk": rebuild.FLIGHT_CHUNK,
            "specimens": run.specimens, "flights": run.flights}


class _Profiled:
    """cProfile and the SQL timer on, for one sweep."""

    def __init__(self, profiler: cProfile.Profile, timer: SqlTimer) -> None:
        self.profiler, self.timer = profiler, timer

    def __enter__(self) -> None:
        self.timer.__enter__()
        self.profiler.enable()

    def __exit__(self, *exc) -> None:
        self.profiler.disable()
        self.timer.__exit__(*exc)


def profile_sweeps(kind: str, n: int, args: argparse.Namespace, db: Database, step) -> dict:
    profiler = cProfile.Profile()
    timer = SqlTimer(db.engine)
    sweeps = args.profile_sweeps
    times = []
    for _ in range(sweeps):
        ms, _run, _split = step(watch=_Profiled(profiler, timer))
        times.append(ms)
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"turnaround-{kind}-{n}.prof"
    profiler.dump_stats(path)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    say(f"{kind} N={n}: profile of {sweeps} steady sweeps ({', '.join(f'{t:.0f}' for t in times)}"
        f" ms, with cProfile) -> {path}\n{text.getvalue()}")
    top_sql = timer.top(15, sweeps)
    lines = [f"  {s['ms_per_sweep']:8.2f} ms  x{s['executions_per_sweep']:<6} "
             f"param sets {s['param_sets_per_sweep']:<6} {s['statement'][:160]}" for s in top_sql]
    say(f"{kind} N={n}: SQL per sweep, top by cursor.execute time (on SQLite the rows are "
        f"produced during fetch, which this leaves out: see fetchall in the profile):\n"
        + "\n".join(lines))
    return {"file": str(path), "sweeps_ms_with_profiler": [round(t, 1) for t in times],
            "sql_top": top_sql}


# --- report ----------------------------------------------------------------------------------


def markdown(results: list[dict], env: dict, args: argparse.Namespace, started: str) -> str:
    pg = env.get("postgresql")
    lines = [
        "# Turnaround sweep benchmark",
        "",
        f"- date: {started} (UTC)",
        f"- machine: {env.get('cpu')}, {env.get('nproc')} CPUs, {env.get('memory_gib')} GiB; "
        f"{env.get('platform')}; load average at start {env.get('load_average_at_start')}, "
        f"at end {env.get('load_average_at_end')} (1/5/15 min)",
        f"- versions: Python {env['python']}, SQLAlchemy {env['sqlalchemy']}, psycopg "
        f"{env['psycopg']}, SQLite {env['sqlite']}" + (f", PostgreSQL {pg}" if pg else ""),
        f"- set-up: Pingdu network; specimens 5 % stat / 15 % urgent / 80 % routine, "
        f"{args.in_flight_share:.0%} on up to {args.flights} airborne flights; SQLite "
        f"synchronous={args.sqlite_synchronous}; PostgreSQL ANALYZEd after load: "
        f"{'no' if args.no_analyze else 'yes'}",
        f"- steady state: {args.repeat} sweeps, clock +{STEP_S:g} s and 20 custody events + 1 "
        f"telemetry point per flight before each; target: {TARGET_N:,} open specimens "
        f"< {TARGET_MS:g} ms",
        "",
        "| database | open specimens | events stored | set-up s (generate + store) "
        "| cold sweep ms | steady p50 ms | p90 ms | max ms | crossing: past warning / opened "
        "| crossing sweep ms | next sweep ms | target (p90 < 200 ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "crossing" not in r:
            continue  # --cold-only
        c = r["crossing"]
        target = "-"
        if r["n"] <= TARGET_N:
            target = "met" if r["steady"]["p90_ms"] < TARGET_MS else "MISSED"
        lines.append(
            f"| {r['database']} | {r['n']:,} | {r['events']:,} | {r['generate_s']} + "
            f"{r['store_s']} | {r['cold']['ms']:.0f} | {r['steady']['p50_ms']} "
            f"| {r['steady']['p90_ms']} | {r['steady']['max_ms']} "
            f"| {c['past_warning']:,} / {c['opening_sweep']['opened']:,} "
            f"| {c['opening_sweep']['ms']:.0f} | {c['next_sweep']['ms']:.0f} | {target} |")
    lines += ["", "Steady-state sweep by phase (median ms):", ""]
    keys = [f"{m}.{n}" for m, n in Phases.TOP] + ["rest (lease, commit, publish)"]
    lines.append("| database | N | " + " | ".join(keys) + " |")
    lines.append("|---|---|" + "---|" * len(keys))
    for r in results:
        if "steady" not in r:
            continue
        phases = r["steady"]["phases"]
        lines.append(f"| {r['database']} | {r['n']:,} | "
                     + " | ".join(str(phases[k]["median_ms"]) for k in keys) + " |")
    lines += ["", "Crossing sweep and the next one by phase (ms):", ""]
    lines.append("| database | N | sweep | " + " | ".join(keys[:-1]) + " |")
    lines.append("|---|---|---|" + "---|" * (len(keys) - 1))
    for r in results:
        if "crossing" not in r:
            continue
        for label in ("opening_sweep", "next_sweep"):
            phases = r["crossing"][label]["phases"]
            lines.append(f"| {r['database']} | {r['n']:,} | {label.replace('_', ' ')} | "
                         + " | ".join(str(phases.get(k, {}).get("ms", 0))
                                      for k in keys[:-1]) + " |")
    lines += ["", "Cold rebuild: one transaction (before) and chunks renewing the lease (now); "
              "the longest transaction is what the 30 s lease must cover:", "",
              "| database | open specimens | events stored | set-up s (generate + store) "
              "| one transaction s | chunked s | chunks | longest chunk s | median chunk s "
              "| first sweep after ms |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["rebuild"]
        lines.append(
            f"| {r['database']} | {r['n']:,} | {r['events']:,} | {r['generate_s']} + "
            f"{r['store_s']} | {b['one_transaction_s']} | {b['chunked_s']} | {b['chunks']} "
            f"| {b['longest_chunk_s']} | {b['median_chunk_s']} | {r['cold']['ms']:.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time of the turnaround sweep (TurnaroundJobs.turnaround) over N open "
                    "specimens on SQLite and PostgreSQL: cold rebuild, steady state, and the "
                    "sweep that opens warnings for ~10 %% of them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated numbers of open specimens")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help=f"comma-separated subset of {', '.join(DATABASES)}")
    parser.add_argument("--repeat", type=int, default=20, help="measured steady-state sweeps")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL admin URL (loopback only); bench_turn_* databases are "
                             "created and dropped on this server")
    parser.add_argument("--batch", type=int, default=5000, help="events per BatchWriter.write")
    parser.add_argument("--flights", type=int, default=50, help="airborne flights")
    parser.add_argument("--in-flight-share", type=float, default=0.01,
                        help="share of the specimens loaded on airborne flights")
    parser.add_argument("--telemetry-points", type=int, default=6,
                        help="position reports per flight before T0 (one every 10 s)")
    parser.add_argument("--sqlite-synchronous", default="FULL",
                        help="SQLite PRAGMA synchronous (the Settings default is FULL)")
    parser.add_argument("--no-analyze", action="store_true",
                        help="do not ANALYZE the PostgreSQL database after loading")
    parser.add_argument("--workdir", default=None,
                        help="where the temp dir for SQLite files goes (default: system temp)")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="also profile extra steady-state sweeps (cProfile + SQL timings); "
                             ".prof files go to DIR")
    parser.add_argument("--profile-sweeps", type=int, default=5,
                        help="steady-state sweeps run under the profiler")
    parser.add_argument("--cold-only", action="store_true",
                        help="only the cold rebuild and the first sweep (no steady state, no "
                             "crossing): for the largest sizes")
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if any(s < 10 for s in args.sizes):
        parser.error("each size must be at least 10")
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _terminate(_signum, _frame) -> None:
    raise SystemExit(143)  # runs the cleanup in run_case()'s and main()'s finally


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="dronelog-bench-turn-", dir=args.workdir))
    phases = Phases()
    phases.install()
    results = []
    try:
        for n in args.sizes:
            for kind in args.databases:
                results.append(run_case(kind, n, args, workdir, phases))
    finally:
        phases.uninstall()
        shutil.rmtree(workdir, ignore_errors=True)
    env = environment(args.pg_url, args.databases)
    env["load_average_at_start"] = load_at_start
    table = markdown(results, env, args, started)
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
