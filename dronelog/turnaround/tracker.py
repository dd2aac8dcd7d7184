"""Keeps `specimen_tracking` and `flight_tracking` current: the state of every specimen and
flight, derived by the domain from the stored events.

Incremental and restart-safe: a watermark on `stored_at` (in `job_state`) says what has been
seen; each run re-derives only what changed since (with an overlap, as a commit may land a
little after its `stored_at`), plus the flights still in the air and their specimens, whose
payload temperature grows with every telemetry report, plus every flight whose telemetry
was received since a second watermark, on telemetry's `received_at`: reports that arrive
after their flight has landed (store and forward after a lost link) count as soon as they
are stored. Re-deriving is idempotent, so a run that is cut short or repeated does no harm.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from dronelog.domain.custody_rules import DescriptionChoice, DescriptionSource, choose_description
from dronelog.domain.facts import CustodyFact, SpecimenFacts
from dronelog.domain.flights import FlightState, FlightStatus, flight_status
from dronelog.domain.specimens import SpecimenStatus, specimen_status
from dronelog.domain.stability import SpecimenLimits
from dronelog.domain.telemetry_rules import (
    TEMPERATURE_MAX_GAP_S,
    Exposure,
    pad_transitions,
    temperature_exposure,
)
from dronelog.domain.temperature import EXCURSION_GRACE_S, TemperatureRange
from dronelog.storage.portable import insert_new, upsert
from dronelog.turnaround import repository as repo

WATERMARK = "tracker.watermark"
TELEMETRY_WATERMARK = "tracker.telemetry_watermark"  # received_at, the server's clock
UNKNOWN_BAND = "unknown"  # the temperature class of a specimen never described
_IN_AIR = (FlightState.AIRBORNE.value, FlightState.DIVERTED.value)


@dataclass
class TrackerRun:
    flights: int = 0
    specimens: int = 0


def refresh(connection: Connection, limits: SpecimenLimits, now: datetime,
            excursion_grace_s: float = EXCURSION_GRACE_S, *,
            temperature_max_gap_s: float = TEMPERATURE_MAX_GAP_S) -> TrackerRun:
    watermark = read_watermark(connection)
    since = watermark - repo.OVERLAP
    changed_barcodes, newest_custody = repo.changed_since(connection, repo.CUSTODY, "barcode",
                                                          since)
    changed_flights, newest_flight = repo.changed_since(connection, repo.FLIGHT_EVENT,
                                                        "flight_id", since)
    in_air = set(connection.execute(select(repo.FLIGHT_TRACKING.c.flight_id).where(
        repo.FLIGHT_TRACKING.c.state.in_(_IN_AIR))).scalars())
    # First run after an upgrade: from the main watermark, not from the start of time.
    received_mark = datetime.fromisoformat(repo.read_state(
        connection, TELEMETRY_WATERMARK, watermark.isoformat()))
    reported, newest_received = repo.flights_with_telemetry_received_since(
        connection, received_mark - repo.OVERLAP)
    run = derive(connection, limits, now, changed_flights | in_air | reported,
                 changed_barcodes, excursion_grace_s,
                 temperature_max_gap_s=temperature_max_gap_s)
    newest = max([m for m in (newest_custody, newest_flight) if m] + [watermark])
    write_watermark(connection, newest, now)
    repo.write_state(connection, TELEMETRY_WATERMARK,
                     max(newest_received or received_mark, received_mark).isoformat(), now)
    return run


def read_watermark(connection: Connection) -> datetime:
    return datetime.fromisoformat(repo.read_state(connection, WATERMARK, repo.EPOCH.isoformat()))


def write_watermark(connection: Connection, watermark: datetime, now: datetime) -> None:
    repo.write_state(connection, WATERMARK, watermark.isoformat(), now)


def derive(connection: Connection, limits: SpecimenLimits, now: datetime,
           flights_to_derive: set[str], changed_barcodes: set[str],
           excursion_grace_s: float = EXCURSION_GRACE_S, *,
           temperature_max_gap_s: float = TEMPERATURE_MAX_GAP_S) -> TrackerRun:
    """Re-derive these flights, the specimens on them and these specimens (idempotent)."""
    barcodes = changed_barcodes | repo.barcodes_on_flights(connection, flights_to_derive)
    statuses, tracks = derive_flights(connection, flights_to_derive, now)
    specimens = derive_specimens(connection, limits, now, barcodes, statuses, tracks,
                                 excursion_grace_s,
                                 temperature_max_gap_s=temperature_max_gap_s)
    return TrackerRun(flights=len(flights_to_derive), specimens=specimens)


def derive_flights(connection: Connection, flight_ids: set[str], now: datetime
                   ) -> tuple[dict[str, FlightStatus], dict[str, list]]:
    """Re-derive these flights' rows and pad events; their statuses and tracks."""
    statuses = {flight_id: status for flight_id, facts in
                repo.flight_facts(connection, flight_ids).items()
                if (status := flight_status(facts)) is not None}
    upsert(connection, repo.FLIGHT_TRACKING,
                [_flight_row(statuses[f], now) for f in flight_ids if f in statuses],
                ["flight_id"])
    tracks: dict[str, list] = {}
    _record_pad_events(connection, flight_ids, tracks)
    return statuses, tracks


def derive_specimens(connection: Connection, limits: SpecimenLimits, now: datetime,
                     barcodes: set[str], statuses: dict[str, FlightStatus],
                     tracks: dict[str, list],
                     excursion_grace_s: float = EXCURSION_GRACE_S, *,
                     temperature_max_gap_s: float = TEMPERATURE_MAX_GAP_S) -> int:
    """Re-derive these specimens' rows, with the statuses and tracks of their flights
    (those not given are loaded); how many rows were written."""
    loaded_on = repo.flights_of(connection, barcodes)
    more = {f for ids in loaded_on.values() for f in ids} - statuses.keys()
    statuses = statuses | {flight_id: status for flight_id, facts in
                           repo.flight_facts(connection, more).items()
                           if (status := flight_status(facts)) is not None}
    tracks = tracks | repo.flight_tracks(connection, more - tracks.keys())
    registry = repo.specimen_details(connection, barcodes)
    described = repo.descriptions(connection, barcodes)
    custody = repo.custody_facts(connection, barcodes)
    rows = []
    for barcode in sorted(barcodes):
        facts = custody.get(barcode, [])
        if not facts:
            continue
        choice = choose_description(described.get(barcode, []))
        details, source = _believed(choice, registry.get(barcode), facts)
        status = specimen_status(facts, statuses,
                                 destination_site_id=details.destination_site_id)
        exposure = _exposure(limits.temperature_range(details), loaded_on.get(barcode, set()),
                             statuses, tracks, excursion_grace_s, temperature_max_gap_s)
        rows.append(_specimen_row(details, status, limits, exposure, statuses, now)
                    | {"description_source": source.value,
                       "description_conflicts": _json(choice.conflicts)})
    upsert(connection, repo.SPECIMEN_TRACKING, rows, ["barcode"])
    return len(rows)


def _believed(choice: DescriptionChoice, registered: SpecimenFacts | None,
              facts: list[CustodyFact]) -> tuple[SpecimenFacts, DescriptionSource]:
    """The description to track by: the most believable one sent; for a specimen stored
    before descriptions were kept per event, its registry row; for one never described, the
    strictest priority and an unknown destination and band, so it is tracked (and alerted
    on) from its first step instead of hidden."""
    if choice.chosen is not None:
        return choice.chosen.facts, choice.source
    if registered is not None:
        return registered, DescriptionSource.COLLECTION
    first = min(facts, key=lambda f: f.event_time)
    return SpecimenFacts(barcode=first.barcode, kind="other", priority="stat",
                         temperature_class=UNKNOWN_BAND, origin_site_id=first.site_id,
                         destination_site_id=None), DescriptionSource.NONE


def _json(values) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _record_pad_events(connection: Connection, flight_ids: set[str],
                       tracks: dict[str, list]) -> None:
    """Arrivals on and departures from pads along each flight's track (stored once)."""
    tracks.update(repo.flight_tracks(connection, flight_ids))
    site_points = list(repo.sites(connection).values())
    rows = []
    for flight_id in sorted(flight_ids):
        rows += [{"flight_id": flight_id, "drone_id": event.drone_id, "site_id": event.site_id,
                  "kind": event.kind, "at": event.at}
                 for event in pad_transitions(tracks[flight_id], site_points)]
    insert_new(connection, repo.PAD_EVENT, rows, ["flight_id", "site_id", "kind", "at"])


def _exposure(band: TemperatureRange | None, flight_ids: set[str],
              statuses: dict[str, FlightStatus], tracks: dict[str, list],
              grace_s: float, max_gap_s: float) -> Exposure:
    """Payload temperature over every flight the specimen was on: min, max, seconds out of
    its band (its class's range narrowed by its stability), whether that adds up to an
    excursion, and the seconds nobody can tell (from take-off to landing, what no reading
    vouches for: domain/telemetry_rules.py, temperature_exposure)."""
    if band is None:
        return Exposure(None, None, 0.0, False, None)
    lows, highs, outside, unknown = [], [], 0.0, 0.0
    for flight_id in sorted(flight_ids):
        if flight_id not in statuses or flight_id not in tracks:
            continue
        flight = statuses[flight_id]
        exposure = temperature_exposure(tracks[flight_id], band.low_c, band.high_c,
                                        grace_s=grace_s, max_gap_s=max_gap_s,
                                        start=flight.took_off_at, end=flight.landed_at)
        if exposure.min_c is not None:
            lows.append(exposure.min_c)
            highs.append(exposure.max_c)
        outside += exposure.seconds_out_of_range
        unknown += exposure.seconds_unknown
    return Exposure(min(lows) if lows else None, max(highs) if highs else None, outside,
                    outside > grace_s, None, unknown)


def _flight_row(status: FlightStatus, now: datetime) -> dict:
    return {"flight_id": status.flight_id, "drone_id": status.drone_id,
            "state": status.state.value, "origin_site_id": status.origin_site_id,
            "destination_site_id": status.destination_site_id,
            "took_off_at": status.took_off_at, "landed_at": status.landed_at,
            "landed_site_id": status.landed_site_id, "diverted": status.diverted,
            "updated_at": now}


def _specimen_row(details: SpecimenFacts, status: SpecimenStatus, limits: SpecimenLimits,
                  exposure: Exposure, statuses: dict[str, FlightStatus], now: datetime
                  ) -> dict:
    policy = limits.for_specimen(details)
    started = status.collected_at or status.first_event_at  # the clock runs without collection
    flight = statuses.get(status.flight_id) if status.flight_id else None
    return {
        "barcode": details.barcode, "state": status.state.value,
        "is_open": not status.final,
        "priority": details.priority, "kind": details.kind,
        "origin_site_id": details.origin_site_id,
        "destination_site_id": details.destination_site_id,
        "temperature_class": details.temperature_class,
        "collected_at": started,
        "deadline": policy.deadline(started),
        "warning_at": policy.warning_at(started),
        "stability_until": limits.stability_until(details, started),
        "landed_to_received_min": policy.landed_to_received_min,
        "loaded_at": status.loaded_at, "took_off_at": status.took_off_at,
        "landed_at": status.landed_at, "received_at": status.received_at,
        "rejected_at": status.rejected_at, "rejection_reason": status.rejection_reason,
        "flight_id": status.flight_id, "drone_id": flight.drone_id if flight else None,
        "container_id": status.container_id, "site_id": status.site_id,
        "custody_gaps": _json(status.custody_gaps), "anomalies": _json(status.anomalies),
        "seal_packed": status.seal_packed, "seal_found": status.seal_found,
        "temp_min_c": exposure.min_c, "temp_max_c": exposure.max_c,
        "temp_out_of_range_s": exposure.seconds_out_of_range,
        "temp_unknown_s": exposure.seconds_unknown,
        "excursion": exposure.excursion, "updated_at": now,
    }
