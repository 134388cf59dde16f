"""A Lambda runtime shim: turns the ingress queue's S3 events into calls of the real handler.

Lambda's ``invoke`` needs Docker in moto, so the bucket's notifications go to an SQS queue (the
stand-in for Lambda's internal async-invocation queue) and this runner calls the handler file the
function is packaged from (``lambda/s3_trigger/app.py``, ``handler(event, context)``) with the
delivered event, in this process, with the function's own environment variables (warm
container semantics: the module is imported once).

Async-invocation semantics, as Lambda applies them to S3 events:

* a call that returns deletes the message (the event is done, whatever the handler decided);
* a call that raises is retried after ``retry_delay_s`` (the message's visibility timeout is set
  to it), at most ``max_retries`` times (``MaximumRetryAttempts``, default 2);
* after the last failed attempt the queue's redrive policy (``maxReceiveCount = max_retries + 1``)
  moves the event to the template's DLQ, the event itself as the message body.

Every call is appended to ``invocations.jsonl`` (message id, receive count, the event and its
S3 keys, outcome, the handler's result or error, duration) so retries can be seen and an event
can be delivered again.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
#: How long a message stays invisible while the handler runs (the function's timeout).
INVOCATION_TIMEOUT_S = 120


@dataclass
class LocalLambdaContext:
    """The attributes and method of Lambda's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_s: float = INVOCATION_TIMEOUT_S
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


def load_handler(path: Path, name: str = "handler") -> Handler:
    """Import the handler file ``path`` (as Lambda does: a module of its own) and return ``name``."""
    spec = importlib.util.spec_from_file_location(f"vsrflow_local_lambda_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Lambda handler file {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, name, None)
    if not callable(handler):
        raise ImportError(f"{path} has no callable {name}(event, context)")
    return handler


def event_keys(event: Any) -> list[str]:
    """The (still URL-encoded) object keys of an S3 event, for the invocation log."""
    if not isinstance(event, dict):
        return []
    keys = []
    for record in event.get("Records") or []:
        try:
            keys.append(str(record["s3"]["object"]["key"]))
        except (KeyError, TypeError):
            continue
    return keys


class LambdaRunner:
    """Polls ``queue_url`` and calls ``handler`` per message (see the module docstring).

    Args:
        sqs: a boto3 SQS client of the local stack.
        queue_url: the ingress queue (its redrive policy points at the DLQ).
        handler: ``handler(event, context)``.
        function_name, function_arn: what the context reports.
        retry_delay_s: seconds before a failed event is retried.
        log_path: ``invocations.jsonl``.
        workers: concurrent pollers (Lambda's concurrency).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str,
        function_arn: str,
        retry_delay_s: int,
        log_path: Path,
        workers: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.function_arn = function_arn
        self.retry_delay_s = max(0, retry_delay_s)
        self.log_path = log_path
        self.workers = max(1, workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log_lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._poll, name=f"lambda-runner-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=INVOCATION_TIMEOUT_S,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("lambda runner: receive failed (%s); retrying", exc)
                time.sleep(0.5)
                continue
            for message in reply.get("Messages", []):
                self._invoke(message)

    def _invoke(self, message: dict[str, Any]) -> None:
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        context = LocalLambdaContext(function_name=self.function_name, invoked_function_arn=self.function_arn)
        entry: dict[str, Any] = {
            "message_id": message["MessageId"],
            "request_id": context.aws_request_id,
            "attempt": attempt,
            "time": time.time(),
        }
        t0 = time.monotonic()
        try:
            event = json.loads(message["Body"])
            entry["keys"] = event_keys(event)
            entry["event"] = event
            result = self.handler(event, context)
        except Exception as exc:
            entry.update(outcome="error", error=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - t0)
            log.warning(
                "lambda runner: handler raised on message %s (attempt %d): %s\n%s",
                message["MessageId"],
                attempt,
                entry["error"],
                traceback.format_exc(limit=5),
            )
            self._write(entry)
            # Retry after the delay; the redrive policy sends it to the DLQ after the last attempt.
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self.retry_delay_s,
                )
            except Exception as vis_exc:
                log.warning("lambda runner: could not schedule the retry: %s", vis_exc)
            return
        entry.update(outcome="ok", seconds=time.monotonic() - t0, result=_jsonable(result))
        self._write(entry)
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _write(self, entry: dict[str, Any]) -> None:
        with self._log_lock, self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
