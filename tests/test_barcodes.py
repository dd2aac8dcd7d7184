"""One canonical form for a typed or scanned barcode: the domain's function, its mirror in the
dashboards (the same table of cases through node), the contract that stores it, and the
lookup that finds it."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import TypeAdapter, ValidationError

from dronelog.contract.messages import Barcode
from dronelog.domain.barcodes import canonical_barcode

ROOT = Path(__file__).parent.parent
CASES = json.loads((ROOT / "tests" / "data" / "barcode_cases.json").read_text())["cases"]
BARCODE = TypeAdapter(Barcode)
PATTERN = BARCODE.json_schema()["pattern"]


@pytest.mark.parametrize(("raw", "canonical"), CASES)
def test_the_domain_gives_the_canonical_form(raw, canonical):
    assert canonical_barcode(raw) == canonical


def test_the_dashboards_give_the_same_canonical_form():
    node = shutil.which("node")
    if node is None:
        import conftest

        conftest.missing_component("node (Debian: apt-get install nodejs), to compare the "
                                   "dashboards' barcode normalisation with the server's")
    # scan_field.js imports the DOM helpers; node loads only the function's own lines
    source = (ROOT / "dashboards" / "js" / "scan_field.js").read_text()
    start = source.index("const FRAMING")
    end = source.index("/** {el, input}")
    script = (source[start:end].replace("export function", "function")
              + "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(cases.map(([raw]) => canonicalBarcode(raw))));")
    done = subprocess.run([node, "-e", script], input=json.dumps(CASES), capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == [canonical for _, canonical in CASES]


@pytest.mark.parametrize(("raw", "canonical"), CASES)
def test_the_contract_stores_the_canonical_form_or_refuses(raw, canonical):
    try:
        stored = BARCODE.validate_python(raw)
    except ValidationError:
        # refused only when the canonical form is not a barcode either
        assert not re.fullmatch(PATTERN, canonical)
        return
    assert stored == canonical


def test_framing_is_removed_but_never_makes_a_barcode_of_other_characters():
    assert BARCODE.validate_python("\x02]C1sp-0001\x03\r\n") == "SP-0001"
    for raw in ("spı1-0001", "SP 0001", "\u00a0SP-0001", "]C1", "SP-0001]C1"):
        with pytest.raises(ValidationError):
            BARCODE.validate_python(raw)


def test_a_scan_in_lower_case_with_framing_is_stored_and_found_as_one_specimen(api, engine,
                                                                                clock):
    from dronelog.api.accounts import Role
    from dronelog.config import Settings
    from dronelog.turnaround.service import TurnaroundJobs
    from tests.support import scan

    device = api.as_role(Role.DEVICE)
    collected = scan("custody.collected", minutes_ago=20)
    canonical = collected["barcode"]
    collected["barcode"] = f"\x02]C1{canonical.lower()}\x03\r\n"
    packed = scan("custody.packed", minutes_ago=10, barcode=f"  {canonical.lower()}\t")
    for event in (collected, packed):
        assert api.http.post("/api/v1/custody", headers=device, json=event).status_code == 201
    with engine.begin() as connection:
        stored = connection.exec_driver_sql("SELECT DISTINCT barcode FROM custody_event").all()
    assert stored == [(canonical,)]
    TurnaroundJobs(engine, Settings(database_url=str(engine.url)), clock=clock).turnaround()
    for typed in (canonical.lower(), f" {canonical.lower()} ", f"]C1{canonical}"):
        found = api.http.get(f"/api/v1/specimens/{quote(typed)}", headers=api.as_role(Role.LAB))
        assert found.status_code == 200, typed
        assert found.json()["barcode"] == canonical
        assert [step["kind"] for step in found.json()["timeline"]] == ["collected", "packed"]
