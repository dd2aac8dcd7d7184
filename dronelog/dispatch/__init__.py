"""Transport requests at the edges: their rows and change log, the flight plan an assignment
sends through the shared ingest path, and the fixed departures the scheduler creates. The
decisions are in dronelog/domain/requests.py and dronelog/domain/dispatch.py."""
