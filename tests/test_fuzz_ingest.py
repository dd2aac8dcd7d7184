"""Bad input at the ingester's one entrance, `triage`, and on through the real writer.

Every message, from MQTT or from the HTTP custody entrance, goes through
`dronelog.ingest.triage.triage(deliveries, rules, clock)`. Hypothesis feeds it batches on every
topic kind (telemetry, flight, drone custody, site custody, status) made of:

- arbitrary bytes;
- the contract's examples mutated: fields dropped, unknown fields added, wrong types, numbers
  as strings, NaN / Infinity / -0.0 / 1e308 / 1e309 / 4,300-digit literals, huge strings,
  unicode (lone surrogates, right-to-left marks, NUL and C0/C1 control characters), nesting
  up to 30,000 deep (Python's json raises RecursionError long before that), duplicate keys,
  times in year 1, year 9999, far ahead, far behind and without a zone, payloads at and one
  byte over `max_payload_bytes`, truncated or with a flipped byte;
- valid payloads on a spoofed topic (another drone or site than the payload's) and payloads
  on unknown or malformed topics.

Properties: triage never raises; every delivery ends as exactly one of accepted, rejected or
an in-batch repeat; a rejection has a reason code of the known set, a readable reason and
either no event id or a canonical UUID; an accepted event is a contract model that
round-trips, validates against its JSON Schema file in docs/schemas (its canonical form with
format checks, and the payload as sent), names the topic's sender, lies in the time window,
has every time convertible to UTC and no control character in free text; and a valid event
batched with poison is still accepted. The end-to-end property runs mixed batches through
triage and the real Persister/BatchWriter on SQLite and PostgreSQL: every accepted event is
stored exactly once, every rejected one dead-lettered once with its reason, and the database
never refuses (PostgreSQL's NUL, range and timestamp rules included) what triage accepted.
"""

import json
import threading
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import text

from dronelog.clock import ManualClock
from dronelog.contract.examples import EXAMPLES
from dronelog.contract.messages import CustodyEvent, DroneStatus, FlightEvent, Telemetry
from dronelog.contract.topics import Channel, TopicLayout
from dronelog.domain.barcodes import canonical_barcode
from dronelog.ingest.delivery import Delivery, RejectReason
from dronelog.ingest.persist import Persister
from dronelog.ingest.triage import Triage, TriageRules, triage
from dronelog.storage.portable import as_utc
from dronelog.storage.writer import BatchWriter

CLOCK = ManualClock(datetime(2026, 11, 22, 0, 30, tzinfo=UTC))
LAYOUT = TopicLayout()
MAX_BYTES = 65536  # the production default, so 10,000-deep nesting fits under the limit
RULES = TriageRules(layout=LAYOUT, max_payload_bytes=MAX_BYTES,
                    max_future_skew=timedelta(minutes=5), max_age=timedelta(days=30))
TRIAGE_CODES = set(RejectReason) - {RejectReason.STORAGE_REJECTED}
MAX_REASON_CHARS = 2000

SCHEMA_DIR = Path(__file__).parent.parent / "docs" / "schemas"
MODEL = {Channel.TELEMETRY: Telemetry, Channel.FLIGHT: FlightEvent,
         Channel.DRONE_CUSTODY: CustodyEvent, Channel.SITE_CUSTODY: CustodyEvent,
         Channel.STATUS: DroneStatus}
ADAPTER = {channel: TypeAdapter(model) for channel, model in MODEL.items()}
SCHEMA_FILE = {Channel.TELEMETRY: "telemetry", Channel.FLIGHT: "flight-event",
               Channel.DRONE_CUSTODY: "custody-event", Channel.SITE_CUSTODY: "custody-event",
               Channel.STATUS: "drone-status"}
VALIDATOR = {channel: jsonschema.Draft202012Validator(
    json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for channel, name in SCHEMA_FILE.items()}
TABLE = {Channel.TELEMETRY: "telemetry", Channel.FLIGHT: "flight_event",
         Channel.DRONE_CUSTODY: "custody_event", Channel.SITE_CUSTODY: "custody_event",
         Channel.STATUS: "drone_status_event"}
FREE_TEXT = {"reason", "note"}  # the FreeText fields (status and rejection reasons are enums)
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


# --- valid deliveries ---------------------------------------------------------------------


def _channel_of(name: str) -> Channel:
    return {"telemetry": Channel.TELEMETRY, "status": Channel.STATUS,
            "flight": Channel.FLIGHT}.get(name.split(".")[0], Channel.SITE_CUSTODY)


# Each example on the topic of a sender who may record it (docs/contract.md, "Custody
# rules"): a drone records its own loading and unloading, a site's scanner any step as staff.
KINDS = [(name, _channel_of(name)) for name in sorted(EXAMPLES) if name != "custody.unloaded"]
KINDS += [("custody.unloaded", Channel.DRONE_CUSTODY), ("custody.loaded", Channel.DRONE_CUSTODY),
          ("custody.unloaded", Channel.SITE_CUSTODY)]


def topic_for(channel: Channel, payload: dict[str, Any]) -> str:
    if channel is Channel.SITE_CUSTODY:
        return LAYOUT.site_custody(payload["site_id"])
    return {Channel.TELEMETRY: LAYOUT.telemetry, Channel.FLIGHT: LAYOUT.flight,
            Channel.DRONE_CUSTODY: LAYOUT.drone_custody,
            Channel.STATUS: LAYOUT.status}[channel]("uav-03")


def content_id(payload: dict[str, Any]) -> str:
    """An event id that follows from the rest of the event, so that two events share an id only
    when they are the same event (a redelivery). Senders must never reuse an id for another
    event; SQLite and PostgreSQL need not agree on what happens when they do (on PostgreSQL
    telemetry is unique per event id and event time)."""
    rest = {key: value for key, value in payload.items() if key != "event_id"}
    return str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(rest, sort_keys=True, default=repr)))


def fresh(name: str, channel: Channel, age: timedelta, offset_minutes: int) -> dict[str, Any]:
    """The example `name` as a new event: a time inside the accepted window, its own id."""
    payload = json.loads(json.dumps(EXAMPLES[name]))
    zone = timezone(timedelta(minutes=offset_minutes))
    payload["event_time"] = (CLOCK.now() - age).astimezone(zone).isoformat()
    if channel is Channel.DRONE_CUSTODY:
        payload["actor"] = {"kind": "drone", "id": "uav-03"}
    elif channel is Channel.SITE_CUSTODY and payload["actor"]["kind"] == "drone":
        payload["actor"] = {"kind": "staff", "id": "porter-07"}  # scanned at the pad
    payload["event_id"] = content_id(payload)
    return payload


def payloads_of(kinds: list[tuple[str, Channel]]):
    return st.builds(
        lambda kind, age, offset: (kind[1], fresh(kind[0], kind[1], age, offset)),
        st.sampled_from(kinds),
        st.timedeltas(min_value=timedelta(minutes=-4), max_value=timedelta(days=29)),
        st.integers(-14 * 60, 14 * 60))


valid_payloads = payloads_of(KINDS)
telemetry_payloads = payloads_of([("telemetry", Channel.TELEMETRY)])
free_text_payloads = payloads_of([(name, _channel_of(name)) for name in sorted(EXAMPLES)
                                  if FREE_TEXT & set(EXAMPLES[name])])


def as_delivery(topic: str, body: bytes) -> Delivery:
    return Delivery(topic=topic, payload=body, received_at=CLOCK.now())


valid_deliveries = valid_payloads.map(
    lambda pair: as_delivery(topic_for(*pair), json.dumps(pair[1]).encode()))


# --- bad values -----------------------------------------------------------------------------

SPECIAL_TEXT = ["", "\x00", "a\x00b", "\ud800", "\udfff", "\ud83d\ude81", "\U0001f681",
                "\u202e\u202dreversed", "\u200f", "\ufeff", "\x85", "\x9b", "\x7f", "\x1b[2J",
                "\u2028", "\n", "é", "名字", "ＵＡＶ-03", "uav-03\n", " uav-03", "uav-03 ",
                "İ", "ß", "a" * 64, "a" * 65]
long_text = st.sampled_from([500, 501, 4096, 70_000]).map(lambda n: "x" * n)
NUMBER_FIELDS = {"seq", "lat", "lon", "alt_m", "height_m", "ground_speed_mps", "heading_deg",
                 "battery_pct", "payload_temp_c", "link_quality_pct"}
SPECIAL_NUMBERS = [0, -0.0, 1, -1, 0.5, 90.0000001, 200, 360, 100.5, -500.1, 10_000.1, 1e308,
                   -1e308, 5e-324, float("nan"), float("inf"), float("-inf"), 2**31, 2**63 - 1,
                   2**63, 2**64, -(2**63) - 1, 10**30, True, False]
huge_int = st.just(4300).map(lambda digits: int("9" * digits))  # Python's str() limit
EDGE_TIMES = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59+23:59",
    "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2262-04-11T23:47:16.854775808Z",
    "3000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
    "2026-11-22T00:30:00", "2026-11-22T00:30:00.000", "2026-11-22", "00:30:00Z",
    "2026-11-22T00:30:00+24:00", "2026-11-22T00:30:00+08", "2026-02-30T00:00:00Z",
    "2026-11-22T24:00:00Z", "2026-11-22T00:30:60Z", "2026-11-22 00:30:00Z",
    "2026-11-22t00:30:00z", "2026-11-22T00:30:00.123456789012Z", "now", "",
    1763770000, 1.76377e9, -1e20, 0, None, True,
]


def deep(depth: int, opener: str) -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return opener * depth + closer * depth


class Raw:
    """JSON text put into a payload as is (deep nesting, literals json.dumps cannot write)."""

    def __init__(self, text: str) -> None:
        self.text = text


json_leaves = st.one_of(st.none(), st.booleans(), st.sampled_from(SPECIAL_NUMBERS), huge_int,
                        st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=20), st.sampled_from(SPECIAL_TEXT), long_text)
bad_values = st.one_of(
    json_leaves,
    st.text(st.characters(codec=None), max_size=80),  # any code point, surrogates included
    st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12),
    st.builds(lambda d, o: Raw(deep(d, o)),
              st.sampled_from([2, 100, 199, 200, 201, 1000, 10_000, 30_000]),
              st.sampled_from("[{")),
    st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("-0.0"),
                     Raw("1e308"), Raw("1e309"), Raw("-1e400"), Raw("1E-400"), Raw("0x10"),
                     Raw("01"), Raw("+1"), Raw(".5"), Raw("1."), Raw("9" * 4301),
                     Raw('"\\ud800"'), Raw('"\\udfff\\ud800"'), Raw('"\\u0000"'),
                     Raw('"\\x41"'), Raw("'single'"), Raw("undefined"), Raw("[1,]")]),
    st.sampled_from(EDGE_TIMES),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                 timezones=st.none() | st.builds(
                     lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439)))
    .map(lambda moment: moment.isoformat()),
    st.uuids().map(lambda u: u.hex) | st.uuids().map(lambda u: f"urn:uuid:{u}")
    | st.uuids().map(lambda u: "{" + str(u).upper() + "}"),
)


def field_paths(payload: dict[str, Any]) -> list[tuple[str, ...]]:
    paths = []
    for key, value in payload.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths.extend((key, inner) for inner in value)
    return paths


def set_at(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = payload
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value


def drop_at(payload: dict[str, Any], path: tuple[str, ...]) -> None:
    target = payload
    for part in path[:-1]:
        target = target.get(part)
        if not isinstance(target, dict):
            return
    target.pop(path[-1], None)


def dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON bytes; NaN and Infinity as Python writes them; lone surrogates either escaped
    (ASCII) or written raw, which makes the bytes invalid UTF-8; Raw values spliced in."""
    raws: dict[str, str] = {}

    def placeholders(item: Any) -> Any:
        if isinstance(item, Raw):
            key = f"@@raw{len(raws)}@@"
            raws[key] = item.text
            return key
        if isinstance(item, dict):
            return {k: placeholders(v) for k, v in item.items()}
        if isinstance(item, list):
            return [placeholders(v) for v in item]
        return item

    body = json.dumps(placeholders(value), ensure_ascii=ascii_only, allow_nan=True)
    for key, raw in raws.items():
        body = body.replace(f'"{key}"', raw)
    return body.encode("utf-8", "surrogatepass")


@st.composite
def mutated_payloads(draw) -> tuple[str, bytes]:
    """A valid event on its own topic, then mutated: (topic, payload bytes)."""
    channel, payload = draw(valid_payloads)
    topic, original_id = topic_for(channel, payload), payload["event_id"]
    for _ in range(draw(st.integers(1, 3))):
        paths = field_paths(payload) or [("event_id",)]
        action = draw(st.sampled_from(["drop", "set", "set", "time", "add"]))
        if action == "drop":
            drop_at(payload, draw(st.sampled_from(paths)))
        elif action == "set":
            set_at(payload, draw(st.sampled_from(paths)), draw(bad_values))
        elif action == "time":
            field = draw(st.sampled_from(["event_time", "planned_departure"]))
            payload[field] = draw(st.sampled_from(EDGE_TIMES) | bad_values)
        else:
            payload[draw(st.text(st.characters(codec=None), max_size=10))] = draw(bad_values)
    if payload.get("event_id") == original_id:  # a changed event is another event
        payload["event_id"] = content_id(payload)
    body = dumps(payload, draw(st.booleans()))
    tweak = draw(st.sampled_from(["none", "none", "duplicate", "truncate", "flip", "prefix",
                                  "wrap"]))
    if tweak == "duplicate" and body.startswith(b"{") and body.endswith(b"}"):
        key = draw(st.sampled_from(sorted(payload) or ["event_id"]))
        pair = dumps({key: draw(bad_values)}, True)[1:-1]
        body = (b"{" + pair + b", " + body[1:] if draw(st.booleans())  # the last one counts
                else body[:-1] + b", " + pair + b"}")
    elif tweak == "truncate":
        body = body[:draw(st.integers(0, max(len(body) - 1, 0)))]
    elif tweak == "flip" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1:]
    elif tweak == "prefix":
        body = draw(st.sampled_from([b"\xef\xbb\xbf", b" ", b"\x00", b"[", b"//c\n"])) + body
    elif tweak == "wrap":
        body = b"[" + body + b"]"
    return topic, body


@st.composite
def poison(draw) -> Delivery:
    """A delivery that may or may not be acceptable: the fuzzer's whole repertoire."""
    family = draw(st.sampled_from(["bytes", "mutated", "mutated", "mutated", "size",
                                   "deep", "time", "number", "version", "text", "spoofed",
                                   "authority", "unknown_topic"]))
    if family == "bytes":
        channel, payload = draw(valid_payloads)
        return as_delivery(topic_for(channel, payload), draw(st.binary(max_size=300)))
    if family == "mutated":
        return as_delivery(*draw(mutated_payloads()))
    if family == "size":
        channel, payload = draw(valid_payloads)
        body = json.dumps(payload).encode()
        size = MAX_BYTES + draw(st.sampled_from([0, 1, 1000]))
        return as_delivery(topic_for(channel, payload), body + b" " * (size - len(body)))
    if family == "deep":
        channel, payload = draw(valid_payloads)
        body = deep(draw(st.sampled_from([200, 1000, 10_000, 32_000])), draw(st.sampled_from("[{")))
        return as_delivery(topic_for(channel, payload), body.encode())
    if family == "time":
        channel, payload = draw(valid_payloads)
        payload["event_time"] = draw(st.sampled_from(EDGE_TIMES) | st.datetimes(
            min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
            timezones=st.just(UTC)).map(datetime.isoformat))
        payload["event_id"] = content_id(payload)
        return as_delivery(topic_for(channel, payload), json.dumps(payload).encode())
    if family == "number":  # the telemetry's measurements at and beyond their ranges
        channel, payload = draw(telemetry_payloads)
        field = draw(st.sampled_from(sorted(NUMBER_FIELDS)))
        payload[field] = draw(st.sampled_from(SPECIAL_NUMBERS) | st.floats()
                              | st.integers(-(2**70), 2**70))
        payload["event_id"] = content_id(payload)
        return as_delivery(topic_for(channel, payload), dumps(payload, True))
    if family == "text":  # free text and ids: any code point, invisible and control ones
        channel, payload = draw(free_text_payloads)
        field = draw(st.sampled_from(sorted(set(payload) & (FREE_TEXT | {
            "flight_id", "barcode", "site_id", "drone_id"}))))
        payload[field] = draw(st.lists(st.sampled_from(SPECIAL_TEXT[1:])
                                       | st.text(st.characters(codec=None), max_size=5),
                                       min_size=1, max_size=4).map("ok ".join))
        payload["event_id"] = content_id(payload)
        topic = (LAYOUT.site_custody(payload["site_id"]) if channel is Channel.SITE_CUSTODY
                 and "/" not in payload["site_id"] else topic_for(channel, {"site_id": "x"}))
        return as_delivery(topic, dumps(payload, draw(st.booleans())))
    if family == "version":
        channel, payload = draw(valid_payloads)
        payload["schema_version"] = draw(st.sampled_from(
            [0, 2, -1, 1.5, "1", "v1", None, [1], {"major": 1}, 2**64]) | bad_values)
        return as_delivery(topic_for(channel, payload), dumps(payload, True))
    if family == "authority":  # a sender recording what it may not (custody rules)
        mode = draw(st.sampled_from(["step", "drone_id", "actor"]))
        names = {"step": ["custody.collected", "custody.packed", "custody.received",
                          "custody.rejected"],
                 "drone_id": ["custody.loaded", "custody.unloaded"]}.get(mode, sorted(
                     n for n in EXAMPLES if n.startswith("custody.")))
        payload = fresh(draw(st.sampled_from(names)), Channel.SITE_CUSTODY,
                        timedelta(minutes=1), 0)
        if mode == "actor":  # a site's scanner speaking as a drone
            payload["actor"] = {"kind": "drone", "id": draw(st.sampled_from(["uav-03", "x"]))}
            topic = LAYOUT.site_custody(payload["site_id"])
        else:  # a drone: only its own loading and unloading
            payload["actor"] = {"kind": "drone", "id": "uav-03"}
            if mode == "drone_id":
                payload["drone_id"] = draw(st.sampled_from(["uav-04", "UAV-03"]))
            topic = LAYOUT.drone_custody("uav-03")
        payload["event_id"] = content_id(payload)
        return as_delivery(topic, json.dumps(payload).encode())
    if family == "spoofed":
        channel, payload = draw(valid_payloads)
        other = draw(st.sampled_from(["uav-04", "pdrmyy", "cjzxwsy", "UAV-03", "uav-03.",
                                      "x" * 64]))
        topic = topic_for(channel, payload).replace(
            payload.get("site_id", "uav-03") if channel is Channel.SITE_CUSTODY else "uav-03",
            other)
        return as_delivery(topic, json.dumps(payload).encode())
    channel, payload = draw(valid_payloads)
    topic = draw(st.one_of(
        st.text(st.characters(codec=None), max_size=60),
        st.sampled_from(["", "/", "dronelog/v1", "dronelog/v1/drones/uav-03",
                         "dronelog/v1/drones//telemetry", "dronelog/v1/drones/uav-03/position",
                         "dronelog/v1/drones/uav-03/telemetry/extra", "dronelog/v2/drones/"
                         "uav-03/telemetry", "/dronelog/v1/drones/uav-03/telemetry",
                         "dronelog/v1/sites/pdrmyy/telemetry", "dronelog/v1/drones/+/status",
                         "dronelog/v1/drones/#", "dronelog/v1/drones/uav\x0003/status",
                         "dronelog/v1/sites/\ud800/custody", "dronelog/v1/alerts/x/custody"]),
        st.builds(lambda group, subject, leaf: f"dronelog/v1/{group}/{subject}/{leaf}",
                  st.sampled_from(["drones", "sites", "Drones", "alerts"]),
                  st.text(st.characters(codec=None), max_size=10),
                  st.sampled_from(["telemetry", "flight", "custody", "status", "Status", ""]))))
    return as_delivery(topic, json.dumps(payload).encode())


# --- the properties -------------------------------------------------------------------------


def check_triage(batch: list[Delivery], result: Triage) -> None:
    """Exactly one outcome per delivery, clear rejections, contract-true acceptances."""
    accepted = {id(item.delivery) for item in result.accepted}
    rejected = {id(item.delivery) for item in result.rejected}
    assert len(accepted) == len(result.accepted) and len(rejected) == len(result.rejected)
    assert not accepted & rejected
    assert accepted | rejected <= {id(d) for d in batch}
    assert len(batch) == len(result.accepted) + len(result.rejected) + result.repeats
    for item in result.rejected:
        check_rejection(item)
    for item in result.accepted:
        check_acceptance(item)


def check_rejection(item) -> None:
    assert item.reason_code in TRIAGE_CODES
    reason = item.reason
    assert isinstance(reason, str) and reason.strip(), item
    assert len(reason) <= MAX_REASON_CHARS, (item.reason_code, len(reason), reason[:200])
    assert reason.isprintable(), (item.reason_code, reason[:300])
    reason.encode("utf-8")  # no lone surrogates: the reason is stored and sent over HTTP
    if item.event_id is not None:  # the dead letter's event id column, on any database
        assert str(uuid.UUID(item.event_id)) == item.event_id, repr(item.event_id)


def check_acceptance(item) -> None:
    address = LAYOUT.parse(item.delivery.topic)
    assert address == item.address
    event = item.event
    assert isinstance(event, BaseModel)
    assert ADAPTER[address.channel].validate_python(event.model_dump()) == event
    canonical = event.model_dump(mode="json")
    errors = sorted(VALIDATOR[address.channel].iter_errors(canonical), key=str)
    assert not errors, (canonical, errors[0].message)
    sent = json.loads(item.delivery.payload)  # duplicate keys: the last wins, as in pydantic
    if isinstance(sent, dict) and isinstance(sent.get("barcode"), str):
        # the contract takes a scanned barcode with its framing (docs/contract.md, Barcode):
        # the schema's pattern is that of the canonical form, which every entrance stores
        sent["barcode"] = canonical_barcode(sent["barcode"])
    errors = sorted(jsonschema.Draft202012Validator(VALIDATOR[address.channel].schema)
                    .iter_errors(sent), key=str)
    assert not errors, ("accepted, but the payload as sent breaks the JSON Schema",
                        item.delivery.payload[:300], errors[0].message)
    if address.channel is Channel.SITE_CUSTODY:
        assert event.site_id == address.subject_id
    elif address.channel is Channel.DRONE_CUSTODY:
        assert (event.actor.kind, event.actor.id) == ("drone", address.subject_id)
        assert event.kind in ("loaded", "unloaded") and event.drone_id == address.subject_id
    else:
        assert event.drone_id == address.subject_id
    now = CLOCK.now()
    assert now - RULES.max_age <= event.event_time <= now + RULES.max_future_skew
    for name, value in event:
        if isinstance(value, datetime):
            stored = as_utc(value)  # what the writer does with every time
            assert datetime(1, 1, 1, tzinfo=UTC) <= stored, (name, value)
        if name in FREE_TEXT and isinstance(value, str):
            assert not any(unicodedata.category(c) == "Cc" and c not in "\t\n\r"
                           or c in BIDI_CONTROLS for c in value), (name, value)


def run_triage(batch: list[Delivery]) -> Triage:
    result = triage(batch, RULES, CLOCK)  # must not raise, whatever the batch
    check_triage(batch, result)
    return result


@FUZZ
@given(st.lists(poison(), min_size=1, max_size=6), valid_deliveries, st.randoms())
def test_triage_survives_poison_and_keeps_the_valid_event(poisons, good, rng):
    batch = [*poisons, good]
    rng.shuffle(batch)
    result = run_triage(batch)
    good_id = uuid.UUID(json.loads(good.payload)["event_id"])
    # accepted, or an identical copy of it was (ids follow from content: see content_id)
    assert any(item.event.event_id == good_id for item in result.accepted), (
        "a valid event was held back by the poison in its batch",
        [(r.reason_code, r.reason) for r in result.rejected if r.delivery is good])
    assert all(item.delivery is not good for item in result.rejected)


@settings(FUZZ, max_examples=800)
@given(mutated_payloads())
@example((LAYOUT.telemetry("uav-03"), deep(10_000, "[").encode()))
@example((LAYOUT.status("uav-03"), deep(10_000, "{").encode()))
@example((LAYOUT.flight("uav-03"), json.dumps(
    EXAMPLES["flight.planned"] | {"event_time": CLOCK.now().isoformat(),
                                  "planned_departure": "9999-12-31T23:59:59-23:59"}).encode()))
def test_every_mutation_gets_an_answer(mutation):
    run_triage([as_delivery(*mutation)])


@settings(FUZZ, max_examples=60)
@given(st.binary(max_size=2000), st.sampled_from(list(Channel)))
def test_arbitrary_bytes_are_rejected_as_not_json_or_schema_invalid(body, channel):
    topic = topic_for(channel, {"site_id": "cjzxwsy"})
    result = run_triage([as_delivery(topic, body)])
    for item in result.rejected:
        assert item.reason_code in {RejectReason.NOT_JSON, RejectReason.SCHEMA_INVALID,
                                    RejectReason.UNKNOWN_SCHEMA_VERSION,
                                    RejectReason.IMPOSSIBLE_VALUE}


@settings(FUZZ, max_examples=40)
@given(valid_payloads, st.sampled_from([0, 1, 4096]))
def test_the_size_limit_is_exact(pair, over):
    channel, payload = pair
    body = json.dumps(payload).encode()
    padded = body + b" " * (MAX_BYTES + over - len(body))
    result = run_triage([as_delivery(topic_for(channel, payload), padded)])
    if over == 0:
        assert len(result.accepted) == 1, [r.reason for r in result.rejected]
    else:
        assert [r.reason_code for r in result.rejected] == [RejectReason.OVERSIZED]
        assert f"{MAX_BYTES + over} bytes" in result.rejected[0].reason


@settings(FUZZ, max_examples=60)
@given(valid_payloads, st.text(st.characters(codec=None), min_size=1, max_size=64))
def test_a_spoofed_sender_is_an_identity_mismatch(pair, other):
    channel, payload = pair
    own = payload["site_id"] if channel is Channel.SITE_CUSTODY else "uav-03"
    assume("/" not in other and other != own)
    topic = topic_for(channel, payload).replace(f"/{own}/", f"/{other}/")
    result = run_triage([as_delivery(topic, json.dumps(payload).encode())])
    assert [r.reason_code for r in result.rejected] == [RejectReason.IDENTITY_MISMATCH]


@settings(FUZZ, max_examples=60)
@given(valid_payloads, st.sampled_from(EDGE_TIMES[:12]) | st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
    .filter(lambda t: abs(t - CLOCK.now()) > timedelta(days=31)).map(datetime.isoformat))
def test_times_outside_the_window_are_refused_not_stored(pair, moment):
    channel, payload = pair
    payload["event_time"] = moment
    result = run_triage([as_delivery(topic_for(channel, payload), json.dumps(payload).encode())])
    assert [r.reason_code for r in result.rejected] in (
        [RejectReason.EVENT_TIME_OUT_OF_RANGE], [RejectReason.SCHEMA_INVALID])


def test_naive_times_are_refused():
    for field in ("event_time", "planned_departure"):
        payload = fresh("flight.planned", Channel.FLIGHT, timedelta(0), 0)
        payload[field] = "2026-11-22T00:20:00"
        result = run_triage([as_delivery(LAYOUT.flight("uav-03"), json.dumps(payload).encode())])
        assert [r.reason_code for r in result.rejected] == [RejectReason.SCHEMA_INVALID]
        assert "timezone" in result.rejected[0].reason


# --- through the real writer, on SQLite and PostgreSQL --------------------------------------


def stored_ids(connection, table: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = connection.execute(text(f"SELECT event_id FROM {table}")).scalars()
    wanted = {uuid.UUID(i) for i in ids}
    return {str(uuid.UUID(str(r))) for r in rows if uuid.UUID(str(r)) in wanted}


def dead_letters(connection) -> dict[str, tuple[str, str]]:
    return {digest: (code, reason) for digest, code, reason in connection.execute(
        text("SELECT digest, reason_code, reason FROM dead_letter"))}


def digest_of(delivery: Delivery) -> str:
    import hashlib

    return hashlib.sha256(delivery.topic.encode("utf-8", "replace") + b"\0"
                          + delivery.payload).hexdigest()


@given(batch=st.lists(st.one_of(poison(), valid_deliveries), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@example(batch=[as_delivery(LAYOUT.telemetry("uav-03"),  # a lone surrogate as the event id
                            b'{"event_id": "\\ud800", "lat": 200}')])
@example(batch=[as_delivery(LAYOUT.telemetry("uav-03"),  # NUL in the event id
                            b'{"event_id": "\\u0000", "lat": 200}')])
@example(batch=[as_delivery(LAYOUT.flight("uav-03"), json.dumps(
    EXAMPLES["flight.planned"] | {"event_time": CLOCK.now().isoformat(),
                                  "planned_departure": "0001-01-01T00:00:00+23:59"}).encode())])
def test_the_writer_stores_what_triage_accepts_and_dead_letters_the_rest(engine, batch):
    result = triage(batch, RULES, CLOCK)
    check_triage(batch, result)
    retries: list[Exception] = []
    persister = Persister(BatchWriter(engine, CLOCK), first_delay_s=0.05,
                          on_retry=retries.append)
    with engine.connect() as connection:
        before = dead_letters(connection)
        counts_before = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                         for t in set(TABLE.values())}
        already = {t: stored_ids(connection, t, [str(a.event.event_id) for a in result.accepted
                                                 if TABLE[a.address.channel] == t])
                   for t in set(TABLE.values())}
    give_up = threading.Event()
    timer = threading.Timer(20, give_up.set)
    timer.start()
    try:
        written = persister.store(result.accepted, result.rejected, give_up)
    finally:
        timer.cancel()
    assert written is not None and not retries, (
        "the writer kept failing on a batch triage had passed", [repr(e)[:300] for e in retries])
    with engine.connect() as connection:
        after = dead_letters(connection)
        for table in set(TABLE.values()):
            ids = [str(a.event.event_id) for a in result.accepted
                   if TABLE[a.address.channel] == table]
            assert stored_ids(connection, table, ids) == {str(uuid.UUID(i)) for i in ids}
            count = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert count - counts_before[table] == len(set(ids) - already[table])
    assert not [code for code, _ in after.values() if code == RejectReason.STORAGE_REJECTED], (
        "the database refused an event that triage accepted",
        [reason for code, reason in after.values() if code == "storage_rejected"])
    expected = {digest_of(r.delivery): r for r in result.rejected}
    assert set(after) - set(before) == set(expected) - set(before)
    for digest, rejected in expected.items():
        code, reason = after[digest]
        assert code == rejected.reason_code.value and reason


def test_the_fuzzer_itself_reaches_every_reason_code():
    """Guards against strategies that silently stop producing some kind of poison."""
    seen: set[RejectReason] = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(poison())
    def collect(delivery):
        seen.update(item.reason_code for item in triage([delivery], RULES, CLOCK).rejected)

    collect()
    assert TRIAGE_CODES - seen == set(), TRIAGE_CODES - seen
