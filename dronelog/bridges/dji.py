"""DJI Cloud API (MQTT) in, contract telemetry, flight events and statuses out.

A DJI Dock or a remote controller running DJI Pilot 2 (the *gateway*) publishes its
aircraft's data to the cloud platform's MQTT broker. The bridge is a passive listener on
that broker beside the platform: it never replies and never commands.

- `thing/product/{aircraft_sn}/osd` (about 0.5 Hz): the aircraft's OSD -> Telemetry, and
  `mode_code` changes between on the ground and in the air -> take-off and landing events.
- `thing/product/{gateway_sn}/events`, method `flighttask_progress`: a Dock's wayline task
  names its `flight_id`; the bridge uses it as the flight's id when dronelog's own plan
  does not name one (dronelog/bridges/flights.py).
- `sys/product/{gateway_sn}/status`, method `update_topo`: the aircraft listed in
  `sub_devices` are online; one that was attached to that gateway and is no longer listed
  is offline.

Envelope: `{"tid", "bid", "timestamp" (ms), "method"?, "data", "gateway"?}`.

Units (DJI Cloud API aircraft properties):

    latitude, longitude     degrees (0, 0: no position)        -> lat, lon
    height                  m above the WGS 84 ellipsoid       -> alt_m, minus the geoid
                                                                   separation (configured)
    elevation               m above the take-off point         -> height_m
    horizontal_speed        m/s                                -> ground_speed_mps
    attitude_head           deg, -180..180 from true north     -> heading_deg (0..360; the
                                                                   aircraft's yaw: DJI sends
                                                                   no course over ground)
    battery.capacity_percent %                                 -> battery_pct
    mode_code               0 standby, 1-2 take-off preparation, 3 manual, 4 auto take-off,
                            5 wayline, 6-8, 9 return home, 10 auto landing, 11 forced
                            landing, 12 three-blade landing, 13 upgrading, 14 not connected,
                            15 APAS, 16 virtual stick, 17 live flight controls, 18 RTK
                            fixing, 19 dock address selecting, 20 POI
"""

import json
import math
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from pydantic import ValidationError

from dronelog.bridges.flights import (
    FlightBook,
    SeqCounter,
    epoch_ms,
    event_id,
    normalise_heading,
)
from dronelog.clock import Clock, SystemClock
from dronelog.contract.messages import DroneStatus, Telemetry

log = structlog.get_logger("dronelog.bridges.dji")

ON_GROUND_MODES = frozenset({0, 1, 2, 13})  # standby, take-off preparation (done), upgrading
AIRBORNE_MODES = frozenset({3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 20})
# 14 (not connected) and 19 (dock address selecting) and anything unknown tell nothing.

SUBSCRIPTIONS = [("thing/product/+/osd", 1), ("thing/product/+/events", 1),
                 ("sys/product/+/status", 1)]


class DjiInputError(ValueError):
    """A DJI message that cannot be read; logged and skipped."""


@dataclass
class _Aircraft:
    drone_id: str
    gateway: str | None = None
    online: bool | None = None
    airborne: bool | None = None
    held_back: str | None = None


class DjiTranslator:
    def __init__(self, aircraft: dict[str, str], flights: FlightBook | None = None, *,
                 osd_period_s: float = 2.0, geoid_separation_m: float = 0.0) -> None:
        self.aircraft = dict(aircraft)  # serial number -> drone id
        self.flights = flights or FlightBook()
        self.seq = SeqCounter(osd_period_s)
        self.geoid_separation_m = geoid_separation_m
        self._state: dict[str, _Aircraft] = {}
        self.unmapped: set[str] = set()

    def translate(self, topic: str, payload: bytes) -> list:
        """The contract messages one DJI message leads to; DjiInputError if unreadable."""
        parts = topic.split("/")
        if len(parts) != 4 or not parts[2]:
            raise DjiInputError(f"not a DJI Cloud API topic: {topic!r}")
        root, _product, sn, leaf = parts
        envelope = _envelope(payload)
        if (root, leaf) == ("thing", "osd"):
            return self._osd(sn, envelope)
        if (root, leaf) == ("thing", "events"):
            return self._events(sn, envelope)
        if (root, leaf) == ("sys", "status"):
            return self._status(sn, envelope)
        return []

    # --- topics -------------------------------------------------------------------------

    def _osd(self, sn: str, envelope: dict) -> list:
        aircraft = self._aircraft(sn)
        if aircraft is None:
            return []  # a dock's own OSD, or an aircraft this bridge does not carry
        at = _time(envelope)
        data = envelope["data"]
        if isinstance(envelope.get("gateway"), str) and envelope["gateway"]:
            aircraft.gateway = envelope["gateway"]
        events = []
        if not aircraft.online:
            aircraft.online = True  # it reports, so it is connected
            events.append(_status(aircraft.drone_id, True, "connected", at))
        position = _position(data)
        events += self._mode_change(aircraft, data.get("mode_code"), at, position)
        report = self._report(aircraft, data, at, position)
        return events + ([report] if report else [])

    def _events(self, gateway: str, envelope: dict) -> list:
        if envelope.get("method") != "flighttask_progress":
            return []
        output = envelope["data"].get("output")
        ext = output.get("ext") if isinstance(output, dict) else None
        flight_id = ext.get("flight_id") if isinstance(ext, dict) else None
        if not isinstance(flight_id, str) or not flight_id:
            return []
        at = _time(envelope)
        for aircraft in self._state.values():
            if aircraft.gateway == gateway:
                self.flights.hint(aircraft.drone_id, flight_id, at)
        return []

    def _status(self, gateway: str, envelope: dict) -> list:
        if envelope.get("method") != "update_topo":
            return []
        listed = envelope["data"].get("sub_devices")
        if not isinstance(listed, list):
            raise DjiInputError("update_topo without a sub_devices list")
        at = _time(envelope)
        present = {d.get("sn") for d in listed if isinstance(d, dict)}
        events = []
        for sn in sorted(s for s in present if isinstance(s, str)):
            aircraft = self._aircraft(sn)
            if aircraft is None:
                continue
            aircraft.gateway = gateway
            if not aircraft.online:
                aircraft.online = True
                events.append(_status(aircraft.drone_id, True, "connected", at))
        for sn, aircraft in sorted(self._state.items()):
            if aircraft.gateway == gateway and sn not in present and aircraft.online is not False:
                aircraft.online = False
                events.append(_status(aircraft.drone_id, False, "disconnected", at))
        return events

    def shutdown(self, now: datetime) -> list:
        """The bridge stops: every aircraft it reported online is offline for dronelog."""
        events = []
        for aircraft in self._state.values():
            if aircraft.online:
                aircraft.online = False
                events.append(_status(aircraft.drone_id, False, "disconnected", now))
        return events

    # --- derived state ------------------------------------------------------------------

    def _aircraft(self, sn: str) -> _Aircraft | None:
        drone_id = self.aircraft.get(sn)
        if drone_id is None:
            if sn not in self.unmapped:
                self.unmapped.add(sn)
                log.info("DJI device not mapped to a drone: ignored", sn=sn,
                         hint=f"--map {sn}=<drone id> if it is an aircraft")
            return None
        return self._state.setdefault(sn, _Aircraft(drone_id))

    def _mode_change(self, aircraft: _Aircraft, mode, at: datetime,
                     position: tuple[float, float] | None) -> list:
        if mode in AIRBORNE_MODES:
            airborne = True
        elif mode in ON_GROUND_MODES:
            airborne = False
        else:
            return []
        if airborne == aircraft.airborne:
            return []
        first_sight, aircraft.airborne = aircraft.airborne is None, airborne
        if first_sight:
            if airborne:
                self.flights.seen_airborne(aircraft.drone_id, at)
            return []
        event = (self.flights.takeoff(aircraft.drone_id, at, position) if airborne
                 else self.flights.landed(aircraft.drone_id, at, position))
        return [event] if event else []

    def _report(self, aircraft: _Aircraft, data: dict, at: datetime,
                position: tuple[float, float] | None) -> Telemetry | None:
        if position is None:
            return self._hold_back(aircraft, "no position (latitude and longitude 0 or "
                                   "missing)")
        battery = data.get("battery")
        values = {  # DJI's names; elevation may be missing (height_m is optional)
            "height": _number(data, "height"),
            "horizontal_speed": _number(data, "horizontal_speed"),
            "attitude_head": _number(data, "attitude_head"),
            "battery.capacity_percent": _number(battery, "capacity_percent")
            if isinstance(battery, dict) else None,
        }
        missing = [name for name, value in values.items() if value is None]
        if missing:
            return self._hold_back(aircraft, f"missing or not a number: {', '.join(missing)}")
        seq = self.seq.next(aircraft.drone_id, at)
        try:
            report = Telemetry(
                schema_version=1, event_id=event_id(aircraft.drone_id, "telemetry",
                                                    epoch_ms(at)),
                event_time=at, drone_id=aircraft.drone_id, seq=seq,
                flight_id=self.flights.current_flight(aircraft.drone_id),
                lat=position[0], lon=position[1],
                alt_m=values["height"] - self.geoid_separation_m,
                height_m=_number(data, "elevation"),
                ground_speed_mps=values["horizontal_speed"],
                heading_deg=normalise_heading(values["attitude_head"]),
                battery_pct=values["battery.capacity_percent"])
        except ValidationError as error:
            first = error.errors()[0]
            return self._hold_back(aircraft, f"outside the contract: "
                                   f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
        aircraft.held_back = None
        return report

    def _hold_back(self, aircraft: _Aircraft, why: str) -> None:
        if aircraft.held_back != why:
            aircraft.held_back = why
            log.warning("telemetry held back", drone=aircraft.drone_id, why=why)
        return None


def _envelope(payload: bytes) -> dict:
    try:
        envelope = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise DjiInputError(f"not JSON: {error}") from error
    if not isinstance(envelope, dict):
        raise DjiInputError("not a JSON object")
    if not isinstance(envelope.get("data"), dict):
        raise DjiInputError("no data object")
    return envelope


def _time(envelope: dict) -> datetime:
    stamp = envelope.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not (
            1e12 <= stamp < 1e14):
        raise DjiInputError(f"timestamp is not Unix milliseconds: {stamp!r}")
    return datetime.fromtimestamp(stamp / 1000, UTC)


def _number(data: dict, key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _position(data: dict) -> tuple[float, float] | None:
    lat, lon = _number(data, "latitude"), _number(data, "longitude")
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    return lat, lon


def _status(drone_id: str, online: bool, reason: str, at: datetime) -> DroneStatus:
    return DroneStatus(schema_version=1,
                       event_id=event_id(drone_id, "status", f"{online}/{epoch_ms(at)}"),
                       event_time=at, drone_id=drone_id, online=online, reason=reason)


# --- the I/O part -----------------------------------------------------------------------------


class DjiBridge:
    """DJI broker in (a Subscriber feeding `inbox`), translator, publisher out. Everything
    the translator sees passes through one queue, so it runs on one thread."""

    def __init__(self, translator: DjiTranslator, publisher, clock: Clock | None = None) -> None:
        self.translator = translator
        self.publisher = publisher
        self.clock = clock or SystemClock()
        # ("dji", topic, payload) from DJI's broker, ("plan", event) from dronelog's
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.skipped = 0

    def dji_message(self, topic: str, payload: bytes) -> None:
        self.inbox.put(("dji", topic, payload))

    def plan(self, event) -> None:
        self.inbox.put(("plan", event))

    def run(self, stop: threading.Event) -> None:
        log.info("DJI bridge running", aircraft=len(self.translator.aircraft))
        try:
            while not stop.is_set():
                try:
                    item = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                self.handle(item)
        finally:
            self._publish(self.translator.shutdown(self.clock.now()))

    def handle(self, item) -> None:
        if item[0] == "plan":
            event = item[1]
            if event.drone_id in self.translator.aircraft.values():
                self.translator.flights.plan(event)
                log.info("plan received", drone=event.drone_id, flight_id=event.flight_id,
                         kind=event.kind)
            return
        _kind, topic, payload = item
        try:
            events = self.translator.translate(topic, payload)
        except DjiInputError as error:
            self.skipped += 1
            log.warning("DJI message skipped", topic=topic, why=str(error), size=len(payload))
            return
        except Exception:  # noqa: BLE001 - one odd message must not stop the bridge
            self.skipped += 1
            log.exception("DJI message not translated", topic=topic)
            return
        self._publish(events)

    def _publish(self, events) -> None:
        for event in events:
            self.publisher.publish(event)
