"""Every write through the API is recorded: who, what, when."""

import json
from datetime import datetime

from sqlalchemy import Connection, insert

from dronelog.api.accounts import User
from dronelog.storage.tables import AuditEntry

AUDIT = AuditEntry.__table__


def record(connection: Connection, user: User, action: str, subject: str, now: datetime,
           **detail) -> None:
    connection.execute(insert(AUDIT).values(at=now, user_id=user.id, action=action,
                                            subject=subject[:128],
                                            detail=json.dumps(detail, default=str)))
