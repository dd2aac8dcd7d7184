"""An alert's text, from its code (the kind) and its parameters, in Chinese or English, with
times in the site's time zone.

An alert is stored and sent as a code and parameters (`Condition.params`: the subject, the
sites, times as ISO 8601 in UTC, figures); the text is derived from them, never parsed back.
The dashboards render the same code and parameters with their own templates, in the user's
language (dashboards/js/alert_text.js); MQTT and webhook payloads carry a text rendered here
in the network's language (`DRONELOG_LANGUAGE`), and so does the stored `message`.

Pure: no I/O, no clock. The caller passes the sites it knows (names and time zones).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("zh", "en")
DEFAULT_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class SiteLabel:
    """What a text needs of a site: its names and its time zone."""

    name_zh: str
    name_en: str
    timezone: str = DEFAULT_ZONE

    def name(self, language: str) -> str:
        return self.name_zh if language == "zh" else self.name_en


class MissingParameter(KeyError):
    """The parameters lack what the kind's template needs."""


_PRIORITY = {"zh": {"stat": "急诊", "urgent": "加急", "routine": "常规"},
             "en": {"stat": "STAT", "urgent": "Urgent", "routine": "Routine"}}
_TEMPERATURE_CLASS = {
    "zh": {"refrigerated": "冷藏 2–8 °C", "ambient": "常温 15–25 °C",
           "red_cells": "红细胞 1–10 °C", "platelets": "血小板 20–24 °C",
           "frozen": "冷冻 ≤ −18 °C"},
    "en": {"refrigerated": "Refrigerated 2–8 °C", "ambient": "Ambient 15–25 °C",
           "red_cells": "Red cells 1–10 °C", "platelets": "Platelets 20–24 °C",
           "frozen": "Frozen ≤ −18 °C"},
}
_FINDINGS = ("missing", "extra", "foreign")
_SEPARATOR = {"zh": "；", "en": "; "}
_LIST_SEPARATOR = {"zh": "、", "en": ", "}  # between the items of a short list

# One template per kind and language; a kind with variants picks one by its parameters. The
# dashboards hold the same templates (dashboards/js/i18n.js, `alert.text.*`; a test compares).
_TEMPLATES: dict[str, dict[str, str]] = {
    "turnaround_warning": {
        "zh": "标本 {barcode}（{priority}）已用去大部分周转时限，截止时间 {deadline}",
        "en": "{barcode} ({priority}) has used most of its turnaround budget; "
              "deadline {deadline}"},
    "predicted_breach": {
        "zh": "标本 {barcode}（{priority}）预计无法在截止时间 {deadline} 前送达：预计到达 {eta}",
        "en": "{barcode} ({priority}) will miss its deadline {deadline}: "
              "arrival expected {eta}"},
    "breach": {
        "zh": "标本 {barcode}（{priority}）未在截止时间 {deadline} 前签收",
        "en": "{barcode} ({priority}) not received by its deadline {deadline}"},
    "breach.received": {
        "zh": "标本 {barcode}（{priority}）于 {received_at} 签收，晚于截止时间 {deadline} "
              "{minutes_late} 分钟",
        "en": "{barcode} ({priority}) received at {received_at}, {minutes_late} min after "
              "its deadline {deadline}"},
    "rejected_specimen": {
        "zh": "标本 {barcode} 在{at_site}被拒收：{reason}",
        "en": "{barcode} rejected at {at_site}: {reason}"},
    "custody_gap": {
        "zh": "标本 {barcode} 交接链缺失：{gaps}",
        "en": "{barcode}: custody gap: {gaps}"},
    "temperature_excursion": {
        "zh": "标本 {barcode}（{temperature_class}）超出温度范围共 {seconds_out_of_range} 秒"
              "（最低 {temp_min_c} °C，最高 {temp_max_c} °C）",
        "en": "{barcode} ({temperature_class}) out of its temperature range for "
              "{seconds_out_of_range} s (min {temp_min_c} °C, max {temp_max_c} °C)"},
    "lost_link": {
        "zh": "无人机 {drone_id}（航班 {flight_id}）自 {last_received_at} 起未收到遥测",
        "en": "{drone_id} on {flight_id}: no telemetry received since {last_received_at}"},
    "lost_link.never": {
        "zh": "无人机 {drone_id}（航班 {flight_id}）近期未收到遥测",
        "en": "{drone_id} on {flight_id}: no telemetry received recently"},
    "low_battery": {
        "zh": "无人机 {drone_id} 电量 {battery_pct}%，低于剩余 {remaining_km} 公里航程"
              "所需加备用电量",
        "en": "{drone_id} battery {battery_pct}% is below what {remaining_km} km to go "
              "needs plus the reserve"},
    "off_route": {
        "zh": "无人机 {drone_id} 偏离航线 {off_route_m} 米",
        "en": "{drone_id} is {off_route_m} m off its route"},
    "misrouted": {
        "zh": "标本 {barcode}（{priority}）在{at_site}，不在目的地{destination}："
              "已在该处签收或拒收，仍未完成",
        "en": "{barcode} ({priority}) is at {at_site}, not at its destination {destination}: "
              "it was received or rejected there and stays open"},
    "location_unknown": {
        "zh": "标本 {barcode}（{priority}）：航班 {flight_id} 未在任何站点结束，标本位置不明",
        "en": "{barcode} ({priority}): flight {flight_id} ended away from every site; the "
              "specimen's location is unknown"},
    "custody_anomaly": {
        "zh": "标本 {barcode} 交接记录异常：{anomalies}",
        "en": "{barcode}: custody anomaly: {anomalies}"},
    "description_conflict": {
        "zh": "标本 {barcode} 信息冲突：{conflicts}",
        "en": "{barcode}: description conflict: {conflicts}"},
    "cargo_diverted": {
        "zh": "标本 {barcode}（{priority}）改航偏离目的地{destination}：航班 {flight_id} "
              "现飞往{new_destination}，截止时间 {deadline}",
        "en": "{barcode} ({priority}) diverted away from its destination {destination}: "
              "{flight_id} now flies to {new_destination}; deadline {deadline}"},
    "manifest_discrepancy": {
        "zh": "标本 {barcode} 与箱 {container_id} 的装箱清单不符",
        "en": "{barcode} does not match the manifest of container {container_id}"},
    "manifest_discrepancy.missing": {
        "zh": "箱 {container_id} 缺少标本 {barcode}：装箱清单上有，{at_site}开箱核对时未找到",
        "en": "{barcode} missing from container {container_id}: on its manifest, not found "
              "when {at_site} checked it"},
    "manifest_discrepancy.extra": {
        "zh": "箱 {container_id} 中多出标本 {barcode}：不在装箱清单上",
        "en": "{barcode} found in container {container_id}, not on its manifest"},
    "manifest_discrepancy.foreign": {
        "zh": "标本 {barcode} 出现在箱 {container_id} 中，但它装在箱 {packed_container_id}",
        "en": "{barcode} found in container {container_id}, but it was packed into "
              "{packed_container_id}"},
    "mixed_temperature_classes": {
        "zh": "箱 {container_id} 混装了不同温度要求的标本（{temperature_classes}）："
              "标本 {barcode}（{temperature_class}）须另箱装运",
        "en": "Container {container_id} mixes temperature classes ({temperature_classes}): "
              "{barcode} ({temperature_class}) must be packed apart"},
}

KINDS = frozenset(key for key in _TEMPLATES if "." not in key)


def zone_of(params: Mapping, sites: Mapping[str, SiteLabel]) -> ZoneInfo:
    """The time zone of the alert's site (`site_id`), else Asia/Shanghai."""
    site = sites.get(params.get("site_id") or "")
    try:
        return ZoneInfo(site.timezone if site else DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def render(code: str, params: Mapping, language: str = "zh",
           sites: Mapping[str, SiteLabel] | None = None) -> str:
    """The text of alert `code` with `params` in `language` (zh or en), times in the alert
    site's zone. Raises MissingParameter when a parameter the template needs is absent, and
    KeyError for an unknown code or language."""
    if language not in LANGUAGES:
        raise KeyError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    sites = sites or {}
    zone = zone_of(params, sites)
    template = _TEMPLATES[_variant(code, params)][language]
    values = _Values(params, language, zone, lambda site_id: _site_name(site_id, sites,
                                                                       language))
    return template.format_map(values)


def render_or(fallback: str, code: str, params: Mapping, language: str = "zh",
              sites: Mapping[str, SiteLabel] | None = None) -> str:
    """`render`, or `fallback` when the code is unknown or a parameter is missing."""
    try:
        return render(code, params, language, sites)
    except KeyError:
        return fallback


def priority_name(priority: str | None, language: str) -> str:
    """A priority as the texts name it: 急诊 / STAT, 加急 / Urgent, 常规 / Routine."""
    return _PRIORITY[language].get(priority or "", priority or "")


def _variant(code: str, params: Mapping) -> str:
    if code == "breach" and params.get("received_at"):
        return "breach.received"
    if code == "lost_link" and not params.get("last_received_at"):
        return "lost_link.never"
    if code == "manifest_discrepancy" and params.get("finding") in _FINDINGS:
        return f"{code}.{params['finding']}"
    return code


def _site_name(site_id: str, sites: Mapping[str, SiteLabel], language: str) -> str:
    site = sites.get(site_id)
    return site.name(language) if site else site_id


class _Values(dict):
    """The values a template asks for, each formatted for the language and the zone."""

    _SITES = {"at_site": "at_site_id", "destination": "destination_site_id",
              "new_destination": "new_destination_site_id", "origin": "origin_site_id"}
    _TIMES = ("deadline", "eta", "received_at", "last_received_at", "collected_at")
    _LISTS = ("gaps", "anomalies", "conflicts")

    def __init__(self, params: Mapping, language: str, zone: ZoneInfo,
                 site_name: Callable[[str], str]) -> None:
        super().__init__()
        self.params, self.language, self.zone, self.site_name = params, language, zone, site_name

    def __missing__(self, name: str) -> str:
        if name in self._SITES:
            return self.site_name(self._needed(self._SITES[name]))
        value = self._needed(name)
        if name in self._TIMES:
            return format_time(value, self.zone, self.language)
        if name in self._LISTS:
            return _SEPARATOR[self.language].join(str(item) for item in value)
        if name == "priority":
            return _PRIORITY[self.language].get(value, str(value))
        if name == "temperature_class":
            return _TEMPERATURE_CLASS[self.language].get(value, str(value))
        if name == "temperature_classes":
            return _LIST_SEPARATOR[self.language].join(
                _TEMPERATURE_CLASS[self.language].get(item, str(item)) for item in value)
        if name in ("battery_pct", "off_route_m", "seconds_out_of_range", "minutes_late"):
            return f"{float(value):.0f}"
        if name in ("temp_min_c", "temp_max_c"):
            return f"{float(value):.1f}"
        return str(value)

    def _needed(self, name: str):
        value = self.params.get(name)
        if value is None:
            if name == "remaining_km" and self.params.get("remaining_m") is not None:
                return f"{float(self.params['remaining_m']) / 1000:.1f}"
            raise MissingParameter(name)
        return value


def format_time(value: str | datetime, zone: ZoneInfo, language: str) -> str:
    """An instant (ISO 8601 or a datetime, with its offset) as the site's wall clock:
    '11月20日 10:45' or '20 Nov 10:45'."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    local = moment.astimezone(zone)
    if language == "zh":
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {_MONTHS[local.month - 1]} {local:%H:%M}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
