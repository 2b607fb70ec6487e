"""JSON-lines logging for the agent host daemon (libraries only call logging.getLogger(__name__)).

One object per line on stderr: ts, level, logger, msg, and host_id / task_id
when bound (host_id via configure_logging, task_id via `extra={"task_id": ...}`
or the `task_id_var` context variable), plus exc when there is a traceback.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

import orjson

task_id_var: ContextVar[str | None] = ContextVar("maos_task_id", default=None)


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one compact JSON object."""

    def __init__(self, host_id: str | None = None) -> None:
        super().__init__()
        self.host_id = host_id

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        host_id = getattr(record, "host_id", None) or self.host_id
        if host_id:
            doc["host_id"] = host_id
        task_id = getattr(record, "task_id", None) or task_id_var.get()
        if task_id:
            doc["task_id"] = task_id
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str).decode()


class _MaosHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it."""


def configure_logging(level: str = "INFO", *, host_id: str | None = None, stream: IO[str] | None = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines at `level` and above."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _MaosHandler):
            root.removeHandler(handler)
    handler = _MaosHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter(host_id))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # grpc's own Python loggers are chatty at DEBUG about internals a host operator cannot act on.
    logging.getLogger("grpc").setLevel(max(logging.INFO, root.level))
