"""Structured logs (structlog): readable on a terminal, one JSON object per line in production."""

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(level: str = "INFO", fmt: str = "console",
                      stream: TextIO | None = None) -> None:
    """Logs to `stream` (default: standard error)."""
    stream = stream or sys.stderr
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
