"""`dronelog scheduler`: APScheduler runs the turnaround work at fixed intervals.

Each job takes its lease first (`lease.py`), so with two schedulers running only one does
the work, and the other takes over when the holder stops renewing. A cold rebuild of the
projections runs in chunks that each renew the lease (`rebuild.py`). Jobs keep their progress
in the database (watermarks, alerts, report rows) and are safe to repeat or interrupt.
"""

import os
import signal
import socket
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Connection, Engine

from dronelog.clock import Clock, SystemClock
from dronelog.config import Settings
from dronelog.dispatch import departures, progress
from dronelog.domain.dispatch import DispatchRules
from dronelog.domain.stability import SpecimenLimits
from dronelog.ingest.mqtt_source import BrokerAddress
from dronelog.notify.channels import Channels
from dronelog.notify.service import Notifier, NotifyRun
from dronelog.storage import retention, telemetry_seal
from dronelog.turnaround import rebuild, report, sweep, tracker
from dronelog.turnaround.lease import release_lease, take_lease
from dronelog.turnaround.notify import AlertPublisher

log = structlog.get_logger("dronelog.scheduler")


class TurnaroundJobs:
    def __init__(self, engine: Engine, settings: Settings, clock: Clock | None = None,
                 publisher: AlertPublisher | None = None, holder: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock or SystemClock()
        self.publisher = publisher
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.limits = SpecimenLimits.from_files(settings.policy_file, settings.stability_file)
        self.rules = sweep.SweepRules(lost_link_s=settings.lost_link_s,
                                      off_route_corridor_m=settings.off_route_corridor_m,
                                      battery_reserve_pct=settings.battery_reserve_pct,
                                      language=settings.language)
        self.dispatch = DispatchRules.from_file(settings.dispatch_file)
        self.lease_ttl = timedelta(seconds=max(3 * settings.sweep_interval_s,
                                               settings.scheduler_lease_s))
        self.notifier = Notifier(engine, settings, Channels.from_setting(
            settings.notify_channels, settings.notify_bot_relay), self.holder, self.lease_ttl)

    def turnaround(self) -> sweep.SweepRun | None:
        """Refresh the projections, sweep for alerts, publish the changes; None when another
        scheduler holds the lease."""
        if not self.rebuild_if_needed():
            return None
        now = self.clock.now()
        with self.engine.begin() as connection:
            if not take_lease(connection, "turnaround", self.holder, now, self.lease_ttl):
                return None
            tracked = tracker.refresh(
                connection, self.limits, now,
                temperature_max_gap_s=self.settings.temperature_max_gap_s)
            result = sweep.sweep(connection, now, self.rules)
        if result.opened or result.resolved:
            log.info("turnaround sweep", specimens_refreshed=tracked.specimens,
                     conditions=result.conditions, opened=result.opened,
                     resolved=result.resolved)
        self.publish()
        return result

    def rebuild_if_needed(self) -> bool:
        """A cold rebuild in chunks, each renewing the lease (rebuild.py), when the tracker
        has no watermark or a rebuild was interrupted; False if it could not finish (the
        lease was lost: another scheduler carries on from the last chunk)."""
        with self.engine.connect() as connection:
            if not rebuild.needed(connection):
                return True
        log.info("projection rebuild started", holder=self.holder)
        run = rebuild.rebuild(self.engine, self.limits, self.clock, self._renew_lease,
                              on_chunk=self._log_chunk,
                              temperature_max_gap_s=self.settings.temperature_max_gap_s)
        log.info("projection rebuild " + ("finished" if run.finished else "stopped: lease lost"),
                 chunks=run.chunks, flights=run.flights, specimens=run.specimens)
        return run.finished

    def _renew_lease(self, connection: Connection, now: datetime) -> bool:
        return take_lease(connection, "turnaround", self.holder, now, self.lease_ttl)

    @staticmethod
    def _log_chunk(run: rebuild.RebuildRun) -> None:
        log.debug("projection rebuild chunk", chunks=run.chunks, flights=run.flights,
                  specimens=run.specimens)

    def publish(self) -> int:
        if self.publisher is None:
            return 0
        with self.engine.begin() as connection:
            return self.publisher.flush(connection)

    def daily_report(self) -> int | None:
        """Recompute today's and yesterday's report (late events change yesterday's too)."""
        now = self.clock.now()
        with self.engine.begin() as connection:
            if not take_lease(connection, "report", self.holder, now, timedelta(minutes=10)):
                return None
            today = now.astimezone(ZoneInfo(self.settings.network_timezone)).date()
            return sum(report.roll_up(connection, day, self.settings.network_timezone, now)
                       for day in (today - timedelta(days=1), today))

    def telemetry_retention(self) -> retention.RetentionRun | None:
        """Telemetry partitions ahead, thinning and expiry (dronelog/storage/retention.py)."""
        now = self.clock.now()
        with self.engine.begin() as connection:
            if not take_lease(connection, "retention", self.holder, now, timedelta(hours=1)):
                return None
            result = retention.run(connection, now, self.settings.telemetry_full_days,
                                   self.settings.telemetry_retention_days)
        log.info("telemetry retention", created=result.partitions_created,
                 dropped=result.partitions_dropped, deleted=result.rows_deleted,
                 thinned=result.rows_thinned, thinned_until=result.thinned_until)
        return result

    def telemetry_seals(self) -> int | None:
        """Seal the telemetry of flights that have ended (dronelog/storage/telemetry_seal.py)."""
        now = self.clock.now()
        with self.engine.begin() as connection:
            if not take_lease(connection, "seal", self.holder, now, timedelta(minutes=10)):
                return None
            sealed = telemetry_seal.seal_ended_flights(
                connection, now, timedelta(seconds=self.settings.telemetry_seal_delay_s))
        if sealed:
            log.info("flight telemetry sealed", flights=sealed)
        return sealed

    def transport_requests(self) -> list[str] | None:
        """Create the transport requests of the fixed departures whose cut-off has come
        (dronelog/dispatch/departures.py), and advance the requests whose flight took off or
        landed (dispatch/progress.py); the new requests' ids, None when another scheduler
        holds the lease."""
        now = self.clock.now()
        with self.engine.begin() as connection:
            if not take_lease(connection, "requests", self.holder, now, timedelta(minutes=5)):
                return None
            created = departures.create_due(connection, self.dispatch, now,
                                            self.settings.network_timezone)
            followed = progress.follow_flights(connection, now)
        if created or followed:
            log.info("transport requests", created=created, followed_flights=followed)
        return created

    def notifications(self) -> NotifyRun | None:
        """Plan the notices of alerts, landings, requests, receipts and scheduled reports,
        and send what is due (dronelog/notify/); None when another scheduler holds the
        lease."""
        result = self.notifier.run(self.clock.now())
        if result and (result.planned or result.sent or result.failed):
            log.info("notifications", planned=result.planned, sent=result.sent,
                     failed=result.failed)
        return result

    def release(self) -> None:
        with self.engine.begin() as connection:
            for name in ("turnaround", "report", "retention", "seal", "requests", "notify"):
                release_lease(connection, name, self.holder)


def mqtt_alert_publisher(settings: Settings) -> tuple[AlertPublisher, mqtt.Client]:
    broker = BrokerAddress.parse(settings.mqtt_url)
    protocol = mqtt.MQTTv5 if settings.mqtt_protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"dronelog-alerts-{uuid.uuid4().hex[:6]}", protocol=protocol)
    broker.configure(client)  # login, and TLS for mqtts://
    client.reconnect_delay_set(1, 30)
    client.connect_async(broker.host, broker.port)
    client.loop_start()

    def publish(topic: str, payload: bytes) -> bool:
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    return AlertPublisher(settings.topic_prefix, publish, settings.webhook_url,
                          language=settings.language), client


def run_scheduler(engine: Engine, settings: Settings) -> None:
    publisher, client = mqtt_alert_publisher(settings)
    jobs = TurnaroundJobs(engine, settings, publisher=publisher)
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(jobs.turnaround, "interval", seconds=settings.sweep_interval_s,
                      id="turnaround", coalesce=True, max_instances=1)
    scheduler.add_job(jobs.daily_report, "interval", minutes=5, id="daily_report",
                      coalesce=True, max_instances=1)
    scheduler.add_job(jobs.telemetry_retention, "interval", minutes=30, id="retention",
                      coalesce=True, max_instances=1, next_run_time=datetime.now(UTC))
    scheduler.add_job(jobs.telemetry_seals, "interval", minutes=1, id="seals", coalesce=True,
                      max_instances=1)
    scheduler.add_job(jobs.transport_requests, "interval", seconds=settings.sweep_interval_s,
                      id="transport_requests",
                      coalesce=True, max_instances=1)
    scheduler.add_job(jobs.notifications, "interval", seconds=settings.sweep_interval_s,
                      id="notifications", coalesce=True, max_instances=1)
    log.info("scheduler started", holder=jobs.holder, sweep_interval_s=settings.sweep_interval_s)
    # Stopping waits for a job already running: one that had not yet taken its lease would
    # otherwise take it after release() below, and hold it, dead, until it expires.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: scheduler.shutdown(wait=True))
    try:
        scheduler.start()
    finally:
        jobs.release()
        client.disconnect()
        client.loop_stop()
        log.info("scheduler stopped")


