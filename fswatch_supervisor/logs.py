"""structlog setup: call ``configure_logging`` once per process, in its entry point.

One line per event; a console renderer on a terminal, JSON otherwise. uvicorn's and other stdlib
loggers go through the same processors, so a front-end's access log is structured too.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from fswatch_supervisor.memory import optional_imports_hidden

# structlog.dev imports rich (when installed) only for pretty tracebacks on a terminal, which the
# renderer below never uses: hiding it keeps about 3.5 MB of modules out of every process.
with optional_imports_hidden("rich"):
    import structlog


def configure_logging(role: str, *, level: str | None = None, json: bool | None = None) -> None:
    """Configure structlog and stdlib logging for this process, binding ``role`` and ``pid``."""
    level_name = (level or os.environ.get("FSWATCH_LOG_LEVEL", "info")).upper()
    as_json = json if json is not None else not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.dict_tracebacks if as_json else _identity,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(role=role, pid=os.getpid())


def _identity(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
