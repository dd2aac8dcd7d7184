"""Hash chains over append-only tables: the audit log and the record seals.

Each row carries `prev_hash` and `hash` = SHA-256(prev_hash + the row's canonical form), in
the order of its id, starting from 64 zeros. The tables are append-only by trigger; changing,
deleting or slipping in a row past the triggers breaks the chain at that row, and `verify`
names it. Appending takes the chain's lock first (PostgreSQL: a transaction-scoped advisory
lock; SQLite: the database's write lock), so two writers never fork a chain and ids follow
chain order. As with custody chains (custody_chain.py), someone who can write the database
and run this code could rebuild a whole chain: anchor the head elsewhere (docs/tamper-evidence.md).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, text

from dronelog.storage.portable import as_utc, pages
from dronelog.storage.tables import AuditEntry, RecordSeal

GENESIS = "0" * 64


@dataclass(frozen=True)
class Chain:
    name: str  # what `verify` calls it
    table: Table
    fields: tuple[str, ...]  # the columns a link hashes


AUDIT_LOG = Chain("audit_log", AuditEntry.__table__,
                  ("at", "user_id", "action", "subject", "detail"))
RECORD_SEALS = Chain("record_seal", RecordSeal.__table__,
                     ("kind", "subject", "rows", "digest", "covered_until", "detail",
                      "sealed_at"))


def canonical(fields: tuple[str, ...], row: Any) -> bytes:
    """The fields as sorted JSON; times in UTC to the microsecond."""
    values = {}
    for name in fields:
        value = row[name]
        if isinstance(value, datetime):
            value = as_utc(value).isoformat(timespec="microseconds")
        elif value is not None and not isinstance(value, int):
            value = str(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode()


def link_hash(chain: Chain, previous: str, row: Any) -> str:
    return hashlib.sha256(previous.encode() + canonical(chain.fields, row)).hexdigest()


def append(connection: Connection, chain: Chain, row: dict[str, Any]) -> None:
    """Insert `row` as the chain's next link, in the caller's transaction."""
    take_lock(connection, chain.name)
    table = chain.table
    previous = connection.execute(select(table.c.hash).order_by(table.c.id.desc()).limit(1)
                                  ).scalar() or GENESIS
    connection.execute(insert(table).values(**row, prev_hash=previous,
                                            hash=link_hash(chain, previous, row)))


def take_lock(connection: Connection, name: str) -> None:
    """Serialize writers of one chain until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                           {"key": f"record-chain:{name}"})
    else:  # a write statement takes SQLite's write lock, even one that changes no row
        connection.execute(text("UPDATE job_state SET value = value WHERE 0 = 1"))


@dataclass(frozen=True)
class ChainBreak:
    chain: str
    row_id: int
    problem: str


def verify(connection: Connection, chain: Chain) -> tuple[int, ChainBreak | None]:
    """Walk the chain in id order: how many rows, and the first broken link."""
    previous, count = GENESIS, 0
    for row in (row for page in pages(connection, chain.table, chain.table.c.id, 5000)
                for row in page):
        count += 1
        if row.prev_hash != previous:
            return count, ChainBreak(chain.name, row.id, "the row does not follow the one "
                                     "before it (a row was removed, or inserted outside "
                                     "dronelog)")
        if link_hash(chain, previous, row._mapping) != row.hash:
            return count, ChainBreak(chain.name, row.id, "the row was changed after it was "
                                     "written")
        previous = row.hash
    return count, None

