"""Tamper evidence over HTTP: verify the custody chains, or the whole record."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from dronelog.api.accounts import Role
from dronelog.api.deps import ConnectionDep, require
from dronelog.storage import custody_chain, tamper_evidence

router = APIRouter(prefix="/api/v1/audit", tags=["audit"],
                   dependencies=[Depends(require(Role.DISPATCHER, Role.ADMIN))])


class BrokenLink(BaseModel):
    barcode: str
    seq: int | None  # None: a custody event with no link at all
    event_id: str
    problem: str


class ChainReport(BaseModel):
    specimens: int
    events: int
    intact: bool
    first_break: BrokenLink | None = None


@router.get("/custody-chain", response_model=ChainReport,
            summary="Verify custody hash chains; the first broken link, if any")
def verify_chain(conn: ConnectionDep,
                 barcode: Annotated[list[str] | None, Query(
                     max_length=100, description="only these specimens; all when absent "
                     "(`dronelog audit verify` shows progress for large stores)")] = None
                 ) -> ChainReport:
    result = custody_chain.verify(conn, barcode or None)
    broken = result.first_break
    return ChainReport(specimens=result.specimens, events=result.events,
                       intact=broken is None,
                       first_break=BrokenLink(**broken.__dict__) if broken else None)


class RecordBreakOut(BaseModel):
    record: str  # custody_chain, specimen, audit_log, record_seal, telemetry
    subject: str
    position: str | None
    problem: str


class RecordReport(BaseModel):
    intact: bool
    custody_specimens: int
    custody_events: int
    specimens: int
    audit_entries: int
    seals: int
    flights_sealed: int
    telemetry_rows_sealed: int
    telemetry_rows_unsealed: int  # received after their flight's seal: late, not tampering
    first_break: RecordBreakOut | None = None


@router.get("/record", response_model=RecordReport,
            summary="Verify the whole record: custody chains, specimen registry, audit log, "
                    "record seals, sealed flight telemetry; the first broken link, if any")
def verify_record(conn: ConnectionDep) -> RecordReport:
    result = tamper_evidence.verify_record(conn)
    counts = {name: value for name, value in result.__dict__.items() if name != "first_break"}
    broken = result.first_break
    return RecordReport(intact=broken is None, **counts,
                        first_break=RecordBreakOut(**broken.__dict__) if broken else None)
