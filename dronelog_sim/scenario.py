"""Scenario files: the network a simulation runs. A scenario is a network file
(`dronelog.network`: `[scenario]`, sites, routes) extended with what only a simulation needs:
drones, demand, shifts, weather and operations. Errors name the file, the line and the field.
"""

from datetime import datetime, time
from pathlib import Path

from pydantic import Field, model_validator

from dronelog.contract.messages import (
    BloodProduct,
    Identifier,
    Priority,
    SpecimenKind,
    TemperatureClass,
)
from dronelog.network import FileModel, Network, NetworkFileError, Route, Site, load_model

__all__ = ["DroneModel", "Demand", "Route", "Scenario", "ScenarioError", "Shift", "Site",
           "Weather", "load_scenario"]


class ScenarioError(NetworkFileError):
    """A scenario file that cannot be used, with where and why."""


class DroneModel(FileModel):
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


class Demand(FileModel):
    site: Identifier
    destination: Identifier
    kind: SpecimenKind
    priority: Priority
    temperature_class: TemperatureClass
    blood_product: BloodProduct | None = None
    per_hour: float = Field(gt=0, le=10_000)


class Shift(FileModel):
    site: Identifier
    start: time
    end: time
    staff: list[Identifier] = Field(min_length=1)


class Weather(FileModel):
    wind_speed_mps: float = Field(3, ge=0, le=30)
    wind_from_deg: float = Field(0, ge=0, lt=360)
    ambient_c: float = Field(15, ge=-40, le=50)
    gust_mps: float = Field(1, ge=0, le=20)


class Operations(FileModel):
    dispatch_every_min: float = Field(15, gt=0, description="a drone leaves a site with "
                                      "waiting specimens at most this often")
    pack_delay_min: float = Field(3, ge=0)
    load_delay_min: float = Field(2, ge=0)
    unload_delay_min: float = Field(1, ge=0)
    receive_delay_min: float = Field(4, ge=0)
    turnaround_min: float = Field(5, ge=0, description="time on the pad before a drone "
                                  "flies again")
    battery_reserve_pct: float = Field(20, ge=0, le=90)


class Scenario(Network):
    drones: list[DroneModel] = Field(min_length=1)
    demand: list[Demand] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)
    weather: Weather = Weather()
    operations: Operations = Operations()

    @model_validator(mode="after")
    def _drones_and_demand_use_the_network(self) -> "Scenario":
        sites = {site.id for site in self.sites}
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


def load_scenario(path: Path) -> Scenario:
    return load_model(path, Scenario, error=ScenarioError)


def scenario_start(value: str | None, default: datetime) -> datetime:
    if value is None:
        return default
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ScenarioError(f"start time {value!r} needs a UTC offset")
    return moment
