"""The simulated network: specimens collected, packed, flown and received, with the faults
asked for. Pure and deterministic: a scenario, a start time, a duration and a seed give the
same messages and the same ground truth every time. Publishing is the runner's job.

The story of a specimen: a nurse collects it (by the demand's Poisson rate, during a shift),
it waits for the next dispatch from its site (STAT goes at once), is packed into a sealed
container with the others of its destination and temperature class, loaded onto a drone by
the site's staff, flown, unloaded by the drone at the destination and received by a lab
technician. Drones swap batteries on landing and fly home empty or with cargo for home.
"""

import hashlib
import heapq
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count

from dronelog.contract.messages import (
    Collected,
    DroneStatus,
    FlightDiverted,
    FlightLanded,
    FlightPlanned,
    FlightReturnedHome,
    FlightTakeoff,
    Loaded,
    Packed,
    Received,
    Telemetry,
    Unloaded,
)
from dronelog.contract.topics import TopicLayout
from dronelog.domain.facts import SpecimenFacts
from dronelog.domain.policies import PolicyBook
from dronelog.domain.stability import SpecimenLimits, StabilityCatalogue
from dronelog.domain.temperature import EXCURSION_GRACE_S, TEMPERATURE_RANGES
from dronelog_sim.faults import EXPECTED_REASON, FaultRates, malform
from dronelog_sim.flight_model import FlightProfile, payload_temperature
from dronelog_sim.scenario import Demand, DroneModel, Scenario, Site

GPS_NOISE_M = 1.5
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class Emission:
    """One message a device sends: when (simulated), where, what, and what it is meant as."""

    at: datetime
    topic: str
    payload: bytes
    kind: str
    event_id: str | None
    valid: bool = True
    fault: str | None = None
    expected_reason: str | None = None
    retain: bool = False
    qos: int = 1

    def truth(self) -> dict:
        return {"type": "sent", "at": self.at.isoformat(), "topic": self.topic,
                "kind": self.kind, "event_id": self.event_id, "valid": self.valid,
                "fault": self.fault, "expected_reason": self.expected_reason}


@dataclass
class SpecimenStory:
    barcode: str
    demand: Demand
    collected_at: datetime
    collector: str
    ready_at: datetime
    at_site: str
    state: str = "waiting"  # waiting (at at_site, from ready_at), flying, delivered
    container_id: str | None = None
    seal_id: str | None = None
    received_at: datetime | None = None
    receipt_delay_min: float = 0.0
    temps: list[tuple[datetime, float]] = field(default_factory=list)
    flights: list[str] = field(default_factory=list)


@dataclass
class DroneState:
    model: DroneModel
    site: str
    available_at: datetime
    seq: int = 0
    skew_s: float = 0.0


@dataclass
class Simulation:
    emissions: list[Emission]
    outcomes: list[dict]  # specimens, flights and faults, for the ground truth


def run_tag(start: datetime, seed: int) -> str:
    """Four characters that tell one run's barcodes, flights and containers from another's:
    a demo restarted on the data of an earlier one must never merge two stories under one
    barcode (the same start and seed still give the same run, for replays)."""
    digest = int(hashlib.sha256(f"{start.isoformat()}|{seed}".encode()).hexdigest(), 16)
    alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud at the bench
    tag = ""
    for _ in range(4):
        digest, index = divmod(digest, len(alphabet))
        tag += alphabet[index]
    return tag


class NetworkSimulator:
    def __init__(self, scenario: Scenario, start: datetime, duration: timedelta, seed: int,
                 faults: FaultRates | None = None, telemetry_hz: float = 1.0,
                 layout: TopicLayout | None = None, limits: SpecimenLimits | None = None
                 ) -> None:
        if telemetry_hz <= 0:
            raise ValueError("telemetry_hz must be positive")
        self.scenario = scenario
        self.start = start
        self.end = start + duration
        self.rng = random.Random(seed)
        self.faults = faults or FaultRates()
        self.period_s = 1.0 / telemetry_hz
        self.layout = layout or TopicLayout()
        # the engine's limits: turnaround policies and stability, the stricter winning
        self.limits = limits or SpecimenLimits(PolicyBook.default(), StabilityCatalogue.default())
        self.ops = scenario.operations
        self.emissions: list[Emission] = []
        self.outcomes: list[dict] = []
        self.specimens: list[SpecimenStory] = []
        self.drones = {d.id: DroneState(d, d.home, start) for d in scenario.drones}
        self._flight_numbers = count(1)
        self._container_numbers = count(1)
        self.run_tag = run_tag(start, seed)
        self._attempts: list[tuple[datetime, int, str]] = []
        self._attempt_order = count()

    # --- the run ------------------------------------------------------------------------

    def run(self) -> Simulation:
        for drone in self.drones.values():
            if self.rng.random() < self.faults.clock_skew:
                drone.skew_s = self.rng.choice([-1, 1]) * self.rng.uniform(10, 90)
                self._fault("clock_skew", self.start, drone.model.id, skew_s=drone.skew_s)
            self._emit_status(drone, self.start, online=True)
        self._collect_specimens()
        tick = timedelta(minutes=self.ops.dispatch_every_min)
        moment = self.start + tick
        while moment < self.end:
            for site in sorted({d.site for d in self.scenario.demand}):
                self._schedule(moment, site)
            moment += tick
        while self._attempts:
            moment, _, site = heapq.heappop(self._attempts)
            if moment < self.end:
                self._dispatch(moment, site)
        for drone in self.drones.values():
            self._emit_status(drone, max(self.end, drone.available_at), online=False)
        self._record_specimens()
        emissions = self._apply_transport_faults(self.emissions)
        emissions.sort(key=lambda e: e.at)
        return Simulation(emissions, self.outcomes)

    # --- demand -------------------------------------------------------------------------

    def _collect_specimens(self) -> None:
        numbers = count(1)
        for demand in self.scenario.demand:
            moment = self.start
            while True:
                moment += timedelta(hours=self.rng.expovariate(demand.per_hour))
                if moment >= self.end:
                    break
                staff = self._on_shift(demand.site, moment)
                if staff is None:
                    continue
                barcode = (f"{demand.site[:6].upper()}{moment:%y%m%d}{self.run_tag}"
                           f"{next(numbers):05d}")
                ready = moment + timedelta(minutes=self.ops.pack_delay_min)
                story = SpecimenStory(barcode, demand, moment, staff, ready, demand.site)
                if self.rng.random() < self.faults.delayed_pickup:
                    delay = self.rng.uniform(60, 120)
                    story.ready_at += timedelta(minutes=delay)
                    self._fault("delayed_pickup", moment, barcode, delay_min=round(delay, 1))
                if self.rng.random() < self.faults.delayed_receipt:
                    story.receipt_delay_min = self.rng.uniform(60, 120)
                    self._fault("delayed_receipt", moment, barcode,
                                delay_min=round(story.receipt_delay_min, 1))
                self.specimens.append(story)
                self._custody(Collected, story, moment, demand.site, "staff", staff,
                              specimen={
                                  "kind": demand.kind, "blood_product": demand.blood_product,
                                  "priority": demand.priority,
                                  "temperature_class": demand.temperature_class,
                                  "origin_site_id": demand.site,
                                  "destination_site_id": demand.destination,
                                  "order_ref": f"ORD-{self.rng.getrandbits(40):010X}"})
                if demand.priority == "stat":
                    self._schedule(story.ready_at, demand.site)

    def _on_shift(self, site_id: str, moment: datetime) -> str | None:
        shifts = [s for s in self.scenario.shifts if s.site == site_id]
        site = self.scenario.site(site_id)
        if not shifts:
            return self.rng.choice(site.staff) if site.staff else f"staff-{site_id}"
        local = moment.astimezone(_zone(site.timezone)).time()
        for shift in shifts:
            inside = (shift.start <= local < shift.end if shift.start < shift.end
                      else local >= shift.start or local < shift.end)
            if inside:
                return self.rng.choice(shift.staff)
        return None

    # --- dispatch -----------------------------------------------------------------------

    def _schedule(self, moment: datetime, site: str) -> None:
        heapq.heappush(self._attempts, (moment, next(self._attempt_order), site))

    def _dispatch(self, moment: datetime, site: str) -> None:
        groups: dict[tuple[str, str], list[SpecimenStory]] = {}
        for story in self.specimens:
            if story.at_site == site and story.state == "waiting" and story.ready_at <= moment:
                key = (story.demand.destination, story.demand.temperature_class)
                groups.setdefault(key, []).append(story)
        for (destination, _), cargo in sorted(groups.items(), key=_urgency):
            drone = self._drone_at(site, moment)
            if drone is None:
                waiting = [d.available_at for d in self.drones.values() if d.site == site]
                if waiting:
                    self._schedule(max(min(waiting), moment + timedelta(seconds=1)), site)
                return
            self._fly(drone, max(moment, drone.available_at), destination, cargo)
        for drone in sorted(self.drones.values(), key=lambda d: d.model.id):
            if drone.site == site != drone.model.home and drone.available_at <= moment:
                self._fly(drone, moment, drone.model.home, [])  # home, empty

    def _drone_at(self, site: str, moment: datetime) -> DroneState | None:
        present = [d for d in self.drones.values() if d.site == site and d.available_at <= moment]
        return min(present, key=lambda d: (d.available_at, d.model.id)) if present else None

    # --- a flight -----------------------------------------------------------------------

    def _fly(self, drone: DroneState, moment: datetime, destination: str,
             cargo: list[SpecimenStory]) -> None:
        origin = drone.site
        flight_id = f"F{moment:%Y%m%d}-{self.run_tag}-{next(self._flight_numbers):04d}"
        self._flight_event(drone, FlightPlanned, moment, flight_id, origin_site_id=origin,
                           destination_site_id=destination,
                           planned_departure=moment + timedelta(
                               minutes=self.ops.pack_delay_min + self.ops.load_delay_min))
        container = seal = None
        loaded_at = moment
        if cargo:
            packed_at = moment + timedelta(minutes=self.ops.pack_delay_min)
            loaded_at = packed_at + timedelta(minutes=self.ops.load_delay_min)
            fresh = [s for s in cargo if s.seal_id is None]
            if fresh:
                number = next(self._container_numbers)
                container = f"BOX-{self.run_tag}-{number:04d}"
                seal = f"SEAL-{self.rng.getrandbits(24):06d}"
                for story in fresh:
                    story.container_id, story.seal_id = container, seal
                    self._custody(Packed, story, packed_at, origin, "staff", story.collector,
                                  container_id=container, seal_id=seal)
                cargo = self._leave_behind(cargo, fresh, packed_at, container)
            for story in cargo:
                story.state = "flying"
                story.flights.append(flight_id)
                self._custody(Loaded, story, loaded_at, origin, "staff",
                              self._ground_crew(origin), container_id=story.container_id,
                              flight_id=flight_id, drone_id=drone.model.id)
        takeoff = loaded_at + timedelta(seconds=30)
        self._flight_event(drone, FlightTakeoff, takeoff, flight_id, site_id=origin)
        landed_site, landed_at = self._airborne(drone, flight_id, takeoff, origin, destination,
                                                cargo)
        drone.site = landed_site
        drone.available_at = landed_at + timedelta(minutes=self.ops.turnaround_min)
        self.outcomes.append({"type": "flight", "flight_id": flight_id,
                              "drone_id": drone.model.id, "origin": origin,
                              "destination": destination, "landed_at_site": landed_site,
                              "takeoff_at": takeoff.isoformat(),
                              "landed_at": landed_at.isoformat(),
                              "cargo": [s.barcode for s in cargo]})
        if cargo:
            self._unload(drone, flight_id, landed_site, landed_at, cargo)
        if landed_site != drone.model.home:
            self._schedule(drone.available_at, landed_site)  # cargo from here, or home

    def _leave_behind(self, cargo: list[SpecimenStory], fresh: list[SpecimenStory],
                      packed_at: datetime, container: str) -> list[SpecimenStory]:
        """The cargo that flies: now and then a tube packed with others stays at the clinic
        (the tube_left_behind fault), on the box's manifest but never loaded, so the lab's
        check of the box finds it missing. At least one tube of the box flies."""
        if not self.faults.tube_left_behind or len(fresh) < 2:
            return cargo
        left = [s for s in fresh[1:] if self.rng.random() < self.faults.tube_left_behind]
        for story in left:
            story.state = "left_behind"
            self._fault("tube_left_behind", packed_at, story.barcode, container_id=container)
        return [s for s in cargo if s not in left]

    def _airborne(self, drone: DroneState, flight_id: str, takeoff: datetime, origin: str,
                  destination: str, cargo: list[SpecimenStory]) -> tuple[str, datetime]:
        """Telemetry from take-off to landing, with the flight faults; where and when it
        landed."""
        weather = self.scenario.weather
        drain = 1.0
        excursion = bool(cargo) and self.rng.random() < self.faults.temperature_excursion
        low_battery = self.rng.random() < self.faults.low_battery
        diverted = not low_battery and self.rng.random() < self.faults.diversion
        lost_link = self.rng.random() < self.faults.lost_link
        if low_battery:
            drain = 3.0
        profile = self._profile(drone.model, origin, destination, drain)
        end_site, cut_s = destination, None
        if low_battery:
            cut_s = profile.climb_s + profile.cruise_s * 0.3
            end_site = origin
            self._fault("low_battery", takeoff + timedelta(seconds=cut_s), flight_id,
                        drone_id=drone.model.id)
        elif diverted:
            alternate = self._alternate(origin, destination)
            if alternate is not None:
                cut_s = profile.climb_s + profile.cruise_s * 0.5
                end_site = alternate
                self._fault("diversion", takeoff + timedelta(seconds=cut_s), flight_id,
                            drone_id=drone.model.id, alternate=alternate)
        set_point = (TEMPERATURE_RANGES[cargo[0].demand.temperature_class].set_point_c
                     if cargo else weather.ambient_c)
        box_ambient, time_constant = weather.ambient_c, drone.model.box_time_constant_min
        if excursion:
            box_ambient, time_constant = weather.ambient_c + 20, 6.0
            self._fault("temperature_excursion", takeoff, flight_id, drone_id=drone.model.id,
                        container_id=cargo[0].container_id)
        gap = None
        if lost_link:
            gap_start = self.rng.uniform(0.2, 0.6) * profile.duration_s
            gap = (gap_start, gap_start + self.rng.uniform(60, 120))
            self._fault("lost_link", takeoff + timedelta(seconds=gap[0]), flight_id,
                        drone_id=drone.model.id, gap_s=round(gap[1] - gap[0], 1))

        legs = [(profile, cut_s if cut_s is not None else profile.duration_s)]
        if cut_s is not None:
            here = profile.at(cut_s)
            event_time = takeoff + timedelta(seconds=cut_s)
            if end_site != origin:
                self._flight_event(drone, FlightDiverted, event_time, flight_id,
                                   new_destination_site_id=end_site,
                                   reason="landing pad at destination unavailable")
            second = self._profile(drone.model, None, end_site, drain,
                                   start=(here.lat, here.lon),
                                   height=profile.cruise_height_m)
            legs.append((second, second.duration_s))
        elapsed = 0.0
        battery_used = 0.0
        offset = 0.0
        for leg_profile, leg_end in legs:
            t = 0.0
            while t <= leg_end:
                flight_t = offset + t
                sample = leg_profile.at(t)
                used = battery_used + sample.battery_used_wh
                minutes = flight_t / 60
                temp = payload_temperature(set_point, box_ambient, minutes, time_constant)
                moment = takeoff + timedelta(seconds=flight_t)
                for story in cargo:
                    story.temps.append((moment, temp))
                if gap is None or not gap[0] <= flight_t <= gap[1]:
                    self._telemetry(drone, moment, flight_id, sample, used, temp)
                t += self.period_s
            battery_used += leg_profile.energy_wh(leg_end)
            offset += leg_end
            elapsed = offset
        landed_at = takeoff + timedelta(seconds=elapsed)
        if low_battery:
            self._flight_event(drone, FlightReturnedHome, landed_at, flight_id, site_id=origin,
                               reason="battery below what the destination needs plus reserve")
        else:
            self._flight_event(drone, FlightLanded, landed_at, flight_id, site_id=end_site)
        return end_site, landed_at

    def _profile(self, drone: DroneModel, origin: str | None, destination: str, drain: float,
                 start: tuple[float, float] | None = None,
                 height: float | None = None) -> FlightProfile:
        end = self.scenario.site(destination)
        if start is None:
            begin = self.scenario.site(origin)
            start = (begin.lat, begin.lon)
            route = self.scenario.route(origin, destination)
            back = self.scenario.route(destination, origin)
            waypoints = (route.waypoints if route else
                         list(reversed(back.waypoints)) if back else [])
            height = (route or back).cruise_alt_m if (route or back) else 120.0
        else:
            waypoints = []
        points = [start, *[tuple(w) for w in waypoints], (end.lat, end.lon)]
        return FlightProfile(drone, points, height or 120.0, self.scenario.weather, drain)

    def _alternate(self, origin: str, destination: str) -> str | None:
        target = self.scenario.site(destination)
        others = [s for s in self.scenario.sites if s.id not in (origin, destination)]
        if not others:
            return None
        return min(others, key=lambda s: _flat_distance(s, target)).id

    def _unload(self, drone: DroneState, flight_id: str, site: str, landed_at: datetime,
                cargo: list[SpecimenStory]) -> None:
        unloaded_at = landed_at + timedelta(minutes=self.ops.unload_delay_min)
        seal_found = cargo[0].seal_id
        if self.rng.random() < self.faults.seal_changed:
            seal_found = f"{seal_found}-X"
            self._fault("seal_changed", unloaded_at, flight_id,
                        container_id=cargo[0].container_id, seal_found=seal_found)
        for story in cargo:
            self._custody(Unloaded, story, unloaded_at, site, "drone", drone.model.id,
                          container_id=story.container_id, flight_id=flight_id,
                          drone_id=drone.model.id, seal_id=seal_found)
            story.at_site = site
            if site != story.demand.destination:  # returned or diverted: wait for a flight
                story.state, story.ready_at = "waiting", unloaded_at
                continue
            story.state = "delivered"
            received_at = unloaded_at + timedelta(
                minutes=self.ops.receive_delay_min + story.receipt_delay_min)
            if received_at < self.end:
                story.received_at = received_at
                self._custody(Received, story, received_at, site, "staff",
                              self._lab_tech(site), container_id=story.container_id,
                              seal_id=seal_found)

    # --- messages -----------------------------------------------------------------------

    def _event_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _emit(self, at: datetime, topic: str, model, kind: str, retain: bool = False) -> None:
        self.emissions.append(Emission(at, topic, model.model_dump_json().encode(), kind,
                                       str(model.event_id), retain=retain))

    def _emit_status(self, drone: DroneState, moment: datetime, online: bool) -> None:
        status = DroneStatus(schema_version=1, event_id=self._event_id(),
                             event_time=moment + timedelta(seconds=drone.skew_s),
                             drone_id=drone.model.id, online=online,
                             reason="connected" if online else "disconnected")
        self._emit(moment, self.layout.status(drone.model.id), status, "status", retain=True)

    def _flight_event(self, drone: DroneState, model, moment: datetime, flight_id: str,
                      **fields) -> None:
        kind = model.model_fields["kind"].annotation.__args__[0]
        event = model(schema_version=1, event_id=self._event_id(), kind=kind,
                      event_time=moment + timedelta(seconds=drone.skew_s),
                      drone_id=drone.model.id, flight_id=flight_id, **fields)
        self._emit(moment, self.layout.flight(drone.model.id), event, f"flight.{kind}")

    def _custody(self, model, story: SpecimenStory, moment: datetime, site: str,
                 actor_kind: str, actor_id: str, **fields) -> None:
        kind = model.model_fields["kind"].annotation.__args__[0]
        skew = self.drones[actor_id].skew_s if actor_kind == "drone" else 0.0
        event = model(schema_version=1, event_id=self._event_id(), kind=kind,
                      event_time=moment + timedelta(seconds=skew), barcode=story.barcode,
                      site_id=site, actor={"kind": actor_kind, "id": actor_id}, **fields)
        topic = (self.layout.drone_custody(actor_id) if actor_kind == "drone"
                 else self.layout.site_custody(site))
        self._emit(moment, topic, event, f"custody.{kind}")

    def _telemetry(self, drone: DroneState, moment: datetime, flight_id: str, sample,
                   used_wh: float, temp: float) -> None:
        site = self.scenario.site(drone.site)
        noise_lat = self.rng.gauss(0, GPS_NOISE_M) / METRES_PER_DEGREE
        noise_lon = self.rng.gauss(0, GPS_NOISE_M) / (METRES_PER_DEGREE *
                                                       math.cos(math.radians(sample.lat)))
        battery = max(0.0, 100.0 - 100.0 * used_wh / drone.model.battery_wh)
        event = Telemetry(
            schema_version=1, event_id=self._event_id(),
            event_time=moment + timedelta(seconds=drone.skew_s), drone_id=drone.model.id,
            seq=drone.seq, flight_id=flight_id, lat=round(sample.lat + noise_lat, 7),
            lon=round(sample.lon + noise_lon, 7),
            alt_m=round(site.elevation_m + sample.height_m, 1),
            height_m=round(sample.height_m, 1), ground_speed_mps=round(sample.ground_speed_mps, 2),
            heading_deg=round(sample.heading_deg, 1) % 360, battery_pct=round(battery, 1),
            payload_temp_c=round(temp + self.rng.gauss(0, 0.1), 2),
            link_quality_pct=round(min(100.0, max(0.0, 92 + self.rng.gauss(0, 3))), 1))
        drone.seq += 1
        self._emit(moment, self.layout.telemetry(drone.model.id), event, "telemetry")

    def _ground_crew(self, site: str) -> str:
        staff = self.scenario.site(site).staff
        return staff[-1] if staff else f"crew-{site}"

    def _lab_tech(self, site: str) -> str:
        staff = self.scenario.site(site).staff
        return staff[0] if staff else f"lab-{site}"

    # --- faults in transport --------------------------------------------------------------

    def _apply_transport_faults(self, emissions: list[Emission]) -> list[Emission]:
        out: list[Emission] = []
        for emission in emissions:
            if self.rng.random() < self.faults.out_of_order:
                emission = _replace(emission, at=emission.at + timedelta(
                    seconds=self.rng.uniform(2, 10)), fault="out_of_order")
            out.append(emission)
            if self.rng.random() < self.faults.duplicate:
                out.append(_replace(emission, at=emission.at + timedelta(seconds=1),
                                    fault="duplicate"))
            if emission.kind == "telemetry" and self.rng.random() < self.faults.malformed:
                topic, payload, how = malform(emission.topic, emission.payload, self.rng)
                out.append(Emission(emission.at, topic, payload, "telemetry", emission.event_id,
                                    valid=False, fault=f"malformed:{how}",
                                    expected_reason=EXPECTED_REASON[how]))
        return out

    def _fault(self, kind: str, moment: datetime, subject: str, **details) -> None:
        self.outcomes.append({"type": "fault", "fault": kind, "at": moment.isoformat(),
                              "subject": subject, **details})

    # --- expected outcomes ----------------------------------------------------------------

    def _record_specimens(self) -> None:
        for story in self.specimens:
            demand = story.demand
            facts = SpecimenFacts(story.barcode, demand.kind, demand.priority,
                                  demand.temperature_class, demand.site, demand.destination,
                                  demand.blood_product)
            policy = self.limits.for_specimen(facts)
            target = policy.target_min
            deadline = policy.deadline(story.collected_at)
            band = self.limits.temperature_range(facts)
            outside = _time_outside(story.temps, band.low_c, band.high_c)
            temps = [t for _, t in story.temps]
            self.outcomes.append({
                "type": "specimen", "barcode": story.barcode,
                "kind": story.demand.kind, "priority": story.demand.priority,
                "temperature_class": story.demand.temperature_class,
                "origin": story.demand.site, "destination": story.demand.destination,
                "collected_at": story.collected_at.isoformat(),
                "received_at": story.received_at.isoformat() if story.received_at else None,
                "deadline": deadline.isoformat(), "target_min": target,
                "breach": (story.received_at > deadline if story.received_at
                           else True if deadline <= self.end else None),
                "temp_min_c": round(min(temps), 2) if temps else None,
                "temp_max_c": round(max(temps), 2) if temps else None,
                "seconds_out_of_range": round(outside, 1),
                "excursion": outside > EXCURSION_GRACE_S,
                "flights": story.flights,
            })


def _replace(emission: Emission, **changes) -> Emission:
    values = {name: getattr(emission, name) for name in Emission.__slots__}
    values.update(changes)
    return Emission(**values)


def _time_outside(series: list[tuple[datetime, float]], low: float, high: float) -> float:
    outside = 0.0
    for (t1, v1), (t2, _) in zip(series, series[1:], strict=False):
        if not low <= v1 <= high:
            outside += (t2 - t1).total_seconds()
    return outside


def _urgency(item) -> tuple:
    _, cargo = item
    rank = {"stat": 0, "urgent": 1, "routine": 2}
    return (min(rank[s.demand.priority] for s in cargo), min(s.collected_at for s in cargo))


def _flat_distance(a: Site, b: Site) -> float:
    return math.hypot(a.lat - b.lat, (a.lon - b.lon) * math.cos(math.radians(a.lat)))


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def payload_of(emission: Emission) -> dict:
    return json.loads(emission.payload)
