"""How long a message takes to be committed, without the API (issue 18: where the
publish-to-visible latency of benchmarks/live.py goes).

One private Mosquitto, one SQLite file or scratch PostgreSQL database, the tree's real
ingester (`python -m dronelog ingest`, default settings), and `benchmarks/api.py`'s publisher
(paho, MQTT 5, QoS 1) at --rate telemetry messages a second for --publish-s, each stamped with
the wall-clock time of its publish. Meanwhile a watcher in this process reads the new rows of
`telemetry` every --watch-ms and notes when each event id first shows (that is when its
batch's commit was visible to another connection, give or take --watch-ms). Per message:

- arrival = the ingester's `received_at` (the wall clock when paho handed it over) - publish;
- committed = first seen by the watcher - publish.

    .venv/bin/python benchmarks/commit_latency.py --databases sqlite,postgresql
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api import load_average, publisher_main, say, summary  # noqa: E402  (beside this script)
from bench_databases import ScratchDatabase  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def watch(engine, seen: dict[str, float], stop: threading.Event, every_s: float) -> None:
    """Note the wall-clock time when each telemetry row is first visible."""
    from sqlalchemy import select

    from dronelog.storage.tables import TelemetryPoint

    table = TelemetryPoint.__table__
    last = 0
    with engine.connect() as connection:
        while not stop.is_set():
            rows = connection.execute(select(table.c.id, table.c.event_id)
                                      .where(table.c.id > last)).all()
            now = time.time()
            for row_id, event_id in rows:
                seen.setdefault(str(event_id), now)
                last = max(last, row_id)
            connection.rollback()  # a fresh snapshot for the next look
            time.sleep(every_s)


def run(kind: str, args: argparse.Namespace, workdir: Path) -> dict:
    from sqlalchemy import select

    from dronelog.broker import MosquittoBroker
    from dronelog.storage.tables import TelemetryPoint

    db = ScratchDatabase(kind, workdir, args.pg_url, "bench_commit")
    broker = MosquittoBroker(workdir / f"broker-{kind}").start()
    log_path = workdir / f"ingester-{kind}.log"
    env = {**os.environ, "DRONELOG_DATABASE_URL": db.url, "DRONELOG_MQTT_URL": broker.url,
           "DRONELOG_LOG_FORMAT": "json", "DRONELOG_HOME": str(workdir),
           "PYTHONPATH": str(args.tree)}
    with open(log_path, "ab") as log:
        ingester = subprocess.Popen([sys.executable, "-m", "dronelog", "ingest"], env=env,
                                    cwd=args.tree, stdout=log, stderr=log)
    publisher = None
    try:
        deadline = time.monotonic() + 60
        while b"connected to broker" not in log_path.read_bytes():
            if ingester.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingester did not connect: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        context = mp.get_context("spawn")
        ready, go, results = context.Event(), context.Event(), context.Queue()
        drones = [f"uav-{i:03d}" for i in range(args.drones)]
        publisher = context.Process(target=publisher_main, args=(
            broker.port, drones, args.rate, args.publish_s, ready, go, results), daemon=True)
        publisher.start()
        if not ready.wait(30):
            raise RuntimeError("the publisher did not connect")
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(db.engine, seen, stop,
                                                       args.watch_ms / 1000), daemon=True)
        watcher.start()
        load = [load_average()]
        go.set()
        report = results.get(timeout=args.publish_s + 120)
        time.sleep(3)  # the last batches
        stop.set()
        watcher.join(30)
        load.append(load_average())
        published = {event_id: at / 1e6 for _, at, event_id in report["records"]}
        table = TelemetryPoint.__table__
        with db.engine.connect() as connection:
            rows = connection.execute(select(table.c.event_id, table.c.received_at)).all()
        arrival, committed = [], []
        for event_id, received_at in rows:
            key = str(event_id)
            if key not in published:
                continue  # the seeded or another run's rows
            arrival.append(1000 * (received_at.replace(tzinfo=received_at.tzinfo or UTC)
                                   .timestamp() - published[key]))
            if key in seen:
                committed.append(1000 * (seen[key] - published[key]))
        return {"database": kind, "published": report["published"], "stored": len(arrival),
                "seen_by_watcher": len(committed), "arrival": summary(arrival),
                "committed": summary(committed), "load_1min": load}
    finally:
        if publisher is not None and publisher.is_alive():
            publisher.terminate()
        ingester.terminate()
        try:
            ingester.wait(30)
        except subprocess.TimeoutExpired:
            ingester.kill()
        broker.stop()
        db.drop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--publish-s", type=float, default=10.0)
    parser.add_argument("--drones", type=int, default=100)
    parser.add_argument("--watch-ms", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        for kind in args.databases.split(","):
            result = run(kind, args, Path(tmp))
            say(f"{kind}: {result}")
            results.append(result)
    print("| database | stored | arrival p50 / p90 / p99 ms | committed p50 / p90 / p99 ms "
          "(load) |\n|---|---|---|---|")
    for r in results:
        a, c = r["arrival"], r["committed"]
        print(f"| {r['database']} | {r['stored']} of {r['published']} | {a['p50_ms']} / "
              f"{a['p90_ms']} / {a['p99_ms']} | {c['p50_ms']} / {c['p90_ms']} / {c['p99_ms']} "
              f"({r['load_1min'][0]}→{r['load_1min'][1]}) |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
