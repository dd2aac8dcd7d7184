"""Deduplicate stage: within a batch, the first copy of an event id wins.

Across batches and restarts the database's unique keys do the same job (the writer inserts
with ON CONFLICT DO NOTHING), so a redelivered event is stored once however it comes back.
"""

from dronelog.ingest.delivery import Accepted


def drop_repeats(accepted: list[Accepted]) -> tuple[list[Accepted], int]:
    seen: set = set()
    unique = []
    for item in accepted:
        event_id = item.event.event_id
        if event_id in seen:
            continue
        seen.add(event_id)
        unique.append(item)
    return unique, len(accepted) - len(unique)
