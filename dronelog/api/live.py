"""What the live feed reads: new telemetry, custody events and alert changes since a cursor.

One change feed per API process (`dronelog/api/change_feed.py`) reads the database, the one
store every ingester and scheduler writes to, and fans the changes out to its streams; a
stream that resumes with `Last-Event-ID` first catches up with a read of its own from its
cursor, so a client that reconnects misses nothing that was committed meanwhile.

Ids and commit order differ when several writers commit concurrently: a row with a lower id
can become visible after one with a higher id. The cursor therefore remembers the ids it
skipped over (`holes`) for `HOLE_TTL_S` and keeps asking for them, and the id it hands out
is the one below its lowest hole, so a resumed stream asks for them too; custody events,
which carry no sequence, are read by `stored_at` with an overlap and deduplicated by event
id. Clients get each event at least once and can deduplicate by its `event_id`.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, or_, select

from dronelog.api.routes.alerts import public_alert
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert, AlertChange, CustodyEvent, FlightTracking, TelemetryPoint

TEL, C, A, AC = (TelemetryPoint.__table__, CustodyEvent.__table__, Alert.__table__,
                 AlertChange.__table__)
F = FlightTracking.__table__
KINDS = ("telemetry", "custody", "alert")
HOLE_TTL_S = 10.0
MAX_HOLES = 1000
CUSTODY_OVERLAP = timedelta(seconds=10)
BATCH = 2000
MAX_RESUME_ROWS = 200_000  # a client further behind than this gets a reset instead of a replay


class CursorError(ValueError):
    """A Last-Event-ID that this API did not hand out."""


@dataclass
class IdCursor:
    """The highest id sent, and the lower ids not yet seen with when they were skipped."""

    high: int
    holes: dict[int, float] = field(default_factory=dict)

    def floor(self) -> int:
        """Every id up to this one was seen or given up."""
        return min(self.holes, default=self.high + 1) - 1

    def unseen(self, column):
        """A condition on `column` for the ids not yet seen: above the highest, or a hole."""
        if not self.holes:
            return column > self.high
        return or_(column > self.high, column.in_(sorted(self.holes)))

    def take(self, ids: list[int], now: float) -> set[int]:
        """The ids among `ids` that were not sent before; remembers the new holes."""
        fresh = set()
        for row_id in sorted(ids):
            if row_id > self.high:
                if row_id - self.high <= MAX_HOLES:
                    self.holes.update(dict.fromkeys(range(self.high + 1, row_id), now))
                self.high = row_id
                fresh.add(row_id)
            elif self.holes.pop(row_id, None) is not None:
                fresh.add(row_id)
        for row_id, since in list(self.holes.items()):
            if now - since > HOLE_TTL_S:
                del self.holes[row_id]
        return fresh


@dataclass
class TimeCursor:
    """The newest `stored_at` sent, and the event ids sent within the overlap before it."""

    since: datetime
    sent: dict[str, datetime] = field(default_factory=dict)

    def take(self, rows: list[tuple[str, datetime]]) -> set[str]:
        fresh = set()
        for event_id, stored_at in rows:
            if event_id not in self.sent:
                self.sent[event_id] = stored_at
                fresh.add(event_id)
            self.since = max(self.since, stored_at)
        horizon = self.since - CUSTODY_OVERLAP
        self.sent = {k: v for k, v in self.sent.items() if v >= horizon}
        return fresh


@dataclass
class Cursor:
    telemetry: IdCursor
    alerts: IdCursor
    custody: TimeCursor

    def encode(self) -> str:
        """The SSE id: what a client sends back as Last-Event-ID. The id feeds give the id
        below their lowest hole: a resumed stream asks again for what was still missing."""
        stamp = int(self.custody.since.timestamp() * 1_000_000)
        return f"t{self.telemetry.floor()}.a{self.alerts.floor()}.c{stamp}"

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            t, a, c = text.strip().split(".")
            if (t[0], a[0], c[0]) != ("t", "a", "c"):
                raise ValueError
            since = datetime.fromtimestamp(int(c[1:]) / 1_000_000, UTC)
            return cls(IdCursor(int(t[1:])), IdCursor(int(a[1:])), TimeCursor(since))
        except (ValueError, IndexError, OverflowError, OSError) as error:
            raise CursorError(f"Last-Event-ID {text[:80]!r} is not a cursor of this API; "
                              "reconnect without it to start from now") from error


def cursor_now(conn: Connection) -> Cursor:
    """A cursor at the current end of every feed: what comes next."""
    high_t = conn.execute(select(func.coalesce(func.max(TEL.c.id), 0))).scalar_one()
    high_a = conn.execute(select(func.coalesce(func.max(AC.c.id), 0))).scalar_one()
    newest = as_utc(conn.execute(select(func.max(C.c.stored_at))).scalar_one())
    custody = TimeCursor(newest or datetime(1970, 1, 1, tzinfo=UTC))
    custody.take([(str(r.event_id), as_utc(r.stored_at)) for r in conn.execute(
        select(C.c.event_id, C.c.stored_at)
        .where(C.c.stored_at >= custody.since - CUSTODY_OVERLAP))])
    return Cursor(IdCursor(high_t), IdCursor(high_a), custody)


def too_far_behind(conn: Connection, cursor: Cursor) -> bool:
    """Replaying from this cursor would mean reading more than `MAX_RESUME_ROWS`."""
    high_t = conn.execute(select(func.coalesce(func.max(TEL.c.id), 0))).scalar_one()
    return high_t - cursor.telemetry.high > MAX_RESUME_ROWS or cursor.telemetry.high > high_t


@dataclass(frozen=True, slots=True)
class Change:
    """One event for the streams, its SSE frame encoded once for all of them."""

    kind: str  # one of KINDS
    key: int | str  # the row id (telemetry, alert change) or the event id (custody)
    drone_id: str | None
    site_ids: tuple[str | None, ...]  # the sites it concerns
    frame: bytes  # "event: <kind>\ndata: <json>\n\n"


@dataclass(frozen=True)
class Filter:
    kinds: frozenset[str]
    site: str | None = None
    drone: str | None = None

    def passes(self, change: Change) -> bool:
        if change.kind not in self.kinds or (self.drone and change.drone_id != self.drone):
            return False
        return not self.site or self.site in change.site_ids


def read(conn: Connection, cursor: Cursor, now: float) -> tuple[list[Change], bool]:
    """Every change after `cursor`, oldest first, and whether more are waiting; advances the
    cursor. Every feed is read in full (streams filter), so the cursor's holes stay
    meaningful."""
    events: list[tuple[datetime, Change]] = []
    telemetry = conn.execute(
        select(TEL, F.c.origin_site_id, F.c.destination_site_id)
        .select_from(TEL.outerjoin(F, F.c.flight_id == TEL.c.flight_id))
        .where(cursor.telemetry.unseen(TEL.c.id)).order_by(TEL.c.id).limit(BATCH)).all()
    fresh = cursor.telemetry.take([r.id for r in telemetry], now)
    events += [(as_utc(r.event_time),
                _change("telemetry", r.id, r.drone_id, (r.origin_site_id,
                                                        r.destination_site_id), _telemetry(r)))
               for r in telemetry if r.id in fresh]
    custody = conn.execute(
        select(C).where(C.c.stored_at >= cursor.custody.since - CUSTODY_OVERLAP)
        .order_by(C.c.stored_at).limit(BATCH)).all()
    fresh = cursor.custody.take([(str(r.event_id), as_utc(r.stored_at)) for r in custody])
    events += [(as_utc(r.event_time),
                _change("custody", str(r.event_id), r.drone_id, (r.site_id,), _custody(r)))
               for r in custody if str(r.event_id) in fresh]
    changes = conn.execute(
        select(AC.c.id.label("change_id"), AC.c.change, AC.c.at.label("changed_at"), A)
        .select_from(AC.join(A, A.c.id == AC.c.alert_id))
        .where(cursor.alerts.unseen(AC.c.id)).order_by(AC.c.id).limit(BATCH)).all()
    fresh = cursor.alerts.take([r.change_id for r in changes], now)
    events += [(as_utc(r.changed_at),
                _change("alert", r.change_id, r.drone_id,
                        (r.site_id, r.origin_site_id, r.at_site_id), _alert(r)))
               for r in changes if r.change_id in fresh]
    more = BATCH in (len(telemetry), len(custody), len(changes))
    return [change for _, change in sorted(events, key=lambda e: e[0])], more


@dataclass(frozen=True)
class Seen:
    """What a resumed stream sent while it caught up from the database, frozen when it joins
    the feed: the feed's changes among these are repeats and are not sent again."""

    telemetry: tuple[int, frozenset[int]]  # (highest id, holes below it)
    alerts: tuple[int, frozenset[int]]
    custody: frozenset[str]  # event ids sent within the overlap
    custody_since: datetime

    @classmethod
    def of(cls, cursor: Cursor) -> "Seen":
        return cls((cursor.telemetry.high, frozenset(cursor.telemetry.holes)),
                   (cursor.alerts.high, frozenset(cursor.alerts.holes)),
                   frozenset(cursor.custody.sent), cursor.custody.since)

    def already(self, change: Change) -> bool:
        if change.kind == "custody":
            return change.key in self.custody
        high, holes = self.telemetry if change.kind == "telemetry" else self.alerts
        return change.key <= high and change.key not in holes

    def outgrown(self, feed: "Mark") -> bool:
        """Whether the feed is past all of it, so that nothing it brings can be a repeat."""
        return (feed.telemetry_floor >= self.telemetry[0] and feed.alerts_floor >= self.alerts[0]
                and feed.custody_since - CUSTODY_OVERLAP > self.custody_since)


@dataclass(frozen=True)
class Mark:
    """Where the feed stands after a batch: the id it hands out and what `Seen` compares."""

    id: str
    telemetry_floor: int
    alerts_floor: int
    custody_since: datetime

    @classmethod
    def of(cls, cursor: Cursor) -> "Mark":
        return cls(cursor.encode(), cursor.telemetry.floor(), cursor.alerts.floor(),
                   cursor.custody.since)


def _change(kind: str, key: int | str, drone_id: str | None, site_ids: tuple,
            data: dict) -> Change:
    return Change(kind, key, drone_id, site_ids,
                  f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())


def _telemetry(r) -> dict:
    return {"event_id": str(r.event_id), "drone_id": r.drone_id, "flight_id": r.flight_id,
            "at": as_utc(r.event_time).isoformat(), "lat": r.lat, "lon": r.lon,
            "alt_m": r.alt_m, "ground_speed_mps": r.ground_speed_mps,
            "heading_deg": r.heading_deg, "battery_pct": r.battery_pct,
            "payload_temp_c": r.payload_temp_c, "link_quality_pct": r.link_quality_pct}


def _custody(r) -> dict:
    return {"event_id": str(r.event_id), "barcode": r.barcode, "kind": r.kind,
            "at": as_utc(r.event_time).isoformat(), "site_id": r.site_id,
            "actor_kind": r.actor_kind, "actor_id": r.actor_id,
            "container_id": r.container_id, "flight_id": r.flight_id,
            "drone_id": r.drone_id, "reason": r.reason}


def _alert(r) -> dict:
    return {"event_id": f"alert-change-{r.change_id}", "change": r.change,
            "at": as_utc(r.changed_at).isoformat(),
            "alert": json.loads(public_alert(r).model_dump_json())}
