"""Tamper evidence over HTTP: verify the hash chains of custody events."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from dronelog.api.accounts import Role
from dronelog.api.deps import ConnectionDep, require
from dronelog.storage import custody_chain

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
