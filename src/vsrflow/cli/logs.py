"""Logging set-up for the command line: human-readable text, JSON lines when asked or in Slurm."""

from __future__ import annotations

import json
import logging
import sys
import time

from vsrflow.config import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and any ``extra`` job fields."""

    _FIELDS = ("job_id", "chunk", "stage")

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self._FIELDS:
            if hasattr(record, field):
                payload[field] = getattr(record, field)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def json_logs(settings: Settings) -> bool:
    """JSON lines when ``settings.log_format`` is json, or auto inside a Slurm job (cluster logs
    are read by machines); human-readable text otherwise (terminals, CI, ``| tee``, nohup)."""
    if settings.log_format == "auto":
        return settings.in_slurm_job
    return settings.log_format == "json"


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL message`` (level only when not INFO; the logger name only at DEBUG)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        where = f"[{record.name}] " if logging.getLogger().level <= logging.DEBUG else ""
        text = f"{stamp} {where}{level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str, *, json_logs: bool = False) -> None:
    """Configure the root logger once: JSON lines (``json_logs``) or :class:`TextFormatter` on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
