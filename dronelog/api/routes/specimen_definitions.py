"""The stability catalogue (domain/stability.py) as HL7 FHIR R5 SpecimenDefinition: how long
each specimen type keeps from collection to the lab, and in what temperature band. Read-only,
for every signed-in role."""

from fastapi import APIRouter, Depends, Path, Request

from dronelog.api.deps import current_user
from dronelog.api.problems import Problem
from dronelog.api.routes.exports import FhirJson
from dronelog.exports import fhir

router = APIRouter(prefix="/api/v1/specimen-definitions", tags=["exports"],
                   dependencies=[Depends(current_user)])


@router.get("", response_class=FhirJson,
            summary="The stability catalogue: a FHIR R5 Bundle (searchset) of "
                    "SpecimenDefinition, one per specimen type")
def specimen_definitions(request: Request) -> FhirJson:
    return FhirJson(fhir.specimen_definitions(request.app.state.limits.catalogue.entries))


@router.get("/{definition_id}", response_class=FhirJson,
            summary="One specimen type of the stability catalogue as a FHIR R5 "
                    "SpecimenDefinition")
def specimen_definition(request: Request, definition_id: str = Path(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$")) -> FhirJson:
    entry = request.app.state.limits.catalogue.entry(definition_id)
    if entry is None:
        raise Problem(404, "Not found", f"no specimen type {definition_id!r} in the stability "
                      "catalogue")
    return FhirJson(fhir.specimen_definition(entry))
