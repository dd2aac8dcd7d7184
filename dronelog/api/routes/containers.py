"""Containers: the packing station's departures and boxes, each box's manifest (JSON with
its QR code, PDF, HL7 v2 OSM^R26), and the receiving lab's check of a box against its
manifest (domain/manifests.py).

Site staff (the lab role) see the containers packed at their site and those bound for it;
dispatchers and administrators see every container. Only the lab a container is bound for
checks it: each tube it scans is judged at once (`checks`), and when it says the box is empty
the tubes it never scanned are missing (`close`). A discrepancy raises a latched
`manifest_discrepancy` alert on the tube, which reaches both sites; the scan itself is
audited. Receiving a tube stays a custody scan (`POST /api/v1/custody`, `received` with the
container and its seal), on the one custody path.
"""

import json
from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, and_, select

from dronelog.api import audit
from dronelog.api.accounts import Role, User
from dronelog.api.deps import ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.contract.messages import Barcode
from dronelog.domain.alerts import AlertKind, reconcile
from dronelog.domain.manifests import Check, Manifest, check_scan, discrepancy_condition, missing
from dronelog.exports import manifests as stored
from dronelog.exports.manifest_epcis import manifest_document
from dronelog.exports.manifest_hl7 import osm_r26
from dronelog.exports.manifest_pdf import manifest_pdf, qr_matrix
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import FlightTracking, Site
from dronelog.turnaround import alert_store

router = APIRouter(prefix="/api/v1", tags=["containers"])
Reader = Annotated[User, Depends(require(Role.LAB, Role.DISPATCHER, Role.ADMIN))]
Receiver = Annotated[User, Depends(require(Role.LAB))]
ContainerPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
F, SITE = FlightTracking.__table__, Site.__table__
WINDOW = timedelta(hours=24)  # the containers a station or a lab lists: packed this recently


class Departure(BaseModel):
    flight_id: str
    drone_id: str
    origin_site_id: str | None
    destination_site_id: str | None


class TubePublic(BaseModel):
    barcode: str
    kind: str | None
    blood_product: str | None
    priority: str | None
    temperature_class: str | None
    destination_site_id: str | None
    received: bool = Field(description="received or rejected at the container's destination")


class ContainerPublic(BaseModel):
    container_id: str
    seal_id: str | None
    origin_site_id: str
    destination_site_id: str | None
    packed_at: datetime
    flight_id: str | None
    drone_id: str | None
    loaded_at: datetime | None
    temperature_classes: list[str]
    tubes: list[TubePublic]
    qr: list[str] | None = Field(None, description="the QR code of the container id: rows "
                                 "of modules, '1' dark, without the quiet zone")


class ScanIn(BaseModel):
    barcode: Barcode


class CloseIn(BaseModel):
    scanned: list[Barcode] = Field(max_length=500,
                                       description="every tube scanned out of the box")


class CheckPublic(BaseModel):
    barcode: str
    finding: Literal["expected", "foreign", "extra", "missing"]
    packed_container_id: str | None = None
    alerted: bool = Field(description="a manifest_discrepancy alert was opened just now")


@router.get("/departures", response_model=list[Departure], summary="Flights planned from a "
            "site, to hand a container to (until transport requests assign them)")
def departures(user: Reader, conn: ConnectionDep,
               site: Annotated[str | None, Query(description="dispatchers and "
                                                 "administrators: the site")] = None
               ) -> list[Departure]:
    site_id = user.site_id if user.role is Role.LAB else site
    query = select(F).where(F.c.state == "planned").order_by(F.c.flight_id)
    if site_id:
        query = query.where(F.c.origin_site_id == site_id)
    return [Departure(flight_id=r.flight_id, drone_id=r.drone_id,
                      origin_site_id=r.origin_site_id, destination_site_id=r.destination_site_id)
            for r in conn.execute(query)]


@router.get("/containers", response_model=list[ContainerPublic],
            summary="Containers packed in the last 24 h: at a site, or bound for it")
def containers(request: Request, user: Reader, conn: ConnectionDep,
               direction: Annotated[Literal["incoming", "outgoing"], Query()] = "incoming",
               site: Annotated[str | None, Query()] = None) -> list[ContainerPublic]:
    site_id = user.site_id if user.role is Role.LAB else site
    if not site_id:
        raise Problem(422, "Site needed", "give the site whose containers to list")
    since = request.app.state.clock.now() - WINDOW
    ids = stored.containers_packed_since(
        conn, since, **({"to_site": site_id} if direction == "incoming" else {"at_site": site_id}))
    listed = []
    for container_id in ids:
        manifest = stored.read_manifest(conn, container_id)
        if manifest is None or (direction == "incoming"
                                and manifest.destination_site_id != site_id):
            continue
        public = _public(conn, manifest)
        if direction == "incoming" and all(t.received for t in public.tubes):
            continue  # received in full: off the lab's list
        listed.append(public)
    return listed


@router.get("/containers/{container_id}", response_model=ContainerPublic,
            summary="A container's manifest, with the QR code of its id")
def container(container_id: ContainerPath, user: Reader, conn: ConnectionDep
              ) -> ContainerPublic:
    manifest = _visible(conn, container_id, user)
    return _public(conn, manifest).model_copy(update={"qr": qr_matrix(container_id)})


@router.get("/containers/{container_id}/manifest.pdf", summary="The manifest, printable (PDF)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def manifest_as_pdf(container_id: ContainerPath, user: Reader, conn: ConnectionDep) -> Response:
    manifest = _visible(conn, container_id, user)
    names = {r.id: (r.name_zh, r.name_en) for r in conn.execute(select(SITE))}
    body = manifest_pdf(manifest, names, _zone(conn, manifest.origin_site_id))
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="manifest-{container_id}.pdf"'})


@router.get("/containers/{container_id}/manifest.hl7",
            summary="The manifest as HL7 v2.7 OSM^R26, for the receiving lab's LIS",
            response_class=Response, responses={200: {"content": {"x-application/hl7-v2+er7": {}}}})
def manifest_as_hl7(request: Request, container_id: ContainerPath, user: Reader,
                    conn: ConnectionDep) -> Response:
    manifest = _visible(conn, container_id, user)
    names = {r.id: r.name_zh for r in conn.execute(select(SITE))}
    body = osm_r26(manifest, names, request.app.state.clock.now(),
                   _zone(conn, manifest.origin_site_id))
    return Response(body.encode(), media_type="x-application/hl7-v2+er7; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="manifest-{container_id}.hl7"'})


@router.get("/containers/{container_id}/epcis",
            summary="The manifest as GS1 EPCIS 2.0: the tubes aggregated into the container",
            responses={200: {"content": {"application/ld+json": {}}}})
def manifest_as_epcis(request: Request, container_id: ContainerPath, user: Reader,
                      conn: ConnectionDep) -> Response:
    manifest = _visible(conn, container_id, user)
    document = manifest_document(manifest, _zone(conn, manifest.origin_site_id),
                                 request.app.state.clock.now())
    return Response(json.dumps(document, ensure_ascii=False), media_type="application/ld+json")


@router.post("/containers/{container_id}/checks", response_model=CheckPublic,
             summary="The receiving lab scans a tube out of the container: judged at once")
def check_tube(request: Request, container_id: ContainerPath, scan: ScanIn, user: Receiver,
               conn: ConnectionDep) -> CheckPublic:
    manifest = _receiving(conn, container_id, user)
    found = check_scan(scan.barcode, manifest, stored.packed_in(conn, scan.barcode))
    return _record(request, conn, user, manifest, [found])[0]


@router.post("/containers/{container_id}/close", response_model=list[CheckPublic],
             summary="The box is empty: the manifest's tubes not scanned are missing")
def close(request: Request, container_id: ContainerPath, body: CloseIn, user: Receiver,
          conn: ConnectionDep) -> list[CheckPublic]:
    manifest = _receiving(conn, container_id, user)
    seen = set(body.scanned) | stored.received_at(conn, manifest.barcodes, user.site_id)
    return _record(request, conn, user, manifest, list(missing(manifest, seen)))


def _record(request: Request, conn: Connection, user: User, manifest: Manifest,
            checks: list[Check]) -> list[CheckPublic]:
    """Raise the discrepancies' alerts (once per tube: the kind is latched) and audit the
    checks."""
    state = request.app.state
    now = state.clock.now()
    conditions = [c for c in (discrepancy_condition(check, manifest, user.site_id)
                              for check in checks) if c]
    opened: set[str] = set()
    if conditions:
        subjects = {c.subject_id for c in conditions}
        known = [a for a in alert_store.known_alerts(conn, subjects)
                 if a.kind is AlertKind.MANIFEST_DISCREPANCY and a.subject_id in subjects]
        changes = reconcile(conditions, known)
        alert_store.apply(conn, changes, now, state.settings.language)
        opened = {c.subject_id for c in changes.to_open}
    for check in checks:
        audit.record(conn, user, f"container.{check.finding.value}", check.barcode, now,
                     container_id=manifest.container_id,
                     packed_container_id=check.packed_container_id)
    return [CheckPublic(barcode=c.barcode, finding=c.finding.value,
                        packed_container_id=c.packed_container_id,
                        alerted=c.barcode in opened) for c in checks]


def _visible(conn: Connection, container_id: str, user: User) -> Manifest:
    """The manifest, if the user may see it: site staff only at either end of its journey."""
    manifest = stored.read_manifest(conn, container_id)
    if manifest is None or (user.role is Role.LAB and user.site_id not in (
            manifest.origin_site_id, manifest.destination_site_id)):
        raise Problem(404, "Not found", f"no container {container_id!r} is packed for your "
                      "site" if user.role is Role.LAB else f"no container {container_id!r}")
    return manifest


def _receiving(conn: Connection, container_id: str, user: User) -> Manifest:
    manifest = _visible(conn, container_id, user)
    if manifest.destination_site_id != user.site_id:
        raise Problem(403, "Forbidden", f"container {container_id!r} is bound for "
                      f"{manifest.destination_site_id!r}: only its lab checks it")
    return manifest


def _public(conn: Connection, manifest: Manifest) -> ContainerPublic:
    done = (stored.received_at(conn, manifest.barcodes, manifest.destination_site_id)
            if manifest.destination_site_id else set())
    loading = manifest.loading
    return ContainerPublic(
        container_id=manifest.container_id, seal_id=manifest.seal_id,
        origin_site_id=manifest.origin_site_id,
        destination_site_id=manifest.destination_site_id, packed_at=manifest.packed_at,
        flight_id=loading.flight_id if loading else None,
        drone_id=loading.drone_id if loading else None,
        loaded_at=as_utc(loading.event_time) if loading else None,
        temperature_classes=sorted(manifest.temperature_classes),
        tubes=[TubePublic(barcode=t.barcode, kind=t.kind, blood_product=t.blood_product,
                          priority=t.priority, temperature_class=t.temperature_class,
                          destination_site_id=t.destination_site_id,
                          received=t.barcode in done) for t in manifest.tubes])


def _zone(conn: Connection, site_id: str) -> ZoneInfo:
    zone = conn.execute(select(SITE.c.timezone).where(and_(SITE.c.id == site_id))).scalar()
    return ZoneInfo(zone or "Asia/Shanghai")
