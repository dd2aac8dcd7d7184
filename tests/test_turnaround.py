"""The turnaround engine over real SQLite and PostgreSQL, on a controllable clock: every alert
kind raised and cleared, predictions before deadlines, excursions on every unit of a
container, two schedulers raising each alert once, and a report checked by hand."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.contract.topics import TopicLayout
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage.network import import_network
from dronelog.storage.portable import as_utc
from dronelog.storage.tables import Alert, AlertChange
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround import alert_store
from dronelog.turnaround.report import compute, nearest_rank
from dronelog.turnaround.service import TurnaroundJobs
from dronelog_sim.scenario import load_scenario

LAYOUT = TopicLayout()
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Pingdu
LAB, TOWN = "pdrmyy", "cjzxwsy"
LAB_POINT, TOWN_POINT, WAYPOINT = (36.7790, 119.9560), (36.6890, 119.7610), (36.7300, 119.8500)


class Network:
    """Stores contract events as the ingester would, and runs the engine, on one clock."""

    def __init__(self, engine, clock: ManualClock, holder: str = "scheduler-a") -> None:
        self.engine, self.clock = engine, clock
        self.writer = BatchWriter(engine, clock)
        self.settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
        self.jobs = TurnaroundJobs(engine, self.settings, clock=clock, holder=holder)

    def at(self, minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    def store(self, *events) -> None:
        accepted = []
        for event in events:
            topic = (LAYOUT.telemetry(event.drone_id) if isinstance(event, m.Telemetry)
                     else LAYOUT.flight(event.drone_id) if isinstance(event, m.FlightEventBase)
                     else LAYOUT.site_custody(event.site_id))
            # telemetry arrives live (received when made); other events when stored
            delivery = Delivery(topic, b"", event.event_time if isinstance(event, m.Telemetry)
                                else self.clock.now())
            accepted.append(Accepted(delivery, LAYOUT.parse(topic), event))
        self.writer.write(accepted, [])

    def sweep_at(self, minutes: float):
        self.clock._now = self.at(minutes)
        return self.jobs.turnaround()

    def alerts(self, state: str | None = None) -> set[tuple[str, str]]:
        table = Alert.__table__
        query = select(table.c.kind, table.c.subject_id)
        if state:
            query = query.where(table.c.state == state)
        with self.engine.connect() as connection:
            return {(row.kind, row.subject_id) for row in connection.execute(query)}

    def active(self) -> set[tuple[str, str]]:
        return self.alerts("open") | self.alerts("acknowledged")

    def turnaround(self) -> set[tuple[str, str]]:
        """Active turnaround alerts (a specimen received without its middle steps also has
        a custody gap, which these tests leave aside)."""
        kinds = {"turnaround_warning", "predicted_breach", "breach"}
        return {(kind, subject) for kind, subject in self.active() if kind in kinds}


def _ids():
    return dict(schema_version=1, event_id=uuid.uuid4())


def collected(barcode, at, priority="stat", kind="blood_sample", temperature_class="ambient"):
    return m.Collected(**_ids(), kind="collected", event_time=at, barcode=barcode, site_id=TOWN,
                       actor={"kind": "staff", "id": "nurse-1"},
                       specimen={"kind": kind, "priority": priority,
                                 "temperature_class": temperature_class,
                                 "origin_site_id": TOWN, "destination_site_id": LAB,
                                 "order_ref": "ORD-1"})


def packed(barcode, at, box="BOX-1", seal="SEAL-1"):
    return m.Packed(**_ids(), kind="packed", event_time=at, barcode=barcode, site_id=TOWN,
                    actor={"kind": "staff", "id": "nurse-1"}, container_id=box, seal_id=seal)


def loaded(barcode, at, flight="F1", box="BOX-1"):
    return m.Loaded(**_ids(), kind="loaded", event_time=at, barcode=barcode, site_id=TOWN,
                    actor={"kind": "staff", "id": "crew-1"}, container_id=box,
                    flight_id=flight, drone_id="uav-02")


def unloaded(barcode, at, flight="F1", box="BOX-1", seal="SEAL-1"):
    return m.Unloaded(**_ids(), kind="unloaded", event_time=at, barcode=barcode, site_id=LAB,
                      actor={"kind": "drone", "id": "uav-02"}, container_id=box,
                      flight_id=flight, drone_id="uav-02", seal_id=seal)


def received(barcode, at, seal="SEAL-1"):
    return m.Received(**_ids(), kind="received", event_time=at, barcode=barcode, site_id=LAB,
                      actor={"kind": "staff", "id": "lab-1"}, seal_id=seal)


def rejected(barcode, at):
    return m.Rejected(**_ids(), kind="rejected", event_time=at, barcode=barcode, site_id=LAB,
                      actor={"kind": "staff", "id": "lab-1"}, reason="hemolysed")


def flight(kind, at, flight_id="F1", **fields):
    model = {"planned": m.FlightPlanned, "takeoff": m.FlightTakeoff,
             "landed": m.FlightLanded}[kind]
    if kind == "planned":
        fields = {"origin_site_id": TOWN, "destination_site_id": LAB} | fields
    elif "site_id" not in fields:
        fields["site_id"] = TOWN if kind == "takeoff" else LAB
    return model(**_ids(), kind=kind, event_time=at, drone_id="uav-02", flight_id=flight_id,
                 **fields)


def position(at, point, seq=0, speed=18.0, battery=80.0, temp=20.0, flight_id="F1"):
    return m.Telemetry(**_ids(), event_time=at, drone_id="uav-02", seq=seq, flight_id=flight_id,
                       lat=point[0], lon=point[1], alt_m=170, ground_speed_mps=speed,
                       heading_deg=60, battery_pct=battery, payload_temp_c=temp)


def between(a, b, fraction):
    return (a[0] + (b[0] - a[0]) * fraction, a[1] + (b[1] - a[1]) * fraction)


@pytest.fixture
def net(engine):
    import_network(engine, load_scenario(Path(__file__).parent.parent / "scenarios" /
                                         "pingdu.toml"))
    return Network(engine, ManualClock(T0))


def airborne(net, takeoff_min=5, barcodes=("SP-1",), flight_id="F1"):
    """Specimens collected at 0, packed, loaded and flying from TOWN since `takeoff_min`."""
    for barcode in barcodes:
        net.store(collected(barcode, net.at(0)), packed(barcode, net.at(2)),
                  loaded(barcode, net.at(4), flight_id))
    net.store(flight("planned", net.at(1), flight_id), flight("takeoff", net.at(takeoff_min),
                                                              flight_id))


def test_warning_then_breach_and_the_breach_stays_after_a_late_receipt(net):
    net.store(collected("SP-1", net.at(0)))
    assert net.sweep_at(10).opened == 0 and net.turnaround() == set()
    net.sweep_at(34)  # 75 % of 45 min is 33.75 min
    assert net.turnaround() == {("turnaround_warning", "SP-1")}
    net.sweep_at(46)
    assert net.turnaround() == {("breach", "SP-1")}
    assert ("turnaround_warning", "SP-1") in net.alerts("resolved")
    net.store(received("SP-1", net.at(50)))
    net.sweep_at(51)
    net.sweep_at(52)
    assert net.turnaround() == {("breach", "SP-1")}
    assert {a for a in net.alerts() if a[0] != "custody_gap"} == {
        ("turnaround_warning", "SP-1"), ("breach", "SP-1")}


def test_a_warning_clears_itself_when_the_specimen_arrives_in_time(net):
    net.store(collected("SP-1", net.at(0)))
    net.sweep_at(35)
    assert net.turnaround() == {("turnaround_warning", "SP-1")}
    net.store(received("SP-1", net.at(40)))
    net.sweep_at(41)
    assert net.turnaround() == set()
    assert net.alerts("resolved") == {("turnaround_warning", "SP-1")}


def test_a_kind_limit_shortens_the_deadline(net):
    net.store(collected("GAS1", net.at(0), priority="urgent", kind="blood_gas"))
    net.sweep_at(31)
    assert net.active() == {("breach", "GAS1")}


def test_a_predicted_breach_fires_before_the_deadline(net):
    airborne(net)
    # halfway to the waypoint at 20 min, crawling at 3 m/s: about 16 km to go, some 90 min
    here = between(TOWN_POINT, WAYPOINT, 0.5)
    net.store(*[position(net.at(19 + s / 60), here, seq=s, speed=3.0) for s in range(0, 60, 5)])
    run = net.sweep_at(20)
    assert run is not None and run.opened >= 1
    assert net.turnaround() == {("predicted_breach", "SP-1")}  # no breach yet: a prediction
    with net.engine.connect() as connection:
        opened_at, details = connection.execute(
            select(Alert.__table__.c.opened_at, Alert.__table__.c.details).where(
                Alert.__table__.c.kind == "predicted_breach")).one()
    details = json.loads(details)
    deadline = datetime.fromisoformat(details["deadline"])
    assert deadline == net.at(45)  # collected at 0, STAT: 45 minutes
    assert as_utc(opened_at) == net.at(20) < deadline  # raised 25 minutes before it
    assert datetime.fromisoformat(details["eta"]) > deadline


def test_no_prediction_for_a_flight_that_will_make_it(net):
    airborne(net)
    here = between(WAYPOINT, LAB_POINT, 0.8)  # nearly there at full speed
    net.store(*[position(net.at(19 + s / 60), here, seq=s) for s in range(0, 60, 5)])
    net.sweep_at(20)
    assert ("predicted_breach", "SP-1") not in net.active()


def test_lost_link_is_raised_and_cleared_by_the_next_report(net):
    airborne(net)
    net.store(position(net.at(6), between(TOWN_POINT, WAYPOINT, 0.1)))
    net.sweep_at(6.3)
    assert ("lost_link", "F1") not in net.active()
    net.sweep_at(7)  # 60 s of silence
    assert ("lost_link", "F1") in net.active()
    net.store(position(net.at(7.1), between(TOWN_POINT, WAYPOINT, 0.2), seq=1))
    net.sweep_at(7.2)
    assert ("lost_link", "F1") not in net.active()
    assert ("lost_link", "F1") in net.alerts("resolved")


def test_off_route_is_raised_and_cleared(net):
    airborne(net)
    on_route = between(TOWN_POINT, WAYPOINT, 0.5)
    off = (on_route[0] + 0.01, on_route[1])  # about 1.1 km north of the leg
    net.store(position(net.at(10), off))
    net.sweep_at(10.1)
    assert ("off_route", "F1") in net.active()
    net.store(position(net.at(10.5), on_route, seq=1))
    net.sweep_at(10.6)
    assert ("off_route", "F1") not in net.active()


def test_low_battery_when_the_rest_of_the_way_needs_more_than_is_left(net):
    airborne(net)
    # at 18 m/s, draining 0.5 % every 5 s (90 m), with some 15 km to go at about 29 %
    reports = [position(net.at(10 + s / 60), between(TOWN_POINT, WAYPOINT, 0.1 + s * 0.002),
                        seq=s, battery=40 - s * 0.1) for s in range(0, 115, 5)]
    net.store(*reports)
    net.sweep_at(12)
    assert ("low_battery", "F1") in net.active()


def test_an_excursion_is_flagged_on_every_specimen_in_the_container(net):
    barcodes = ("RF-1", "RF-2", "RF-3")
    for barcode in barcodes:
        net.store(collected(barcode, net.at(0), priority="routine",
                            temperature_class="refrigerated"),
                  packed(barcode, net.at(2)), loaded(barcode, net.at(4)))
    net.store(flight("planned", net.at(1)), flight("takeoff", net.at(5)))
    # out of 2-8 °C from minute 6 on; each report counts until the next one: 5 x 60 s
    temps = [5.0] * 6 + [11.0, 12.5, 12.0, 11.5, 10.0, 9.0]
    net.store(*[position(net.at(5 + i), between(TOWN_POINT, WAYPOINT, i / 12), seq=i,
                         temp=t) for i, t in enumerate(temps)])
    net.store(flight("landed", net.at(17)))
    net.sweep_at(18)
    assert {s for k, s in net.active() if k == "temperature_excursion"} == set(barcodes)
    with net.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT barcode, temp_min_c, temp_max_c, temp_out_of_range_s FROM "
            "specimen_tracking ORDER BY barcode")).all()
    assert [(r.temp_min_c, r.temp_max_c, r.temp_out_of_range_s) for r in rows] == \
        [(5.0, 12.5, 300.0)] * 3


def test_a_changed_seal_is_a_custody_gap_and_a_rejection_is_an_alert(net):
    net.store(collected("SP-1", net.at(0)), packed("SP-1", net.at(2)), loaded("SP-1", net.at(4)),
              flight("planned", net.at(1)), flight("takeoff", net.at(5)),
              flight("landed", net.at(25)), unloaded("SP-1", net.at(26), seal="SEAL-9"),
              received("SP-1", net.at(28), seal="SEAL-9"))
    net.store(collected("SP-2", net.at(0)), received("SP-2", net.at(30)),
              rejected("SP-2", net.at(31)))
    net.sweep_at(32)
    active = net.active()
    assert ("custody_gap", "SP-1") in active and ("custody_gap", "SP-2") in active
    assert ("rejected_specimen", "SP-2") in active


def test_acknowledge_and_resolve_by_hand_with_who_when_and_a_note(net):
    net.store(rejected("SP-9", net.at(0)), collected("SP-9", net.at(-5)))
    net.sweep_at(1)
    with net.engine.begin() as connection:
        alert_id = connection.execute(select(Alert.__table__.c.id).where(
            Alert.__table__.c.kind == "rejected_specimen")).scalar_one()
        alert_store.acknowledge(connection, alert_id, "lab-tech-01", net.at(2))
        with pytest.raises(alert_store.AlertError, match="only an open alert"):
            alert_store.acknowledge(connection, alert_id, "lab-tech-02", net.at(3))
        with pytest.raises(alert_store.AlertError, match="needs a note"):
            alert_store.resolve(connection, alert_id, "lab-tech-01", " ", net.at(3))
        alert_store.resolve(connection, alert_id, "lab-tech-01", "recollected", net.at(4))
    net.sweep_at(5)
    with net.engine.connect() as connection:
        row = connection.execute(select(Alert.__table__).where(
            Alert.__table__.c.id == alert_id)).mappings().one()
        changes = connection.execute(select(AlertChange.__table__.c.change).where(
            AlertChange.__table__.c.alert_id == alert_id).order_by(
            AlertChange.__table__.c.id)).scalars().all()
    assert (row["state"], row["acknowledged_by"], row["resolved_by"],
            row["resolution_note"]) == ("resolved", "lab-tech-01", "lab-tech-01", "recollected")
    assert changes == ["opened", "acknowledged", "resolved"]
    assert ("rejected_specimen", "SP-9") not in net.active()  # latched: not raised again


def test_two_schedulers_raise_each_alert_once_and_one_takes_over(net):
    other = TurnaroundJobs(net.engine, net.settings, clock=net.clock, holder="scheduler-b")
    net.store(*[collected(f"SP-{i}", net.at(0)) for i in range(5)])
    for minute in (34, 34.2, 35, 36, 46, 46.5, 47):
        net.clock._now = net.at(minute)
        first, second = net.jobs.turnaround(), other.turnaround()
        assert first is not None and second is None  # the lease holder works, the other waits
    assert len(net.alerts()) == 10  # five warnings, five breaches
    with net.engine.connect() as connection:
        opened = connection.execute(text(
            "SELECT count(*) FROM alert_change WHERE change = 'opened'")).scalar_one()
    assert opened == 10
    net.clock._now = net.at(60)  # scheduler-a stopped renewing; its lease expired
    assert other.turnaround() is not None
    assert net.jobs.turnaround() is None


def test_restart_safe_a_new_scheduler_continues_from_the_stored_watermark(net):
    net.store(collected("SP-1", net.at(0)))
    net.sweep_at(35)
    restarted = Network(net.engine, net.clock, holder="scheduler-a")
    restarted.store(received("SP-1", net.at(40)))
    restarted.sweep_at(41)
    assert restarted.turnaround() == set()


def test_nearest_rank_percentiles():
    assert nearest_rank([], 50) is None
    assert nearest_rank([7.0], 90) == 7.0
    assert nearest_rank([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert nearest_rank([4.0, 1.0, 3.0, 2.0], 90) == 4.0


def test_report_figures_equal_a_hand_computed_day(net):
    # four STAT specimens on cjzxwsy -> pdrmyy, two flights, one late, one rejected,
    # one out of temperature
    plan = [("SP-A", 0, 4, 26, 30), ("SP-B", 0, 4, 26, 40), ("SP-C", 10, 50, 72, 80)]
    for barcode, col, load, land, rec in plan:
        flight_id = "F1" if load < 10 else "F2"
        net.store(collected(barcode, net.at(col)), packed(barcode, net.at(col + 2)),
                  loaded(barcode, net.at(load), flight_id),
                  unloaded(barcode, net.at(land + 1), flight_id),
                  received(barcode, net.at(rec)))
    for flight_id, off, land in (("F1", 6, 26), ("F2", 52, 72)):
        net.store(flight("planned", net.at(off - 5), flight_id),
                  flight("takeoff", net.at(off), flight_id),
                  flight("landed", net.at(land), flight_id))
    net.store(*[position(net.at(52 + i), between(TOWN_POINT, LAB_POINT, i / 20), seq=i,
                         temp=30.0, flight_id="F2") for i in range(20)])
    net.store(collected("SP-D", net.at(5)), rejected("SP-D", net.at(20)))
    net.sweep_at(90)
    with net.engine.connect() as connection:
        rows = compute(connection, date(2026, 11, 20), "Asia/Shanghai", net.at(90))
    assert len(rows) == 1
    row = rows[0]
    # end to end: A 30, B 40, C 70 min; deadline 45 min: A, B on time
    assert (row["specimens"], row["received"], row["on_time"]) == (4, 3, 2)
    assert row["on_time_pct"] == pytest.approx(66.7)
    assert (row["p50_min"], row["p90_min"]) == (40.0, 70.0)
    # collected -> loaded: A 4, B 4, C 40; flight: 20, 20, 20; landed -> received: 4, 14, 8
    assert (row["p50_collected_to_loaded_min"], row["p90_collected_to_loaded_min"]) == (4, 40)
    assert (row["p50_flight_min"], row["p90_flight_min"]) == (20, 20)
    assert (row["p50_landed_to_received_min"], row["p90_landed_to_received_min"]) == (8, 14)
    assert (row["excursions"], row["rejections"], row["flights"]) == (1, 1, 2)


def test_pad_departures_and_arrivals_are_recorded_once(net):
    airborne(net)
    path = [TOWN_POINT] + [between(TOWN_POINT, WAYPOINT, f) for f in (0.01, 0.5, 1.0)] + \
        [between(WAYPOINT, LAB_POINT, f) for f in (0.5, 0.995)] + [LAB_POINT]
    net.store(*[position(net.at(5 + i), point, seq=i) for i, point in enumerate(path)])
    net.store(flight("landed", net.at(12)))
    net.sweep_at(12.5)
    net.sweep_at(13)
    with net.engine.connect() as connection:
        events = connection.execute(text(
            "SELECT kind, site_id FROM pad_event WHERE flight_id = 'F1' ORDER BY at")).all()
    assert [tuple(e) for e in events] == [("departure", TOWN), ("arrival", LAB)]


def test_the_policy_file_of_the_settings_is_the_one_used(engine, tmp_path):
    from dronelog.domain.policies import PolicyBook

    shipped = Path(__file__).parent.parent / "config" / "turnaround.toml"
    jobs = TurnaroundJobs(engine, Settings(database_url=str(engine.url), policy_file=str(shipped)))
    assert jobs.limits.policies == PolicyBook.default()
    stricter = tmp_path / "policy.toml"
    stricter.write_text(shipped.read_text(encoding="utf-8").replace(
        "[defaults.stat]\ntarget_min = 45", "[defaults.stat]\ntarget_min = 20"), encoding="utf-8")
    jobs = TurnaroundJobs(engine, Settings(database_url=str(engine.url),
                                           policy_file=str(stricter)))
    from dronelog.domain.facts import SpecimenFacts

    stat = SpecimenFacts("SP-9", "blood_sample", "stat", "ambient", TOWN, LAB)
    assert jobs.limits.for_specimen(stat).target_min == 20
