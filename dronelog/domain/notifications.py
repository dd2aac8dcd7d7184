"""Who is told what, when: the decisions of the notifications, pure (no I/O, time passed in).

- **Routing.** A route names a source (an alert, a flight about to land, a request assigned,
  a box received, a scheduled report), what it takes of it (alert kinds, sites, priorities,
  the least severity; each left empty takes all) and where it goes (a channel and its
  recipients, in a language).
- **Quiet hours** in the site's time zone, start included, end excluded (22:00-07:00 wraps
  midnight): a notice that falls in them waits for their end. A critical alert never waits.
- **Escalation.** A route with `after_min` N > 0 takes an alert that is still open (nobody
  acknowledged or resolved it) N minutes after it was opened: due at exactly N minutes.
  Routes with 15, 30 and 60 are three tiers.
- **Rate limit** per channel: at most `per_hour` messages in any hour. When more wait than
  the hour still allows, the last free message is a digest of the rest: nothing is dropped,
  and what the hour has no room for waits for the next.
- **Retries**: a failed message is tried again after 30 s, doubling up to an hour, at most
  `MAX_ATTEMPTS` times; then it is failed (and shown so to the administrator).
- **Scheduled reports**: a daily report of yesterday or a weekly report of the last ISO week
  (Monday to Sunday), due from the route's local time on the next day (on Monday).
"""

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
RATE_WINDOW = timedelta(hours=1)
SEVERITY_RANK = {"medium": 0, "high": 1, "critical": 2}


class Source(StrEnum):
    ALERT = "alert"  # an alert opened (after_min 0) or still unacknowledged (after_min N)
    LANDING = "landing"  # the receiving lab: a flight will land within the lead time
    ASSIGNED = "assigned"  # the requesting clinic: its transport request has a drone
    RECEIVED = "received"  # the sending clinic: the lab received its box
    REPORT = "report"  # the turnaround report, daily or weekly


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def holds(self, local: time) -> bool:
        """Whether a local wall-clock time is quiet: [start, end), across midnight when
        start > end; an empty window (start == end) is never quiet."""
        local = local.replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class RouteRule:
    id: int
    source: Source
    channel: str
    recipients: tuple[str, ...] = ()
    alert_kinds: frozenset[str] = frozenset()
    site_ids: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    min_severity: str | None = None
    after_min: int = 0
    quiet: QuietHours | None = None
    language: str = "zh"
    period: Period | None = None  # a report's
    send_at: time | None = None  # a report's local time of sending
    active: bool = True


@dataclass(frozen=True)
class Occurrence:
    """What may be notified, as routing sees it: its source, the sites it concerns (any of
    them matches a route's sites), and an alert's kind and severity or a specimen's or a
    request's priority where it has one."""

    source: Source
    site_ids: tuple[str, ...] = ()
    kind: str | None = None
    severity: str | None = None
    priority: str | None = None


def matches(route: RouteRule, occurrence: Occurrence) -> bool:
    if not route.active or route.source != occurrence.source:
        return False
    if route.alert_kinds and occurrence.kind not in route.alert_kinds:
        return False
    if route.site_ids and not route.site_ids.intersection(occurrence.site_ids):
        return False
    if route.priorities and occurrence.priority not in route.priorities:
        return False
    if route.min_severity is not None:
        rank = SEVERITY_RANK.get(occurrence.severity or "", -1)
        if rank < SEVERITY_RANK[route.min_severity]:
            return False
    return True


def routes_for(routes: Sequence[RouteRule], occurrence: Occurrence,
               after_min: int | None = 0) -> list[RouteRule]:
    """The routes that take an occurrence; for alerts only those of the given tier
    (`after_min` 0: at opening; None: the escalation tiers, after_min > 0)."""
    return [route for route in routes if matches(route, occurrence)
            and (occurrence.source != Source.ALERT or after_min is None and route.after_min > 0
                 or route.after_min == after_min)]


def release_at(quiet: QuietHours | None, at: datetime, zone: ZoneInfo,
               critical: bool = False) -> datetime:
    """When a notice planned at `at` may go: at once, or at the end of the quiet hours it
    falls in (on the site's wall clock). A critical notice never waits."""
    if quiet is None or critical:
        return at
    local = at.astimezone(zone)
    if not quiet.holds(local.time()):
        return at
    end = datetime.combine(local.date(), quiet.end, zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, zone)
    return end.astimezone(at.tzinfo)


def escalation_due(after_min: int, opened_at: datetime, state: str, now: datetime) -> bool:
    """An alert nobody has acknowledged or resolved, `after_min` minutes after it opened."""
    return after_min > 0 and state == "open" and now >= opened_at + timedelta(minutes=after_min)


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the `attempts`-th failed attempt (1, 2, ...), or None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


T = TypeVar("T")


@dataclass(frozen=True)
class Ration:
    """What one channel sends now: each of `single` alone, and each list of `digests` as one
    message. The rest waits."""

    single: list = field(default_factory=list)
    digests: list[list] = field(default_factory=list)


def ration(pending: Sequence[T], sent_at: Sequence[datetime], now: datetime, per_hour: int,
           group: Callable[[T], Hashable] = lambda _: None) -> Ration:
    """Split a channel's waiting messages (oldest first) under its rate limit: `sent_at` are
    the times of its messages already sent. Within the room left in the last hour, send
    them one by one; if they do not fit, the oldest alone while the room lasts and the rest
    as one digest per `group` (its recipients), each digest one message; a group the hour
    has no room for waits. Nothing is dropped."""
    room = per_hour - sum(1 for moment in sent_at if moment > now - RATE_WINDOW)
    if room <= 0 or not pending:
        return Ration()
    if len(pending) <= room:
        return Ration(single=list(pending))
    groups = len({group(item) for item in pending})
    single = list(pending[:max(0, room - groups)])
    rest: dict[Hashable, list] = {}
    for item in pending[len(single):]:
        rest.setdefault(group(item), []).append(item)
    return Ration(single=single, digests=list(rest.values())[:room - len(single)])


def report_due(period: Period, send_at: time, now: datetime, zone: ZoneInfo
               ) -> tuple[date, date]:
    """The latest report period whose sending time has come, as (first day, last day):
    daily, yesterday's from `send_at` today (else the day before's); weekly, last week's
    (Monday to Sunday) from `send_at` on Monday."""
    local = now.astimezone(zone)
    today, early = local.date(), local.time().replace(tzinfo=None) < send_at
    if period == Period.DAILY:
        day = today - timedelta(days=2 if early else 1)
        return day, day
    monday = today - timedelta(days=today.weekday())
    if today == monday and early:
        monday -= timedelta(days=7)
    return monday - timedelta(days=7), monday - timedelta(days=1)
