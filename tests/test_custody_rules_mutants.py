"""Custody rules at their boundaries: each test here kills a mutant of issue 12's rules that
the other tests let live (a rule taken out, a tolerance widened, a rank swapped, a batch
path left unchecked). Domain tests first; then the shell (writer, hash chain, tracker,
sweep, report) on a real database with a ManualClock."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select, text

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.config import Settings
from dronelog.contract import messages as m
from dronelog.contract.examples import EXAMPLES
from dronelog.domain.custody_rules import Description, DescriptionSource, Sender, choose_description
from dronelog.domain.facts import CustodyFact, FlightFact, SpecimenFacts
from dronelog.domain.flights import flight_status
from dronelog.domain.specimens import SpecimenState, problems, specimen_status
from dronelog.domain.turnaround import turnaround_status
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.storage import custody_chain
from dronelog.storage.tables import Alert
from dronelog.storage.writer import BatchWriter
from dronelog.turnaround.report import compute
from dronelog.turnaround.service import TurnaroundJobs
from tests.support import LAYOUT

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in the network's time zone
ORIGIN, DEST, ALT, OTHER = "cjzxwsy", "pdrmyy", "pddermyy", "wjwsy"
BARCODE = "CJZXWS26112000001"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- the story, on the domain ------------------------------------------------------------------

def fact(event_id, kind, minute, site, stored=None, **fields) -> CustodyFact:
    actor_kind = "drone" if kind == "unloaded" else "staff"
    return CustodyFact(event_id, BARCODE, kind, site, actor_kind, "a-1", at(minute),
                       received_at=at(stored if stored is not None else minute), **fields)


def flight(flight_id, origin, destination, *steps):
    facts = [FlightFact(f"{flight_id}-p", flight_id, "uav-01", "planned", at(0),
                        origin_site_id=origin, destination_site_id=destination)]
    facts += [FlightFact(f"{flight_id}-{k}", flight_id, "uav-01", k, at(minute), **fields)
              for k, minute, fields in steps]
    return flight_status(facts)


COLLECTED = fact("c1", "collected", 0, ORIGIN)
PACKED = fact("c2", "packed", 5, ORIGIN, container_id="BOX-1", seal_id="SEAL-1")
LOADED = fact("c3", "loaded", 8, ORIGIN, container_id="BOX-1", flight_id="F1",
              drone_id="uav-01")
UNLOADED = fact("c4", "unloaded", 21, DEST, container_id="BOX-1", flight_id="F1",
                drone_id="uav-01", seal_id="SEAL-1")
LANDED_F1 = flight("F1", ORIGIN, DEST, ("takeoff", 9, {"site_id": ORIGIN}),
                   ("landed", 20, {"site_id": DEST}))


def status(*facts, flights=None):
    return specimen_status(facts, flights if flights is not None else {"F1": LANDED_F1},
                           destination_site_id=DEST)


@pytest.mark.parametrize(("minutes_early", "anomalies"), [(2.0, 0), (2.05, 1), (2.5, 1)])
def test_the_clock_tolerance_is_two_minutes_as_the_contract_says(minutes_early, anomalies):
    """In absolute minutes (docs/contract.md: "by more than 2 minutes"), not relative to the
    constant: a tolerance widened to 4 minutes would hide a packing 2.5 min before the
    collection."""
    packed = fact("c2", "packed", -minutes_early, ORIGIN, container_id="BOX-1",
                  seal_id="SEAL-1")
    loaded = fact("c3", "loaded", 1, ORIGIN, container_id="BOX-1", flight_id="F1",
                  drone_id="uav-01")
    found = status(COLLECTED, packed, loaded).anomalies
    assert len(found) == anomalies, found
    if anomalies:
        assert f"packed at {ORIGIN} {minutes_early:.1f} min before collected" in found[0]


def test_a_receipt_timed_before_the_collection_is_an_impossible_order():
    early = fact("r1", "received", -2.5, DEST)
    s = status(COLLECTED, early, flights={})
    assert s.state is SpecimenState.RECEIVED  # kept and closing: flagged, not refused
    assert s.anomalies == (f"received or rejected at {DEST} 2.5 min before collected: "
                           "impossible order (or clocks that far apart)",)
    edge = fact("r1", "received", -2.0, DEST)
    assert status(COLLECTED, edge, flights={}).anomalies == ()


@pytest.mark.parametrize(("kind", "minutes_after", "flagged"),
                         [("packed", 2.0, False), ("packed", 2.5, True),
                          ("loaded", 2.0, False), ("loaded", 2.5, True)])
def test_a_packing_or_loading_long_after_the_closing_is_an_anomaly(kind, minutes_after,
                                                                   flagged):
    received = fact("r1", "received", 30, DEST)
    late = fact("x1", kind, 30 + minutes_after, ORIGIN, container_id="BOX-1",
                seal_id="SEAL-1" if kind == "packed" else None,
                flight_id="F2" if kind == "loaded" else None)
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, received, late)
    assert s.state is SpecimenState.RECEIVED and s.received_at == at(30)
    expected = [f"{kind} at {ORIGIN} {minutes_after:.1f} min after it was received"]
    assert list(s.anomalies) == (expected if flagged else [])


def test_a_second_rejection_never_moves_the_first():
    first = fact("r1", "rejected", 30, DEST, stored=30, reason="hemolysed")
    second = fact("r2", "rejected", 25, DEST, stored=31, reason="clotted")
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, first, second)
    assert (s.rejected_at, s.rejection_reason) == (at(30), "hemolysed")
    assert s.anomalies == ("second rejection at pdrmyy (clotted); the first stands (hemolysed)",)


def test_a_box_resealed_at_an_alternate_under_a_fast_drone_clock_is_no_broken_seal():
    """The same box, BOX-1, opened at the alternate and sealed again (SEAL-2) for the next
    flight; the drone's unload of the first flight is stamped 90 s ahead, after the re-seal.
    The seal found on the first flight is compared with the seal BOX-1 had when it was
    loaded onto that flight, not with its newest seal."""
    unloaded_f1 = fact("c4", "unloaded", 21.5, ALT, stored=20, container_id="BOX-1",
                       flight_id="F1", drone_id="uav-01", seal_id="SEAL-1")
    resealed = fact("c5", "packed", 21, ALT, container_id="BOX-1", seal_id="SEAL-2")
    loaded_f2 = fact("c6", "loaded", 24, ALT, container_id="BOX-1", flight_id="F2",
                     drone_id="uav-02")
    flights = {"F1": flight("F1", ORIGIN, DEST, ("takeoff", 9, {"site_id": ORIGIN}),
                            ("diverted", 12, {"new_destination_site_id": ALT}),
                            ("landed", 19, {"site_id": ALT})),
               "F2": flight("F2", ALT, DEST, ("takeoff", 25, {"site_id": ALT}),
                            ("landed", 39, {"site_id": DEST}))}

    def unloaded_f2(seal):
        return fact("c7", "unloaded", 40, DEST, container_id="BOX-1", flight_id="F2",
                    drone_id="uav-02", seal_id=seal)

    story = (COLLECTED, PACKED, LOADED, unloaded_f1, resealed, loaded_f2)
    s = status(*story, unloaded_f2("SEAL-2"), flights=flights)
    assert not s.seal_changed, s.custody_gaps
    assert (s.state, s.seal_packed, s.seal_found) == (SpecimenState.ARRIVED, "SEAL-2", "SEAL-2")
    # the old seal on the second flight is a real change, and is still seen
    s = status(*story, unloaded_f2("SEAL-1"), flights=flights)
    assert s.custody_gaps == ("seal changed on BOX-1: packed SEAL-2, found SEAL-1",)


def test_an_unload_from_an_unknown_flight_is_named_even_between_known_ones():
    stray = fact("c5", "unloaded", 22, DEST, container_id="BOX-1", flight_id="F9",
                 drone_id="uav-09")
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, stray)
    assert s.anomalies == ("unloaded at pdrmyy from flight F9, which it was never loaded on",)
    assert s.state is SpecimenState.ARRIVED and s.flight_id == "F1"


# --- turnaround status and the bench's problems ------------------------------------------------

DEADLINE, WARNING = at(45), at(33.75)


@pytest.mark.parametrize("state", ["misrouted", "location_unknown"])
def test_a_stranded_specimen_is_never_on_track_however_early(state):
    assert turnaround_status(state, None, DEADLINE, WARNING, at(1)) == "warning"
    assert turnaround_status(state, None, DEADLINE, WARNING, DEADLINE) == "breached"
    assert turnaround_status("in_transit", None, DEADLINE, WARNING, at(1)) == "on_track"


def test_a_rejected_specimen_is_rejected_whatever_its_times():
    """Received in time, then rejected at the bench: never met, never on track, never
    breached."""
    for now in (at(1), DEADLINE, at(300)):
        assert turnaround_status("rejected", at(30), DEADLINE, WARNING, now) == "rejected"
        assert turnaround_status("rejected", None, DEADLINE, WARNING, now) == "rejected"
    assert turnaround_status("received", DEADLINE, DEADLINE, WARNING, at(300)) == "met"


@pytest.mark.parametrize(("state", "source", "expected"), [
    ("location_unknown", "origin_collection", ["location_unknown"]),
    ("misrouted", "origin_collection", ["misrouted"]),
    ("packed", "receipt", ["described_at_receipt"]),
    ("packed", "none", ["undescribed"]),
    ("packed", "handover", []),
    ("packed", "collection", []),
])
def test_the_bench_sees_where_and_how_a_specimen_was_described(state, source, expected):
    assert problems(state, False, [], [], [], source, stability_exceeded=False) == expected


# --- descriptions ------------------------------------------------------------------------------

def describe(event_id, kind, site, stored, order_ref="ORD-1", **changes):
    base = dict(barcode=BARCODE, kind="blood_sample", priority="stat",
                temperature_class="ambient", origin_site_id=ORIGIN, destination_site_id=DEST)
    base.update(changes)
    return Description(event_id, kind, site, (at(stored), event_id), SpecimenFacts(**base),
                       order_ref)


def test_a_differing_order_ref_alone_is_a_conflict():
    real = describe("c", "collected", ORIGIN, 0)
    other = describe("p", "packed", ORIGIN, 1, order_ref="FAKE-9")
    choice = choose_description([other, real])
    assert choice.chosen is real
    assert choice.conflicts == (f"packed at {ORIGIN} described it otherwise: "
                                "order_ref FAKE-9 ≠ ORD-1",)


def test_a_handover_outranks_a_receipt_stored_before_it():
    receipt = describe("r", "received", OTHER, 0, priority="routine")
    handover = describe("p", "packed", ORIGIN, 5)
    choice = choose_description([receipt, handover])
    assert (choice.chosen, choice.source) == (handover, DescriptionSource.HANDOVER)
    assert len(choice.conflicts) == 1 and "priority routine ≠ stat" in choice.conflicts[0]


def test_a_collection_scanned_away_from_its_origin_is_outranked_by_the_origins():
    """A `collected` at a foreign site that names the real origin is not the origin's
    collection, even stored first."""
    foreign = describe("f", "collected", OTHER, 0, priority="routine")
    assert foreign.source is DescriptionSource.COLLECTION
    real = describe("c", "collected", ORIGIN, 20)
    choice = choose_description([foreign, real])
    assert (choice.chosen, choice.source) == (real, DescriptionSource.ORIGIN_COLLECTION)
    assert len(choice.conflicts) == 1


# --- the shell, on a real database -------------------------------------------------------------

CUSTODY = TypeAdapter(m.CustodyEvent)


def custody(name: str, minute: float, barcode: str = BARCODE, **changes) -> m.CustodyEventBase:
    body = json.loads(json.dumps(EXAMPLES[name]))
    body.update(event_id=str(uuid.uuid4()), barcode=barcode, event_time=at(minute).isoformat())
    body.update(changes)
    return CUSTODY.validate_python(body)


def flight_event(model, kind: str, minute: float, flight_id: str = "F1", **fields):
    return model(schema_version=1, event_id=uuid.uuid4(), kind=kind, event_time=at(minute),
                 drone_id="uav-02", flight_id=flight_id, **fields)


def accepted(event, received_at: datetime, sender: Sender | None = None) -> Accepted:
    if isinstance(event, m.CustodyEventBase):
        topic = LAYOUT.site_custody(event.site_id)
    elif isinstance(event, m.FlightEventBase):
        topic = LAYOUT.flight(event.drone_id)
    else:
        topic = LAYOUT.status(event.drone_id)
    return Accepted(Delivery(topic, b"", received_at, sender=sender), LAYOUT.parse(topic),
                    event)


def poisoned_receipt(minute: float) -> m.CustodyEventBase:
    return custody("custody.received", minute, site_id=OTHER,
                   actor={"kind": "staff", "id": "lab-wjwsy"}, container_id=None, seal_id=None,
                   specimen={"kind": "blood_sample", "priority": "routine",
                             "temperature_class": "ambient", "origin_site_id": ORIGIN,
                             "destination_site_id": OTHER, "order_ref": "FAKE-9"})


def test_a_poisoned_description_in_the_same_batch_never_replaces_the_origins(engine):
    """The registry row (which the API reads order_ref and blood_product from) keeps the
    origin's collection even when the poison comes first in one batch."""
    clock = ManualClock(at(30))
    poison, real = poisoned_receipt(10), custody("custody.collected", 20)
    BatchWriter(engine, clock).write(
        [accepted(poison, at(29), Sender.staff("lab-wjwsy", OTHER)),
         accepted(real, at(29) + timedelta(seconds=1))], [])
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM specimen")).mappings().one()
    assert (row["priority"], row["destination_site_id"], row["order_ref"]) == (
        "stat", DEST, "ORD-7F3K-22")
    assert row["description_source"] == "origin_collection"
    assert uuid.UUID(str(row["description_event_id"])) == real.event_id


def test_presence_follows_the_status_delivered_last_within_one_batch(engine):
    """The last will (composed at connect time, so timed before the 'online') delivered
    after the 'online' in the same batch: the drone is offline."""
    online = m.DroneStatus.model_validate(EXAMPLES["status"] | {
        "event_time": at(0).isoformat()})
    will = m.DroneStatus.model_validate(EXAMPLES["status"] | {
        "event_id": str(uuid.uuid4()), "online": False, "reason": "will",
        "event_time": (at(0) - timedelta(seconds=1)).isoformat()})
    BatchWriter(engine, ManualClock(at(11))).write(
        [accepted(online, at(0)), accepted(will, at(10))], [])
    with engine.connect() as connection:
        drone = connection.execute(text("SELECT online, status_received_at FROM drone")
                                   ).mappings().one()
    assert not drone["online"]


def tamper(engine, statement: str) -> None:
    """Edit a stored row the way someone with database access would: past the triggers."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
        else:
            for name in ("custody_event_no_update", "custody_event_no_delete"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        connection.execute(text(statement))


def test_who_recorded_a_scan_is_part_of_the_hash_chain(engine):
    clock = ManualClock(at(30))
    events = [custody("custody.collected", 0), custody("custody.received", 25)]
    senders = [Sender.site(ORIGIN), Sender.staff("lab-1", DEST)]
    BatchWriter(engine, clock).write([accepted(e, at(29), s)
                                      for e, s in zip(events, senders, strict=True)], [])
    with engine.connect() as connection:
        assert custody_chain.verify(connection).first_break is None
        recorded = connection.execute(text(
            "SELECT recorded_by FROM custody_event ORDER BY event_time")).scalars().all()
    assert recorded == [f"site:{ORIGIN}", "user:lab-1"]
    # the receipt re-attributed to the destination's scanner, every other field unchanged
    tamper(engine, f"UPDATE custody_event SET recorded_by = 'site:{DEST}' "
                   "WHERE kind = 'received'")
    with engine.connect() as connection:
        broken = custody_chain.verify(connection).first_break
    assert broken is not None and broken.seq == 2 and "changed" in broken.problem


class Engine:
    """Stores contract events as the ingester would and runs the turnaround engine, on one
    ManualClock."""

    def __init__(self, engine) -> None:
        self.engine, self.clock = engine, ManualClock(T0)
        self.writer = BatchWriter(engine, self.clock)
        settings = Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:1")
        self.jobs = TurnaroundJobs(engine, settings, clock=self.clock)

    def store_at(self, minute: float, *events) -> None:
        """Store `events` as the ingester would receive them at `minute`."""
        self.clock._now = at(minute)
        self.writer.write([accepted(e, self.clock.now()) for e in events], [])

    def run_at(self, minute: float) -> None:
        self.clock._now = at(minute)
        self.jobs.turnaround()

    def tracked(self, barcode: str):
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT * FROM specimen_tracking WHERE barcode = "
                                           ":b"), {"b": barcode}).mappings().one()

    def open_alerts(self, barcode: str) -> set[str]:
        table = Alert.__table__
        with self.engine.connect() as connection:
            return set(connection.execute(select(table.c.kind).where(
                table.c.subject_id == barcode, table.c.state == "open")).scalars())


def test_a_landing_in_a_field_raises_location_unknown_before_any_warning(engine):
    net = Engine(engine)
    net.store_at(9.5, custody("custody.collected", 0), custody("custody.packed", 2),
              custody("custody.loaded", 4, flight_id="F1", drone_id="uav-02"),
              flight_event(m.FlightPlanned, "planned", 1, origin_site_id=ORIGIN,
                           destination_site_id=DEST, planned_departure=at(5)),
              flight_event(m.FlightTakeoff, "takeoff", 5, site_id=ORIGIN),
              flight_event(m.FlightAborted, "aborted", 9, reason="forced landing"))
    net.run_at(10)  # long before the STAT warning (33.75 min)
    row = net.tracked(BARCODE)
    assert (row["state"], row["site_id"], bool(row["is_open"])) == ("location_unknown", None,
                                                                    True)
    assert "location_unknown" in net.open_alerts(BARCODE)


def test_the_report_never_counts_a_received_then_rejected_specimen_as_on_time(engine):
    """Two STAT specimens received at their deadline's edge (45 min): one kept (on time:
    at the deadline is in time), one rejected at the bench afterwards (not counted)."""
    net = Engine(engine)
    for barcode in ("CJZXWS26112000010", "CJZXWS26112000011"):
        net.store_at(0.5, custody("custody.collected", 0, barcode=barcode))
        net.store_at(45.5, custody("custody.received", 45, barcode=barcode, seal_id=None,
                                   container_id=None))
    net.store_at(50.5, custody("custody.rejected", 50, barcode="CJZXWS26112000011"))
    net.run_at(60)
    kept, rejected = net.tracked("CJZXWS26112000010"), net.tracked("CJZXWS26112000011")
    assert (kept["state"], rejected["state"]) == ("received", "rejected")
    assert rejected["received_at"] is not None and json.loads(rejected["anomalies"]) == []
    with engine.connect() as connection:
        rows = compute(connection, date(2026, 11, 20), "Asia/Shanghai", at(60))
    assert len(rows) == 1
    row = rows[0]
    assert (row["specimens"], row["received"], row["on_time"], row["rejections"]) == (2, 1, 1, 1)
    assert row["on_time_pct"] == 100.0


def test_a_scan_over_http_is_recorded_by_the_account_that_sent_it(api):
    """A device token is recorded as its own account (`user:<token's user>`), not as its
    site's MQTT scanner; lab staff as themselves (docs/contract.md, the table of senders)."""
    def post(role: Role, name: str, **changes) -> None:
        body = json.loads(json.dumps(EXAMPLES[name]))
        body.update(event_id=str(uuid.uuid4()), barcode=BARCODE,
                    event_time=(api.clock.now() - timedelta(minutes=1)).isoformat(), **changes)
        response = api.http.post("/api/v1/custody", headers=api.as_role(role), json=body)
        assert response.status_code == 201, response.text

    post(Role.DEVICE, "custody.collected")
    post(Role.LAB, "custody.received", actor={"kind": "staff", "id": "lab-1"},
         container_id=None, seal_id=None)
    with api.engine.connect() as connection:
        recorded = dict(connection.execute(text(
            "SELECT kind, recorded_by FROM custody_event")).all())
    assert recorded == {"collected": "user:scanner-cj", "received": "user:lab-1"}
