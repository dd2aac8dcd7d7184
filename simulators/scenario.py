"""Scenario files: the network a simulation runs (sites, routes, drones, demand, shifts, weather).

A scenario is TOML, validated by the models below. An error names the file, the line and the
field: TOML syntax errors carry their line from `tomllib`; a field error is traced back to
the line of its table (`[[sites]]` number n) and key.
"""

import re
import tomllib
from datetime import datetime, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dronelog.contract.messages import (
    BloodProduct,
    Identifier,
    Priority,
    SpecimenKind,
    TemperatureClass,
)


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioInfo(_Model):
    name: str
    title_zh: str
    title_en: str
    timezone: str = "Asia/Shanghai"
    note: str = ""


class Site(_Model):
    id: Identifier
    name_zh: str
    name_en: str
    kind: Literal["lab_hospital", "district_hospital", "health_centre", "blood_bank"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    elevation_m: float = Field(0, ge=-500, le=9000)
    pad_radius_m: float = Field(25, gt=0, le=500)
    timezone: str = "Asia/Shanghai"
    approximate: bool = Field(False, description="coordinates are approximate")
    staff: list[Identifier] = Field(default_factory=list, description="nurses and technicians")


class Route(_Model):
    id: Identifier
    origin: Identifier
    destination: Identifier
    cruise_alt_m: float = Field(120, gt=10, le=1000, description="above the origin pad")
    waypoints: list[tuple[float, float]] = Field(default_factory=list,
                                                 description="[lat, lon] between the pads")


class DroneModel(_Model):
    id: Identifier
    model: str
    home: Identifier = Field(description="the site it is based at")
    cruise_speed_mps: float = Field(gt=1, le=60)
    climb_rate_mps: float = Field(3, gt=0, le=15)
    descent_rate_mps: float = Field(2, gt=0, le=15)
    battery_wh: float = Field(gt=0)
    hover_power_w: float = Field(gt=0, description="power at hover; cruise uses 0.85 of it")
    payload_kg: float = Field(gt=0)
    box_time_constant_min: float = Field(
        90, gt=0, description="insulation: minutes for the payload to close 63% of the gap "
                              "to the ambient temperature")


class Demand(_Model):
    site: Identifier
    destination: Identifier
    kind: SpecimenKind
    priority: Priority
    temperature_class: TemperatureClass
    blood_product: BloodProduct | None = None
    per_hour: float = Field(gt=0, le=10_000)


class Shift(_Model):
    site: Identifier
    start: time
    end: time
    staff: list[Identifier] = Field(min_length=1)


class Weather(_Model):
    wind_speed_mps: float = Field(3, ge=0, le=30)
    wind_from_deg: float = Field(0, ge=0, lt=360)
    ambient_c: float = Field(15, ge=-40, le=50)
    gust_mps: float = Field(1, ge=0, le=20)


class Operations(_Model):
    dispatch_every_min: float = Field(15, gt=0, description="a drone leaves a site with "
                                      "waiting specimens at most this often")
    pack_delay_min: float = Field(3, ge=0)
    load_delay_min: float = Field(2, ge=0)
    unload_delay_min: float = Field(1, ge=0)
    receive_delay_min: float = Field(4, ge=0)
    turnaround_min: float = Field(5, ge=0, description="time on the pad before a drone "
                                  "flies again")
    battery_reserve_pct: float = Field(20, ge=0, le=90)


class Scenario(_Model):
    scenario: ScenarioInfo
    sites: list[Site] = Field(min_length=2)
    routes: list[Route] = Field(min_length=1)
    drones: list[DroneModel] = Field(min_length=1)
    demand: list[Demand] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)
    weather: Weather = Weather()
    operations: Operations = Operations()

    @model_validator(mode="after")
    def _references_exist(self) -> "Scenario":
        sites = {site.id for site in self.sites}
        if len(sites) != len(self.sites):
            raise ValueError("site ids must be unique")
        for route in self.routes:
            for end in (route.origin, route.destination):
                if end not in sites:
                    raise ValueError(f"route {route.id!r} names unknown site {end!r}")
        for drone in self.drones:
            if drone.home not in sites:
                raise ValueError(f"drone {drone.id!r} is based at unknown site {drone.home!r}")
        legs = {(r.origin, r.destination) for r in self.routes}
        for item in self.demand:
            if (item.site, item.destination) not in legs:
                raise ValueError(f"demand from {item.site!r} to {item.destination!r} has no "
                                 "route")
            if (item.kind == "blood_unit") != (item.blood_product is not None):
                raise ValueError("blood_product is required for blood_unit demand, and only "
                                 "for it")
        return self

    def site(self, site_id: str) -> Site:
        return next(site for site in self.sites if site.id == site_id)

    def route(self, origin: str, destination: str) -> Route | None:
        return next((r for r in self.routes if (r.origin, r.destination) == (origin, destination)),
                    None)


def load_scenario(path: Path) -> Scenario:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: {error}") from error
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"]) or "scenario"
            line = _line_of(text, item["loc"])
            at = f"line {line}: " if line else ""
            problems.append(f"{path}: {at}{where}: {item['msg']}")
        raise ScenarioError("\n".join(problems)) from error


def _line_of(text: str, loc: tuple) -> int | None:
    """The line of the key at `loc` (table, index, key...), or of its table, if found."""
    if not loc:
        return None
    lines = text.splitlines()
    table = str(loc[0])
    start = None
    if len(loc) > 1 and isinstance(loc[1], int):
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        seen = -1
        for number, line in enumerate(lines):
            if header.match(line):
                seen += 1
                if seen == loc[1]:
                    start = number
                    break
        keys = loc[2:]
    else:
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((n for n, line in enumerate(lines) if header.match(line)), None)
        keys = loc[1:]
    if start is None:
        return None
    if keys and isinstance(keys[0], str):
        key = re.compile(rf"^\s*{re.escape(keys[0])}\s*=")
        for number in range(start + 1, len(lines)):
            if lines[number].lstrip().startswith("["):
                break
            if key.match(lines[number]):
                return number + 1
    return start + 1


def scenario_start(value: str | None, default: datetime) -> datetime:
    if value is None:
        return default
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ScenarioError(f"start time {value!r} needs a UTC offset")
    return moment
