"""The turnaround engine's I/O side: projections of specimen and flight state, the sweep
that turns them into alerts, notifications, the daily report, and the scheduler that runs
it all. The rules themselves are pure and live in `dronelog.domain`."""
