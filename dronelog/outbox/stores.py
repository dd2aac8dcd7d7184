"""Where an outbox keeps its events until their receipts come: in memory (the simulator's
devices) or in a SQLite file (the bridges, so that a restart loses nothing).

Both stores hold `Held` values keyed by event id, in the order they were added, and know
nothing of bounds or time: the outbox (outbox.py) decides; a store only keeps. Not
thread-safe on their own: the outbox calls them under its lock.
"""

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import UUID


@dataclass(frozen=True)
class Held:
    """One event waiting for its receipt. Times are POSIX seconds of the outbox's clock."""

    event_id: UUID
    topic: str
    payload: bytes
    retain: bool
    added_at: float
    sent_at: float
    sends: int = 1


class MemoryStore:
    def __init__(self) -> None:
        self._held: dict[UUID, Held] = {}
        self._bytes = 0

    def get(self, event_id: UUID) -> Held | None:
        return self._held.get(event_id)

    def put(self, held: Held) -> None:
        old = self._held.get(held.event_id)
        self._bytes += len(held.payload) - (len(old.payload) if old else 0)
        self._held[held.event_id] = held

    def remove(self, event_id: UUID) -> Held | None:
        held = self._held.pop(event_id, None)
        if held is not None:
            self._bytes -= len(held.payload)
        return held

    def mark_sent(self, event_ids: list[UUID], at: float) -> None:
        for event_id in event_ids:
            held = self._held[event_id]
            self._held[event_id] = replace(held, sent_at=at, sends=held.sends + 1)

    def all(self) -> list[Held]:
        return list(self._held.values())

    def sent_before(self, moment: float) -> list[Held]:
        return [held for held in self._held.values() if held.sent_at <= moment]

    def count(self) -> int:
        return len(self._held)

    def payload_bytes(self) -> int:
        return self._bytes

    def oldest_added_at(self) -> float | None:
        return next(iter(self._held.values())).added_at if self._held else None

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    added_at REAL NOT NULL,
    sent_at REAL NOT NULL,
    sends INTEGER NOT NULL
)"""
_COLUMNS = "event_id, topic, payload, retain, added_at, sent_at, sends"


class SqliteStore:
    """Events on disk, each committed before it is published (`synchronous=FULL` in WAL
    mode: a power cut after `put` returns cannot lose it). One file per bridge process."""

    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._count, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM held").fetchone()

    def get(self, event_id: UUID) -> Held | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM held WHERE event_id = ?",
                               (str(event_id),)).fetchone()
        return _held(row) if row else None

    def put(self, held: Held) -> None:
        old = self.get(held.event_id)
        self._db.execute(
            f"INSERT INTO held ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO UPDATE SET topic = excluded.topic, "
            "payload = excluded.payload, retain = excluded.retain, sent_at = excluded.sent_at",
            (str(held.event_id), held.topic, held.payload, int(held.retain), held.added_at,
             held.sent_at, held.sends))
        self._count += old is None
        self._bytes += len(held.payload) - (len(old.payload) if old else 0)

    def remove(self, event_id: UUID) -> Held | None:
        row = self._db.execute(f"DELETE FROM held WHERE event_id = ? RETURNING {_COLUMNS}",
                               (str(event_id),)).fetchone()
        if row is None:
            return None
        held = _held(row)
        self._count -= 1
        self._bytes -= len(held.payload)
        return held

    def mark_sent(self, event_ids: list[UUID], at: float) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE held SET sent_at = ?, sends = sends + 1 "
                                 "WHERE event_id = ?", [(at, str(i)) for i in event_ids])

    def all(self) -> list[Held]:
        return [_held(row) for row in
                self._db.execute(f"SELECT {_COLUMNS} FROM held ORDER BY seq")]

    def sent_before(self, moment: float) -> list[Held]:
        return [_held(row) for row in self._db.execute(
            f"SELECT {_COLUMNS} FROM held WHERE sent_at <= ? ORDER BY seq", (moment,))]

    def count(self) -> int:
        return self._count

    def payload_bytes(self) -> int:
        return self._bytes

    def oldest_added_at(self) -> float | None:
        return self._db.execute("SELECT min(added_at) FROM held").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _held(row: tuple) -> Held:
    event_id, topic, payload, retain, added_at, sent_at, sends = row
    return Held(UUID(event_id), topic, bytes(payload), bool(retain), added_at, sent_at, sends)
