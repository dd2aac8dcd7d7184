"""Bad input at the HTTP custody entrance, through real HTTP, on SQLite and PostgreSQL.

POST /api/v1/custody runs the ingester's own triage, so the same families of bad input as
tests/test_fuzz_ingest.py are sent (its strategies are reused) as a scanning device would
send them, plus what only HTTP has: content types that are not JSON, empty bodies, chunked
bodies far over the size limit. Properties: the answer is 201, 200 or a 4xx problem
(`application/problem+json`), never a 5xx; a 422 carries a `reason_code` of the contract's
set and a readable `detail`; each answer agrees with what triage decides for the same bytes
(201/200 if accepted, 422 with triage's reason code if not); a valid scan posted after the
fuzz batch is still stored; and the custody_event table holds exactly the scans answered 201.

The API's clock is the fuzzer's fixed clock, so the fuzzer's event times fall where intended.
"""

import json
import tracemalloc
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from dronelog.api.accounts import Role
from dronelog.clock import ManualClock
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.topics import Channel
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.triage import triage
from tests.test_fuzz_ingest import (
    CLOCK,
    EDGE_TIMES,
    SPECIAL_TEXT,
    bad_values,
    content_id,
    deep,
    dumps,
    fresh,
    mutated_payloads,
    poison,
)

TOWN = "cjzxwsy"  # the device user's site (tests/support.py ROLES)
PROBLEM = "application/problem+json"
CONTRACT_CODES = {reason.value for reason in RejectReason}
CUSTODY_KINDS = sorted(name for name in EXAMPLES if name.startswith("custody."))


@pytest.fixture
def clock():
    """The API's clock (tests/conftest.py's `api` takes it from here)."""
    return ManualClock(CLOCK.now())


def scan_at_town(name: str, age: timedelta, offset: int) -> dict:
    payload = fresh(name, Channel.SITE_CUSTODY, age, offset)
    payload["site_id"] = TOWN
    if payload["actor"]["kind"] == "drone":  # a site's scanner records a drone's step as staff
        payload["actor"] = {"kind": "staff", "id": "nurse-cj-07"}
    payload["event_id"] = content_id(payload)
    return payload


scans = st.builds(scan_at_town, st.sampled_from(CUSTODY_KINDS),
                  st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=29)),
                  st.integers(-14 * 60, 14 * 60))


@st.composite
def mutated_scans(draw) -> bytes:
    payload = draw(scans)
    original = payload["event_id"]
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(payload) + ["extra", "specimen"]))
        if draw(st.booleans()) and key in payload:
            del payload[key]
        else:
            payload[key] = draw(bad_values | st.sampled_from(EDGE_TIMES)
                                | st.sampled_from(SPECIAL_TEXT))
    if payload.get("event_id") == original:
        payload["event_id"] = content_id(payload)
    return dumps(payload, draw(st.booleans()))


CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8",
                 "application/json; charset=latin-1", "text/plain", "application/xml",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                 "application/problem+json", "application/octet-stream", "*/*", "json"]

bodies = st.one_of(
    scans.map(lambda payload: json.dumps(payload).encode()),
    mutated_scans(),
    mutated_payloads().map(lambda pair: pair[1]),  # telemetry, flight and status bodies too
    poison().map(lambda delivery: delivery.payload),
    st.binary(max_size=500),
    st.just(b""),
    st.sampled_from([b"null", b"[]", b"{}", b"0", b'""', b"true", b"a=1&b=2",
                     b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--xyz--",
                     b"<scan/>", b"\xef\xbb\xbf{}", deep(10_000, "[").encode(),
                     deep(30_000, "{").encode()]),
)


def post(api, body: bytes, content_type: str | None, chunked: bool = False):
    headers = api.as_role(Role.DEVICE)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if chunked:
        return api.http.post("/api/v1/custody", headers=headers,
                             content=(body[i:i + 65536] for i in range(0, len(body), 65536)))
    return api.http.post("/api/v1/custody", headers=headers, content=body)


def expected_outcome(api, body: bytes, stored: set[str]) -> tuple[int, str | None]:
    """What the ingester's own triage says about these bytes from this device."""
    state = api.server.config.app.state
    topic = state.rules.layout.site_custody(TOWN)
    sorted_out = triage([Delivery(topic, body, CLOCK.now())], state.rules, state.clock)
    if sorted_out.rejected:
        return 422, sorted_out.rejected[0].reason_code.value
    return (200 if str(sorted_out.accepted[0].event.event_id) in stored else 201), None


def check_answer(response, expected: tuple[int, str | None]) -> None:
    status = response.status_code
    assert status < 500, (status, response.text[:500])
    assert status in (200, 201) or 400 <= status < 500, (status, response.text[:300])
    if status >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.headers
        problem = response.json()
        assert problem["status"] == status and problem["title"]
        assert isinstance(problem["detail"], str) and problem["detail"].strip()
    if status == 422:
        assert problem["reason_code"] in CONTRACT_CODES, problem
        assert problem["type"] == f"urn:dronelog:problem:{problem['reason_code']}"
        assert problem["detail"].isprintable() and len(problem["detail"]) <= 1000
    assert (status, response.json().get("reason_code") if status == 422 else None) == expected, (
        response.text[:500])


def stored_scans(api) -> set[str]:
    with api.engine.connect() as connection:
        return {str(uuid.UUID(str(value))) for value in connection.execute(
            text("SELECT event_id FROM custody_event")).scalars()}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(st.tuples(bodies, st.sampled_from(CONTENT_TYPES)), min_size=1,
                      max_size=5))
def test_every_post_gets_a_clear_answer_and_only_valid_scans_are_stored(api, batch):
    stored = stored_scans(api)
    for body, content_type in batch:
        expected = expected_outcome(api, body, stored)
        response = post(api, body, content_type)
        check_answer(response, expected)
        if response.status_code == 201:
            stored.add(response.json()["event_id"])
    assert stored_scans(api) == stored
    with api.engine.connect() as connection:  # refusals over HTTP are answered, not stored
        assert connection.execute(text("SELECT count(*) FROM dead_letter")).scalar_one() == 0
    after = scan_at_town("custody.collected", timedelta(minutes=1), 0)
    after["event_id"] = str(uuid.uuid4())
    response = post(api, json.dumps(after).encode(), "application/json")
    assert response.status_code == 201, response.text
    assert stored_scans(api) == stored | {after["event_id"]}


def test_huge_bodies_are_refused_as_oversized_and_examples_stored_once(api):
    """One test for both, as each `api` costs a broker, a server and a database."""
    for size in (65_536, 65_537, 1_000_000, 4_000_000):
        for chunked in (False, True):
            valid = json.dumps(scan_at_town("custody.collected", timedelta(minutes=1), 0))
            body = valid.encode() + b" " * (size - len(valid))
            response = post(api, body, "application/json", chunked=chunked)
            if size <= 65_536:
                assert response.status_code in (200, 201), response.text
                continue
            assert response.status_code == 422, (size, chunked, response.text[:300])
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["reason_code"] == "oversized"
            assert f"limit of {65_536}" in response.json()["detail"]
    assert len(stored_scans(api)) == 1  # the one at the limit, stored once of two posts
    for name in CUSTODY_KINDS:
        body = json.dumps(scan_at_town(name, timedelta(minutes=5), 480)).encode()
        first, again = post(api, body, "application/json"), post(api, body, "text/plain")
        assert (first.status_code, again.status_code) == (201, 200), (name, first.text)
    assert len(stored_scans(api)) == 1 + len(CUSTODY_KINDS)


def test_a_huge_body_is_not_held_in_memory(api):
    """A body over the limit is read through but not kept (it used to be read whole first:
    a 200 MB upload grew the API's memory by 320 MB)."""
    chunk = b" " * 65_536
    tracemalloc.start()
    try:
        response = api.http.post("/api/v1/custody", headers=api.as_role(Role.DEVICE),
                                 content=(chunk for _ in range(160)))  # 10 MiB, chunked
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422 and response.json()["reason_code"] == "oversized"
    assert "10485760 bytes" in response.json()["detail"]
    assert peak < 3_000_000, f"{peak / 1e6:.1f} MB held while refusing a 10 MiB body"


def test_a_scan_the_database_refuses_is_answered_as_refused(api):
    """The last line of defence: if validation ever lets through something the database
    refuses, the persister dead-letters it as `storage_rejected`; the sender must hear so
    (422), not `200 already stored`. A constraint added here stands in for such a gap."""
    with api.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE custody_event ADD CONSTRAINT test_refuse "
                                    "CHECK (barcode <> 'REFUSED-BY-DB')"))
        else:
            connection.execute(text(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON custody_event "
                "WHEN NEW.barcode = 'REFUSED-BY-DB' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
    payload = scan_at_town("custody.collected", timedelta(minutes=1), 0)
    payload["barcode"] = "REFUSED-BY-DB"
    payload["event_id"] = content_id(payload)
    response = post(api, json.dumps(payload).encode(), "application/json")
    assert response.status_code == 422, response.text
    assert response.json()["reason_code"] == "storage_rejected"
    assert "database refused" in response.json()["detail"]
    assert response.headers["content-type"].startswith(PROBLEM)
    assert stored_scans(api) == set()
    fine = scan_at_town("custody.packed", timedelta(minutes=1), 0)
    assert post(api, json.dumps(fine).encode(), "application/json").status_code == 201
