"""A container's manifest as an HL7 v2.7 OSM^R26 (Unsolicited Specimen Shipment Manifest),
for the receiving lab's LIS.

Built and validated with hl7apy (strict validation against the v2.7 message structure: the
message type was introduced in v2.7, and hl7apy is maintained and carries the standard's
structures and datatypes, so we never hand-write segment grammar). One SHP for the container
(shipment id = container id, status from table 0905: TRN once loaded, PRC before), PRT for the
sending and the receiving site (table 0912: SB send by, WAYR waypoint recipient), shipping
observations for the seal and the flight, one PAC for the box, and per tube an SPM (barcode,
specimen type from table 0487, handling code from table 0376 for the temperature class) with
an OBX for its transport priority (table 0027). No patient identity: no PID segment.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from dronelog.domain.manifests import Manifest

VERSION = "2.7"
_SPECIMEN_TYPE = {"blood_sample": "BLD^Whole blood", "blood_gas": "BLDA^Blood arterial",
                  "blood_unit": "BPU^Blood product unit", "pathology": "TISS^Tissue",
                  "urine": "UR^Urine"}
_HANDLING = {"refrigerated": "REF^Refrigerated", "ambient": "AMB^Ambient temperature",
             "frozen": "FRZ^Frozen", "red_cells": "REF^Refrigerated 1-10 C red cells",
             "platelets": "AMB^Ambient 20-24 C platelets"}
_PRIORITY = {"stat": "S^STAT", "urgent": "A^ASAP", "routine": "R^Routine"}


def _escape(value: str) -> str:
    """An HL7 text value with the delimiters escaped (identifiers never hold them, names
    might)."""
    return (value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\"))


def _time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def osm_r26(manifest: Manifest, site_names: dict[str, str], now: datetime,
            zone: ZoneInfo) -> str:
    """The manifest as an ER7 (pipe-delimited) OSM^R26, validated strictly; segments end
    with a carriage return, as HL7 v2 requires."""
    destination = manifest.destination_site_id or ""
    message = Message("OSM_R26", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    message.msh.msh_3 = "DRONELOG"
    message.msh.msh_4 = _escape(manifest.origin_site_id)
    message.msh.msh_6 = _escape(destination)
    message.msh.msh_7 = _time(now, zone)
    message.msh.msh_9 = "OSM^R26^OSM_R26"
    message.msh.msh_10 = _escape(f"{manifest.container_id}-{now.strftime('%Y%m%d%H%M%S')}")
    message.msh.msh_11 = "P"
    message.msh.msh_18 = "UNICODE UTF-8"
    shipment = message.add_group("OSM_R26_SHIPMENT")
    loading = manifest.loading
    shipment.shp.shp_1 = f"{_escape(manifest.container_id)}^DRONELOG"
    shipment.shp.shp_3 = "TRN^In transit^HL70905" if loading else "PRC^Processing^HL70905"
    shipment.shp.shp_4 = _time(loading.event_time if loading else manifest.packed_at, zone)
    shipment.shp.shp_8 = "1"
    for role, site_id in (("SB^Send by", manifest.origin_site_id),
                          ("WAYR^Waypoint Recipient", destination)):
        if not site_id:
            continue
        participant = shipment.add_segment("PRT")
        participant.prt_2 = "AD"
        participant.prt_4 = f"{role}^HL70912"
        participant.prt_8 = (f"{_escape(site_names.get(site_id, site_id))}^^^^^^^^^"
                             f"{_escape(site_id)}")
    observations = [("SEAL^Container seal^L", manifest.seal_id)]
    if loading:
        observations += [("FLIGHT^Flight^L", loading.flight_id),
                         ("DRONE^Drone^L", loading.drone_id)]
    for number, (code, value) in enumerate((o for o in observations if o[1]), start=1):
        observation = shipment.add_group("OSM_R26_SHIPPING_OBSERVATION").obx
        observation.obx_1, observation.obx_2, observation.obx_3 = str(number), "ST", code
        observation.obx_4, observation.obx_5, observation.obx_11 = "1", _escape(value), "F"
    package = shipment.add_group("OSM_R26_PACKAGE")
    package.pac.pac_1 = "1"
    package.pac.pac_2 = _escape(manifest.container_id)
    package.pac.pac_5 = "BOX^Box^L"
    for number, tube in enumerate(manifest.tubes, start=1):
        specimen = package.add_group("OSM_R26_SPECIMEN")
        specimen.spm.spm_1 = str(number)
        specimen.spm.spm_2 = f"{_escape(tube.barcode)}&DRONELOG"
        specimen.spm.spm_4 = f"{_SPECIMEN_TYPE.get(tube.kind or '', 'XXX^To be specified')}" \
                             "^HL70487"
        if tube.temperature_class in _HANDLING:
            specimen.spm.spm_15 = f"{_HANDLING[tube.temperature_class]}^HL70376"
        if tube.priority in _PRIORITY:
            priority = specimen.add_group("OSM_R26_SPECIMEN_OBSERVATION").obx
            priority.obx_1, priority.obx_2 = "1", "CWE"
            priority.obx_3 = "PRIORITY^Transport priority^L"
            priority.obx_4, priority.obx_5 = "1", f"{_PRIORITY[tube.priority]}^HL70027"
            priority.obx_11 = "F"
    message.validate()  # raises hl7apy's ValidationError: never send a malformed manifest
    return message.to_er7() + "\r"
