"""Every write through the API is recorded: who, what, when, as the next link of the audit
log's hash chain (dronelog/storage/record_chain.py)."""

import json
from datetime import datetime

from sqlalchemy import Connection

from dronelog.api.accounts import User
from dronelog.storage import record_chain


def record(connection: Connection, user: User, action: str, subject: str, now: datetime,
           **detail) -> None:
    record_chain.append(connection, record_chain.AUDIT_LOG, {
        "at": now, "user_id": user.id, "action": action, "subject": subject[:128],
        "detail": json.dumps(detail, default=str)})
