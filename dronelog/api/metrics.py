"""Prometheus metrics, read from the database at each scrape (the ingester and the scheduler
are other processes; the database is what they share)."""

from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from dronelog.clock import Clock
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert, DeadLetter, TelemetryPoint


class DatabaseCollector:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock

    def collect(self):
        alert, dead, telemetry = Alert.__table__, DeadLetter.__table__, TelemetryPoint.__table__
        now = self.clock.now()
        with self.engine.connect() as conn:
            open_alerts = conn.execute(select(alert.c.kind, func.count()).where(
                alert.c.state != "resolved").group_by(alert.c.kind)).all()
            dead_letters = conn.execute(select(dead.c.reason_code, func.count())
                                        .group_by(dead.c.reason_code)).all()
            recent = conn.execute(select(func.count()).select_from(telemetry).where(
                telemetry.c.received_at >= now - timedelta(minutes=1))).scalar_one()
            newest = conn.execute(select(func.max(telemetry.c.received_at))).scalar()
        family = GaugeMetricFamily("dronelog_open_alerts", "Open or acknowledged alerts",
                                   labels=["kind"])
        for kind, count in open_alerts:
            family.add_metric([kind], count)
        yield family
        family = GaugeMetricFamily("dronelog_dead_letters", "Dead letters by reason",
                                   labels=["reason"])
        for reason, count in dead_letters:
            family.add_metric([reason], count)
        yield family
        yield GaugeMetricFamily("dronelog_telemetry_stored_last_minute",
                                "Telemetry rows received in the last minute", value=recent)
        if newest is not None:
            yield GaugeMetricFamily("dronelog_ingest_lag_seconds",
                                    "Seconds since the newest stored telemetry was received",
                                    value=(now - as_utc(newest)).total_seconds())


def build_registry(engine: Engine, clock: Clock) -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine, clock))
    requests = Counter("dronelog_custody_posts", "Custody scans posted over HTTP", ["outcome"],
                       registry=registry)
    return registry, requests
