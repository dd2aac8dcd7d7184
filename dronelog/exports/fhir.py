"""A specimen's journey as an HL7 FHIR R5 Bundle of type `collection` (docs/exports.md).

One Specimen with no subject (dronelog holds no patient data; the opaque order reference is
the only link to the order), a Location per site, a Device per drone, container and scanning
device, a Practitioner per member of staff, a Transport per leg and a Provenance per
handover. Resources refer to each other by `urn:uuid:` full URLs made from stable names, so
exporting the same journey twice gives the same ids; a Provenance's id is its custody event's.

The stability catalogue (domain/stability.py) is exported as a Bundle of SpecimenDefinition,
one per specimen type.
"""

from collections.abc import Iterable
from datetime import datetime

from dronelog.domain.flights import FlightState
from dronelog.domain.stability import SpecimenStability
from dronelog.exports.journey import Handover, Journey, Leg, stable_uuid

SYSTEM = "urn:dronelog:"  # + what the id names: site, specimen, drone... (docs/exports.md)
SPECIMEN_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0487"
SPECIMEN_CONDITION = "http://terminology.hl7.org/CodeSystem/v2-0493"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
LOCATION_FORM = "http://terminology.hl7.org/CodeSystem/location-physical-type"

# Only kinds whose v2 specimen type is certain; the others carry dronelog's own code.
_SPECIMEN_TYPES = {"blood_sample": ("BLD", "Whole blood"), "blood_gas": ("BLD", "Whole blood"),
                   "blood_unit": ("BPU", "Blood product unit"), "urine": ("UR", "Urine")}
_CONDITIONS = {"hemolysed": ("HEM", "Hemolyzed"), "clotted": ("CLOT", "Clotted")}
_ACTORS = {"staff": ("Practitioner", "staff"), "drone": ("Device", "drone"),
           "device": ("Device", "device")}
_DEVICE_TYPES = {"drone": "unmanned aircraft", "container": "specimen transport box",
                 "device": "scanner"}
_ORDER = ("Specimen", "Transport", "Provenance", "Location", "Device", "Practitioner")


def bundle(journey: Journey) -> dict:
    return _BundleBuilder(journey).build()


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _identifier(kind: str, value: str) -> dict:
    return {"system": SYSTEM + kind, "value": value}


def _coded(system: str, code: str, display: str | None = None, text: str | None = None
           ) -> dict:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]} | ({"text": text} if text else {})


def _first(*values):
    return next((v for v in values if v is not None), None)


def _compact(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if v not in (None, [], {})}


class _BundleBuilder:
    def __init__(self, journey: Journey) -> None:
        self.journey = journey
        self.entries: dict[str, dict] = {}
        self.specimen = self._reference("Specimen", stable_uuid("specimen", journey.barcode))

    def build(self) -> dict:
        legs = self.journey.legs
        transports = [self._reference("Transport", stable_uuid(
            "transport", self.journey.barcode, str(index))) for index in range(len(legs))]
        by_handover: dict[str, list[dict]] = {}
        for leg, transport in zip(legs, transports, strict=True):
            for handover in (leg.start, leg.end):
                if handover is not None:
                    by_handover.setdefault(handover.event_id, []).append(transport)
        self._add(self.specimen, self._specimen())
        for index, (leg, transport) in enumerate(zip(legs, transports, strict=True)):
            self._add(transport, self._transport(leg, transports[index - 1] if index else None))
        for handover in self.journey.handovers:
            self._add(self._reference("Provenance", handover.event_id),
                      self._provenance(handover, by_handover.get(handover.event_id, [])))
        entries = sorted(self.entries.items(),
                         key=lambda item: _ORDER.index(item[1]["resourceType"]))
        return {"resourceType": "Bundle", "type": "collection",
                "timestamp": _time(self.journey.exported_at),
                "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries]}

    # --- references and the resources they name ------------------------------------------

    @staticmethod
    def _reference(resource_type: str, uuid: str) -> dict:
        return {"reference": f"urn:uuid:{uuid}", "type": resource_type}

    def _add(self, reference: dict, resource: dict) -> dict:
        uuid = reference["reference"].removeprefix("urn:uuid:")
        self.entries.setdefault(reference["reference"], {
            "resourceType": reference["type"], "id": uuid, **_compact(resource)})
        return reference

    def _site(self, site_id: str) -> dict:
        site = self.journey.sites.get(site_id)
        return self._add(self._reference("Location", stable_uuid("site", site_id)), {
            "identifier": [_identifier("site", site_id)], "status": "active",
            "name": site.name_zh if site else site_id,
            "alias": [site.name_en] if site else None, "mode": "instance",
            "form": _coded(LOCATION_FORM, "si", "Site"),
            "position": {"longitude": site.lon, "latitude": site.lat} if site else None})

    def _vehicle(self, drone_id: str, position: tuple[float, float] | None) -> dict:
        """The drone as a place: where a specimen in the air is now."""
        return self._add(self._reference("Location", stable_uuid("vehicle", drone_id)), {
            "identifier": [_identifier("drone", drone_id)], "status": "active",
            "name": f"drone {drone_id}", "mode": "instance",
            "form": _coded(LOCATION_FORM, "ve", "Vehicle"),
            "position": ({"longitude": position[1], "latitude": position[0]}
                         if position else None)})

    def _device(self, kind: str, device_id: str) -> dict:
        return self._add(self._reference("Device", stable_uuid(kind, device_id)), {
            "identifier": [_identifier(kind, device_id)], "displayName": f"{kind} {device_id}",
            "type": [{"text": _DEVICE_TYPES[kind]}]})

    def _actor(self, kind: str, actor_id: str) -> dict:
        resource_type, id_kind = _ACTORS[kind]
        if resource_type == "Device":
            return self._device(id_kind, actor_id)
        return self._add(self._reference(resource_type, stable_uuid(id_kind, actor_id)),
                         {"identifier": [_identifier(id_kind, actor_id)]})

    # --- the journey ---------------------------------------------------------------------

    def _specimen(self) -> dict:
        journey = self.journey
        collected = next((h for h in journey.handovers if h.kind == "collected"), None)
        containers = dict.fromkeys(h.container_id for h in journey.handovers if h.container_id)
        rejections = [h for h in journey.handovers if h.kind == "rejected"]
        code, display = _SPECIMEN_TYPES.get(journey.kind, (None, None))
        text = journey.kind + (f" ({journey.blood_product})" if journey.blood_product else "")
        kind_coding = {"system": SYSTEM + "specimen-kind", "code": journey.kind}
        return {
            "identifier": [_identifier("specimen", journey.barcode)],
            "status": "unsatisfactory" if journey.state == "rejected" else "available",
            "type": {"coding": ([{"system": SPECIMEN_TYPE, "code": code, "display": display}]
                                if code else []) + [kind_coding], "text": text},
            "receivedTime": _time(journey.received_at),
            "request": [{"type": "ServiceRequest",
                         "identifier": _identifier("order", journey.order_ref)}],
            "collection": collected and _compact({
                "collector": (self._actor("staff", collected.actor_id)
                              if collected.actor_kind == "staff" else None),
                "collectedDateTime": _time(collected.event_time)}),
            "container": [{"device": self._device("container", c)} for c in containers],
            "condition": [_coded(SPECIMEN_CONDITION, *_CONDITIONS[h.reason])
                          for h in rejections if h.reason in _CONDITIONS],
            "note": [{"time": _time(h.event_time), "text": f"rejected at {h.site_id}: {h.reason}"}
                     for h in rejections],
        }

    def _transport(self, leg: Leg, previous: dict | None) -> dict:
        if leg.flight_id is None:
            return self._ground_transport(leg, previous)
        flight = self.journey.flights.get(leg.flight_id)
        status = flight.status if flight else None
        state = status.state if status else None
        origin = _first(leg.start and leg.start.site_id, status and status.origin_site_id,
                        leg.end and leg.end.site_id)
        end_site = leg.end.site_id if leg.end else None
        landed_site = status.landed_site_id if status else None
        if state in (FlightState.ABORTED, FlightState.RETURNED_HOME):
            fhir_status, here = "abandoned", _first(end_site, landed_site, origin)
        elif leg.end is not None or state is FlightState.LANDED:
            fhir_status, here = "completed", _first(end_site, landed_site)
        elif state in (FlightState.AIRBORNE, FlightState.DIVERTED):
            fhir_status, here = "in-progress", None
        else:
            fhir_status, here = "planned", origin
        drone_id = _first(flight and flight.drone_id, leg.start and leg.start.drone_id,
                          leg.end and leg.end.drone_id)
        current = (self._site(here) if here is not None
                   else self._vehicle(drone_id, flight.last_position if flight else None))
        landing = flight.landing if flight else None
        takeoff = flight.takeoff if flight else None
        ended = fhir_status in ("completed", "abandoned")
        times = [h.event_time for h in (leg.start, leg.end, takeoff, landing) if h is not None]
        return {
            "identifier": [_identifier("flight", leg.flight_id) | {"use": "secondary"}],
            "status": fhir_status,
            "statusReason": {"text": f"flight {state.value}"} if fhir_status == "abandoned"
            else None,
            "intent": "order",
            "description": f"flight {leg.flight_id} by drone {drone_id}",
            "focus": self.specimen,
            "owner": self._device("drone", drone_id) if drone_id else None,
            "authoredOn": _time(leg.start.event_time if leg.start else None),
            "lastModified": _time(max(times)),
            "completionTime": _time(_first(leg.end and leg.end.event_time,
                                           landing and landing.event_time)) if ended else None,
            "requestedLocation": self._site(_first(
                status and status.planned_destination_site_id,
                status and status.destination_site_id, end_site,
                self.journey.destination_site_id)),
            "currentLocation": current,
            "history": previous,
            "relevantHistory": self._provenances(leg),
            "output": [{"type": _coded(SYSTEM + "flight-event", f.kind),
                        "valueDateTime": _time(f.event_time)}
                       for f in (takeoff, landing) if f is not None],
        }

    def _ground_transport(self, leg: Leg, previous: dict | None) -> dict:
        """A move between sites that no flight explains: seen, not ordered, so intent unknown."""
        destination = self._site(leg.end.site_id)
        return {
            "status": "completed", "intent": "unknown",
            "description": f"on the ground from {leg.start.site_id} to {leg.end.site_id}",
            "focus": self.specimen, "authoredOn": _time(leg.start.event_time),
            "lastModified": _time(leg.end.event_time),
            "completionTime": _time(leg.end.event_time),
            "requestedLocation": destination, "currentLocation": destination,
            "history": previous, "relevantHistory": self._provenances(leg),
        }

    def _provenances(self, leg: Leg) -> list[dict]:
        return [self._reference("Provenance", h.event_id) for h in (leg.start, leg.end)
                if h is not None]

    def _provenance(self, handover: Handover, transports: list[dict]) -> dict:
        entities = []
        if handover.container_id:
            entities.append({"role": "source",
                             "what": self._device("container", handover.container_id)})
        if handover.seal_id:
            entities.append({"role": "source",
                             "what": {"identifier": _identifier("seal", handover.seal_id),
                                      "display": f"seal {handover.seal_id}"}})
        activity = handover.kind + (f": {handover.reason}" if handover.reason else "")
        return {
            "target": [self.specimen, *transports],
            "occurredDateTime": _time(handover.event_time),
            "recorded": _time(handover.recorded_at),
            "location": self._site(handover.site_id),
            "activity": _coded(SYSTEM + "custody-kind", handover.kind, text=activity),
            "agent": [{"type": _coded(PARTICIPANT_TYPE, "performer", "Performer"),
                       "who": self._actor(handover.actor_kind, handover.actor_id)}],
            "entity": entities,
        }


# --- the stability catalogue as SpecimenDefinition ------------------------------------------

UCUM = "http://unitsofmeasure.org"
HANDLING_CONDITION = "http://terminology.hl7.org/CodeSystem/handling-condition"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def specimen_definitions(entries: Iterable[SpecimenStability]) -> dict:
    """The stability catalogue as a FHIR R5 Bundle (searchset) of SpecimenDefinition."""
    resources = [specimen_definition(entry) for entry in entries]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{stable_uuid('specimen-definition', r['id'])}",
                       "resource": r, "search": {"mode": "match"}} for r in resources]}


def specimen_definition(entry: SpecimenStability) -> dict:
    """One specimen type: what it is (the specimen kinds and blood products it applies to,
    its names in English and Chinese), and its handling in transport: the longest time from
    collection to the lab (maxDuration) and the temperature band (temperatureRange, with
    the do-not-refrigerate floor; qualifier `room` when it must not be refrigerated)."""
    codings = ([{"system": SYSTEM + "specimen-kind", "code": kind} for kind in entry.kinds]
               + [{"system": SYSTEM + "blood-product", "code": product}
                  for product in entry.blood_products])
    low, high = entry.floor_c, entry.high_c
    band = _compact({"low": _celsius(low), "high": _celsius(high)})
    handling = _compact({
        "temperatureQualifier": (_coded(HANDLING_CONDITION, "room", "room temperature",
                                        "do not refrigerate")
                                 if entry.do_not_refrigerate else None),
        "temperatureRange": band or None,
        "maxDuration": {"value": entry.max_transport_min, "unit": "min", "system": UCUM,
                        "code": "min"},
        "instruction": entry.note or None})
    return _compact({
        "resourceType": "SpecimenDefinition", "id": entry.id,
        "identifier": _identifier("specimen-definition", entry.id),
        "title": entry.name,
        "_title": {"extension": [{"url": TRANSLATION, "extension": [
            {"url": "lang", "valueCode": "zh"},
            {"url": "content", "valueString": entry.name_zh}]}]},
        "status": "active",
        "typeCollected": _compact({"coding": codings, "text": entry.name}),
        "typeTested": [{"isDerived": False, "preference": "preferred",
                        "handling": [handling]}]})


def _celsius(value: float | None) -> dict | None:
    if value is None:
        return None
    return {"value": value, "unit": "°C", "system": UCUM, "code": "Cel"}
