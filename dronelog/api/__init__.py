"""The HTTP API (FastAPI): status, history and actions for lab staff, dispatchers, admins and
devices. Routes stay thin: they read the projections and call the same domain and storage
code as the other entrances."""
