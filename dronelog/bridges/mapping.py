"""Which aircraft is which dronelog drone, and where the sites are: a TOML file and/or
repeated `--map KEY=DRONE` options (the options win).

    # bridges.toml
    [mavlink]            # MAVLink system id = drone id
    1 = "uav-01"
    2 = "uav-02"

    [dji]                # aircraft serial number = drone id
    "1581F5BKD225D00A0B2C" = "uav-03"

    [[sites]]            # optional; the same shape as a scenario file's sites
    id = "pdrmyy"
    lat = 36.7790
    lon = 119.9560
    pad_radius_m = 30    # or radius_m; default: the bridge's --site-radius
"""

import re
import tomllib
from pathlib import Path

from dronelog.bridges.flights import Site

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SERIAL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class MappingError(ValueError):
    pass


def _drone(value: object, where: str, what: str = "drone id") -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise MappingError(f"{where}: {value!r} is not a {what} (1-64 of A-Z a-z 0-9 _ . -, "
                           "starting with a letter or digit)")
    return value


def _sysid(key: str, where: str) -> int:
    try:
        sysid = int(key)
    except ValueError:
        sysid = 0
    if not 1 <= sysid <= 255:
        raise MappingError(f"{where}: {key!r} is not a MAVLink system id (1-255)")
    return sysid


def _serial(key: str, where: str) -> str:
    if not _SERIAL.match(key):
        raise MappingError(f"{where}: {key!r} is not a DJI serial number")
    return key


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise MappingError(f"{path}: {error}") from error


def load_drones(kind: str, path: Path | None, pairs: tuple[str, ...] | list[str]) -> dict:
    """`kind` "mavlink" (system id -> drone) or "dji" (serial number -> drone)."""
    key_of = _sysid if kind == "mavlink" else _serial
    drones: dict = {}
    if path is not None:
        table = _read(path).get(kind, {})
        if not isinstance(table, dict):
            raise MappingError(f"{path}: [{kind}] must be a table of KEY = \"drone id\"")
        for key, drone in table.items():
            where = f"{path} [{kind}] {key}"
            drones[key_of(str(key), where)] = _drone(drone, where)
    for pair in pairs:
        key, sep, drone = pair.partition("=")
        if not sep:
            raise MappingError(f"--map {pair!r}: expected KEY=DRONE")
        where = f"--map {pair}"
        drones[key_of(key.strip(), where)] = _drone(drone.strip(), where)
    taken: dict[str, object] = {}
    for key, drone in drones.items():
        if drone in taken:
            raise MappingError(f"drone {drone} is mapped twice ({taken[drone]} and {key})")
        taken[drone] = key
    return drones


def load_sites(paths: list[Path], default_radius_m: float) -> list[Site]:
    """`[[sites]]` (id, lat, lon, optional pad_radius_m or radius_m) from each file."""
    sites: dict[str, Site] = {}
    for path in paths:
        entries = _read(path).get("sites", [])
        if not isinstance(entries, list):
            raise MappingError(f"{path}: sites must be an array of tables ([[sites]])")
        for number, entry in enumerate(entries, 1):
            where = f"{path} site {number}"
            try:
                site_id = _drone(entry["id"], where, "site id")
                lat, lon = float(entry["lat"]), float(entry["lon"])
                radius = float(entry.get("radius_m", entry.get("pad_radius_m",
                                                                default_radius_m)))
            except (KeyError, TypeError, ValueError) as error:
                raise MappingError(f"{where}: needs id, lat and lon ({error})") from error
            if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
                raise MappingError(f"{where}: lat, lon or radius out of range")
            sites[site_id] = Site(site_id, lat, lon, radius)
    return list(sites.values())
