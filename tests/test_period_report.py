"""The turnaround report over a period: its bounds in the network's zone (the edges of the
period), percentiles per route, priority, kind and leg (loaded → take-off included),
rejections by reason and site, excursions per route, manifest discrepancies; through the
API as JSON, CSV and PDF, with a maximum span."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from dronelog.api.accounts import Role
from dronelog.storage.tables import Alert, SpecimenTracking
from dronelog.turnaround.period_report import (
    MAX_DAYS,
    Period,
    PeriodTooLong,
    month_of,
    summarise,
    week_of,
)
from tests.support import LAB, TOWN

ZONE = "Asia/Shanghai"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Pingdu, Monday 2 November


def specimen(barcode, minutes=(10, 3, 12, 5), collected=T0, state="received", **fields):
    """A specimen on TOWN → LAB whose legs take `minutes` (collected→loaded, loaded→take-off,
    flight, landed→received)."""
    loaded = collected + timedelta(minutes=minutes[0])
    took_off = loaded + timedelta(minutes=minutes[1])
    landed = took_off + timedelta(minutes=minutes[2])
    received = landed + timedelta(minutes=minutes[3])
    row = dict(barcode=barcode, state=state, priority="stat", kind="blood_sample",
               origin_site_id=TOWN, destination_site_id=LAB, site_id=LAB,
               collected_at=collected, loaded_at=loaded, took_off_at=took_off,
               landed_at=landed, received_at=received if state == "received" else None,
               rejected_at=received if state == "rejected" else None, rejection_reason=None,
               deadline=collected + timedelta(minutes=45), excursion=False)
    row.update(fields)
    return SimpleNamespace(**row)


def test_percentiles_per_leg_with_loaded_to_take_off():
    rows = [specimen(f"S{i}", minutes=(10, take_off, 12, 5))
            for i, take_off in enumerate([1, 2, 3, 4, 30])]
    report = summarise(rows, [])
    (group,) = report["groups"]
    assert (group["p50_loaded_to_took_off_min"], group["p90_loaded_to_took_off_min"]) == (3, 30)
    assert group["n_loaded_to_took_off"] == 5
    assert (group["p50_flight_min"], group["p90_flight_min"]) == (12, 12)
    # end to end: 10 + take-off + 12 + 5, nearest rank
    assert (group["p50_min"], group["p90_min"]) == (30, 57)
    assert group["on_time"] == 4 and group["on_time_pct"] == 80.0  # 57 min > 45 min budget


def test_rejected_specimens_count_by_reason_and_site_and_not_in_end_to_end_times():
    rows = [specimen("S1"), specimen("S2", state="rejected", rejection_reason="hemolysed"),
            # rejected after its receipt: a rejection, not an end-to-end time
            specimen("S3", state="rejected", rejection_reason="hemolysed",
                     received_at=T0 + timedelta(minutes=30)),
            specimen("S4", state="rejected", rejection_reason="temperature", site_id=TOWN),
            specimen("S5", excursion=True)]
    report = summarise(rows, [])
    assert report["rejections"] == [{"reason": "hemolysed", "site_id": LAB, "count": 2},
                                    {"reason": "temperature", "site_id": TOWN, "count": 1}]
    (group,) = report["groups"]
    assert group["n"] == 2 and group["rejections"] == 3 and group["excursions"] == 1
    assert report["routes"] == [{"origin_site_id": TOWN, "destination_site_id": LAB,
                                 "specimens": 5, "excursions": 1}]


def test_a_leg_timed_backwards_is_left_out():
    rows = [specimen("S1"), specimen("S2", minutes=(10, -4, 12, 5))]
    (group,) = summarise(rows, [])["groups"]
    assert group["n_loaded_to_took_off"] == 1 and group["p90_loaded_to_took_off_min"] == 3


def test_discrepancies_per_site_and_finding():
    alerts = [SimpleNamespace(site_id=LAB, details=json.dumps({"finding": f}))
              for f in ("missing", "missing", "extra")]
    assert summarise([], alerts)["discrepancies"] == [
        {"site_id": LAB, "finding": "missing", "count": 2},
        {"site_id": LAB, "finding": "extra", "count": 1}]


def test_periods_are_bounded_and_in_the_network_zone():
    start, end = Period(date(2026, 11, 2), date(2026, 11, 8)).bounds(ZONE)
    assert start == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 8, 16, 0, tzinfo=UTC)
    assert week_of(date(2026, 11, 4)) == Period(date(2026, 11, 2), date(2026, 11, 8))
    assert month_of(date(2026, 2, 14)) == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert Period(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=MAX_DAYS - 1)).days == 92
    with pytest.raises(PeriodTooLong):
        Period(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=MAX_DAYS))
    with pytest.raises(PeriodTooLong):
        Period(date(2026, 1, 2), date(2026, 1, 1))


def _store(engine, rows, alerts=()):
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(SpecimenTracking.__table__.insert(), [
            {**vars(r), "is_open": False, "temperature_class": "ambient", "custody_gaps": "[]",
             "anomalies": "[]", "description_conflicts": "[]",
             "warning_at": r.deadline, "updated_at": now} for r in rows])
        if alerts:
            connection.execute(Alert.__table__.insert(), list(alerts))


def test_the_api_reports_a_period_as_json_csv_and_pdf(api, engine):
    # the edges: collected at 00:00 local on the first day is in, at 00:00 after the last
    # day is out; 23:59 of the day before is out
    first_midnight = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    _store(engine, [specimen("IN-FIRST", collected=first_midnight),
                    specimen("IN-LAST", collected=first_midnight + timedelta(days=7, minutes=-1),
                             minutes=(10, 7, 12, 5)),
                    specimen("OUT-BEFORE", collected=first_midnight - timedelta(minutes=1)),
                    specimen("OUT-AFTER", collected=first_midnight + timedelta(days=7)),
                    specimen("REJ", collected=T0, state="rejected",
                             rejection_reason="hemolysed")],
           [{"subject_kind": "specimen", "subject_id": "X1", "kind": "manifest_discrepancy",
             "severity": "warning", "state": "open", "message": "m", "site_id": LAB,
             "details": json.dumps({"finding": "missing"}), "opened_at": T0}])
    lab = api.as_role(Role.LAB)
    params = {"from": "2026-11-02", "to": "2026-11-08"}
    body = api.http.get("/api/v1/reports/period", params=params, headers=lab).json()
    (group,) = body["groups"]
    assert (group["specimens"], group["received"], group["rejections"]) == (3, 2, 1)
    assert group["p90_loaded_to_took_off_min"] == 7
    assert body["rejections"] == [{"reason": "hemolysed", "site_id": LAB, "count": 1}]
    assert body["discrepancies"] == [{"site_id": LAB, "finding": "missing", "count": 1}]
    assert body["timezone"] == "Asia/Shanghai"
    response = api.http.get("/api/v1/reports/period", params={**params, "format": "csv",
                                                               "table": "rejections"},
                            headers=lab)
    assert response.headers["content-type"].startswith("text/csv")
    assert list(csv.DictReader(io.StringIO(response.text))) == [
        {"reason": "hemolysed", "site_id": LAB, "count": "1"}]
    pdf = api.http.get("/api/v1/reports/period", params={**params, "format": "pdf"},
                       headers=lab)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 1000
    too_long = api.http.get("/api/v1/reports/period",
                            params={"from": "2026-01-01", "to": "2026-12-31"}, headers=lab)
    assert too_long.status_code == 422 and "92 days" in too_long.json()["detail"]
    assert api.http.get("/api/v1/reports/period", params=params).status_code == 401
