"""The contract: examples are valid, schema files are current, bad values are refused."""

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import TypeAdapter, ValidationError

from dronelog.contract.examples import EXAMPLES, RECEIPT_EXAMPLE
from dronelog.contract.messages import CustodyEvent, DroneStatus, FlightEvent, Telemetry
from dronelog.contract.schemas import SCHEMA_FILES, render_schemas

SCHEMA_DIR = Path(__file__).parent.parent / "docs" / "schemas"
MODEL_OF = {"telemetry": Telemetry, "flight": FlightEvent, "custody": CustodyEvent,
            "status": DroneStatus}
SCHEMA_OF = {"telemetry": "telemetry.schema.json", "flight": "flight-event.schema.json",
             "custody": "custody-event.schema.json", "status": "drone-status.schema.json"}


def test_schema_files_are_generated_from_the_models():
    rendered = render_schemas()
    assert set(rendered) == set(SCHEMA_FILES)
    for name, text in rendered.items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, (
            f"docs/schemas/{name} is stale: run `dronelog contract export`")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_valid_for_model_and_schema(name):
    family = name.split(".")[0]
    TypeAdapter(MODEL_OF[family]).validate_python(EXAMPLES[name])
    schema = json.loads((SCHEMA_DIR / SCHEMA_OF[family]).read_text(encoding="utf-8"))
    jsonschema.validate(EXAMPLES[name], schema)


def test_every_flight_and_custody_kind_has_an_example():
    kinds = {name.split(".")[1] for name in EXAMPLES if "." in name}
    assert {"planned", "takeoff", "landed", "aborted", "diverted", "returned_home"} <= kinds
    assert {"collected", "packed", "loaded", "unloaded", "received", "rejected"} <= kinds


def _with(name, **changes):
    payload = json.loads(json.dumps(EXAMPLES[name]))
    for key, value in changes.items():
        target = payload
        *path, leaf = key.split("__")
        for part in path:
            target = target[part]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    return payload


@pytest.mark.parametrize("name, changes, complaint", [
    ("telemetry", {"lat": 200}, "lat"),
    ("telemetry", {"heading_deg": 360}, "heading_deg"),
    ("telemetry", {"battery_pct": -1}, "battery_pct"),
    ("telemetry", {"event_time": "2026-11-22T08:00:00"}, "timezone"),
    ("telemetry", {"event_id": "not-a-uuid"}, "event_id"),
    ("telemetry", {"patient_name": "x"}, "patient_name"),
    ("telemetry", {"drone_id": "uav 03/x"}, "drone_id"),
    ("flight.planned", {"destination_site_id": "cjzxwsy"}, "must differ"),
    ("flight.diverted", {"new_destination_site_id": ...}, "new_destination_site_id"),
    ("custody.collected", {"specimen": ...}, "specimen"),
    ("custody.collected", {"specimen__order_ref": "370283199001011234"}, "resident identity"),
    ("custody.collected", {"specimen__kind": "blood_unit"}, "blood_product"),
    ("custody.packed", {"seal_id": ...}, "seal_id"),
    ("custody.rejected", {"reason": "bad vibes"}, "reason"),
    ("custody.rejected", {"note": "line\x00break"}, "note"),
])
def test_impossible_or_incomplete_messages_are_refused(name, changes, complaint):
    family = name.split(".")[0]
    with pytest.raises(ValidationError) as error:
        TypeAdapter(MODEL_OF[family]).validate_python(_with(name, **changes))
    assert complaint in str(error.value)


def test_nan_and_infinity_are_refused_from_json():
    text = json.dumps(EXAMPLES["telemetry"]).replace("5.8", "NaN")
    with pytest.raises(ValidationError):
        Telemetry.model_validate_json(text)


def test_a_blood_unit_needs_its_product():
    payload = _with("custody.collected", specimen__kind="blood_unit",
                    specimen__blood_product="platelets", specimen__temperature_class="platelets")
    event = TypeAdapter(CustodyEvent).validate_python(payload)
    assert event.specimen.blood_product == "platelets"


def test_every_example_in_the_contract_doc_is_a_current_example():
    doc = (SCHEMA_DIR.parent / "contract.md").read_text(encoding="utf-8")
    blocks = [json.loads(block.split("```", 1)[0]) for block in doc.split("```json\n")[1:]]
    assert blocks == [*EXAMPLES.values(), RECEIPT_EXAMPLE]  # the receipt's block comes last
