"""The network description: the sites and the routes between them, in one TOML file.

A product concept: `dronelog sites import` and the demo load it into the registry
(`storage/network.py`), and the simulator's scenario files (`dronelog_sim.scenario`) extend it
with drones, demand, shifts and weather. A network file holds `[scenario]` (name, titles,
time zone), `[[sites]]` and `[[routes]]`; the tables a simulation adds are left to it.

An error names the file, the line and the field: TOML syntax errors carry their line from
`tomllib`; a field error is traced back to the line of its table (`[[sites]]` number n) and
key.
"""

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dronelog.contract.messages import Identifier
from dronelog.zones import TimeZoneName


class NetworkFileError(ValueError):
    """A network (or scenario) file that cannot be used, with where and why."""


class FileModel(BaseModel):
    """A table of a network or scenario file: unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkInfo(FileModel):
    name: str
    title_zh: str
    title_en: str
    timezone: TimeZoneName = "Asia/Shanghai"
    note: str = ""


# what a site is: the network file and the admin API take the same kinds and bounds
SiteKind = Literal["lab_hospital", "district_hospital", "health_centre", "blood_bank"]
# a drone within this distance of the site's pad is at the site (telemetry_rules)
PadRadius = Annotated[float, Field(gt=0, le=500)]


class Site(FileModel):
    id: Identifier
    name_zh: str
    name_en: str
    short_zh: str | None = Field(None, max_length=40, description="for narrow labels")
    short_en: str | None = Field(None, max_length=40, description="for narrow labels")
    kind: SiteKind
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    elevation_m: float = Field(0, ge=-500, le=9000)
    pad_radius_m: PadRadius = 25.0
    timezone: TimeZoneName = "Asia/Shanghai"
    approximate: bool = Field(False, description="coordinates are approximate")
    staff: list[Identifier] = Field(default_factory=list, description="nurses and technicians")


class Route(FileModel):
    id: Identifier
    origin: Identifier
    destination: Identifier
    cruise_alt_m: float = Field(120, gt=10, le=1000, description="above the origin pad")
    waypoints: list[tuple[float, float]] = Field(default_factory=list,
                                                 description="[lat, lon] between the pads")


class Network(FileModel):
    """Sites and routes; `scenario` is the file's `[scenario]` table (name, titles, zone)."""

    scenario: NetworkInfo
    sites: list[Site] = Field(min_length=2)
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _routes_join_known_sites(self) -> "Network":
        sites = {site.id for site in self.sites}
        if len(sites) != len(self.sites):
            raise ValueError("site ids must be unique")
        for route in self.routes:
            for end in (route.origin, route.destination):
                if end not in sites:
                    raise ValueError(f"route {route.id!r} names unknown site {end!r}")
        return self

    def site(self, site_id: str) -> Site:
        return next(site for site in self.sites if site.id == site_id)

    def route(self, origin: str, destination: str) -> Route | None:
        return next((r for r in self.routes if (r.origin, r.destination) == (origin, destination)),
                    None)


NETWORK_TABLES = ("scenario", "sites", "routes")
M = TypeVar("M", bound=BaseModel)


def load_network(path: Path) -> Network:
    """The network of a network or scenario file (a simulation's own tables are skipped)."""
    return load_model(path, Network, keep=NETWORK_TABLES)


def load_model(path: Path, model: type[M], keep: tuple[str, ...] | None = None,
               error: type[ValueError] = NetworkFileError) -> M:
    """`model` validated from the TOML file at `path` (only its `keep` tables when given)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise error(f"{path}: {problem}") from problem
    if keep is not None:
        data = {table: value for table, value in data.items() if table in keep}
    try:
        return model.model_validate(data)
    except ValidationError as problem:
        problems = []
        for item in problem.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"]) or "file"
            line = _line_of(text, item["loc"])
            at = f"line {line}: " if line else ""
            problems.append(f"{path}: {at}{where}: {item['msg']}")
        raise error("\n".join(problems)) from problem


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
