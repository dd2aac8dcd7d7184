"""The network's registry (sites and routes), imported from a scenario file, which doubles as
the description of a real network: the same file drives the simulator and the engine."""

import json

from sqlalchemy import Engine

from dronelog.storage.portable import upsert
from dronelog.storage.tables import Route, Site
from simulators.scenario import Scenario


def import_network(engine: Engine, scenario: Scenario) -> tuple[int, int]:
    sites = [{"id": s.id, "name_zh": s.name_zh, "name_en": s.name_en, "kind": s.kind,
              "lat": s.lat, "lon": s.lon, "timezone": s.timezone,
              "pad_radius_m": s.pad_radius_m} for s in scenario.sites]
    routes = [{"origin_site_id": r.origin, "destination_site_id": r.destination,
               "cruise_alt_m": r.cruise_alt_m,
               "waypoints": json.dumps([list(p) for p in r.waypoints])} for r in scenario.routes]
    with engine.begin() as connection:
        upsert(connection, Site.__table__, sites, ["id"])
        upsert(connection, Route.__table__, routes, ["origin_site_id", "destination_site_id"])
    return len(sites), len(routes)
