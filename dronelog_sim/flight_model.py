"""A believable flight: climb, cruise along the route with wind, descent, landing.

Pure functions of the plan, the weather and time. Positions are geodesic (WGS 84, via
geographiclib, the library under geopy's distance module).
"""

import math
from dataclasses import dataclass

from geographiclib.geodesic import Geodesic

from dronelog_sim.scenario import DroneModel, Weather

WGS84 = Geodesic.WGS84
CRUISE_POWER_FACTOR = 0.85


@dataclass(frozen=True, slots=True)
class Leg:
    lat1: float
    lon1: float
    lat2: float
    lon2: float
    length_m: float
    bearing_deg: float


@dataclass(frozen=True, slots=True)
class Sample:
    """The aircraft at one instant of a flight."""

    t_s: float  # seconds since take-off
    lat: float
    lon: float
    height_m: float
    ground_speed_mps: float
    heading_deg: float
    battery_used_wh: float
    phase: str  # climb, cruise, descent, landed


def legs_of(points: list[tuple[float, float]]) -> list[Leg]:
    legs = []
    for (lat1, lon1), (lat2, lon2) in zip(points, points[1:], strict=False):
        inverse = WGS84.Inverse(lat1, lon1, lat2, lon2)
        legs.append(Leg(lat1, lon1, lat2, lon2, inverse["s12"], inverse["azi1"] % 360))
    return legs


def ground_speed(airspeed: float, track_deg: float, weather: Weather) -> float:
    """Ground speed along `track_deg` with the wind (blowing from `wind_from_deg`)."""
    wind_to = math.radians((weather.wind_from_deg + 180) % 360)
    track = math.radians(track_deg)
    along = weather.wind_speed_mps * math.cos(wind_to - track)
    cross = weather.wind_speed_mps * math.sin(wind_to - track)
    return max(1.0, math.sqrt(max(airspeed**2 - cross**2, 1.0)) + along)


class FlightProfile:
    """Where the aircraft is at any time of a flight along `points` (pad to pad)."""

    def __init__(self, drone: DroneModel, points: list[tuple[float, float]],
                 cruise_height_m: float, weather: Weather, drain_factor: float = 1.0) -> None:
        self.drone = drone
        self.legs = legs_of(points)
        self.weather = weather
        self.cruise_height_m = cruise_height_m
        self.drain_factor = drain_factor
        self.climb_s = cruise_height_m / drone.climb_rate_mps
        self.descent_s = cruise_height_m / drone.descent_rate_mps
        self.leg_speeds = [ground_speed(drone.cruise_speed_mps, leg.bearing_deg, weather)
                           for leg in self.legs]
        self.leg_times = [leg.length_m / speed for leg, speed in
                          zip(self.legs, self.leg_speeds, strict=True)]
        self.cruise_s = sum(self.leg_times)
        self.duration_s = self.climb_s + self.cruise_s + self.descent_s
        self.distance_m = sum(leg.length_m for leg in self.legs)

    def energy_wh(self, t_s: float) -> float:
        """Battery energy used by `t_s`: hover power while climbing and descending, less in
        cruise, more against the wind."""
        hover_w = self.drone.hover_power_w * self.drain_factor
        vertical = min(t_s, self.climb_s) + max(0.0, t_s - self.climb_s - self.cruise_s)
        cruise = min(max(0.0, t_s - self.climb_s), self.cruise_s)
        wind_penalty = 1 + 0.02 * self.weather.wind_speed_mps
        return (hover_w * vertical + hover_w * CRUISE_POWER_FACTOR * wind_penalty * cruise) / 3600

    def battery_needed_pct(self) -> float:
        return 100 * self.energy_wh(self.duration_s) / self.drone.battery_wh

    def at(self, t_s: float) -> Sample:
        t_s = min(max(t_s, 0.0), self.duration_s)
        first, last = self.legs[0], self.legs[-1]
        used = self.energy_wh(t_s)
        if t_s <= self.climb_s:
            return Sample(t_s, first.lat1, first.lon1, self.drone.climb_rate_mps * t_s, 0.0,
                          first.bearing_deg, used, "climb")
        cruise_t = t_s - self.climb_s
        if cruise_t < self.cruise_s:
            for leg, speed, leg_time in zip(self.legs, self.leg_speeds, self.leg_times,
                                            strict=True):
                if cruise_t <= leg_time:
                    point = WGS84.Direct(leg.lat1, leg.lon1, leg.bearing_deg, speed * cruise_t)
                    heading = point["azi2"] % 360
                    return Sample(t_s, point["lat2"], point["lon2"], self.cruise_height_m, speed,
                                  heading, used, "cruise")
                cruise_t -= leg_time
        descent_t = t_s - self.climb_s - self.cruise_s
        height = max(0.0, self.cruise_height_m - self.drone.descent_rate_mps * descent_t)
        phase = "landed" if height == 0.0 else "descent"
        return Sample(t_s, last.lat2, last.lon2, height, 0.0, last.bearing_deg, used, phase)


def payload_temperature(start_c: float, ambient_c: float, minutes: float,
                        time_constant_min: float) -> float:
    """The payload box drifting toward the ambient temperature through its insulation."""
    return ambient_c + (start_c - ambient_c) * math.exp(-minutes / time_constant_min)
