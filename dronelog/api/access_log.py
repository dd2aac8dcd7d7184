"""Uvicorn's access log without query values: a client that puts a token or a password in a
URL (`?access_token=...`) must not have it written to the logs. Keys stay, values go.

And without a line per dashboard file served: a page load fetches some thirty files (HTML,
modules, styles, the map library), which buried the API's own lines. Dashboard files are
logged only when they fail (status 400 or more), unless DRONELOG_LOG_DASHBOARD_FILES=true."""

import logging
from urllib.parse import parse_qsl, urlencode

ACCESS_LOGGER = "uvicorn.access"


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client_addr, method, full_path, http_version, status_code)
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, full_path, version, status = record.args
            path, _, query = str(full_path).partition("?")
            if query:
                hidden = urlencode([(key, "***") for key, _ in
                                    parse_qsl(query, keep_blank_values=True)], safe="*")
                record.args = (client, method, f"{path}?{hidden}", version, status)
        return True


# Paths of the API and its documents; everything else the app serves is a dashboard file.
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")


class QuietDashboardFiles(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            path = str(record.args[2]).partition("?")[0]
            status = record.args[4]
            if not path.startswith(API_PREFIXES) and isinstance(status, int) and status < 400:
                return False
        return True


def install(dashboard_files: bool = False) -> None:
    """Attach the filters (idempotent); called when the app starts, after uvicorn set up its
    loggers. `dashboard_files`: log successful dashboard file requests too."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
    quiet = [f for f in logger.filters if isinstance(f, QuietDashboardFiles)]
    if not dashboard_files and not quiet:
        logger.addFilter(QuietDashboardFiles())
    if dashboard_files:
        for item in quiet:
            logger.removeFilter(item)
