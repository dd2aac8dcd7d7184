"""Fault injection: which faults, how often, and how a message is broken on purpose.

Rates are probabilities: per flight for flight faults, per specimen for delays, per message
for transport faults, per drone for clock skew.
"""

import json
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FAULT_KINDS = ("lost_link", "low_battery", "diversion", "temperature_excursion",
               "delayed_pickup", "delayed_receipt", "seal_changed", "tube_left_behind", "duplicate",
               "out_of_order", "malformed", "clock_skew")


class FaultRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_link: float = Field(0.0, ge=0, le=1, description="per flight: a telemetry gap")
    low_battery: float = Field(0.0, ge=0, le=1, description="per flight: fast drain, "
                               "return home")
    diversion: float = Field(0.0, ge=0, le=1, description="per flight: land elsewhere")
    temperature_excursion: float = Field(0.0, ge=0, le=1, description="per flight: the box "
                                         "loses its insulation")
    delayed_pickup: float = Field(0.0, ge=0, le=1, description="per specimen")
    delayed_receipt: float = Field(0.0, ge=0, le=1, description="per specimen")
    seal_changed: float = Field(0.0, ge=0, le=1, description="per flight: another seal at "
                                "unloading")
    tube_left_behind: float = Field(0.0, ge=0, le=1, description="per specimen packed with "
                                    "others: on the box's manifest, left at the clinic")
    duplicate: float = Field(0.0, ge=0, le=1, description="per message: sent twice")
    out_of_order: float = Field(0.0, ge=0, le=1, description="per message: sent late")
    malformed: float = Field(0.0, ge=0, le=1, description="per message: a broken extra "
                             "message")
    clock_skew: float = Field(0.0, ge=0, le=1, description="per drone: its clock is off "
                              "by up to 90 s")

    @classmethod
    def parse(cls, text: str) -> "FaultRates":
        """`all=0.05` or `duplicate=0.02,malformed=0.01` (as on the command line)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, rate = part.partition("=")
            name = name.strip().replace("-", "_")
            try:
                number = float(rate) if rate else 0.05
            except ValueError as error:
                raise ValueError(f"fault rate for {name!r} is not a number: {rate!r}") from error
            if name == "all":
                values.update(dict.fromkeys(FAULT_KINDS, number))
            elif name in FAULT_KINDS:
                values[name] = number
            else:
                raise ValueError(f"unknown fault {name!r}; known: all, {', '.join(FAULT_KINDS)}")
        return cls(**values)


MalformKind = Literal["truncated", "wrong_type", "impossible_value", "unknown_version",
                      "not_json", "spoofed_topic"]
MALFORM_KINDS: tuple[MalformKind, ...] = ("truncated", "wrong_type", "impossible_value",
                                          "unknown_version", "not_json", "spoofed_topic")
EXPECTED_REASON: dict[str, str] = {
    "truncated": "not_json",
    "not_json": "not_json",
    "wrong_type": "schema_invalid",
    "impossible_value": "impossible_value",
    "unknown_version": "unknown_schema_version",
    "spoofed_topic": "identity_mismatch",
}


def malform(topic: str, payload: bytes, rng: random.Random) -> tuple[str, bytes, MalformKind]:
    """A broken copy of a telemetry message, and how it was broken. Every copy is distinct
    (it keeps the original's event id or bytes), so each lands as its own dead letter."""
    kind = rng.choice(MALFORM_KINDS)
    data = json.loads(payload)
    if kind == "truncated":
        return topic, payload[: max(1, len(payload) // 2)], kind
    if kind == "not_json":
        return topic, b"\x00garbage " + data["event_id"].encode(), kind
    if kind == "wrong_type":
        data["seq"] = f"#{data['seq']}"
    elif kind == "impossible_value":
        data["lat"] = 200.0 + rng.random()
    elif kind == "unknown_version":
        data["schema_version"] = 99
    else:
        parts = topic.split("/")
        parts[-2] = parts[-2] + "-spoof"
        topic = "/".join(parts)
    return topic, json.dumps(data).encode(), kind
