"""Tamper evidence for the cold-chain record: each ended flight's telemetry, sealed.

Telemetry is too plentiful to chain row by row, so the scheduler seals each flight once it
has ended (landed, aborted or returned home) and `DRONELOG_TELEMETRY_SEAL_DELAY_S` have
passed for late reports to arrive: a digest per minute of the flight's rows (by event time,
UTC) is written as a chained record seal (record_chain.py, kind `flight_telemetry`). The
seal covers the rows received up to a minute before it was made (`covered_until`), so a
batch still being committed never counts against it; rows received later are counted as
unsealed, not as tampering.

The telemetry table refuses UPDATE, and DELETE outside the retention job (triggers,
migration 0013). Retention thins and expires telemetry, sealed flights included: it checks
each flight it touches against its latest seal first, then seals what is left (kind
`telemetry_thinned`, with how many rows it removed and whether the flight was intact
before), so verification compares today's rows with the latest seal and tampering before a
thinning stays on record. `verify` names the first flight and minute that differ.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from dronelog.storage import record_chain
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import FlightEvent, RecordSeal, TelemetryPoint

TEL = TelemetryPoint.__table__
FLIGHT_EVENT = FlightEvent.__table__
SEAL = RecordSeal.__table__
SEALED, THINNED = "flight_telemetry", "telemetry_thinned"
ENDINGS = ("landed", "aborted", "returned_home")
COMMIT_MARGIN = timedelta(minutes=1)  # longer than any batch takes to commit
SEALS_PER_RUN = 500
ROW_FIELDS = ("event_id", "drone_id", "seq", "flight_id", "event_time", "received_at", "lat",
              "lon", "alt_m", "height_m", "ground_speed_mps", "heading_deg", "battery_pct",
              "payload_temp_c", "link_quality_pct")


def minute_digests(rows: list[Any]) -> dict[str, list]:
    """Per minute of event time (UTC): how many rows, and SHA-256 over them in order."""
    minutes: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: (as_utc(r.event_time), str(r.event_id))):
        minute = as_utc(row.event_time).strftime("%Y-%m-%dT%H:%MZ")
        minutes.setdefault(minute, hashlib.sha256()).update(
            record_chain.canonical(ROW_FIELDS, row._mapping) + b"\n")
        counts[minute] = counts.get(minute, 0) + 1
    return {minute: [counts[minute], digest.hexdigest()] for minute, digest in minutes.items()}


def _digest(minutes: dict[str, list]) -> str:
    return hashlib.sha256(json.dumps(minutes, sort_keys=True).encode()).hexdigest()


def _covered_rows(connection: Connection, flight_id: str, covered_until: datetime) -> list:
    return connection.execute(select(TEL).where(and_(
        TEL.c.flight_id == flight_id, TEL.c.received_at <= covered_until))).all()


def _seal(connection: Connection, kind: str, flight_id: str, covered_until: datetime,
          now: datetime, **detail) -> None:
    minutes = minute_digests(_covered_rows(connection, flight_id, covered_until))
    record_chain.append(connection, record_chain.RECORD_SEALS, {
        "kind": kind, "subject": flight_id, "rows": sum(n for n, _ in minutes.values()),
        "digest": _digest(minutes), "covered_until": covered_until,
        "detail": json.dumps({**detail, "minutes": minutes}, sort_keys=True),
        "sealed_at": now})


def seal_ended_flights(connection: Connection, now: datetime, delay: timedelta) -> int:
    """Seal the telemetry of flights that ended at least `delay` ago and have no seal yet
    (at most SEALS_PER_RUN a run); how many were sealed."""
    stored = func.coalesce(FLIGHT_EVENT.c.stored_at, FLIGHT_EVENT.c.received_at)
    sealed = select(SEAL.c.subject).where(SEAL.c.kind == SEALED)
    flights = connection.execute(
        select(FLIGHT_EVENT.c.flight_id)
        .where(FLIGHT_EVENT.c.kind.in_(ENDINGS), FLIGHT_EVENT.c.flight_id.not_in(sealed))
        .group_by(FLIGHT_EVENT.c.flight_id).having(func.min(stored) <= now - delay)
        .order_by(func.min(stored)).limit(SEALS_PER_RUN)).scalars().all()
    for flight_id in flights:
        _seal(connection, SEALED, flight_id, now - COMMIT_MARGIN, now)
    return len(flights)


def _latest_seals(connection: Connection, flight_ids: list[str] | None = None) -> dict:
    """The newest seal of each flight (of `flight_ids`, or all), in order of first seal."""
    query = select(SEAL).where(SEAL.c.kind.in_((SEALED, THINNED))).order_by(SEAL.c.id)
    if flight_ids is not None:
        query = query.where(SEAL.c.subject.in_(flight_ids))
    latest: dict[str, Any] = {}
    for row in connection.execute(query):
        latest[row.subject] = row
    return latest


def _differs(connection: Connection, seal: Any) -> str | None:
    """What differs between a flight's rows and its seal, or None."""
    sealed = json.loads(seal.detail)["minutes"]
    found = minute_digests(_covered_rows(connection, seal.subject, as_utc(seal.covered_until)))
    for minute in sorted(set(sealed) | set(found)):
        if minute not in found:
            return f"minute {minute}: its {sealed[minute][0]} sealed row(s) are missing"
        if minute not in sealed:
            return f"minute {minute}: {found[minute][0]} row(s) that the seal does not hold"
        if found[minute] != sealed[minute]:
            return (f"minute {minute}: {found[minute][0]} row(s) where the seal holds "
                    f"{sealed[minute][0]}, and they differ from what was sealed")
    if _digest(found) != seal.digest:
        return "the seal's digest does not match its minutes (the seal was changed)"
    return None


@dataclass
class Removal:
    """Sealed flights whose rows the retention job is about to remove, as they stood."""

    intact_before: dict[str, bool]
    rows_before: dict[str, int]


def before_removal(connection: Connection, where) -> Removal:
    """Check every sealed flight with rows matching `where` against its latest seal."""
    flights = connection.execute(select(TEL.c.flight_id).where(
        where, TEL.c.flight_id.is_not(None)).distinct()).scalars().all()
    seals = _latest_seals(connection, list(flights)) if flights else {}
    return Removal({flight: _differs(connection, seal) is None
                    for flight, seal in seals.items()},
                   {flight: seal.rows for flight, seal in seals.items()})


def after_removal(connection: Connection, removal: Removal, now: datetime, why: str) -> None:
    """Seal what retention left of each flight it touched, with what it removed."""
    seals = _latest_seals(connection, list(removal.intact_before))
    for flight_id, seal in seals.items():
        left = len(_covered_rows(connection, flight_id, as_utc(seal.covered_until)))
        if left == removal.rows_before[flight_id] and removal.intact_before[flight_id]:
            continue  # nothing of this flight was removed
        _seal(connection, THINNED, flight_id, as_utc(seal.covered_until), now, by=why,
              removed=removal.rows_before[flight_id] - left,
              intact_before=removal.intact_before[flight_id])


@dataclass(frozen=True)
class TelemetryBreak:
    flight_id: str
    seal_id: int
    problem: str


@dataclass
class TelemetryVerification:
    flights: int = 0
    rows: int = 0
    unsealed_rows: int = 0  # received after their flight's seal: late, not tampering
    first_break: TelemetryBreak | None = None


def verify(connection: Connection) -> TelemetryVerification:
    """Every sealed flight's telemetry against its latest seal, and every thinning's
    finding; stops at the first that differs."""
    result = TelemetryVerification()
    thinned_broken = connection.execute(select(SEAL).where(SEAL.c.kind == THINNED)
                                        .order_by(SEAL.c.id)).all()
    for seal in thinned_broken:
        if not json.loads(seal.detail).get("intact_before", True):
            result.first_break = TelemetryBreak(seal.subject, seal.id, "the telemetry had "
                                                "changed since its seal when retention "
                                                "thinned it")
            return result
    for flight_id, seal in _latest_seals(connection).items():
        result.flights += 1
        result.rows += seal.rows
        problem = _differs(connection, seal)
        if problem is not None:
            result.first_break = TelemetryBreak(flight_id, seal.id, problem)
            return result
        result.unsealed_rows += connection.execute(select(func.count()).where(and_(
            TEL.c.flight_id == flight_id,
            TEL.c.received_at > as_utc(seal.covered_until)))).scalar_one()
    return result
