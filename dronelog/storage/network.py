"""The network's registry (sites and routes), imported from a network description
(`dronelog.network`); a simulator's scenario file is one, so the same file drives the
simulator and the engine."""

import json

from sqlalchemy import Engine

from dronelog.network import Network
from dronelog.storage.portable import upsert
from dronelog.storage.tables import Route, Site


def import_network(engine: Engine, network: Network) -> tuple[int, int]:
    sites = [{"id": s.id, "name_zh": s.name_zh, "name_en": s.name_en,
              "short_zh": s.short_zh, "short_en": s.short_en, "kind": s.kind,
              "lat": s.lat, "lon": s.lon, "timezone": s.timezone,
              "pad_radius_m": s.pad_radius_m} for s in network.sites]
    routes = [{"origin_site_id": r.origin, "destination_site_id": r.destination,
               "cruise_alt_m": r.cruise_alt_m,
               "waypoints": json.dumps([list(p) for p in r.waypoints])} for r in network.routes]
    with engine.begin() as connection:
        upsert(connection, Site.__table__, sites, ["id"])
        upsert(connection, Route.__table__, routes, ["origin_site_id", "destination_site_id"])
    return len(sites), len(routes)
