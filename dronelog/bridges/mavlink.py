"""MAVLink (PX4, ArduPilot, or a MAVLink router) in, contract telemetry and flight events out.

Two parts:

- `MavlinkTranslator`, pure: decoded MAVLink messages and the time in, contract messages
  out. One state per vehicle (MAVLink system id, mapped to a dronelog drone id).
- `MavlinkBridge`, thin I/O: a UDP socket, each datagram decoded on its own by pymavlink's
  generated MAVLink 2 parser (which reads MAVLink 1 frames too), the translator, and the
  publisher to dronelog's broker.

Units (MAVLink common.xml):

    GLOBAL_POSITION_INT  lat, lon          degE7            -> lat, lon (degrees)
                         alt               mm above MSL     -> alt_m
                         relative_alt      mm above home    -> height_m
                         vx, vy            cm/s north, east -> ground_speed_mps, and the
                                                              course over ground
                         hdg               cdeg, 65535 unknown (yaw: used when hovering)
    VFR_HUD              heading           deg (yaw: used when hdg is unknown)
    SYS_STATUS           battery_remaining %, -1 unknown    -> battery_pct
    BATTERY_STATUS       battery_remaining %, -1 unknown    -> battery_pct (battery id 0;
                                                              preferred to SYS_STATUS)
    EXTENDED_SYS_STATE   landed_state      ON_GROUND / TAKEOFF / IN_AIR / LANDING
    HEARTBEAT            base_mode         MAV_MODE_FLAG_SAFETY_ARMED -> armed
    NAMED_VALUE_FLOAT    name "BOX_T"      deg C            -> payload_temp_c

Why not `mavutil.mavlink_connection("udpin:...")`: its parser is shared by every datagram
(a corrupt datagram whose header announces a long frame swallows the next good frames), and
it picks MAVLink 1 or 2 from the first frame by switching a process-wide environment
variable. Over UDP every datagram carries whole frames, so parsing each on its own is exact.
"""

import math
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog
from pydantic import ValidationError
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from dronelog.bridges.flights import (
    FlightBook,
    SeqCounter,
    epoch_ms,
    event_id,
    heading_from_velocity,
    normalise_heading,
)
from dronelog.clock import Clock, SystemClock
from dronelog.contract.messages import DroneStatus, Telemetry

log = structlog.get_logger("dronelog.bridges.mavlink")

UINT16_MAX = 65535
AIRBORNE_STATES = {mavlink.MAV_LANDED_STATE_TAKEOFF, mavlink.MAV_LANDED_STATE_IN_AIR,
                   mavlink.MAV_LANDED_STATE_LANDING}
COURSE_MIN_SPEED_MPS = 0.5  # below it the course over ground is noise: report the yaw


@dataclass
class _Position:
    lat: float
    lon: float
    alt_m: float
    height_m: float
    north_mps: float
    east_mps: float
    yaw_deg: float | None


@dataclass
class _Vehicle:
    drone_id: str
    online: bool = False
    last_heartbeat: datetime | None = None
    armed: bool | None = None
    landed_state: int | None = None  # None: not told, or MAV_LANDED_STATE_UNDEFINED
    airborne: bool | None = None  # None: not known yet
    position: _Position | None = None
    battery_status_pct: float | None = None
    sys_status_pct: float | None = None
    hud_heading_deg: float | None = None
    box_temp: tuple[float, datetime] | None = None
    last_slot: int | None = None
    last_heading: float = 0.0
    held_back: str | None = None  # why telemetry is held back, logged once per reason


class MavlinkTranslator:
    def __init__(self, drones: dict[int, str], flights: FlightBook | None = None, *,
                 report_period_s: float = 1.0, link_timeout_s: float = 10.0,
                 box_temperature_name: str = "BOX_T", box_temperature_max_age_s: float = 10.0,
                 fallback_takeoff_height_m: float = 3.0) -> None:
        self.drones = dict(drones)
        self.flights = flights or FlightBook()
        self.seq = SeqCounter(report_period_s)
        self.link_timeout_s = link_timeout_s
        self.box_temperature_name = box_temperature_name
        self.box_temperature_max_age_s = box_temperature_max_age_s
        self.fallback_takeoff_height_m = fallback_takeoff_height_m
        self._vehicles: dict[int, _Vehicle] = {}
        self.unmapped: set[int] = set()

    def translate(self, message, now: datetime) -> list:
        """The contract messages one decoded MAVLink message leads to."""
        sysid = message.get_srcSystem()
        drone_id = self.drones.get(sysid)
        if drone_id is None:
            if sysid not in self.unmapped:
                self.unmapped.add(sysid)
                log.info("MAVLink system not mapped to a drone: ignored", sysid=sysid,
                         hint=f"--map {sysid}=<drone id>")
            return []
        vehicle = self._vehicles.setdefault(sysid, _Vehicle(drone_id))
        handler = self._handlers.get(message.get_type())
        return handler(self, vehicle, message, now) if handler else []

    def tick(self, now: datetime) -> list:
        """Status changes due to silence: no HEARTBEAT for link_timeout_s is a lost link."""
        events = []
        for vehicle in self._vehicles.values():
            if vehicle.online and vehicle.last_heartbeat is not None and (
                    (now - vehicle.last_heartbeat).total_seconds() > self.link_timeout_s):
                vehicle.online = False
                events.append(_status(vehicle.drone_id, False, "disconnected", now))
        return events

    def shutdown(self, now: datetime) -> list:
        """The bridge stops: every vehicle it reported online is offline for dronelog."""
        events = []
        for vehicle in self._vehicles.values():
            if vehicle.online:
                vehicle.online = False
                events.append(_status(vehicle.drone_id, False, "disconnected", now))
        return events

    # --- one handler per message type -------------------------------------------------------

    def _heartbeat(self, vehicle: _Vehicle, message, now: datetime) -> list:
        if message.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
            return []  # a gimbal, camera or companion computer of that system, not the vehicle
        events = []
        vehicle.last_heartbeat = now
        vehicle.armed = bool(message.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        if not vehicle.online:
            vehicle.online = True
            events.append(_status(vehicle.drone_id, True, "connected", now))
        return events + self._airborne_change(vehicle, now)

    def _extended_sys_state(self, vehicle: _Vehicle, message, now: datetime) -> list:
        state = message.landed_state
        vehicle.landed_state = None if state == mavlink.MAV_LANDED_STATE_UNDEFINED else state
        return self._airborne_change(vehicle, now)

    def _global_position_int(self, vehicle: _Vehicle, message, now: datetime) -> list:
        if message.lat == 0 and message.lon == 0:
            vehicle.position = None  # no fix yet: autopilots send zeros
            return []
        vehicle.position = _Position(
            lat=message.lat / 1e7, lon=message.lon / 1e7, alt_m=message.alt / 1000.0,
            height_m=message.relative_alt / 1000.0, north_mps=message.vx / 100.0,
            east_mps=message.vy / 100.0,
            yaw_deg=None if message.hdg == UINT16_MAX else message.hdg / 100.0)
        events = self._airborne_change(vehicle, now)
        report = self._report(vehicle, now)
        return events + ([report] if report else [])

    def _sys_status(self, vehicle: _Vehicle, message, now: datetime) -> list:
        vehicle.sys_status_pct = _percent(message.battery_remaining)
        return []

    def _battery_status(self, vehicle: _Vehicle, message, now: datetime) -> list:
        if message.id == 0:
            vehicle.battery_status_pct = _percent(message.battery_remaining)
        return []

    def _vfr_hud(self, vehicle: _Vehicle, message, now: datetime) -> list:
        vehicle.hud_heading_deg = float(message.heading)
        return []

    def _named_value_float(self, vehicle: _Vehicle, message, now: datetime) -> list:
        if message.name == self.box_temperature_name and math.isfinite(message.value):
            vehicle.box_temp = (float(message.value), now)
        return []

    _handlers: dict[str, Callable] = {
        "HEARTBEAT": _heartbeat,
        "EXTENDED_SYS_STATE": _extended_sys_state,
        "GLOBAL_POSITION_INT": _global_position_int,
        "SYS_STATUS": _sys_status,
        "BATTERY_STATUS": _battery_status,
        "VFR_HUD": _vfr_hud,
        "NAMED_VALUE_FLOAT": _named_value_float,
    }

    # --- derived state ----------------------------------------------------------------------

    def _is_airborne(self, vehicle: _Vehicle) -> bool | None:
        """EXTENDED_SYS_STATE's landed state when the autopilot sends it. Otherwise: in the
        air once armed and above the fallback height over home, on the ground once disarmed
        (autopilots disarm a few seconds after touchdown), unchanged in between, so a
        low hover over the pad does not flap. None while nothing tells."""
        if vehicle.landed_state is not None:
            return vehicle.landed_state in AIRBORNE_STATES
        if vehicle.armed is False:
            return False
        if vehicle.armed and vehicle.position is not None:
            if vehicle.position.height_m >= self.fallback_takeoff_height_m:
                return True
            return vehicle.airborne if vehicle.airborne is not None else False
        return None

    def _airborne_change(self, vehicle: _Vehicle, now: datetime) -> list:
        airborne = self._is_airborne(vehicle)
        if airborne is None or airborne == vehicle.airborne:
            return []
        first_sight = vehicle.airborne is None
        vehicle.airborne = airborne
        if first_sight:
            if airborne:
                self.flights.seen_airborne(vehicle.drone_id, now)
                log.info("first seen in the air: no take-off reported", drone=vehicle.drone_id,
                         flight_id=self.flights.current_flight(vehicle.drone_id))
            return []
        where = (vehicle.position.lat, vehicle.position.lon) if vehicle.position else None
        event = (self.flights.takeoff(vehicle.drone_id, now, where) if airborne
                 else self.flights.landed(vehicle.drone_id, now, where))
        return [event] if event else []

    def _report(self, vehicle: _Vehicle, now: datetime) -> Telemetry | None:
        slot = self.seq.slot(now)
        if vehicle.last_slot is not None and slot <= vehicle.last_slot:
            return None  # one report per period: the autopilot streams faster
        battery = (vehicle.battery_status_pct if vehicle.battery_status_pct is not None
                   else vehicle.sys_status_pct)
        if battery is None:
            self._hold_back(vehicle, "battery unknown (no SYS_STATUS or BATTERY_STATUS with "
                            "battery_remaining yet): the contract requires it")
            return None
        position = vehicle.position
        speed = math.hypot(position.north_mps, position.east_mps)
        if speed >= COURSE_MIN_SPEED_MPS:
            heading = heading_from_velocity(position.north_mps, position.east_mps)
        elif position.yaw_deg is not None:
            heading = normalise_heading(position.yaw_deg)
        elif vehicle.hud_heading_deg is not None:
            heading = normalise_heading(vehicle.hud_heading_deg)
        else:
            heading = vehicle.last_heading
        box = vehicle.box_temp
        box_c = (box[0] if box and (now - box[1]).total_seconds() <= self.box_temperature_max_age_s
                 else None)
        seq = self.seq.next(vehicle.drone_id, now)
        try:
            report = Telemetry(
                schema_version=1, event_id=event_id(vehicle.drone_id, "telemetry", seq),
                event_time=now, drone_id=vehicle.drone_id, seq=seq,
                flight_id=self.flights.current_flight(vehicle.drone_id),
                lat=position.lat, lon=position.lon, alt_m=position.alt_m,
                height_m=position.height_m, ground_speed_mps=speed, heading_deg=heading,
                battery_pct=battery, payload_temp_c=box_c)
        except ValidationError as error:
            self._hold_back(vehicle, f"outside the contract: {_first_error(error)}")
            return None
        vehicle.last_slot = slot
        vehicle.last_heading = heading
        vehicle.held_back = None
        return report

    def _hold_back(self, vehicle: _Vehicle, why: str) -> None:
        if vehicle.held_back != why:
            vehicle.held_back = why
            log.warning("telemetry held back", drone=vehicle.drone_id, why=why)


def _percent(value: int) -> float | None:
    return None if value is None or value < 0 or value > 100 else float(value)


def _status(drone_id: str, online: bool, reason: str, at: datetime) -> DroneStatus:
    return DroneStatus(schema_version=1,
                       event_id=event_id(drone_id, "status", f"{online}/{epoch_ms(at)}"),
                       event_time=at, drone_id=drone_id, online=online, reason=reason)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


# --- decoding ---------------------------------------------------------------------------------


@dataclass
class Decoded:
    messages: list
    problems: list[str]  # why bytes of the datagram were not a MAVLink message we know
    unknown_ids: int = 0  # frames of messages this dialect does not define (not an error)


def decode_datagram(data: bytes) -> Decoded:
    """Every MAVLink 1 or 2 frame in one UDP datagram, decoded on a parser of its own."""
    parser = mavlink.MAVLink(None)
    parser.robust_parsing = True
    decoded = Decoded([], [])
    try:
        for message in parser.parse_buffer(data) or []:
            if message.get_type() != "BAD_DATA":
                decoded.messages.append(message)
            elif "unknown MAVLink message ID" in str(message.reason):
                decoded.unknown_ids += 1
            else:
                decoded.problems.append(str(message.reason))
    except Exception as error:  # noqa: BLE001 - a parser bug on hostile input must not stop us
        decoded.problems.append(f"undecodable: {error!r}")
    if parser.buf_len():
        decoded.problems.append(f"{parser.buf_len()} bytes of an incomplete frame")
    return decoded


# --- the I/O part -----------------------------------------------------------------------------


class MavlinkBridge:
    """UDP in, translator, publisher out. `run()` until `stop` is set."""

    def __init__(self, listen: tuple[str, int], translator: MavlinkTranslator, publisher,
                 plans: "queue.SimpleQueue | None" = None, clock: Clock | None = None,
                 tick_s: float = 0.5) -> None:
        self.translator = translator
        self.publisher = publisher
        self.plans = plans
        self.clock = clock or SystemClock()
        self.tick_s = tick_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(listen)
        self.sock.settimeout(0.1)
        self.datagrams = 0
        self.bad_datagrams = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def run(self, stop: threading.Event) -> None:
        log.info("MAVLink bridge listening", udp=f"{self.address[0]}:{self.address[1]}",
                 drones=len(self.translator.drones))
        last_tick = time.monotonic()
        try:
            while not stop.is_set():
                self._take_plans()
                try:
                    data, sender = self.sock.recvfrom(65535)
                except TimeoutError:
                    data = None
                if data:
                    self.datagram(data, sender)
                if time.monotonic() - last_tick >= self.tick_s:
                    last_tick = time.monotonic()
                    self._publish(self.translator.tick(self.clock.now()))
        finally:
            self._publish(self.translator.shutdown(self.clock.now()))
            self.sock.close()

    def datagram(self, data: bytes, sender=None) -> None:
        self.datagrams += 1
        decoded = decode_datagram(data)
        if decoded.problems:
            self.bad_datagrams += 1
            log.warning("MAVLink datagram skipped in part or whole", sender=sender,
                        size=len(data), problems=decoded.problems[:3],
                        decoded=len(decoded.messages))
        now = self.clock.now()
        for message in decoded.messages:
            try:
                events = self.translator.translate(message, now)
            except Exception:  # noqa: BLE001 - one odd message must not stop the bridge
                log.exception("MAVLink message not translated", type=message.get_type())
                continue
            self._publish(events)

    def _take_plans(self) -> None:
        while self.plans is not None:
            try:
                event = self.plans.get_nowait()
            except queue.Empty:
                return
            if event.drone_id in self.translator.drones.values():
                self.translator.flights.plan(event)
                log.info("plan received", drone=event.drone_id, flight_id=event.flight_id,
                         kind=event.kind)

    def _publish(self, events: Iterable) -> None:
        for event in events:
            self.publisher.publish(event)
