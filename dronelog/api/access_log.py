"""Uvicorn's access log without query values: a client that puts a token or a password in a
URL (`?access_token=...`) must not have it written to the logs. Keys stay, values go."""

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


def install() -> None:
    """Attach the filter (idempotent); called when the app starts, after uvicorn set up its
    loggers."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
