"""A wake-up call for the API's live feeds, sent with a writer's commit.

On PostgreSQL a NOTIFY issued inside a transaction is delivered when it commits and dropped
when it rolls back, so a feed woken by it reads what is already visible. The notice carries
nothing: the database stays the truth. SQLite needs none: a feed there notices any commit by
the file's data version (`dronelog/api/change_feed.py`).
"""

from sqlalchemy import Connection

CHANNEL = "dronelog_changes"


def announce(connection: Connection) -> None:
    """Wake the live feeds when this transaction commits (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
