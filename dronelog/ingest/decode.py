"""Decode stage: bytes on a topic -> a contract message, or a rejection with a clear reason.

The payload is parsed and validated in one pass by pydantic's JSON parser (the hot path at
10,000 messages a second cannot afford to parse twice); only a failure is looked at again.
Validation is strict: a JSON value must have the type the JSON Schema files name (no "12" for
a number, 12.0 for an integer, "yes" or 1 for a boolean, or a number for a time), so the
ingester accepts nothing that the published schema refuses.
"""

import json
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from dronelog.contract.messages import CustodyEvent, DroneStatus, FlightEvent, Telemetry
from dronelog.contract.topics import Channel, TopicLayout
from dronelog.ingest.delivery import Accepted, Delivery, Rejected, RejectReason

_ADAPTERS: dict[Channel, TypeAdapter[Any]] = {
    Channel.TELEMETRY: TypeAdapter(Telemetry),
    Channel.FLIGHT: TypeAdapter(FlightEvent),
    Channel.DRONE_CUSTODY: TypeAdapter(CustodyEvent),
    Channel.SITE_CUSTODY: TypeAdapter(CustodyEvent),
    Channel.STATUS: TypeAdapter(DroneStatus),
}

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number"}
_MAX_REASON_ERRORS = 5
_MAX_REASON_CHARS = 1000


def decode(delivery: Delivery, layout: TopicLayout, max_payload_bytes: int) -> Accepted | Rejected:
    size = len(delivery.payload)
    if size > max_payload_bytes:
        return Rejected(delivery, RejectReason.OVERSIZED,
                        f"payload of {size} bytes exceeds the limit of {max_payload_bytes}")
    address = layout.parse(delivery.topic)
    if address is None:
        return Rejected(delivery, RejectReason.UNKNOWN_TOPIC,
                        f"topic {_quoted(delivery.topic, 200)} is not part of the contract")
    try:
        event = _ADAPTERS[address.channel].validate_json(delivery.payload, strict=True)
    except ValidationError as error:
        return _explain(delivery, error)
    return Accepted(delivery, address, event)


def _explain(delivery: Delivery, error: ValidationError) -> Rejected:
    errors = error.errors(include_url=False, include_context=False)
    event_id = _event_id_of(delivery.payload)
    if any(e["type"] == "json_invalid" or e["type"] == "json_type" for e in errors):
        return Rejected(delivery, RejectReason.NOT_JSON,
                        f"payload is not a JSON object: {_readable(errors[0]['msg'], 200)}",
                        event_id)
    version_errors = [e for e in errors if e["loc"][-1:] == ("schema_version",)
                      and e["type"] != "missing"]
    if version_errors:
        return Rejected(delivery, RejectReason.UNKNOWN_SCHEMA_VERSION,
                        f"schema_version {_quoted(version_errors[0]['input'], 60)} is not "
                        "supported (supported: 1)", event_id)
    code = (RejectReason.IMPOSSIBLE_VALUE if all(e["type"] in _RANGE_ERRORS for e in errors)
            else RejectReason.SCHEMA_INVALID)
    parts = [_describe(e) for e in errors[:_MAX_REASON_ERRORS]]
    if len(errors) > _MAX_REASON_ERRORS:
        parts.append(f"and {len(errors) - _MAX_REASON_ERRORS} more")
    return Rejected(delivery, code, _readable("; ".join(parts), _MAX_REASON_CHARS), event_id)


def _describe(error: dict[str, Any]) -> str:
    where = _readable(".".join(str(part) for part in error["loc"]), 80) or "payload"
    text = f"{where}: {_readable(error['msg'], 200)}"
    if error["type"] != "missing" and isinstance(error.get("input"), int | float | str | bool):
        text += f" (got {_quoted(error['input'], 60)})"
    return text


def _quoted(value: Any, limit: int) -> str:
    """A short excerpt of what the sender sent, quoted as Python would print it."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    return _readable(repr(value), limit)


def _readable(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, with control, format and other unprintable
    characters (NUL, escape sequences, right-to-left overrides, lone surrogates) escaped.

    A reason echoes parts of the payload: an unknown key, a discriminator tag, a bad value.
    It is logged, stored in the dead letter and sent back over HTTP, so it must be bounded
    and safe to print."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + "..." if len(text) > limit else shown


def _event_id_of(payload: bytes) -> str | None:
    """Best effort, for the dead letter: the event id of a payload that failed validation,
    if it is a UUID. Anything else in that field is the sender's garbage, kept in the raw
    payload only: a lone surrogate could not be encoded for any database (the writer would
    retry it forever) and PostgreSQL refuses NUL in a text column."""
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("event_id"), str):
        try:
            return str(UUID(value["event_id"]))
        except ValueError:
            return None
    return None
