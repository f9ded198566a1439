"""Logging through structlog: key=value lines on stderr, INFO by default.

`DEBUG=fero` (or any comma-separated list containing `fero` or `*`) turns on debug
output, like the original fero's `DEBUG=fero*`.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def debug_enabled(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    names = {n.strip() for n in env.get("DEBUG", "").split(",")}
    return bool(names & {"fero", "fero*", "*"})


def configure(json_lines: bool = False) -> None:
    level = logging.DEBUG if debug_enabled() else logging.INFO
    renderer = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
