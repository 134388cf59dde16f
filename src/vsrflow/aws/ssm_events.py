"""SSM command failures on real AWS: EventBridge ``EC2 Command Invocation Status-change Notification``.

The trigger sends ``<vsrflow> submit --job-id <id>`` with ``Comment="vsrflow job <id>"``. When that
command invocation ends Failed, TimedOut, Undeliverable or Cancelled, an EventBridge rule
(infra/cfn/vsrflow.yaml ``CommandFailedRule``) invokes the same trigger Lambda with an event of
the recorded shape in tests/fixtures/events/ssm-command-failed.json::

    {"source": "aws.ssm", "detail-type": "EC2 Command Invocation Status-change Notification",
     "detail": {"command-id": ..., "instance-id": ..., "document-name": "AWS-RunShellScript",
                "requested-date-time": ..., "status": "Failed"}, ...}

:func:`handle_command_event` then reads the invocation (``ssm:GetCommandInvocation``: its
``Comment`` carries the job id, ``StandardErrorContent`` the stderr tail), records the failure with
:func:`vsrflow.aws.status.mark_command_failed` (a more precise terminal status already written by
the head node is kept) and releases the job's idempotency record (only when it names this command),
so a redelivered or re-sent event can start the job again. Commands that are not ours (no
``vsrflow job <hex>`` comment, another document) are ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.commands import COMMENT_RE, RUN_SHELL_SCRIPT
from vsrflow.aws.errors import error_code, is_transient
from vsrflow.aws.idempotency import IdempotencyStore
from vsrflow.aws.jobrecords import read_status
from vsrflow.aws.status import mark_command_failed
from vsrflow.config import Settings
from vsrflow.errors import TransientError, VsrError
from vsrflow.workflow.job.state import JobState

log = logging.getLogger(__name__)

SOURCE = "aws.ssm"
DETAIL_TYPE = "EC2 Command Invocation Status-change Notification"
#: Invocation end states that mean the job never got (or lost) its head-node submission.
FAILED_STATUSES = frozenset({"Failed", "TimedOut", "Undeliverable", "Cancelled"})
DOCUMENT = RUN_SHELL_SCRIPT


def _jlog(level: int, message: str, **fields: Any) -> None:
    log.log(level, json.dumps({"message": message, **fields}, default=str, ensure_ascii=False))


def is_command_event(event: object) -> bool:
    """Whether ``event`` is an EventBridge SSM command-invocation status change (any status)."""
    return (
        isinstance(event, dict) and event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE
    )


def handle_command_event(event: dict[str, Any], settings: Settings, clients: AwsClients) -> dict[str, Any]:
    """Record the failure of a vsrflow head-node command; returns a one-record summary.

    ``{"records": [{"key": None, "outcome": "command_failed" | "ignored", "job_id", "reason",
    "command_id"}]}``. AWS errors that are worth a retry raise TransientError (EventBridge's
    asynchronous invocation retries, then the DLQ); a malformed event is ignored with its reason.
    """
    detail = event.get("detail")
    summary: dict[str, Any] = {"key": None, "outcome": "ignored", "job_id": None, "reason": None}
    if not isinstance(detail, dict):
        summary["reason"] = "command event without a detail object"
        return _done(summary)
    command_id, instance_id = detail.get("command-id"), detail.get("instance-id")
    status = detail.get("status")
    summary["command_id"] = command_id
    if not isinstance(command_id, str) or not isinstance(instance_id, str):
        summary["reason"] = "command event without command-id/instance-id"
        return _done(summary)
    if status not in FAILED_STATUSES:
        summary["reason"] = f"command status {status!r} is not a failure"
        return _done(summary)
    if detail.get("document-name") != DOCUMENT:
        summary["reason"] = f"document {detail.get('document-name')!r} is not {DOCUMENT}"
        return _done(summary)
    try:
        invocation = clients.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(
                f"cannot read command {command_id}: {error_code(exc)}", hint="retried"
            ) from exc
        summary["reason"] = f"cannot read command {command_id}: {error_code(exc) or exc}"
        return _done(summary)
    match = COMMENT_RE.fullmatch(str(invocation.get("Comment") or ""))
    if match is None:
        summary["reason"] = "not a vsrflow command (no 'vsrflow job <id>' comment)"
        return _done(summary)
    job_id = summary["job_id"] = match.group(1)
    aws = settings.aws
    store = IdempotencyStore(clients.dynamodb, aws.table) if aws.table else None
    record = store.get(job_id) if store else None
    if record is not None and record.command_id not in (None, command_id):
        summary["reason"] = "a newer command owns this job (stale failure)"
        return _done(summary)
    stderr = str(invocation.get("StandardErrorContent") or "")
    if not stderr.strip():
        details = invocation.get("StatusDetails") or status
        stderr = f"SSM status {status} ({details}) on {instance_id}"
    code = invocation.get("ResponseCode")
    exit_code = int(code) if isinstance(code, int) and code >= 0 else None
    mark_command_failed(
        aws, job_id, exit_code=exit_code, stderr=stderr, command_id=command_id, clients=clients
    )
    current = read_status(clients.s3, aws.bucket, job_id) if aws.bucket else None
    if store is not None and current is not None and current.state is JobState.FAILED:
        _release(store, job_id, command_id)
    summary.update(outcome="command_failed", reason=current.reason if current else None)
    return _done(summary)


def _done(summary: dict[str, Any]) -> dict[str, Any]:
    level = logging.WARNING if summary["outcome"] == "command_failed" else logging.INFO
    _jlog(level, f"command event {summary['outcome']}", **summary)
    return {"records": [summary]}


def _release(store: IdempotencyStore, job_id: str, command_id: str) -> None:
    """Delete the job's idempotency record when it is the submitted record of THIS command."""
    try:
        released = store.release_command(job_id, command_id)
        error = None if released else "a newer claim or command holds it"
    except VsrError as exc:
        error = str(exc)
    if error is not None:
        _jlog(logging.WARNING, "idempotency record kept", job_id=job_id, error=error)
