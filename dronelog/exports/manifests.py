"""Containers' manifests, read from the custody record for the domain's rules
(domain/manifests.py): the packed events of the tubes concerned, their chosen descriptions
(the `specimen` registry), and the flight each container was loaded onto."""

from datetime import datetime

from sqlalchemy import Connection, and_, select

from dronelog.domain.manifests import Loading, Manifest, Packing, Tube, containers_of, manifest
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import CustodyEvent, Specimen

C, S = CustodyEvent.__table__, Specimen.__table__


def _packings(conn: Connection, barcodes: set[str]) -> list[Packing]:
    rows = []
    ordered = sorted(barcodes)
    for start in range(0, len(ordered), 500):
        rows += conn.execute(select(C.c.barcode, C.c.container_id, C.c.seal_id, C.c.site_id,
                                    C.c.event_time, C.c.event_id)
                             .where(and_(C.c.kind == "packed",
                                         C.c.barcode.in_(ordered[start:start + 500])))).all()
    return [Packing(r.barcode, r.container_id, r.seal_id, r.site_id, as_utc(r.event_time),
                    str(r.event_id)) for r in rows]


def _tubes(conn: Connection, barcodes: set[str]) -> dict[str, Tube]:
    rows = conn.execute(select(S.c.barcode, S.c.kind, S.c.blood_product, S.c.priority,
                               S.c.temperature_class, S.c.destination_site_id)
                        .where(S.c.barcode.in_(sorted(barcodes)))).all()
    return {r.barcode: Tube(r.barcode, r.kind, r.blood_product, r.priority,
                            r.temperature_class, r.destination_site_id) for r in rows}


def _loading(conn: Connection, container_id: str) -> Loading | None:
    row = conn.execute(select(C.c.flight_id, C.c.drone_id, C.c.event_time)
                       .where(and_(C.c.kind == "loaded", C.c.container_id == container_id))
                       .order_by(C.c.event_time.desc(), C.c.event_id.desc()).limit(1)).first()
    return Loading(row.flight_id, row.drone_id, as_utc(row.event_time)) if row else None


def read_manifest(conn: Connection, container_id: str) -> Manifest | None:
    """The manifest of one container, or None when no tube is packed into it."""
    barcodes = set(conn.execute(select(C.c.barcode).where(and_(
        C.c.kind == "packed", C.c.container_id == container_id))).scalars())
    if not barcodes:
        return None
    return manifest(container_id, _packings(conn, barcodes), _tubes(conn, barcodes),
                    _loading(conn, container_id))


def packed_in(conn: Connection, barcode: str) -> Packing | None:
    """The container a tube was last packed into, if any."""
    return containers_of(_packings(conn, {barcode})).get(barcode)


def containers_packed_since(conn: Connection, since: datetime, *, at_site: str | None = None,
                            to_site: str | None = None) -> list[str]:
    """Containers packed since `since`: at a site (outgoing), or holding tubes bound for a
    site (incoming)."""
    query = select(C.c.container_id).distinct().where(and_(
        C.c.kind == "packed", C.c.event_time >= since))
    if at_site:
        query = query.where(C.c.site_id == at_site)
    if to_site:
        query = query.join(S, S.c.barcode == C.c.barcode).where(
            S.c.destination_site_id == to_site)
    return sorted(conn.execute(query).scalars())


def received_at(conn: Connection, barcodes: frozenset[str], site_id: str) -> set[str]:
    """Which of `barcodes` were received or rejected at `site_id`."""
    return set(conn.execute(select(C.c.barcode).where(and_(
        C.c.kind.in_(("received", "rejected")), C.c.site_id == site_id,
        C.c.barcode.in_(sorted(barcodes))))).scalars())
