"""A cold rebuild of the projections, in chunks that each renew the lease.

When the tracker starts from nothing (no watermark: a new database, or projections dropped
to be rebuilt), it must derive every flight and specimen ever stored. Done in one
transaction, that is 9-16 s at 100,000 open specimens against a 30 s lease, and grows
with the record. Here it is a run of short transactions instead:

1. the plan: the newest `stored_at` of the custody and flight events, the watermark the
   rebuild will leave behind;
2. flights, in order of flight id, `FLIGHT_CHUNK` at a time (their rows and pad events);
3. specimens, in order of barcode, `SPECIMEN_CHUNK` at a time.

Each transaction first renews the lease and writes nothing if it was lost (another
scheduler took over); its rows and the cursor (`tracker.rebuild` in `job_state`) commit
together, so a rebuild that is stopped or killed resumes after its last chunk. The last
chunk writes the tracker's watermark and drops the cursor; events stored meanwhile are
newer than the watermark and the next incremental refresh derives them.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from dronelog.clock import Clock
from dronelog.domain.stability import SpecimenLimits
from dronelog.domain.telemetry_rules import TEMPERATURE_MAX_GAP_S
from dronelog.storage.portable import as_utc
from dronelog.turnaround import repository as repo
from dronelog.turnaround import tracker

PROGRESS = "tracker.rebuild"
# At about 10 s per 100,000 specimens, a chunk of 5,000 takes well under a second, far
# inside a 30 s lease; flights carry their telemetry, so fewer at a time.
SPECIMEN_CHUNK = 5000
FLIGHT_CHUNK = 200

Renew = Callable[[Connection, datetime], bool]  # renew the lease in this transaction


@dataclass(frozen=True)
class Progress:
    until: datetime  # the watermark the rebuild leaves behind
    phase: str  # flights, specimens
    after: str  # the last flight id or barcode done ("" before the first)

    def dump(self) -> str:
        return json.dumps({"until": self.until.isoformat(), "phase": self.phase,
                           "after": self.after})

    @classmethod
    def parse(cls, value: str) -> "Progress":
        data = json.loads(value)
        return cls(datetime.fromisoformat(data["until"]), data["phase"], data["after"])


@dataclass
class RebuildRun:
    finished: bool = False
    chunks: int = 0
    flights: int = 0
    specimens: int = 0


def needed(connection: Connection) -> bool:
    """A rebuild is due: the tracker has no watermark, or a rebuild was interrupted."""
    return (_progress(connection) is not None
            or tracker.read_watermark(connection) == repo.EPOCH)


def rebuild(engine: Engine, limits: SpecimenLimits, clock: Clock, renew: Renew,
            specimen_chunk: int = SPECIMEN_CHUNK, flight_chunk: int = FLIGHT_CHUNK,
            on_chunk: Callable[[RebuildRun], None] | None = None,
            temperature_max_gap_s: float = TEMPERATURE_MAX_GAP_S) -> RebuildRun:
    """Rebuild (or resume rebuilding) the projections; stops, unfinished, when the lease is
    lost. `on_chunk` is told after each committed chunk; `temperature_max_gap_s` is the
    tracker's (how long a payload reading vouches for the box)."""
    run = RebuildRun()
    while not run.finished:
        with engine.begin() as connection:
            now = clock.now()
            if not renew(connection, now):
                return run
            current = _progress(connection) or _plan(connection)
            following = _step(connection, limits, now, current, run,
                              specimen_chunk, flight_chunk, temperature_max_gap_s)
            if following is None:
                tracker.write_watermark(connection, current.until, now)
                connection.execute(delete(repo.JOB_STATE).where(
                    repo.JOB_STATE.c.name == PROGRESS))
                run.finished = True
            else:
                repo.write_state(connection, PROGRESS, following.dump(), now)
        run.chunks += 1
        if on_chunk is not None:
            on_chunk(run)
    return run


def _step(connection: Connection, limits: SpecimenLimits, now: datetime, progress: Progress,
          run: RebuildRun, specimen_chunk: int, flight_chunk: int,
          temperature_max_gap_s: float) -> Progress | None:
    """Derive the next chunk; the progress after it, None when nothing is left."""
    if progress.phase == "flights":
        flight_ids = _next_keys(connection, repo.FLIGHT_EVENT.c.flight_id, progress.after,
                                flight_chunk)
        if not flight_ids:
            return Progress(progress.until, "specimens", "")
        tracker.derive_flights(connection, set(flight_ids), now)
        run.flights += len(flight_ids)
        return Progress(progress.until, "flights", flight_ids[-1])
    barcodes = _next_keys(connection, repo.CUSTODY.c.barcode, progress.after, specimen_chunk)
    if not barcodes:
        return None
    run.specimens += tracker.derive_specimens(connection, limits, now, set(barcodes), {}, {},
                                              temperature_max_gap_s=temperature_max_gap_s)
    return Progress(progress.until, "specimens", barcodes[-1])


def _plan(connection: Connection) -> Progress:
    newest = [as_utc(connection.execute(select(repo.CUSTODY.c.stored_at).order_by(
                  repo.CUSTODY.c.stored_at.desc()).limit(1)).scalar()),
              as_utc(connection.execute(select(repo.FLIGHT_EVENT.c.stored_at).order_by(
                  repo.FLIGHT_EVENT.c.stored_at.desc()).limit(1)).scalar())]
    until = max([moment for moment in newest if moment is not None], default=repo.EPOCH)
    return Progress(until, "flights", "")


def _next_keys(connection: Connection, column, after: str, limit: int) -> list[str]:
    """The next `limit` distinct keys after `after`, in order (an index scan)."""
    return list(connection.execute(select(column).where(column > after).group_by(column)
                                   .order_by(column).limit(limit)).scalars())


def _progress(connection: Connection) -> Progress | None:
    value = repo.read_state(connection, PROGRESS, "")
    return Progress.parse(value) if value else None
