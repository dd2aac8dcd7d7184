"""The scheduler's notification job: plan every source's messages, then send what is due.

Runs under its own lease ("notify"), so with two schedulers one plans and sends; planning
is keyed (a message is stored once) and the sources' marks (`notices_planned`,
`notified_at`, the received watermark) are written in the same transaction as the planned
rows, so a crash plans nothing twice and loses nothing.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine

from dronelog.config import Settings
from dronelog.exports.report_pdf import period_pdf, period_report, site_names
from dronelog.notify import outbox, sources
from dronelog.notify.channels import Channels
from dronelog.notify.routes import active_rules
from dronelog.turnaround import alert_store
from dronelog.turnaround.lease import take_lease
from dronelog.turnaround.period_report import Period

LEASE = "notify"


@dataclass
class NotifyRun:
    planned: int = 0
    sent: int = 0
    failed: int = 0


class Notifier:
    def __init__(self, engine: Engine, settings: Settings, channels: Channels,
                 holder: str, lease_ttl: timedelta) -> None:
        self.engine = engine
        self.settings = settings
        self.channels = channels
        self.holder = holder
        self.lease_ttl = lease_ttl

    def run(self, now: datetime) -> NotifyRun | None:
        """One pass; None when another scheduler holds the lease."""
        with self.engine.begin() as connection:
            if not take_lease(connection, LEASE, self.holder, now, self.lease_ttl):
                return None
            planned = outbox.store(connection, self.plan(connection, now), now)
        sent, failed = outbox.deliver(self.engine, self.channels, now,
                                      self.settings.notify_rate_per_hour, self.attachments)
        return NotifyRun(planned, sent, failed)

    def plan(self, connection: Connection, now: datetime) -> list[sources.Planned]:
        routes = active_rules(connection)
        sites = alert_store.site_labels(connection)
        lead = timedelta(minutes=self.settings.notify_landing_lead_min)
        return (sources.alerts(connection, routes, now, sites)
                + sources.assigned(connection, routes, now, sites)
                + sources.received(connection, routes, now, sites)
                + sources.landing(connection, routes, now, sites, lead)
                + sources.reports(connection, routes, now, sites,
                                  self.settings.network_timezone,
                                  lambda keys: outbox.known_keys(connection, keys)))

    def attachments(self, connection: Connection, spec: dict,
                    language: str) -> list[tuple[str, bytes]]:
        """A scheduled report's PDF, built when it is sent."""
        if "report" not in spec:
            return []
        first, last = (date.fromisoformat(day) for day in spec["report"])
        report = period_report(connection, Period(first, last), self.settings.network_timezone)
        return [(f"turnaround-{first}-{last}.pdf",
                 period_pdf(report, site_names(connection), language))]
