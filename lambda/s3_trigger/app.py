"""AWS Lambda entry point of the S3 trigger: parse settings, delegate to ``vsrflow.aws.trigger``.

Handler: ``app.handler``. Configuration comes from the function's ``VSRFLOW_AWS_*`` environment
(set by ``infra/cfn/vsrflow.yaml``). Retryable errors propagate, so Lambda's asynchronous retries
and the on-failure destination (DLQ) take over; bad input returns normally.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from vsrflow.aws.trigger import handle_event
from vsrflow.config import Settings


class _JsonLines(logging.Formatter):
    """Messages that are already JSON objects pass through with time/level/request id added."""

    def __init__(self, request_id: str | None) -> None:
        super().__init__()
        self.request_id = request_id

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            payload = json.loads(message)
            if not isinstance(payload, dict):
                payload = {"message": message}
        except ValueError:
            payload = {"message": message}
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "request_id": self.request_id,
            **payload,
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def _setup_logging(level: str, request_id: str | None) -> None:
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(_JsonLines(request_id))
    root.setLevel(level)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``{"records": [...]}`` summary per record (see vsrflow.aws.trigger)."""
    settings = Settings.from_env()
    _setup_logging(settings.log_level, getattr(context, "aws_request_id", None))
    return handle_event(event, settings)
