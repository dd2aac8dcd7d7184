"""Default turnaround targets, collection to lab receipt (docs/domain.md: STAT 45 min,
urgent 90 min, routine 240 min; warning at 75% of the budget)."""

DEFAULT_TARGET_MIN: dict[str, float] = {"stat": 45.0, "urgent": 90.0, "routine": 240.0}
DEFAULT_WARNING_FRACTION = 0.75
