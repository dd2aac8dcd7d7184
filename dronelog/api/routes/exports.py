"""A specimen's journey in the standards other systems read: HL7 FHIR R5 and GS1 EPCIS 2.0
(docs/exports.md)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from dronelog.api.accounts import Role
from dronelog.api.deps import BarcodePath, ConnectionDep, require
from dronelog.api.problems import Problem
from dronelog.exports import epcis, fhir
from dronelog.exports.journey import Journey, read_journey

router = APIRouter(prefix="/api/v1/specimens", tags=["exports"],
                   dependencies=[Depends(require(Role.LAB, Role.DISPATCHER, Role.ADMIN))])


class FhirJson(JSONResponse):
    media_type = "application/fhir+json"


class JsonLd(JSONResponse):
    media_type = "application/ld+json"


def _journey(barcode: BarcodePath, request: Request, conn: ConnectionDep) -> Journey:
    journey = read_journey(conn, barcode, request.app.state.clock.now())
    if journey is None:
        raise Problem(404, "Not found", f"no specimen with barcode {barcode!r} is tracked yet")
    return journey


JourneyDep = Annotated[Journey, Depends(_journey)]


@router.get("/{barcode}/fhir", response_class=FhirJson,
            summary="A specimen's journey as an HL7 FHIR R5 Bundle (collection)")
def fhir_bundle(journey: JourneyDep) -> FhirJson:
    return FhirJson(fhir.bundle(journey))


@router.get("/{barcode}/epcis", response_class=JsonLd,
            summary="A specimen's journey as a GS1 EPCIS 2.0 document (JSON-LD)")
def epcis_document(journey: JourneyDep) -> JsonLd:
    return JsonLd(epcis.document(journey))
