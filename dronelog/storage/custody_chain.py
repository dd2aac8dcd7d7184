"""Tamper evidence: each specimen's custody events form a hash chain.

Every custody event gets a link when it is stored, in the same transaction: link n holds
SHA-256(link n-1's hash + the event's canonical form). Changing, deleting or slipping in a
row by hand, past the append-only triggers, breaks the chain at that row, and `verify`
names the first broken link. Rewriting a whole chain consistently takes the database and
this code; anchoring the chain heads elsewhere (the verify output, logs) closes that too.

Links are appended in storage order, not event-time order: the chain proves what dronelog
stored and in which order, which is what an audit asks. Writers take a per-specimen lock
on PostgreSQL (SQLite has one writer at a time), so concurrent ingesters never fork a chain.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from dronelog.storage.portable import as_utc
from dronelog.storage.tables import CustodyEvent, CustodyLink

EVENT = CustodyEvent.__table__
LINK = CustodyLink.__table__
GENESIS = "0" * 64
CHAINED_FIELDS = ("event_id", "barcode", "kind", "site_id", "actor_kind", "actor_id",
                  "event_time", "received_at", "container_id", "seal_id", "flight_id",
                  "drone_id", "reason", "note")
# Chained when present: rows stored before these columns existed keep their hashes.
OPTIONAL_CHAINED_FIELDS = ("recorded_by", "description")


def canonical(row: Any) -> bytes:
    """The bytes a link hashes: the stored fields as sorted JSON, times in UTC."""
    values = {}
    for name in CHAINED_FIELDS:
        value = row[name]
        if name in ("event_time", "received_at"):
            value = as_utc(value).isoformat(timespec="microseconds")
        elif value is not None:
            value = str(value)
        values[name] = value
    for name in OPTIONAL_CHAINED_FIELDS:
        if row.get(name) is not None:
            values[name] = str(row[name])
    return json.dumps(values, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode()


def link_hash(previous: str, row: Any) -> str:
    return hashlib.sha256(previous.encode() + canonical(row)).hexdigest()


def append(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Chain newly stored custody event rows onto their specimens' chains."""
    by_barcode: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_barcode.setdefault(row["barcode"], []).append(row)
    barcodes = sorted(by_barcode)
    if connection.dialect.name == "postgresql":
        for barcode in barcodes:  # in a fixed order: two writers never wait on each other
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                               {"key": f"custody-chain:{barcode}"})
    heads = _heads(connection, barcodes)
    links = []
    for barcode in barcodes:
        seq, previous = heads.get(barcode, (0, GENESIS))
        for row in sorted(by_barcode[barcode], key=lambda r: (as_utc(r["event_time"]),
                                                               str(r["event_id"]))):
            seq += 1
            current = link_hash(previous, row)
            links.append({"event_id": row["event_id"], "barcode": barcode, "seq": seq,
                          "prev_hash": previous, "hash": current})
            previous = current
    if links:
        connection.execute(insert(LINK), links)
    return len(links)


def _heads(connection: Connection, barcodes: list[str]) -> dict[str, tuple[int, str]]:
    heads = {}
    for start in range(0, len(barcodes), 500):
        chunk = barcodes[start:start + 500]
        last = (select(LINK.c.barcode, func.max(LINK.c.seq).label("seq"))
                .where(LINK.c.barcode.in_(chunk)).group_by(LINK.c.barcode).subquery())
        for row in connection.execute(select(LINK.c.barcode, LINK.c.seq, LINK.c.hash).join(
                last, (LINK.c.barcode == last.c.barcode) & (LINK.c.seq == last.c.seq))):
            heads[row.barcode] = (row.seq, row.hash)
    return heads


@dataclass(frozen=True)
class Break:
    barcode: str
    seq: int | None  # the link's position; None for a row that has no link at all
    event_id: str
    problem: str


@dataclass
class Verification:
    specimens: int = 0
    events: int = 0
    first_break: Break | None = None


def verify(connection: Connection, barcodes: Iterable[str] | None = None,
           progress=None) -> Verification:
    """Walk the chains (of `barcodes`, or all) and stop at the first broken link."""
    result = Verification()
    for barcode, links, events in _chains(connection, barcodes):
        result.specimens += 1
        result.events += len(events)
        broken = _check(barcode, links, events)
        if progress is not None:
            progress(1)
        if broken is not None:
            result.first_break = broken
            return result
    return result


def _check(barcode: str, links: list, events: dict[str, Any]) -> Break | None:
    previous = GENESIS
    for expected_seq, link in enumerate(links, 1):
        event_id = str(link.event_id)
        if link.seq != expected_seq:
            return Break(barcode, expected_seq, event_id, f"link {expected_seq} is missing")
        if link.prev_hash != previous:
            return Break(barcode, link.seq, event_id, "the link does not follow the one "
                         "before it (a link was changed or removed)")
        row = events.pop(event_id, None)
        if row is None:
            return Break(barcode, link.seq, event_id, "the custody event of this link is "
                         "missing (deleted)")
        if link_hash(previous, row._mapping) != link.hash:
            return Break(barcode, link.seq, event_id, "the custody event was changed after "
                         "it was stored")
        previous = link.hash
    if events:
        stray = min(events.values(), key=lambda r: as_utc(r.stored_at or r.event_time))
        return Break(barcode, None, str(stray.event_id), "the custody event has no link "
                     "(inserted outside dronelog)")
    return None


def count_specimens(connection: Connection) -> int:
    found = select(EVENT.c.barcode).union(select(LINK.c.barcode)).subquery()
    return connection.execute(select(func.count()).select_from(found)).scalar_one()


def _chains(connection: Connection, barcodes: Iterable[str] | None
            ) -> Iterator[tuple[str, list, dict[str, Any]]]:
    if barcodes is None:
        found = select(EVENT.c.barcode).union(select(LINK.c.barcode)).subquery()
        barcodes = connection.execute(select(found.c.barcode).order_by(
            found.c.barcode)).scalars().all()
    barcodes = list(barcodes)
    for start in range(0, len(barcodes), 500):
        chunk = barcodes[start:start + 500]
        links: dict[str, list] = {b: [] for b in chunk}
        events: dict[str, dict[str, Any]] = {b: {} for b in chunk}
        for link in connection.execute(select(LINK).where(LINK.c.barcode.in_(chunk))
                                       .order_by(LINK.c.barcode, LINK.c.seq)):
            links[link.barcode].append(link)
        for row in connection.execute(select(EVENT).where(EVENT.c.barcode.in_(chunk))):
            events[row.barcode][str(row.event_id)] = row
        for barcode in chunk:
            yield barcode, links[barcode], events[barcode]
