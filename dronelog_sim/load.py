"""Load mode: N drones sending telemetry at F Hz, every message counted, for benchmarks."""

import math
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from dronelog.contract.messages import Telemetry
from dronelog.contract.topics import TopicLayout
from dronelog_sim.network import Emission


def load_stream(drones: int, hz: float, duration: timedelta, start: datetime, seed: int,
                layout: TopicLayout | None = None) -> Iterator[Emission]:
    """Telemetry from `drones` drones circling their bases, `hz` reports a second each."""
    layout = layout or TopicLayout()
    rng = random.Random(seed)
    period = 1.0 / hz
    ticks = int(duration.total_seconds() * hz)
    bases = [(36.78 + rng.uniform(-0.3, 0.3), 119.95 + rng.uniform(-0.3, 0.3))
             for _ in range(drones)]
    for tick in range(ticks):
        moment = start + timedelta(seconds=tick * period)
        angle = tick * period / 60
        for number, (lat, lon) in enumerate(bases):
            drone_id = f"load-{number:05d}"
            event = Telemetry(
                schema_version=1, event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                event_time=moment, drone_id=drone_id, seq=tick,
                flight_id=f"LOAD-{number:05d}", lat=lat + 0.01 * math.sin(angle),
                lon=lon + 0.01 * math.cos(angle), alt_m=150.0, height_m=120.0,
                ground_speed_mps=15.0, heading_deg=(math.degrees(angle) + 90) % 360,
                battery_pct=max(0.0, 100 - tick * period / 36), payload_temp_c=5.0,
                link_quality_pct=90.0)
            yield Emission(moment, layout.telemetry(drone_id), event.model_dump_json().encode(),
                           "telemetry", str(event.event_id))
