"""Tamper evidence for the specimen registry: each `specimen` row against the chained custody
event its description came from.

The registry row is what the API, the dashboards and the turnaround engine believe about a
specimen (priority, temperature class, destination...). It changes when a more believable
description arrives (domain/custody_rules.py), so it cannot be append-only; instead it must
always equal the description on its custody event `description_event_id`, which the custody
chain protects, and that event must be the most believable description on record. A trigger
refuses any update that does not bring a new description event, and deletes (migration
0013).

Rows described before migration 0008 have no description event; migration 0013 sealed them
(record_chain.py, kind `legacy_specimens`), and they are checked against that seal.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select

from dronelog.domain.custody_rules import RANK, DescriptionSource, description_source
from dronelog.storage import record_chain
from dronelog.storage.portable import pages
from dronelog.storage.tables import CustodyEvent, RecordSeal, Specimen

SPECIMEN = Specimen.__table__
EVENT = CustodyEvent.__table__
SEAL = RecordSeal.__table__
LEGACY = "legacy_specimens"
DESCRIBED = ("kind", "blood_product", "priority", "temperature_class", "origin_site_id",
             "destination_site_id", "order_ref")
LEGACY_FIELDS = ("barcode", *DESCRIBED, "first_event_id", "description_source")


@dataclass(frozen=True)
class SpecimenBreak:
    barcode: str
    problem: str


def legacy_digest(connection: Connection) -> tuple[int, str]:
    """How many rows have no description event, and SHA-256 over them by barcode."""
    digest, count = hashlib.sha256(), 0
    for row in connection.execute(select(*[SPECIMEN.c[name] for name in LEGACY_FIELDS]).where(
            SPECIMEN.c.description_event_id.is_(None)).order_by(SPECIMEN.c.barcode)):
        count += 1
        digest.update(record_chain.canonical(LEGACY_FIELDS, row._mapping) + b"\n")
    return count, digest.hexdigest()


def verify(connection: Connection) -> tuple[int, SpecimenBreak | None]:
    """Every registry row against its description event; how many rows, the first break."""
    checked = 0
    for specimen, described in _chunks(connection):
        checked += 1
        if specimen.description_event_id is None:
            continue  # checked against the legacy seal below
        problem = _problem(specimen, described)
        if problem is not None:
            return checked, SpecimenBreak(specimen.barcode, problem)
    orphan = connection.execute(select(EVENT.c.barcode).where(and_(
        EVENT.c.description.is_not(None),
        EVENT.c.barcode.not_in(select(SPECIMEN.c.barcode)))).limit(1)).scalar()
    if orphan is not None:
        return checked, SpecimenBreak(orphan, "described by custody events, but its registry "
                                      "row is missing (deleted)")
    return checked, _legacy_break(connection)


def _problem(specimen: Any, described: dict[str, Any]) -> str | None:
    event = described.get(str(specimen.description_event_id))
    if event is None:
        return (f"its description event {specimen.description_event_id} is not a described "
                "custody event of this specimen")
    facts = json.loads(event.description)
    for name in DESCRIBED:
        if facts.get(name) != specimen._mapping[name]:
            return (f"{name} is {specimen._mapping[name]!r}, but its description event "
                    f"{event.event_id} says {facts.get(name)!r}")
    source = _source(event)
    if source.value != specimen.description_source:
        return (f"description_source is {specimen.description_source!r}, but its description "
                f"event {event.event_id} is a {source.value!r}")
    best = max(described.values(), key=lambda other: RANK[_source(other)])
    if RANK[_source(best)] > RANK[source]:
        return (f"custody event {best.event_id} ({_source(best).value}) describes it more "
                f"believably than the description held ({source.value})")
    return None


def _source(event: Any) -> DescriptionSource:
    origin = json.loads(event.description)["origin_site_id"]
    return description_source(event.kind, event.site_id, origin)


def _legacy_break(connection: Connection) -> SpecimenBreak | None:
    count, digest = legacy_digest(connection)
    seal = connection.execute(select(SEAL).where(SEAL.c.kind == LEGACY)
                              .order_by(SEAL.c.id.desc()).limit(1)).first()
    if seal is None and count == 0:
        return None
    if seal is None or seal.rows != count or seal.digest != digest:
        return SpecimenBreak("-", f"the {count} registry row(s) described before their events "
                             "were kept differ from what migration 0013 sealed")
    return None


def _chunks(connection: Connection, size: int = 500) -> Iterator[tuple[Any, dict]]:
    for specimens in pages(connection, SPECIMEN, SPECIMEN.c.barcode, size):
        barcodes = [row.barcode for row in specimens]
        described: dict[str, dict[str, Any]] = {barcode: {} for barcode in barcodes}
        for event in connection.execute(select(EVENT).where(
                EVENT.c.barcode.in_(barcodes), EVENT.c.description.is_not(None))):
            described[event.barcode][str(event.event_id)] = event
        for specimen in specimens:
            yield specimen, described[specimen.barcode]
