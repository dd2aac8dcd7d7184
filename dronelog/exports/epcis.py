"""A specimen's journey as a GS1 EPCIS 2.0 document in JSON-LD (docs/exports.md).

Packing into a container is an AggregationEvent ADD, taking it out (at receipt or rejection,
or before packing into another) a DELETE; every other handover, each take-off and landing of
a flight the specimen rode, and each flight's payload temperature are ObjectEvents with CBV
business steps and dispositions. Sites, specimens, containers and drones are named by the
URIs of `journey.urn`. A handover's eventID is its custody event's id; events derived from
it or from a flight get a stable UUID of their own.
"""

from datetime import UTC, datetime
from statistics import fmean
from zoneinfo import ZoneInfo

from dronelog.exports.journey import Flight, Handover, Journey, stable_uuid, urn

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXTENSION = "urn:dronelog:epcis:"  # the `dronelog:` prefix of our own event fields

# custody kind -> (business step, disposition); received and rejected also unpack first.
_STEPS = {"collected": ("commissioning", "active"),
          "packed": ("packing", "container_closed"),
          "loaded": ("loading", "container_closed"),
          "unloaded": ("unloading", "in_transit"),
          "received": ("receiving", "in_progress"),
          "rejected": ("inspecting", "non_conformant")}


def document(journey: Journey) -> dict:
    return {
        "@context": [CONTEXT, {"dronelog": EXTENSION}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(journey.exported_at),
        "epcisBody": {"eventList": _events(journey)},
    }


def _events(journey: Journey) -> list[dict]:
    specimen = urn("specimen", journey.barcode)
    timed: list[tuple[datetime, int, dict]] = []

    def emit(at: datetime, site_id: str | None, event: dict) -> None:
        zone = journey.sites[site_id].timezone if site_id in journey.sites else "UTC"
        local = at.astimezone(ZoneInfo(zone))
        timed.append((at, len(timed), {
            "eventID": event["eventID"], "type": event["type"],
            "eventTime": local.isoformat(timespec="milliseconds"),
            "eventTimeZoneOffset": _offset(local), **event}))

    container = None  # the container the specimen is in now, as packing recorded it
    for handover in journey.handovers:
        if container is not None and (handover.kind in ("received", "rejected")
                                      or handover.kind == "packed"
                                      and handover.container_id != container):
            emit(handover.event_time, handover.site_id,
                 _unpacking(journey.barcode, handover, container, specimen))
            container = None
        if handover.kind == "packed":
            container = handover.container_id
            emit(handover.event_time, handover.site_id, _packing(handover, specimen))
        else:
            emit(handover.event_time, handover.site_id, _observed(journey, handover, specimen))
    for flight in journey.flights.values():
        for fact, step in ((flight.takeoff, "departing"), (flight.landing, "arriving")):
            if fact is not None:
                emit(fact.event_time, fact.site_id, _flight_step(
                    journey.barcode, flight, fact.event_id, step, fact.site_id, specimen))
        if flight.readings:
            origin = flight.status.origin_site_id if flight.status else None
            emit(flight.readings[-1].at, origin,
                 _temperature(journey.barcode, flight, specimen))
    return [event for _, _, event in sorted(timed, key=lambda item: item[:2])]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _offset(local: datetime) -> str:
    minutes = int(local.utcoffset().total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _place(site_id: str, stays: bool = True) -> dict:
    """readPoint, and bizLocation when the specimen stays at the site afterwards."""
    where = {"readPoint": {"id": urn("site", site_id)}}
    return where | ({"bizLocation": {"id": urn("site", site_id)}} if stays else {})


def _derived_id(barcode: str, step: str, source_id: str) -> str:
    return f"urn:uuid:{stable_uuid('epcis', barcode, step, source_id)}"


def _actor(handover: Handover) -> str:
    return urn(handover.actor_kind, handover.actor_id)


def _packing(handover: Handover, specimen: str) -> dict:
    return {"eventID": f"urn:uuid:{handover.event_id}", "type": "AggregationEvent",
            "parentID": urn("container", handover.container_id), "childEPCs": [specimen],
            "action": "ADD", "bizStep": "packing", "disposition": "container_closed",
            **_place(handover.site_id), "dronelog:actor": _actor(handover),
            "dronelog:seal": urn("seal", handover.seal_id)}


def _unpacking(barcode: str, handover: Handover, container: str, specimen: str) -> dict:
    return {"eventID": _derived_id(barcode, "unpacking", handover.event_id),
            "type": "AggregationEvent", "parentID": urn("container", container),
            "childEPCs": [specimen], "action": "DELETE", "bizStep": "unpacking",
            **_place(handover.site_id), "dronelog:actor": _actor(handover)}


def _observed(journey: Journey, handover: Handover, specimen: str) -> dict:
    step, disposition = _STEPS[handover.kind]
    event = {"eventID": f"urn:uuid:{handover.event_id}", "type": "ObjectEvent",
             "epcList": [specimen], "action": "ADD" if step == "commissioning" else "OBSERVE",
             "bizStep": step, "disposition": disposition, **_place(handover.site_id),
             "dronelog:actor": _actor(handover)}
    if step == "commissioning":
        event["ilmd"] = {"dronelog:kind": journey.kind, "dronelog:priority": journey.priority,
                         "dronelog:temperatureClass": journey.temperature_class}
        if journey.blood_product:
            event["ilmd"]["dronelog:bloodProduct"] = journey.blood_product
    if handover.flight_id:
        event["dronelog:flight"] = urn("flight", handover.flight_id)
    if handover.seal_id:
        event["dronelog:seal"] = urn("seal", handover.seal_id)
    if handover.reason:
        event["dronelog:rejectionReason"] = handover.reason
    return event


def _flight_step(barcode: str, flight: Flight, source_id: str, step: str, site_id: str,
                 specimen: str) -> dict:
    return {"eventID": _derived_id(barcode, step, source_id), "type": "ObjectEvent",
            "epcList": [specimen], "action": "OBSERVE", "bizStep": step,
            "disposition": "in_transit", **_place(site_id, stays=step == "arriving"),
            "dronelog:flight": urn("flight", flight.flight_id)}


def _temperature(barcode: str, flight: Flight, specimen: str) -> dict:
    """The payload box's temperature over the flight, aggregated as GS1 advises (EPCIS 2.0
    carries business-level sensor data, not raw series)."""
    values = [r.temp_c for r in flight.readings]
    metadata = {"startTime": _time(flight.readings[0].at),
                "endTime": _time(flight.readings[-1].at)}
    if flight.drone_id:
        metadata["deviceID"] = urn("drone", flight.drone_id)
    return {"eventID": _derived_id(barcode, "transporting", flight.flight_id),
            "type": "ObjectEvent", "epcList": [specimen], "action": "OBSERVE",
            "bizStep": "transporting", "disposition": "in_transit",
            "sensorElementList": [{"sensorMetadata": metadata, "sensorReport": [
                {"type": "Temperature", "minValue": min(values), "maxValue": max(values),
                 "meanValue": round(fmean(values), 3), "uom": "CEL"}]}],
            "dronelog:flight": urn("flight", flight.flight_id)}
