"""The notification rules, pure: routing, quiet hours at their edges, escalation at exactly N
minutes, the rate limit's digests (nothing dropped), retries, report periods; and the texts
in both languages."""

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from dronelog.domain import notice_text
from dronelog.domain.alert_text import SiteLabel
from dronelog.domain.notifications import (
    MAX_ATTEMPTS,
    Occurrence,
    Period,
    QuietHours,
    RouteRule,
    Source,
    escalation_due,
    ration,
    release_at,
    report_due,
    retry_delay,
    routes_for,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = QuietHours(time(22, 0), time(7, 0))
SITES = {"pd-lab": SiteLabel("平度市人民医院", "Pingdu People's Hospital"),
         "cj": SiteLabel("崔家中心卫生院", "Cuijia health centre")}


def local(hour: int, minute: int = 0, second: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


def route(**fields) -> RouteRule:
    return RouteRule(**{"id": 1, "source": Source.ALERT, "channel": "wecom"} | fields)


def alert(**fields) -> Occurrence:
    return Occurrence(**{"source": Source.ALERT, "site_ids": ("pd-lab",),
                         "kind": "breach", "severity": "critical", "priority": "stat"}
                      | fields)


@pytest.mark.parametrize("rule, occurrence, taken", [
    (route(), alert(), True),
    (route(source=Source.LANDING), alert(), False),
    (route(active=False), alert(), False),
    (route(alert_kinds=frozenset({"lost_link"})), alert(), False),
    (route(alert_kinds=frozenset({"breach", "lost_link"})), alert(), True),
    (route(site_ids=frozenset({"cj"})), alert(), False),
    (route(site_ids=frozenset({"cj"})), alert(site_ids=("pd-lab", "cj")), True),
    (route(priorities=frozenset({"stat"})), alert(priority="routine"), False),
    (route(priorities=frozenset({"stat"})), alert(priority=None), False),
    (route(min_severity="high"), alert(severity="high"), True),
    (route(min_severity="high"), alert(severity="medium"), False),
    (route(min_severity="critical"), alert(severity="high"), False),
])
def test_a_route_takes_what_its_kinds_sites_priorities_and_severity_allow(rule, occurrence,
                                                                          taken):
    assert (routes_for([rule], occurrence) == [rule]) is taken


def test_alert_routes_are_taken_by_tier():
    opening, tier15, tier60 = route(id=1), route(id=2, after_min=15), route(id=3, after_min=60)
    routes = [opening, tier15, tier60]
    assert routes_for(routes, alert()) == [opening]
    assert routes_for(routes, alert(), after_min=None) == [tier15, tier60]
    landing = route(id=4, source=Source.LANDING, after_min=0)
    assert routes_for([landing], Occurrence(Source.LANDING, ("pd-lab",)), after_min=None) \
        == [landing]


@pytest.mark.parametrize("at, held_until", [
    (local(21, 59, 59), None),  # before the start: at once
    (local(22, 0), local(7, 0, day=6)),  # the start is quiet
    (local(23, 30), local(7, 0, day=6)),
    (local(3, 0, day=6), local(7, 0, day=6)),  # after midnight: the same morning
    (local(6, 59, 59, day=6), local(7, 0, day=6)),
    (local(7, 0, day=6), None),  # the end is not quiet
])
def test_quiet_hours_hold_a_notice_until_they_end_on_the_sites_clock(at, held_until):
    assert release_at(NIGHT, at, SHANGHAI) == (held_until or at)
    assert release_at(NIGHT, at, SHANGHAI, critical=True) == at
    assert release_at(None, at, SHANGHAI) == at


def test_quiet_hours_within_a_day_and_an_empty_window():
    lunch = QuietHours(time(12, 0), time(13, 30))
    assert release_at(lunch, local(12, 0), SHANGHAI) == local(13, 30)
    assert release_at(lunch, local(13, 30), SHANGHAI) == local(13, 30)
    assert release_at(lunch, local(11, 59), SHANGHAI) == local(11, 59)
    assert not QuietHours(time(8), time(8)).holds(time(8))


def test_quiet_hours_are_the_sites_wall_clock_not_utc():
    # 23:00 in Shanghai is 15:00 UTC: quiet there
    assert release_at(NIGHT, local(23, 0), SHANGHAI) == local(7, 0, day=6)
    assert release_at(NIGHT, local(23, 0), ZoneInfo("UTC")) == local(23, 0)


def test_escalation_is_due_at_exactly_n_minutes_while_nobody_acknowledged():
    opened = local(10, 0)
    assert not escalation_due(15, opened, "open", opened + timedelta(minutes=15, seconds=-1))
    assert escalation_due(15, opened, "open", opened + timedelta(minutes=15))
    assert not escalation_due(15, opened, "acknowledged", opened + timedelta(minutes=20))
    assert not escalation_due(15, opened, "resolved", opened + timedelta(minutes=20))
    assert not escalation_due(0, opened, "open", opened + timedelta(minutes=20))


def test_retries_back_off_doubling_to_an_hour_and_give_up_at_the_last_attempt():
    assert retry_delay(1) == timedelta(seconds=30)
    assert retry_delay(2) == timedelta(seconds=60)
    assert retry_delay(7) == timedelta(seconds=30 * 64)
    assert retry_delay(8) == timedelta(hours=1)  # 30 s x 128 is past the cap
    assert retry_delay(MAX_ATTEMPTS - 1) == timedelta(hours=1)
    assert retry_delay(MAX_ATTEMPTS) is None


NOW = local(12, 0)


def test_the_rate_limit_sends_within_the_hour_and_digests_the_rest():
    pending = list(range(10))
    assert ration(pending, [], NOW, 10).single == pending
    sent_earlier = [NOW - timedelta(minutes=30)] * 6  # 4 left in the hour
    portion = ration(pending, sent_earlier, NOW, 10)
    assert portion.single == [0, 1, 2] and portion.digests == [[3, 4, 5, 6, 7, 8, 9]]
    sent = portion.single + [i for d in portion.digests for i in d]
    assert sorted(sent) == pending  # nothing dropped


def test_the_rate_window_is_the_last_hour():
    full = [NOW - timedelta(hours=1) + timedelta(seconds=1)] * 5
    assert ration([1], full, NOW, 5).single == []  # still in the window: wait
    gone = [NOW - timedelta(hours=1)] * 5
    assert ration([1], gone, NOW, 5).single == [1]  # exactly an hour ago: out of it


def test_a_digest_per_recipient_group_and_groups_without_room_wait():
    pending = [("a", 1), ("b", 2), ("a", 3), ("c", 4)]
    portion = ration(pending, [], NOW, 3, group=lambda item: item[0])
    assert portion.single == []
    assert portion.digests == [[("a", 1), ("a", 3)], [("b", 2)], [("c", 4)]]
    tight = ration(pending, [], NOW, 2, group=lambda item: item[0])
    assert tight.digests == [[("a", 1), ("a", 3)], [("b", 2)]]  # c waits for the next hour


@pytest.mark.parametrize("now, expected", [
    (local(7, 59, 59), (date(2026, 12, 3), date(2026, 12, 3))),
    (local(8, 0), (date(2026, 12, 4), date(2026, 12, 4))),
])
def test_a_daily_report_is_yesterdays_from_its_local_time(now, expected):
    assert report_due(Period.DAILY, time(8, 0), now, SHANGHAI) == expected


@pytest.mark.parametrize("now, expected", [
    # 2026-12-07 is a Monday
    (local(7, 59, day=7), (date(2026, 11, 23), date(2026, 11, 29))),
    (local(8, 0, day=7), (date(2026, 11, 30), date(2026, 12, 6))),
    (local(23, 0, day=13), (date(2026, 11, 30), date(2026, 12, 6))),
])
def test_a_weekly_report_is_last_iso_weeks_from_monday_at_its_local_time(now, expected):
    assert report_due(Period.WEEKLY, time(8, 0), now, SHANGHAI) == expected


def test_texts_exist_in_both_languages_and_carry_the_sites_wall_clock():
    row = SimpleNamespace(id=7, kind="lost_link", severity="high", message="stored",
                          site_id="pd-lab", opened_at=local(10, 5))
    params = {"drone_id": "uav-3", "flight_id": "F-1", "silent_s": 45,
              "last_seen_at": local(10, 4).isoformat(), "site_id": "pd-lab"}
    zh = notice_text.alert_notice(row, params, "zh", SITES)
    en = notice_text.alert_notice(row, params, "en", SITES, unacknowledged_min=15)
    assert "平度市人民医院" in zh.title and "12月5日 10:05" in zh.body
    assert "Unacknowledged for 15 min" in en.title and "5 Dec 10:05" in en.body
    landing = notice_text.landing_notice("F-1", "pd-lab", local(10, 20), local(10, 12), 3, 1,
                                         "zh", SITES)
    assert "10:20" in landing.body and "8 分钟" in landing.body and "急诊 1 件" in landing.body
    assigned = notice_text.assigned_notice("REQ-1", "stat", "cj", "pd-lab", "uav-3", "F-1",
                                           local(9, 30), "en", SITES)
    assert "STAT" in assigned.body and "Cuijia" in assigned.body and "09:30" in assigned.body
    received = notice_text.received_notice("BOX-1", "pd-lab", local(10, 30), 4, "zh", SITES)
    assert "BOX-1" in received.title and "10:30" in received.body
    digest = notice_text.digest_notice([zh, received], "en")
    assert digest.title == "[Digest] 2 notices" and zh.body in digest.body


def test_a_report_text_lists_its_groups_up_to_the_limit():
    group = {"origin_site_id": "cj", "destination_site_id": "pd-lab", "priority": "stat",
             "received": 9, "specimens": 10, "on_time_pct": 88.9, "p90_min": 41.2}
    short = notice_text.report_notice("2026-12-04", "2026-12-04", [group], "zh", SITES)
    assert "崔家中心卫生院 → 平度市人民医院（急诊）：9/10" in short.body and "89%" in short.body
    long = notice_text.report_notice("2026-11-30", "2026-12-06",
                                     [group] * (notice_text.REPORT_LINES + 3), "en", SITES)
    assert long.body.splitlines()[-1] == "... 3 more, see the attachment"
    assert "No specimens" in notice_text.report_notice("a", "b", [], "en", SITES).body
