"""JSON Schema files generated from the message models (the models are the source of truth)."""

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from dronelog.contract.messages import (
    CustodyEvent,
    DroneStatus,
    FlightEvent,
    Receipt,
    Telemetry,
)

SCHEMA_FILES: dict[str, Any] = {
    "telemetry.schema.json": Telemetry,
    "flight-event.schema.json": FlightEvent,
    "custody-event.schema.json": CustodyEvent,
    "drone-status.schema.json": DroneStatus,
    "receipt.schema.json": Receipt,
}


def render_schemas() -> dict[str, str]:
    """File name -> file text, exactly as `dronelog contract export` writes it."""
    rendered = {}
    for name, model in SCHEMA_FILES.items():
        schema = TypeAdapter(model).json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://dronelog.example/schemas/v1/{name}",
            **schema,
        }
        schema.setdefault("title", name.removesuffix(".schema.json"))
        rendered[name] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return rendered


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
