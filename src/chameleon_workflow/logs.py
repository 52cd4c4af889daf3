"""Log lines of the server and the scheduler: the request id on each, as text or JSON.

The request id lives in a context variable set by ``api.request_id`` for the duration of a
request; a filter on the handler copies it onto every record (``record.request_id``, None
outside a request), so engine code logs it without knowing about HTTP.
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("chameleon_request_id", default=None)

# The fields the services log with ``extra=`` that the text format shows after the message.
TEXT_FIELDS = ("request_id", "job", "run_id", "trigger", "counts", "replica", "alert")
# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record the handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL message`` then ``key=value`` for the structured fields present."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # (before any traceback)
        fields = " ".join(
            f"{k}={json.dumps(getattr(record, k), default=str)}"
            for k in TEXT_FIELDS
            if getattr(record, k, None) is not None
        )
        line = super().formatMessage(record)
        return f"{line} {fields}" if fields else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def dict_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the whole process (uvicorn's loggers included):
    one stderr handler with the request-id filter and the chosen format."""
    name = "JsonFormatter" if log_format == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"chameleon": {"()": f"{__name__}.{name}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "chameleon",
                "filters": ["request_id"],
            }
        },
        # uvicorn's loggers pass their lines on to the root handler.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure(log_format: LogFormat, level: str = "INFO") -> None:
    """Send this process's log lines to stderr in ``log_format``."""
    logging.config.dictConfig(dict_config(log_format, level))
