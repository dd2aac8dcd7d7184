"""The texts of the notifications, in Chinese or English, times on the site's wall clock.

An alert's notice carries the alert's own text (alert_text.py); the other notices (a flight
about to land, a request assigned, a box received, a scheduled report, a digest) are
written here. Pure: the caller passes the values, the sites and the language. Titles are
short (a group bot shows the first line); bodies name no patient, only barcodes, boxes,
flights and sites.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dronelog.domain.alert_text import (
    DEFAULT_ZONE,
    SiteLabel,
    format_time,
    priority_name,
    render_or,
)

_SEVERITY = {"zh": {"critical": "严重", "high": "高", "medium": "中"},
             "en": {"critical": "critical", "high": "high", "medium": "medium"}}

_TEXTS: dict[str, dict[str, str]] = {
    "alert.title": {"zh": "【告警·{severity}】{site}", "en": "[Alert, {severity}] {site}"},
    "alert.body": {"zh": "{text}\n告警编号 {alert_id}，{opened}起",
                   "en": "{text}\nAlert {alert_id}, since {opened}"},
    "acknowledged.title": {"zh": "【已确认·{severity}】{site}",
                           "en": "[Acknowledged, {severity}] {site}"},
    "acknowledged.body": {"zh": "{text}\n告警编号 {alert_id}，{at} 由 {by} 确认",
                          "en": "{text}\nAlert {alert_id}, acknowledged by {by} at {at}"},
    "resolved.title": {"zh": "【已解除·{severity}】{site}", "en": "[Resolved, {severity}] {site}"},
    "resolved.body": {"zh": "{text}\n告警编号 {alert_id}，{at} 解除{note}",
                      "en": "{text}\nAlert {alert_id}, resolved at {at}{note}"},
    "resolved.note": {"zh": "：{note}", "en": ": {note}"},
    "escalation.title": {"zh": "【未确认 {minutes} 分钟·{severity}】{site}",
                         "en": "[Unacknowledged for {minutes} min, {severity}] {site}"},
    "landing.title": {"zh": "【即将到达】{site} {eta}", "en": "[Arriving] {site} at {eta}"},
    "landing.body": {"zh": "航班 {flight} 预计 {eta} 降落于{site}（约 {minutes} 分钟后），"
                           "载标本 {specimens} 件{stat}。请准备接收。",
                     "en": "Flight {flight} is expected to land at {site} at {eta} (in about "
                           "{minutes} min) with {specimens} specimens{stat}. Please be ready "
                           "to receive them."},
    "landing.stat": {"zh": "，其中急诊 {count} 件", "en": ", {count} of them STAT"},
    "assigned.title": {"zh": "【已派机】运输申请 {request}", "en": "[Assigned] request {request}"},
    "assigned.body": {"zh": "运输申请 {request}（{priority}，{origin} → {destination}）已安排"
                            "无人机 {drone}，航班 {flight}，计划 {departure} 出发。",
                      "en": "Transport request {request} ({priority}, {origin} → "
                            "{destination}) has drone {drone}, flight {flight}, planned to "
                            "leave at {departure}."},
    "received.title": {"zh": "【已接收】箱 {container}", "en": "[Received] box {container}"},
    "received.body": {"zh": "{site}已于 {at} 接收箱 {container}（标本 {specimens} 件）。",
                      "en": "{site} received box {container} ({specimens} specimens) at "
                            "{at}."},
    "report.title": {"zh": "【周转报告】{first} 至 {last}", "en": "[Turnaround] {first} to {last}"},
    "report.empty": {"zh": "本期没有采集的标本。", "en": "No specimens were collected in "
                                                    "the period."},
    "report.line": {"zh": "{origin} → {destination}（{priority}）："
                          "{received}/{specimens} 件已接收，准时 {on_time}，P90 {p90} 分钟",
                    "en": "{origin} → {destination} ({priority}): {received}/{specimens} "
                          "received, on time {on_time}, P90 {p90} min"},
    "report.more": {"zh": "……另有 {count} 组，见附件", "en": "... {count} more, see the "
                                                         "attachment"},
    "digest.title": {"zh": "【汇总】{count} 条通知", "en": "[Digest] {count} notices"},
    "digest.intro": {"zh": "本渠道已达每小时发送上限，以下通知合并发送：",
                     "en": "This channel reached its hourly limit; these notices are sent "
                           "together:"},
}
REPORT_LINES = 20  # the groups a report's text lists; the attachment has them all


@dataclass(frozen=True)
class Notice:
    title: str
    body: str


def _text(key: str, language: str, **values) -> str:
    return _TEXTS[key][language].format(**values)


def _site(site_id: str | None, sites: Mapping[str, SiteLabel], language: str) -> str:
    site = sites.get(site_id or "")
    return site.name(language) if site else (site_id or "—")


def _zone(site_id: str | None, sites: Mapping[str, SiteLabel]) -> ZoneInfo:
    site = sites.get(site_id or "")
    return ZoneInfo(site.timezone if site else DEFAULT_ZONE)


def alert_notice(alert, params: Mapping, language: str, sites: Mapping[str, SiteLabel],
                 unacknowledged_min: int = 0) -> Notice:
    """An alert opened, or (`unacknowledged_min` > 0) still unacknowledged after so long.
    `alert` has the alert row's fields (id, kind, severity, message, site_id, opened_at)."""
    severity = _SEVERITY[language].get(alert.severity, alert.severity)
    site = _site(alert.site_id, sites, language)
    title = (_text("escalation.title", language, minutes=unacknowledged_min,
                   severity=severity, site=site) if unacknowledged_min
             else _text("alert.title", language, severity=severity, site=site))
    text = render_or(alert.message, alert.kind, params, language, sites)
    opened = format_time(alert.opened_at, _zone(alert.site_id, sites), language)
    return Notice(title, _text("alert.body", language, text=text, alert_id=alert.id,
                               opened=opened))


def alert_change_notice(alert, params: Mapping, change: str, at: datetime, by: str | None,
                        language: str, sites: Mapping[str, SiteLabel]) -> Notice:
    """An alert the route was told about, acknowledged or resolved (`change`), so nobody goes
    on working on it. `alert` as for `alert_notice`, with `resolution_note`."""
    severity = _SEVERITY[language].get(alert.severity, alert.severity)
    site = _site(alert.site_id, sites, language)
    text = render_or(alert.message, alert.kind, params, language, sites)
    when = format_time(at, _zone(alert.site_id, sites), language)
    note = (alert.resolution_note or "").strip()
    return Notice(_text(f"{change}.title", language, severity=severity, site=site),
                  _text(f"{change}.body", language, text=text, alert_id=alert.id, at=when,
                        by=_person(by), note=_text("resolved.note", language, note=note)
                        if note else ""))


def _person(by: str | None) -> str:
    """Who, as the alert store records it ("user:disp-01" → "disp-01")."""
    return (by or "—").removeprefix("user:")


def landing_notice(flight_id: str, site_id: str, eta: datetime, now: datetime,
                   specimens: int, stat: int, language: str,
                   sites: Mapping[str, SiteLabel]) -> Notice:
    site = _site(site_id, sites, language)
    at = format_time(eta, _zone(site_id, sites), language)
    minutes = max(0, round((eta - now).total_seconds() / 60))
    stat_text = _text("landing.stat", language, count=stat) if stat else ""
    return Notice(_text("landing.title", language, site=site, eta=at),
                  _text("landing.body", language, flight=flight_id, eta=at, site=site,
                        minutes=minutes, specimens=specimens, stat=stat_text))


def assigned_notice(request_id: str, priority: str, origin: str, destination: str,
                    drone_id: str | None, flight_id: str | None, departure: datetime | None,
                    language: str, sites: Mapping[str, SiteLabel]) -> Notice:
    leaves = (format_time(departure, _zone(origin, sites), language) if departure else "—")
    return Notice(_text("assigned.title", language, request=request_id),
                  _text("assigned.body", language, request=request_id,
                        priority=priority_name(priority, language),
                        origin=_site(origin, sites, language),
                        destination=_site(destination, sites, language),
                        drone=drone_id or "—", flight=flight_id or "—", departure=leaves))


def received_notice(container_id: str, site_id: str, at: datetime, specimens: int,
                    language: str, sites: Mapping[str, SiteLabel]) -> Notice:
    return Notice(_text("received.title", language, container=container_id),
                  _text("received.body", language, site=_site(site_id, sites, language),
                        at=format_time(at, _zone(site_id, sites), language),
                        container=container_id, specimens=specimens))


def report_notice(first: str, last: str, groups: Sequence[Mapping], language: str,
                  sites: Mapping[str, SiteLabel]) -> Notice:
    """The report's title and a line per route, priority and kind (the first REPORT_LINES):
    received of collected, on-time %, P90 end to end."""
    lines = [_text("report.line", language,
                   origin=_site(g["origin_site_id"], sites, language),
                   destination=_site(g["destination_site_id"], sites, language),
                   priority=priority_name(g["priority"], language),
                   received=g["received"], specimens=g["specimens"],
                   on_time="—" if g["on_time_pct"] is None else f"{g['on_time_pct']:.0f}%",
                   p90="—" if g["p90_min"] is None else f"{g['p90_min']:.0f}")
             for g in groups[:REPORT_LINES]]
    if len(groups) > REPORT_LINES:
        lines.append(_text("report.more", language, count=len(groups) - REPORT_LINES))
    return Notice(_text("report.title", language, first=first, last=last),
                  "\n".join(lines) or _text("report.empty", language))


def digest_notice(notices: Sequence[Notice], language: str) -> Notice:
    """Several notices in one message: each one's title and body, in order."""
    parts = [_text("digest.intro", language)]
    parts += [f"{n}. {notice.title}\n{notice.body}" for n, notice in enumerate(notices, 1)]
    return Notice(_text("digest.title", language, count=len(notices)), "\n\n".join(parts))
