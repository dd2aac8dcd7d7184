"""A container's manifest in GS1 EPCIS 2.0 (JSON-LD): where EPCIS places a manifest, an
AggregationEvent ADD of every tube on it (childEPCs) into the container (parentID), with the
CBV step `packing` and disposition `container_closed`, at the site that packed it, the seal
as an extension field; and, once loaded, an ObjectEvent `loading` of the container with its
flight. The same URIs as the per-specimen export (exports/journey.py `urn`), so a receiving
system can join both."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dronelog.domain.manifests import Manifest
from dronelog.exports.epcis import CONTEXT, EXTENSION
from dronelog.exports.journey import stable_uuid, urn


def _timed(moment: datetime, zone: ZoneInfo) -> dict:
    local = moment.astimezone(zone)
    minutes = int(local.utcoffset().total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return {"eventTime": local.isoformat(timespec="milliseconds"),
            "eventTimeZoneOffset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"}


def manifest_document(manifest: Manifest, zone: ZoneInfo, exported_at: datetime) -> dict:
    container = urn("container", manifest.container_id)
    site = {"readPoint": {"id": urn("site", manifest.origin_site_id)},
            "bizLocation": {"id": urn("site", manifest.origin_site_id)}}
    packed_id = stable_uuid("manifest", manifest.container_id, "packing",
                            manifest.packed_at.isoformat())
    packing = {"eventID": f"urn:uuid:{packed_id}", "type": "AggregationEvent",
               **_timed(manifest.packed_at, zone),
               "parentID": container,
               "childEPCs": [urn("specimen", t.barcode) for t in manifest.tubes],
               "action": "ADD", "bizStep": "packing", "disposition": "container_closed", **site}
    if manifest.seal_id:
        packing["dronelog:seal"] = urn("seal", manifest.seal_id)
    events = [packing]
    if manifest.loading:
        loading = manifest.loading
        loaded_id = stable_uuid("manifest", manifest.container_id, "loading", loading.flight_id)
        events.append({
            "eventID": f"urn:uuid:{loaded_id}",
            "type": "ObjectEvent", **_timed(loading.event_time, zone), "epcList": [container],
            "action": "OBSERVE", "bizStep": "loading", "disposition": "container_closed",
            "readPoint": site["readPoint"], "dronelog:flight": urn("flight", loading.flight_id),
            "dronelog:drone": urn("drone", loading.drone_id)})
    return {"@context": [CONTEXT, {"dronelog": EXTENSION}], "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": exported_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "epcisBody": {"eventList": events}}
