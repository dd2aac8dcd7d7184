"""Default turnaround targets, collection to lab receipt (docs/domain.md: STAT 45 min,
urgent 90 min, routine 240 min; warning at 75% of the budget), and a specimen's turnaround
status against its deadline."""

from datetime import datetime

DEFAULT_TARGET_MIN: dict[str, float] = {"stat": 45.0, "urgent": 90.0, "routine": 240.0}
DEFAULT_WARNING_FRACTION = 0.75


# Open, but not on its way to the destination by itself: never shown as on track.
STRANDED_STATES = frozenset({"misrouted", "location_unknown"})


def turnaround_status(state: str, received_at: datetime | None, deadline: datetime,
                      warning_at: datetime, now: datetime) -> str:
    """on_track, warning, breached (open); met, missed (received); rejected (never on time:
    a rejected specimen is collected again, whatever its times)."""
    if state == "rejected":
        return "rejected"
    if state == "received" and received_at is not None:
        return "met" if received_at <= deadline else "missed"
    if now >= deadline:
        return "breached"
    if now >= warning_at or state in STRANDED_STATES:
        return "warning"
    return "on_track"
