"""Custody rules on the domain: who may record what, the closing rules, misroutes, seals
under clock skew, impossible orders, descriptions. Adversarial timelines by hypothesis."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronelog.domain.custody_rules import (
    ORDER_TOLERANCE,
    RANK,
    Description,
    DescriptionSource,
    RefusalCode,
    Scan,
    Sender,
    authorize,
    choose_description,
)
from dronelog.domain.facts import CustodyFact, FlightFact, SpecimenFacts
from dronelog.domain.flights import flight_status
from dronelog.domain.specimens import SpecimenState, specimen_status

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
ORIGIN, DEST, ALT = "cjzxwsy", "pdrmyy", "pddermyy"
BARCODE = "CJZXWS26120400001"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fact(event_id, kind, minute, site, stored=None, **fields) -> CustodyFact:
    actor_kind = "drone" if kind == "unloaded" else "staff"
    return CustodyFact(event_id, BARCODE, kind, site, actor_kind, "a-1", at(minute),
                       received_at=at(stored if stored is not None else minute), **fields)


def flight(flight_id, origin, destination, *steps):
    facts = [FlightFact(f"{flight_id}-p", flight_id, "uav-01", "planned", at(0),
                        origin_site_id=origin, destination_site_id=destination)]
    facts += [FlightFact(f"{flight_id}-{k}", flight_id, "uav-01", k, at(m), **f)
              for k, m, f in steps]
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


# --- authority ---------------------------------------------------------------------------------

def scan(kind, site=DEST, actor=("staff", "lab-pdrmyy"), drone_id=None):
    return Scan(kind, site, actor[0], actor[1], drone_id)


@pytest.mark.parametrize("kind", ["collected", "packed", "received", "rejected"])
def test_a_drone_records_only_loading_and_unloading(kind):
    refusal = authorize(scan(kind, actor=("drone", "uav-01"), drone_id="uav-01"),
                        Sender.drone("uav-01"))
    assert refusal is not None and refusal.code is RefusalCode.STEP_NOT_ALLOWED


def test_a_drone_speaks_only_for_itself():
    sender = Sender.drone("uav-01")
    assert authorize(scan("unloaded", actor=("drone", "uav-01"), drone_id="uav-01"),
                     sender) is None
    other = authorize(scan("unloaded", actor=("drone", "uav-01"), drone_id="uav-02"), sender)
    assert other.code is RefusalCode.IDENTITY_MISMATCH and "uav-02" in other.reason
    spoof = authorize(scan("unloaded", actor=("drone", "uav-02"), drone_id="uav-01"), sender)
    assert spoof.code is RefusalCode.IDENTITY_MISMATCH


@pytest.mark.parametrize("kind", ["collected", "packed", "loaded", "received", "rejected"])
def test_site_staff_send_and_receive_as_themselves_at_their_site(kind):
    lab = Sender.staff("lab-wjwsy", "wjwsy")
    assert authorize(scan(kind, "wjwsy", ("staff", "lab-wjwsy"), "uav-01"), lab) is None
    assert authorize(scan(kind, "pdrmyy", ("staff", "lab-wjwsy"), "uav-01"),
                     lab).code is RefusalCode.IDENTITY_MISMATCH
    for actor in (("drone", "uav-01"), ("staff", "nurse-7"), ("device", "scanner-1")):
        assert authorize(scan(kind, "wjwsy", actor, "uav-01"),
                         lab).code is RefusalCode.ACTOR_MISMATCH, actor


def test_lab_staff_record_receipt_and_rejection_as_themselves_at_their_site():
    lab = Sender.staff("lab-wjwsy", "wjwsy")
    assert authorize(scan("received", "wjwsy", ("staff", "lab-wjwsy")), lab) is None
    assert authorize(scan("unloaded", "wjwsy", ("staff", "lab-wjwsy"), "uav-01"),
                     lab).code is RefusalCode.STEP_NOT_ALLOWED  # the drone's or a scanner's
    assert authorize(scan("received", "pdrmyy", ("staff", "lab-wjwsy")),
                     lab).code is RefusalCode.IDENTITY_MISMATCH
    for actor in (("drone", "uav-01"), ("staff", "lab-pdrmyy"), ("device", "scanner-1")):
        refusal = authorize(scan("received", "wjwsy", actor), lab)
        assert refusal.code is RefusalCode.ACTOR_MISMATCH, actor


def test_a_site_scanner_names_its_operator_but_never_a_drone():
    site = Sender.site(ORIGIN)
    assert authorize(scan("loaded", ORIGIN, ("staff", "nurse-7")), site) is None
    assert authorize(scan("loaded", ORIGIN, ("drone", "uav-01")),
                     site).code is RefusalCode.ACTOR_MISMATCH
    assert authorize(scan("loaded", DEST, ("staff", "nurse-7")),
                     site).code is RefusalCode.IDENTITY_MISMATCH
    assert site.identity == f"site:{ORIGIN}"
    assert Sender.staff("lab-1", DEST).identity == "user:lab-1"


# --- closing, misroutes, final times -----------------------------------------------------------

def test_a_receipt_at_the_wrong_hospital_misroutes_and_never_closes():
    wrong = fact("r1", "received", 30, ALT)
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, wrong)
    assert s.state is SpecimenState.MISROUTED and not s.final and s.site_id == ALT
    assert s.received_at is None
    assert s.anomalies == (f"received at {ALT}, not at its destination {DEST}",)
    # the real receipt at the destination later closes it; the foreign one stays an anomaly
    right = fact("r2", "received", 40, DEST)
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, wrong, right)
    assert s.state is SpecimenState.RECEIVED and s.received_at == at(40)
    assert len(s.anomalies) == 1


def test_a_foreign_rejection_after_receipt_changes_nothing():
    received = fact("r1", "received", 25, DEST)
    foreign = fact("r2", "rejected", 60, "wjwsy", reason="hemolysed")
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, received, foreign)
    assert s.state is SpecimenState.RECEIVED and s.received_at == at(25)
    assert s.rejected_at is None
    assert s.anomalies == (f"rejected at wjwsy after it was closed at {DEST}",)


def test_a_second_receipt_stamped_ahead_never_moves_the_first():
    first = fact("r1", "received", 29, DEST, stored=29)
    second = fact("r2", "received", 25, DEST, stored=90)  # earlier clock, stored later
    s = status(COLLECTED, PACKED, LOADED, UNLOADED, first, second)
    assert s.received_at == at(29)
    assert "second receipt" in s.anomalies[0]


# Adversarial finals: any sites, any times in the accepted window, any stored order.
final_step = st.tuples(st.sampled_from(["received", "rejected"]),
                       st.sampled_from([DEST, ALT, ORIGIN, "wjwsy"]),
                       st.floats(min_value=-5, max_value=120))


@settings(max_examples=300, deadline=None)
@given(st.lists(final_step, min_size=1, max_size=6))
def test_closed_only_at_the_destination_and_final_times_never_move(steps):
    facts = [COLLECTED, PACKED, LOADED, UNLOADED]
    seen_received = seen_rejected = None
    was_rejected = False
    for index, (kind, site, minute) in enumerate(steps):
        facts.append(fact(f"f{index}", kind, minute, site, stored=200 + index,
                          reason="hemolysed" if kind == "rejected" else None))
        s = status(*facts)
        if s.final:
            assert s.site_id == DEST
        at_dest = [f for f in facts[4:] if f.site_id == DEST]
        assert s.final == bool(at_dest)
        if not at_dest and any(f.event_time > UNLOADED.event_time for f in facts[4:]):
            assert s.state is SpecimenState.MISROUTED  # a later step would have moved it on
        # once set, a final time never moves; once rejected, always rejected
        if seen_received is not None:
            assert s.received_at == seen_received
        if seen_rejected is not None:
            assert s.rejected_at == seen_rejected
        assert not (was_rejected and s.state is not SpecimenState.REJECTED)
        seen_received, seen_rejected = s.received_at, s.rejected_at
        was_rejected = s.state is SpecimenState.REJECTED
        # nothing thrown away: each final beyond the closing ones is named as an anomaly
        closing = sum(1 for value in (s.received_at, s.rejected_at) if value is not None)
        assert len([a for a in s.anomalies if " min " not in a]) == len(facts) - 4 - closing


# --- seals under clock skew --------------------------------------------------------------------

SKEW = st.floats(min_value=-300, max_value=300)  # the accepted window: 5 min either way


@settings(max_examples=300, deadline=None)
@given(st.lists(SKEW, min_size=8, max_size=8))
def test_clock_skew_inside_the_window_never_invents_a_broken_seal(skews):
    """Diverted to the alternate, re-packed into BOX-2/SEAL-2 there, flown on, received."""
    story = [
        ("collected", 0, ORIGIN, {}),
        ("packed", 5, ORIGIN, {"container_id": "BOX-1", "seal_id": "SEAL-1"}),
        ("loaded", 8, ORIGIN, {"container_id": "BOX-1", "flight_id": "F1",
                               "drone_id": "uav-01"}),
        ("unloaded", 20, ALT, {"container_id": "BOX-1", "flight_id": "F1",
                               "drone_id": "uav-01", "seal_id": "SEAL-1"}),
        ("packed", 21, ALT, {"container_id": "BOX-2", "seal_id": "SEAL-2"}),
        ("loaded", 24, ALT, {"container_id": "BOX-2", "flight_id": "F2",
                             "drone_id": "uav-02"}),
        ("unloaded", 40, DEST, {"container_id": "BOX-2", "flight_id": "F2",
                                "drone_id": "uav-02", "seal_id": "SEAL-2"}),
        ("received", 44, DEST, {"container_id": "BOX-2", "seal_id": "SEAL-2"}),
    ]
    facts = [fact(f"s{i}", kind, minute + skew / 60, site, stored=minute, **fields)
             for i, ((kind, minute, site, fields), skew) in enumerate(zip(story, skews,
                                                                             strict=True))]
    flights = {"F1": flight("F1", ORIGIN, DEST, ("takeoff", 9, {"site_id": ORIGIN}),
                            ("diverted", 12, {"new_destination_site_id": ALT}),
                            ("landed", 19, {"site_id": ALT})),
               "F2": flight("F2", ALT, DEST, ("takeoff", 25, {"site_id": ALT}),
                            ("landed", 39, {"site_id": DEST}))}
    s = specimen_status(facts, flights, destination_site_id=DEST)
    assert not s.seal_changed, s.custody_gaps
    assert s.state is SpecimenState.RECEIVED and s.received_at == facts[-1].event_time


def test_a_real_seal_change_is_still_seen():
    broken = fact("c4", "unloaded", 21, DEST, container_id="BOX-1", flight_id="F1",
                  drone_id="uav-01", seal_id="SEAL-9")
    s = status(COLLECTED, PACKED, LOADED, broken)
    assert s.seal_changed
    assert s.custody_gaps == ("seal changed on BOX-1: packed SEAL-1, found SEAL-9",)


# --- impossible orders, off-site landings, missing collection ----------------------------------

def test_loaded_before_collected_is_an_anomaly_beyond_clock_skew():
    early = fact("c3", "loaded", -4.5, ORIGIN, container_id="BOX-1", flight_id="F1",
                 drone_id="uav-01")
    s = status(COLLECTED, PACKED, early, UNLOADED)
    assert any("loaded at cjzxwsy 4.5 min before collected" in a for a in s.anomalies)
    # at the edge of the tolerance it is clock skew, not an anomaly
    edge = ORDER_TOLERANCE.total_seconds() / 60
    skewed = fact("c2", "packed", -edge, ORIGIN, container_id="BOX-1", seal_id="SEAL-1")
    loaded = fact("c3", "loaded", 1, ORIGIN, container_id="BOX-1", flight_id="F1",
                  drone_id="uav-01")
    assert status(COLLECTED, skewed, loaded).anomalies == ()
    just_past = fact("c2", "packed", -edge - 0.01, ORIGIN, container_id="BOX-1",
                     seal_id="SEAL-1")
    assert len(status(COLLECTED, just_past, loaded).anomalies) == 1


def test_an_unload_from_a_flight_it_was_never_on_is_an_anomaly():
    stray = fact("c4", "unloaded", 21, DEST, container_id="BOX-1", flight_id="F9",
                 drone_id="uav-09")
    s = status(COLLECTED, PACKED, LOADED, stray)
    assert s.anomalies == ("unloaded at pdrmyy from flight F9, which it was never loaded on",)


def test_a_landing_in_a_field_leaves_the_location_unknown():
    field = flight("F1", ORIGIN, DEST, ("takeoff", 9, {"site_id": ORIGIN}),
                   ("aborted", 14, {"reason": "forced landing"}))
    s = status(COLLECTED, PACKED, LOADED, flights={"F1": field})
    assert s.state is SpecimenState.LOCATION_UNKNOWN and s.site_id is None
    on_pad = flight("F1", ORIGIN, DEST, ("aborted", 8.5, {"reason": "wind",
                                                          "site_id": ORIGIN}))
    s = status(COLLECTED, PACKED, LOADED, flights={"F1": on_pad})
    assert s.state is SpecimenState.PACKED and s.site_id == ORIGIN


def test_without_a_collection_the_specimen_is_tracked_from_its_first_step():
    s = status(PACKED, LOADED)
    assert s.collected_at is None and s.first_event_at == at(5)
    assert s.custody_gaps == ("packed without a collected step",)


# --- descriptions ------------------------------------------------------------------------------

def describe(event_id, kind, site, stored, order_ref="ORD-1", **changes):
    base = dict(barcode=BARCODE, kind="blood_unit", priority="stat",
                temperature_class="red_cells", origin_site_id=ORIGIN, destination_site_id=DEST,
                blood_product="red_cells")
    base.update(changes)
    return Description(event_id, kind, site, (at(stored), event_id), SpecimenFacts(**base),
                       order_ref)


def test_the_origins_collection_outranks_an_earlier_poisoned_receipt():
    poison = describe("p", "received", "wjwsy", 0, priority="routine",
                      temperature_class="ambient", destination_site_id="wjwsy")
    real = describe("c", "collected", ORIGIN, 20)
    choice = choose_description([poison, real])
    assert choice.chosen is real and choice.source is DescriptionSource.ORIGIN_COLLECTION
    assert len(choice.conflicts) == 1 and "priority routine ≠ stat" in choice.conflicts[0]
    alone = choose_description([poison])
    assert alone.source is DescriptionSource.RECEIPT and alone.conflicts == ()


kinds = st.sampled_from(["collected", "packed", "loaded", "received", "rejected"])
sites = st.sampled_from([ORIGIN, DEST, ALT])
priorities = st.sampled_from(["stat", "urgent", "routine"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(kinds, sites, priorities), min_size=1, max_size=6))
def test_a_description_is_never_silently_replaced(raw):
    descriptions = [describe(f"d{i}", kind, site, i, priority=priority)
                    for i, (kind, site, priority) in enumerate(raw)]
    choice = choose_description(descriptions)
    assert RANK[choice.source] == max(RANK[d.source] for d in descriptions)
    differing = [d for d in descriptions if d.facts != choice.chosen.facts]
    assert len(choice.conflicts) == len(differing)
