"""dronelog: chain of custody and flight telemetry for drone transport of lab specimens."""

__version__ = "0.1.0"
