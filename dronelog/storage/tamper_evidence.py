"""Verify the whole record, and name the first broken link (docs/tamper-evidence.md).

In order: each specimen's custody chain (custody_chain.py), the specimen registry against
its chained description events (specimen_check.py), the audit log's chain and the record
seals' chain (record_chain.py), and each sealed flight's telemetry (telemetry_seal.py).
`dronelog audit verify` and `GET /api/v1/audit/record` report it.
"""

from dataclasses import dataclass

from sqlalchemy import Connection

from dronelog.storage import custody_chain, record_chain, specimen_check, telemetry_seal


@dataclass(frozen=True)
class RecordBreak:
    record: str  # custody_chain, specimen, audit_log, record_seal, telemetry
    subject: str  # a barcode, a row id, a flight id
    position: str | None  # the link or row; for telemetry the seal's id
    problem: str


@dataclass
class RecordVerification:
    custody_specimens: int = 0
    custody_events: int = 0
    specimens: int = 0
    audit_entries: int = 0
    seals: int = 0
    flights_sealed: int = 0
    telemetry_rows_sealed: int = 0
    telemetry_rows_unsealed: int = 0
    first_break: RecordBreak | None = None


def verify_record(connection: Connection, progress=None) -> RecordVerification:
    result = RecordVerification()
    custody = custody_chain.verify(connection, progress=progress)
    result.custody_specimens, result.custody_events = custody.specimens, custody.events
    if custody.first_break is not None:
        broken = custody.first_break
        result.first_break = RecordBreak(
            "custody_chain", broken.barcode,
            f"link {broken.seq or '-'}, event {broken.event_id}", broken.problem)
        return result
    result.specimens, specimen_break = specimen_check.verify(connection)
    if specimen_break is not None:
        result.first_break = RecordBreak("specimen", specimen_break.barcode, None,
                                         specimen_break.problem)
        return result
    for chain, field in ((record_chain.AUDIT_LOG, "audit_entries"),
                         (record_chain.RECORD_SEALS, "seals")):
        count, chain_break = record_chain.verify(connection, chain)
        setattr(result, field, count)
        if chain_break is not None:
            result.first_break = RecordBreak(chain.name, str(chain_break.row_id),
                                             f"row {chain_break.row_id}", chain_break.problem)
            return result
    telemetry = telemetry_seal.verify(connection)
    result.flights_sealed = telemetry.flights
    result.telemetry_rows_sealed = telemetry.rows
    result.telemetry_rows_unsealed = telemetry.unsealed_rows
    if telemetry.first_break is not None:
        broken = telemetry.first_break
        result.first_break = RecordBreak("telemetry", broken.flight_id,
                                         f"seal {broken.seal_id}", broken.problem)
    return result
